//! Parsers from input strings to typed values.
//!
//! Each returns a [`ValueError`] that says what was wrong and what is
//! accepted, so the caller can name the input and print one line.

use std::time::Duration;

/// Why a value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// What is wrong with it.
    pub problem: String,
    /// What would be accepted.
    pub accepted: String,
}

impl ValueError {
    fn new(problem: impl Into<String>, accepted: impl Into<String>) -> Self {
        ValueError {
            problem: problem.into(),
            accepted: accepted.into(),
        }
    }
}

/// Quotes a value for an error message on one line: control characters are
/// escaped (so a newline cannot start a new log line) and long values cut.
pub fn shown(value: &str) -> String {
    let mut s: String = value
        .chars()
        .take(80)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if value.chars().count() > 80 {
        s.push('…');
    }
    format!("'{s}'")
}

const DURATION_ACCEPTED: &str = "a number with a unit (ms, s, m, h), e.g. 30s, 5m, 1h30m";

/// Longest duration any input accepts: far beyond any job, short enough that
/// arithmetic on it cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses `30s`, `5m`, `1h30m`, `250ms`, `1.5s`. A bare number is refused:
/// is `300` seconds or milliseconds? Guessing wrong in an incident hurts.
pub fn parse_duration(value: &str) -> Result<Duration, ValueError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ValueError::new("it is empty", DURATION_ACCEPTED));
    }
    if v.starts_with('-') {
        return Err(ValueError::new(
            format!("{} is negative", shown(v)),
            "a duration of zero or more, e.g. 30s",
        ));
    }
    if v.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(ValueError::new(
            format!("{} has no unit", shown(v)),
            format!("{DURATION_ACCEPTED} (did you mean {v}s?)"),
        ));
    }
    let bad = || ValueError::new(format!("{} is not a duration", shown(v)), DURATION_ACCEPTED);
    let mut total = 0f64;
    let mut rest = v;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    if !total.is_finite() || total > MAX_DURATION.as_secs_f64() {
        return Err(ValueError::new(
            format!("{} is too long", shown(v)),
            "a duration of at most 720h",
        ));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Booleans exactly as `@actions/core` accepts them.
pub fn parse_bool(value: &str) -> Result<bool, ValueError> {
    match value.trim() {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        other => Err(ValueError::new(
            format!("{} is not a boolean", shown(other)),
            "true or false (also True, TRUE, False, FALSE)",
        )),
    }
}

/// A percentage in 0..=100, with or without `%`.
pub fn parse_percent(value: &str) -> Result<f64, ValueError> {
    const ACCEPTED: &str = "a number from 0 to 100, optionally followed by %, e.g. 10 or 12.5%";
    let v = value.trim();
    let number = v.strip_suffix('%').unwrap_or(v).trim();
    let p: f64 = number
        .parse()
        .map_err(|_| ValueError::new(format!("{} is not a percentage", shown(v)), ACCEPTED))?;
    if !p.is_finite() || !(0.0..=100.0).contains(&p) {
        return Err(ValueError::new(
            format!("{} is outside 0–100", shown(v)),
            ACCEPTED,
        ));
    }
    Ok(p)
}

/// An http(s) URL with a host and no embedded credentials.
pub fn parse_url(value: &str) -> Result<url::Url, ValueError> {
    const ACCEPTED: &str = "an absolute http:// or https:// URL, e.g. https://example.com/health";
    let v = value.trim();
    let url = url::Url::parse(v)
        .map_err(|e| ValueError::new(format!("{} is not a URL ({e})", shown(v)), ACCEPTED))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ValueError::new(
            format!("scheme '{}' is not supported", url.scheme()),
            ACCEPTED,
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValueError::new(
            format!("{} has no host", shown(v)),
            ACCEPTED,
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in a URL travel into logs and error messages.
        return Err(ValueError::new(
            "it contains credentials",
            "a URL without user:password@; pass secrets in their own secret inputs",
        ));
    }
    Ok(url)
}

/// A whole number within bounds.
pub fn parse_uint(value: &str, min: u64, max: u64) -> Result<u64, ValueError> {
    let accepted = format!("a whole number from {min} to {max}");
    let v = value.trim();
    let n: u64 = v.parse().map_err(|_| {
        ValueError::new(
            format!("{} is not a whole number", shown(v)),
            accepted.clone(),
        )
    })?;
    if n < min || n > max {
        return Err(ValueError::new(format!("{n} is out of range"), accepted));
    }
    Ok(n)
}

/// A version identifier as an app reports it (`2.4.1`, `v2.4.1`,
/// `2.4.1+build.7`, a commit SHA): compared exactly, after dropping a leading
/// `v` from semantic versions.
pub fn parse_version(value: &str) -> Result<String, ValueError> {
    const ACCEPTED: &str = "a version such as 2.4.1, v2.4.1, 2.4.1-hotfix.1 or a commit SHA (letters, digits, . _ + -)";
    let v = value.trim();
    if v.is_empty() || v.len() > 128 {
        return Err(ValueError::new(
            format!("{} is not a version", shown(v)),
            ACCEPTED,
        ));
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
    {
        return Err(ValueError::new(
            format!("{} has characters a version cannot have", shown(v)),
            ACCEPTED,
        ));
    }
    let stripped = v
        .strip_prefix('v')
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()));
    Ok(stripped.unwrap_or(v).to_string())
}

/// Splits a list given one per line or comma-separated; blanks dropped.
pub fn parse_list(value: &str) -> Vec<String> {
    value
        .split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration(" 0s ").unwrap(), Duration::ZERO);
        let e = parse_duration("300").unwrap_err();
        assert!(e.accepted.contains("300s"), "{e:?}");
        assert!(
            parse_duration("-5s")
                .unwrap_err()
                .problem
                .contains("negative")
        );
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1..2s").is_err());
        assert!(
            parse_duration("100000h")
                .unwrap_err()
                .problem
                .contains("too long")
        );
        let e = parse_duration("5\nx=1").unwrap_err();
        assert!(!e.problem.contains('\n'), "{e:?}");
    }

    #[test]
    fn booleans_follow_the_toolkit() {
        for t in ["true", "True", "TRUE"] {
            assert!(parse_bool(t).unwrap());
        }
        for f in ["false", "False", "FALSE"] {
            assert!(!parse_bool(f).unwrap());
        }
        for bad in ["yes", "1", "tRue", ""] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("10").unwrap(), 10.0);
        assert_eq!(parse_percent("12.5%").unwrap(), 12.5);
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("-1").is_err());
        assert!(parse_percent("ten").is_err());
        assert!(parse_percent("NaN").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://a.example/health").unwrap().path(),
            "/health"
        );
        assert!(parse_url("ftp://a.example").is_err());
        assert!(parse_url("a.example/health").is_err());
        assert!(
            parse_url("https://u:p@a.example")
                .unwrap_err()
                .problem
                .contains("credentials")
        );
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("v2.4.1").unwrap(), "2.4.1");
        assert_eq!(parse_version("2.4.1+b.7").unwrap(), "2.4.1+b.7");
        assert_eq!(parse_version("vnext").unwrap(), "vnext");
        assert!(parse_version("2.4.1; rm -rf /").is_err());
        assert!(parse_version("").is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("a, b\n\nc,"), ["a", "b", "c"]);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_uint("3", 1, 10).unwrap(), 3);
        assert!(parse_uint("0", 1, 10).is_err());
        assert!(parse_uint("-1", 0, 10).is_err());
    }
}
