//! The security threshold: which SARIF findings fail the gate.

use std::fmt;
use std::str::FromStr;

use super::model::{Finding, SarifLevel};

/// A finding fails the gate when its level is at or above `level`, or its
/// `security-severity` is at or above `severity` (either condition; a `None` side never
/// matches). The default is `error` or severity 7.0 (GitHub's "high").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecurityThreshold {
    pub level: Option<SarifLevel>,
    pub severity: Option<f64>,
}

impl Default for SecurityThreshold {
    fn default() -> Self {
        SecurityThreshold {
            level: Some(SarifLevel::Error),
            severity: Some(7.0),
        }
    }
}

impl SecurityThreshold {
    /// Whether `finding` is at or above this threshold.
    pub fn trips(&self, finding: &Finding) -> bool {
        let by_level = self.level.is_some_and(|l| finding.level >= l);
        let by_severity = self
            .severity
            .zip(finding.security_severity)
            .is_some_and(|(min, s)| s >= min);
        by_level || by_severity
    }
}

impl fmt::Display for SecurityThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.level, self.severity) {
            (Some(l), Some(s)) => write!(f, "level {l} or security-severity ≥ {s:.1}"),
            (Some(l), None) => write!(f, "level {l} or higher"),
            (None, Some(s)) => write!(f, "security-severity ≥ {s:.1}"),
            (None, None) => f.write_str("nothing"),
        }
    }
}

/// One-line error for a threshold that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid security threshold \"{input}\": {reason}; expected a SARIF level (error, warning, note), a security-severity from 0.1 to 10.0 (e.g. 7.0), a severity name (critical, high, medium, low), or one level and one severity separated by a comma (e.g. \"error,7.0\")"
)]
pub struct ThresholdError {
    pub input: String,
    pub reason: String,
}

impl FromStr for SecurityThreshold {
    type Err = ThresholdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |reason: &str| ThresholdError {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.trim().eq_ignore_ascii_case("default") {
            return Ok(SecurityThreshold::default());
        }
        let mut threshold = SecurityThreshold {
            level: None,
            severity: None,
        };
        for part in input.split(',') {
            let part = part.trim().to_ascii_lowercase();
            if part.is_empty() {
                return Err(error("empty value"));
            }
            let (level, severity) = match part.as_str() {
                // "none" would let every finding through: the scan must be able to fail.
                "none" => return Err(error("level none would never fail the gate")),
                "error" | "warning" | "note" => (SarifLevel::parse(&part), None),
                // GitHub code scanning's bands for security-severity.
                "critical" => (None, Some(9.0)),
                "high" => (None, Some(7.0)),
                "medium" => (None, Some(4.0)),
                "low" => (None, Some(0.1)),
                number => {
                    let value: f64 = number
                        .parse()
                        .map_err(|_| error("not a level, severity name or number"))?;
                    if !(value > 0.0 && value <= 10.0) {
                        return Err(error(
                            "security-severity must be above 0.0 and at most 10.0",
                        ));
                    }
                    (None, Some(value))
                }
            };
            if let Some(level) = level {
                if threshold.level.is_some() {
                    return Err(error("more than one level"));
                }
                threshold.level = Some(level);
            }
            if let Some(severity) = severity {
                if threshold.severity.is_some() {
                    return Err(error("more than one severity"));
                }
                threshold.severity = Some(severity);
            }
        }
        Ok(threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(level: SarifLevel, severity: Option<f64>) -> Finding {
        Finding {
            rule_id: "r".into(),
            level,
            security_severity: severity,
            message: String::new(),
            uri: None,
            line: None,
            tool: "t".into(),
            sarif_file: "f".into(),
            at_or_above_threshold: false,
        }
    }

    #[test]
    fn parses_levels_numbers_names_and_pairs() {
        let t: SecurityThreshold = "error".parse().unwrap();
        assert_eq!((t.level, t.severity), (Some(SarifLevel::Error), None));
        let t: SecurityThreshold = "7.5".parse().unwrap();
        assert_eq!((t.level, t.severity), (None, Some(7.5)));
        let t: SecurityThreshold = "High".parse().unwrap();
        assert_eq!(t.severity, Some(7.0));
        let t: SecurityThreshold = "warning, critical".parse().unwrap();
        assert_eq!(
            (t.level, t.severity),
            (Some(SarifLevel::Warning), Some(9.0))
        );
        assert_eq!(
            "default".parse::<SecurityThreshold>().unwrap(),
            SecurityThreshold::default()
        );
    }

    #[test]
    fn rejects_with_a_one_line_error_listing_what_is_accepted() {
        for bad in [
            "",
            "severe",
            "11",
            "0",
            "-1",
            "none",
            "error,warning",
            "7,8",
            "NaN",
        ] {
            let err = bad.parse::<SecurityThreshold>().unwrap_err().to_string();
            assert!(!err.contains('\n'), "{err}");
            assert!(err.contains("expected a SARIF level"), "{bad}: {err}");
        }
    }

    #[test]
    fn trips_on_level_or_severity() {
        let t = SecurityThreshold::default();
        assert!(t.trips(&finding(SarifLevel::Error, None)));
        assert!(t.trips(&finding(SarifLevel::Warning, Some(9.8))));
        assert!(t.trips(&finding(SarifLevel::Note, Some(7.0))));
        assert!(!t.trips(&finding(SarifLevel::Warning, Some(6.9))));
        assert!(!t.trips(&finding(SarifLevel::Warning, None)));
        let severity_only: SecurityThreshold = "high".parse().unwrap();
        assert!(!severity_only.trips(&finding(SarifLevel::Error, Some(6.1))));
    }
}
