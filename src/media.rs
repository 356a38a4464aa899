//! OCI media types and layer compression.
//!
//! A [`Compression`] owns its layer media type and the readable file name of its layer, so
//! a layer descriptor can never claim gzip for zstd bytes.

use std::fmt;
use std::str::FromStr;

/// `application/vnd.oci.image.index.v1+json`
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `application/vnd.oci.image.manifest.v1+json`
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.config.v1+json`
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// `application/vnd.oci.image.layer.v1.tar`
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// `application/vnd.oci.image.layer.v1.tar+gzip`
pub const LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// `application/vnd.oci.image.layer.v1.tar+zstd`
pub const LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as a plain tar.
    None,
    /// gzip; ocipack writes it in its deterministic block format (the layer module's gzip
    /// encoder; README, "Determinism").
    Gzip,
    /// zstd; ocipack writes it always in libzstd's multithreaded mode (the layer module's
    /// encoders).
    Zstd,
}

impl Compression {
    /// Every compression, in a fixed order.
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => LAYER_TAR,
            Compression::Gzip => LAYER_TAR_GZIP,
            Compression::Zstd => LAYER_TAR_ZSTD,
        }
    }

    /// The compression a layer media type declares, if it is one ocipack reads.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        Compression::ALL
            .into_iter()
            .find(|c| c.media_type() == media_type)
    }

    /// The readable name of the layer file in a layout: `rootfs.tar`, `rootfs.tar.gz`, `rootfs.tar.zst`.
    pub fn layer_file_name(self) -> &'static str {
        match self {
            Compression::None => "rootfs.tar",
            Compression::Gzip => "rootfs.tar.gz",
            Compression::Zstd => "rootfs.tar.zst",
        }
    }

    /// The level used when none is given: for gzip, libdeflate's level 5 (measured on both
    /// benchmark trees: smaller than `pigz -6`, and 14 % less CPU than its level 6); for
    /// zstd, 3 (the `zstd` command's default).
    pub fn default_level(self) -> Option<i32> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some(5),
            Compression::Zstd => Some(3),
        }
    }

    /// The accepted level range, if levels apply.
    pub fn level_range(self) -> Option<(i32, i32)> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some((1, 12)),
            Compression::Zstd => Some((1, 19)),
        }
    }

    /// The name used on the command line and in project files.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown compression {s:?} (expected none, gzip or zstd)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_round_trip() {
        for c in Compression::ALL {
            assert_eq!(Compression::from_media_type(c.media_type()), Some(c));
            assert_eq!(c.name().parse::<Compression>().unwrap(), c);
        }
        assert_eq!(
            Compression::from_media_type(
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            ),
            None
        );
    }
}
