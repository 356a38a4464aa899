//! Every problem found in a layout, collected rather than stopping at the first.
//!
//! A [`Problem`] names the file (relative to the layout), the JSON path or tar entry, and
//! what is wrong. The image rules, the layout reader and the verifier above them all record
//! into one [`Problems`]; a consumer that needs a valid image refuses one with any error.
//! Each problem is recorded once: two rules that reach the same descriptor (an `index.json`
//! entry is checked as one of the index's descriptors and as the image's) do not say the
//! same thing twice. This module sits below all of them and imports nothing but the
//! printing helpers.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use crate::show;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The layout is not valid.
    Error,
    /// Valid, but a reproducibility smell or a compatibility note.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem: the file (relative to the layout), the field or entry, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file, relative to the layout (`index.json`, `blobs/sha256/…`).
    pub file: String,
    /// The JSON path (`manifests[0].platform.architecture`) or tar entry, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Who refuses (or changes) what this problem names, for the profile rules of
    /// `verify --profile oci-import`: `bashbrew`, `meta-scripts`, `crane`, `ocipack`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.file)?;
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        if let Some(origin) = &self.origin {
            write!(f, ": [{origin}]")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A collector of problems, each recorded once, in the order first found.
#[derive(Debug, Default)]
pub struct Problems {
    found: Vec<Problem>,
    seen: HashSet<Problem>,
}

impl Problems {
    fn push(&mut self, severity: Severity, file: &[u8], field: Option<String>, message: String) {
        self.push_from(severity, None, file, field, message);
    }

    fn push_from(
        &mut self,
        severity: Severity,
        origin: Option<String>,
        file: &[u8],
        field: Option<String>,
        message: String,
    ) {
        let problem = Problem {
            severity,
            file: show::bytes(file),
            field: field.filter(|f| !f.is_empty()).map(|f| show::line(&f)),
            origin,
            message: show::line(&message),
        };
        if self.seen.insert(problem.clone()) {
            self.found.push(problem);
        }
    }

    /// Records a problem of `severity` that `origin` (`bashbrew, meta-scripts`) enforces.
    pub fn by(
        &mut self,
        severity: Severity,
        origin: &str,
        file: impl AsRef<[u8]>,
        field: Option<String>,
        message: impl Into<String>,
    ) {
        self.push_from(
            severity,
            Some(origin.to_string()),
            file.as_ref(),
            field,
            message.into(),
        );
    }

    /// Records an error.
    pub fn error(
        &mut self,
        file: impl AsRef<[u8]>,
        field: Option<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, file.as_ref(), field, message.into());
    }

    /// Records a warning.
    pub fn warn(
        &mut self,
        file: impl AsRef<[u8]>,
        field: Option<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, file.as_ref(), field, message.into());
    }

    /// Drops each plain warning (no origin) about a file and field that a profile rule
    /// (with an origin) reports as an error: both found the same thing, and the error says
    /// who refuses it (a symlinked blob: the plain warning, and crane's error). A plain
    /// error next to a profile's warning stays: they say different things (a platform that
    /// is wrong, and that meta-scripts would replace it).
    pub fn drop_restated_warnings(&mut self) {
        let errors: Vec<(String, Option<String>)> = self
            .found
            .iter()
            .filter(|p| p.severity == Severity::Error && p.origin.is_some())
            .map(|p| (p.file.clone(), p.field.clone()))
            .collect();
        self.found.retain(|p| {
            p.severity != Severity::Warning
                || p.origin.is_some()
                || !errors
                    .iter()
                    .any(|(file, field)| *file == p.file && *field == p.field)
        });
        self.seen = self.found.iter().cloned().collect();
    }

    /// The problems, in the order found.
    pub fn into_vec(self) -> Vec<Problem> {
        self.found
    }

    /// The problems so far.
    pub fn as_slice(&self) -> &[Problem] {
        &self.found
    }

    /// Number of errors so far.
    pub fn errors(&self) -> usize {
        self.found
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }

    /// Fails with a check error, `"{context}: <error>; <error>…"`, if any error was
    /// recorded (what a builder says about a document it made that breaks the rules).
    pub fn fail_on_errors(&self, context: &str) -> crate::error::Result<()> {
        let errors: Vec<String> = self
            .found
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        Err(crate::error::Error::CheckFailed(format!(
            "{context}: {}",
            errors.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_found_twice_is_recorded_once() {
        let mut p = Problems::default();
        p.error("index.json", Some("manifests[0].urls".into()), "no urls");
        p.warn("index.json", Some("manifests[0]".into()), "no platform");
        p.error("index.json", Some("manifests[0].urls".into()), "no urls");
        // The same words about another field, or from a rule that names its origin, are
        // other problems.
        p.error("index.json", Some("manifests[1].urls".into()), "no urls");
        p.by(
            Severity::Error,
            "crane",
            "index.json",
            Some("manifests[0].urls".into()),
            "no urls",
        );
        let shown: Vec<String> = p.as_slice().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "error: index.json: manifests[0].urls: no urls",
                "warning: index.json: manifests[0]: no platform",
                "error: index.json: manifests[1].urls: no urls",
                "error: index.json: manifests[0].urls: [crane]: no urls",
            ]
        );
        assert_eq!(p.errors(), 3);
    }
}
