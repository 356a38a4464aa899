//! Platforms, and bashbrew's architecture names.
//!
//! The table is bashbrew's `architecture.SupportedArches`: an architecture name used by the
//! Docker Official Images maps to exactly one OCI platform. ocipack never falls back to the
//! host's platform: a build without one is an error.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An OCI platform: `os`, `architecture`, optional `variant`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// CPU architecture in Go's `GOARCH` spelling (`amd64`, `386`, `arm64`, ...).
    pub architecture: String,
    /// Operating system (`linux`, `windows`).
    pub os: String,
    /// CPU variant (`v5`..`v8`), when the architecture has variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Operating system version (Windows only; never written by ocipack).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required OS features (never written by ocipack).
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
}

/// bashbrew's architecture names and the platforms they stand for, in bashbrew's order.
pub const BASHBREW_ARCHES: &[(&str, &str, &str, Option<&str>)] = &[
    ("amd64", "linux", "amd64", None),
    ("arm32v5", "linux", "arm", Some("v5")),
    ("arm32v6", "linux", "arm", Some("v6")),
    ("arm32v7", "linux", "arm", Some("v7")),
    ("arm64v8", "linux", "arm64", Some("v8")),
    ("i386", "linux", "386", None),
    ("mips64le", "linux", "mips64le", None),
    ("ppc64le", "linux", "ppc64le", None),
    ("riscv64", "linux", "riscv64", None),
    ("s390x", "linux", "s390x", None),
    ("windows-amd64", "windows", "amd64", None),
];

impl Platform {
    /// A platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
            os_features: None,
        }
    }

    /// The platform bashbrew derives from one of its architecture names.
    pub fn from_bashbrew_arch(arch: &str) -> Result<Platform, Error> {
        BASHBREW_ARCHES
            .iter()
            .find(|(name, ..)| *name == arch)
            .map(|(_, os, a, v)| Platform::new(os, a, *v))
            .ok_or_else(|| {
                Error::input(
                    format!("architecture {arch:?}"),
                    format!(
                        "not a bashbrew architecture name (known: {})",
                        bashbrew_arch_names().join(", ")
                    ),
                )
            })
    }

    /// The bashbrew architecture name of this platform, if it has one.
    pub fn bashbrew_arch(&self) -> Option<&'static str> {
        BASHBREW_ARCHES
            .iter()
            .find(|(_, os, a, v)| {
                *os == self.os && *a == self.architecture && *v == self.variant.as_deref()
            })
            .map(|(name, ..)| *name)
    }

    /// The same OS, architecture and variant, a variant left out being the architecture's
    /// default as containerd reads it (`arm64` is `arm64/v8`, `arm` is `arm/v7`): how an
    /// image a registry lists is matched with one built for a platform.
    pub fn matches(&self, other: &Platform) -> bool {
        let variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_string()),
            ("arm", None) => Some("v7".to_string()),
            (_, v) => v.map(str::to_string),
        };
        self.os == other.os
            && self.architecture == other.architecture
            && variant(self) == variant(other)
    }

    /// True for bashbrew's architecture names.
    pub fn is_bashbrew_arch(name: &str) -> bool {
        BASHBREW_ARCHES.iter().any(|(n, ..)| *n == name)
    }
}

/// The known bashbrew architecture names.
pub fn bashbrew_arch_names() -> Vec<&'static str> {
    BASHBREW_ARCHES.iter().map(|(n, ..)| *n).collect()
}

fn valid_component(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl FromStr for Platform {
    type Err = Error;

    /// Parses `OS/ARCH[/VARIANT]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = |why: &str| Error::input(format!("platform {s:?}"), why.to_string());
        if !(2..=3).contains(&parts.len()) {
            return Err(bad("expected OS/ARCH or OS/ARCH/VARIANT"));
        }
        if !parts.iter().all(|p| valid_component(p)) {
            return Err(bad(
                "each part must be non-empty lowercase letters, digits, '_' or '-'",
            ));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_left_out_is_the_default_one() {
        let p = |s: &str| s.parse::<Platform>().unwrap();
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm/v7").matches(&p("linux/arm")));
        assert!(!p("linux/arm/v6").matches(&p("linux/arm")));
        assert!(!p("linux/amd64").matches(&p("linux/amd64/v2")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
        assert!(p("linux/s390x").matches(&p("linux/s390x")));
    }

    #[test]
    fn bashbrew_mapping_matches_issue_table() {
        let expect = [
            ("amd64", "linux/amd64"),
            ("arm32v5", "linux/arm/v5"),
            ("arm32v6", "linux/arm/v6"),
            ("arm32v7", "linux/arm/v7"),
            ("arm64v8", "linux/arm64/v8"),
            ("i386", "linux/386"),
            ("mips64le", "linux/mips64le"),
            ("ppc64le", "linux/ppc64le"),
            ("riscv64", "linux/riscv64"),
            ("s390x", "linux/s390x"),
            ("windows-amd64", "windows/amd64"),
        ];
        assert_eq!(expect.len(), BASHBREW_ARCHES.len());
        for (arch, plat) in expect {
            let p = Platform::from_bashbrew_arch(arch).unwrap();
            assert_eq!(p.to_string(), plat);
            assert_eq!(p.bashbrew_arch(), Some(arch));
            assert_eq!(plat.parse::<Platform>().unwrap(), p);
        }
    }

    #[test]
    fn unknown_arch_lists_known_ones() {
        let e = Platform::from_bashbrew_arch("x86").unwrap_err().to_string();
        assert!(
            e.contains("x86") && e.contains("i386") && e.contains("arm64v8"),
            "{e}"
        );
        assert_eq!(
            Platform::from_bashbrew_arch("x86").unwrap_err().exit_code(),
            2
        );
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "Linux/amd64",
            "linux/am d64",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
}
