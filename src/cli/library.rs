//! `ocipack library [DIR]`

use std::path::PathBuf;

use clap::Args;

use ocipack::Result;

/// Arguments of `ocipack library`.
#[derive(Debug, Args)]
pub struct LibraryArgs {
    /// The project directory (holding ocipack.toml), inside a git work tree.
    #[arg(default_value = ".")]
    dir: PathBuf,
}

pub fn run(a: LibraryArgs) -> Result<u8> {
    print!("{}", ocipack::project::library::library(&a.dir)?);
    Ok(0)
}
