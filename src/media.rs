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

/// Docker's v2 manifest list (`docker manifest`, Docker Hub): an index by another name.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's v2 (schema 2) image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker's gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker's plain tar layer (rare; meta-scripts' validation lists it).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Docker's foreign layer (gzip): its content is elsewhere, at the descriptor's `urls`, and
/// registries do not hold it (the Windows base layers Microsoft's images had).
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker's foreign layer (plain tar).
pub const DOCKER_LAYER_FOREIGN_TAR: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
/// The OCI spec's non-distributable layer types (deprecated), the same idea in OCI.
pub const LAYER_NONDISTRIBUTABLE: [&str; 3] = [
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// For a foreign (Docker) or non-distributable (OCI) layer type, the compression of its
/// content: a layer whose blob a registry does not hold, and which ocipack never fetches
/// from its `urls`. `None` for every other type.
pub fn foreign_layer(media_type: &str) -> Option<Compression> {
    match media_type {
        DOCKER_LAYER_FOREIGN_GZIP => Some(Compression::Gzip),
        DOCKER_LAYER_FOREIGN_TAR => Some(Compression::None),
        _ => LAYER_NONDISTRIBUTABLE
            .iter()
            .position(|t| *t == media_type)
            .map(|i| Compression::ALL[i]),
    }
}

/// True for a media type of a document listing manifests: an OCI image index or a Docker
/// manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// True for a media type of an image manifest: OCI, or Docker v2.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == MANIFEST || media_type == DOCKER_MANIFEST
}

/// True for one of Docker's v2 media types (not those of the OCI spec).
pub fn is_docker(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
}

/// The config media type that goes with an image manifest's media type (OCI with OCI,
/// Docker with Docker).
pub fn config_for(manifest_type: &str) -> &'static str {
    if manifest_type == DOCKER_MANIFEST {
        DOCKER_CONFIG
    } else {
        CONFIG
    }
}

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

    /// The compression a layer media type declares, if it is one ocipack reads: the OCI
    /// types, and Docker's v2 `rootfs.diff.tar.gzip` and `rootfs.diff.tar` (never its
    /// foreign layers, whose content is elsewhere).
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            DOCKER_LAYER_GZIP => Some(Compression::Gzip),
            DOCKER_LAYER_TAR => Some(Compression::None),
            _ => Compression::ALL
                .into_iter()
                .find(|c| c.media_type() == media_type),
        }
    }

    /// The compression of a layer media type of the family of `manifest_type`: OCI layer
    /// types in an OCI manifest, Docker's in a Docker v2 manifest (foreign and
    /// non-distributable layers included).
    pub fn for_manifest(manifest_type: &str, media_type: &str) -> Option<Compression> {
        let c = Compression::from_media_type(media_type).or_else(|| foreign_layer(media_type))?;
        (is_docker(media_type) == (manifest_type == DOCKER_MANIFEST)).then_some(c)
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
        assert_eq!(
            Compression::from_media_type(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::for_manifest(MANIFEST, DOCKER_LAYER_GZIP), None);
        assert_eq!(
            Compression::for_manifest(DOCKER_MANIFEST, DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::for_manifest(DOCKER_MANIFEST, LAYER_TAR_GZIP),
            None
        );
        assert_eq!(
            Compression::for_manifest(DOCKER_MANIFEST, DOCKER_LAYER_FOREIGN_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::for_manifest(MANIFEST, LAYER_NONDISTRIBUTABLE[2]),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::for_manifest(MANIFEST, DOCKER_LAYER_FOREIGN_GZIP),
            None
        );
        assert_eq!(foreign_layer(DOCKER_LAYER_GZIP), None);
        assert_eq!(
            foreign_layer(LAYER_NONDISTRIBUTABLE[0]),
            Some(Compression::None)
        );
    }
}
