//! `ocipack build --check --against REF [--explain] [DIR]`: printing what
//! `ocipack::project::against` found (with `[[images]]`, REF is a repository and each line
//! names the image and the tag it was checked under).

use std::path::Path;

use super::out;
use super::remote::RemoteArgs;

use ocipack::error::{Error, Result};
use ocipack::project::against::{self, AgainstOptions};
use ocipack::project::plan::BuildOptions;
use ocipack::registry::Reference;

/// Compares the project in `dir` with what the registry serves under `reference`.
pub fn run(
    dir: &Path,
    reference: &str,
    explain: bool,
    json: bool,
    remote: &RemoteArgs,
    opts: &BuildOptions,
) -> Result<u8> {
    // Parsed here only to name its registry in the TLS warning (a repository alone parses
    // too); the project decides whether it must be one.
    let registry = reference.parse::<Reference>()?.registry;
    let against_opts = AgainstOptions {
        fetch: remote.fetch_options()?,
        explain,
    };
    remote.tls.warn(&registry);
    let report = against::check_against(dir, reference, opts, &against_opts)?;
    if json {
        let mut v = serde_json::to_value(&report)
            .map_err(|e| Error::internal(format!("the report as JSON: {e}")))?;
        v["identical"] = serde_json::json!(report.passes());
        out!("{}", String::from_utf8_lossy(&ocipack::cjson::to_vec(&v)?));
    } else {
        let width = report
            .platforms
            .iter()
            .map(|p| p.label.len())
            .max()
            .unwrap_or(0)
            .max(9);
        // With [[images]], each line names the entry (in its label) and the tag it is
        // checked under.
        let tag_width = report
            .platforms
            .iter()
            .filter_map(|p| p.tag.as_ref().map(String::len))
            .max();
        for p in &report.platforms {
            let digest = match (&p.registry, &p.built) {
                (Some(d), _) | (None, Some(d)) => format!("{d}  "),
                (None, None) => String::new(),
            };
            let tag = match (tag_width, &p.tag) {
                (Some(w), Some(t)) => format!("{t:<w$}  "),
                (Some(w), None) => format!("{:<w$}  ", ""),
                (None, _) => String::new(),
            };
            out!("{:<width$} {tag}{digest}{}", p.label, p.verdict);
            for line in &p.explanation {
                out!("{:<width$}   {line}", "");
            }
        }
    }
    if report.passes() {
        return Ok(0);
    }
    let failing = report
        .platforms
        .iter()
        .filter(|p| p.verdict.fails())
        .count();
    Err(Error::CheckFailed(format!(
        "check failed: {failing} {} of {}{} not what {} builds",
        if failing == 1 {
            "platform"
        } else {
            "platforms"
        },
        if report.images.is_empty() {
            ""
        } else {
            "the images' tags in "
        },
        report.reference,
        ocipack::show::path(dir),
    )))
}
