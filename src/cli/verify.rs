//! `ocipack verify LAYOUT... [--file F] [--arch A] [--json]`

use std::path::PathBuf;

use clap::Args;

use ocipack::platform::Platform;
use ocipack::verify::{self, VerifyOptions};
use ocipack::{Result, cjson};

/// Arguments of `ocipack verify`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 valid (warnings allowed), 1 errors found, 2 usage error.\n\
Without --arch, a bashbrew architecture name in the layout's path (e.g. hello-world/arm64v8/oci) \
is the expected architecture."
)]
pub struct VerifyArgs {
    /// OCI layout directories.
    #[arg(required = true, value_name = "LAYOUT")]
    layouts: Vec<PathBuf>,
    /// A file in the layout holding the single image descriptor to use (bashbrew's File:).
    #[arg(long, value_name = "F")]
    file: Option<String>,
    /// bashbrew architecture name the image must have (amd64, arm64v8, ...).
    #[arg(long, value_name = "A")]
    arch: Option<String>,
    /// Print one machine-readable JSON report.
    #[arg(long)]
    json: bool,
}

pub fn run(a: VerifyArgs) -> Result<u8> {
    let expect = a
        .arch
        .as_deref()
        .map(|x| Platform::from_bashbrew_arch(x).map(|p| (p, format!("--arch {x}"))))
        .transpose()?;
    let opts = VerifyOptions {
        file: a.file,
        expect,
        arch_from_path: true,
    };
    let reports = verify::verify_layouts(&a.layouts, &opts)?;
    if a.json {
        println!("{}", String::from_utf8_lossy(&cjson::to_vec(&reports)?));
    } else {
        for r in &reports.layouts {
            for p in &r.problems {
                println!("{}: {p}", r.layout);
            }
            println!("{}: {}", r.layout, r.summary());
        }
    }
    Ok(if reports.valid { 0 } else { 1 })
}
