//! The `created` timestamp: parsed from RFC 3339 or `@EPOCH`, written as RFC 3339 UTC.
//!
//! ocipack never reads the wall clock. A timestamp comes from the command line, a project
//! file, `SOURCE_DATE_EPOCH` or git history, always explicitly.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::Error;

/// Whole seconds since the Unix epoch, 1970-01-01T00:00:00Z up to 9999-12-31T23:59:59Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

const MAX_SECONDS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from Unix seconds; `None` outside 1970..=9999.
    pub fn from_unix(secs: i64) -> Option<Timestamp> {
        (0..=MAX_SECONDS).contains(&secs).then_some(Timestamp(secs))
    }

    /// Seconds since the epoch.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// Reads `SOURCE_DATE_EPOCH` from the given value of the variable (`None` if unset).
    pub fn from_source_date_epoch(value: Option<&str>) -> Result<Option<Timestamp>, Error> {
        match value {
            None => Ok(None),
            Some(v) => {
                let secs: i64 = v.trim().parse().map_err(|_| {
                    Error::input(
                        "SOURCE_DATE_EPOCH",
                        format!("{v:?} is not a whole number of seconds since 1970"),
                    )
                })?;
                Timestamp::from_unix(secs).map(Some).ok_or_else(|| {
                    Error::input(
                        "SOURCE_DATE_EPOCH",
                        format!("{v} is out of range (1970..9999)"),
                    )
                })
            }
        }
    }
}

impl FromStr for Timestamp {
    type Err = Error;

    /// Parses RFC 3339 (`2025-01-21T23:32:32Z`, any offset) or `@EPOCH`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| Error::input(format!("timestamp {s:?}"), why);
        if let Some(epoch) = s.strip_prefix('@') {
            let secs: i64 = epoch
                .parse()
                .map_err(|_| bad("expected @ followed by whole seconds since 1970".into()))?;
            return Timestamp::from_unix(secs)
                .ok_or_else(|| bad("out of range (1970..9999)".into()));
        }
        let dt = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
            bad(format!(
                "not RFC 3339 like 2025-01-21T23:32:32Z or @SECONDS ({e})"
            ))
        })?;
        if dt.nanosecond() != 0 {
            return Err(bad(
                "fractional seconds are not supported (tar records whole seconds)".into(),
            ));
        }
        Timestamp::from_unix(dt.unix_timestamp())
            .ok_or_else(|| bad("out of range (1970..9999)".into()))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with a `Z` suffix and no fraction, e.g. `2025-01-21T23:32:32Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dt = OffsetDateTime::from_unix_timestamp(self.0).map_err(|_| fmt::Error)?;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let t: Timestamp = "2025-01-21T23:32:32Z".parse().unwrap();
        assert_eq!(t.unix(), 1_737_502_352);
        assert_eq!(t.to_string(), "2025-01-21T23:32:32Z");
        let t2: Timestamp = "2025-01-22T01:32:32+02:00".parse().unwrap();
        assert_eq!(t, t2);
        assert_eq!("@1737502352".parse::<Timestamp>().unwrap(), t);
        assert_eq!(
            "@0".parse::<Timestamp>().unwrap().to_string(),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn rejects_bad() {
        for bad in [
            "",
            "yesterday",
            "2025-01-21",
            "2025-01-21T23:32:32",
            "@-1",
            "@x",
            "2025-01-21T23:32:32.5Z",
            "1969-12-31T23:59:59Z",
        ] {
            let e = bad.parse::<Timestamp>().unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn source_date_epoch() {
        assert_eq!(Timestamp::from_source_date_epoch(None).unwrap(), None);
        assert_eq!(
            Timestamp::from_source_date_epoch(Some("86400")).unwrap(),
            Timestamp::from_unix(86400)
        );
        assert!(Timestamp::from_source_date_epoch(Some("soon")).is_err());
    }
}
