//! `gate`: result files, the critical-test filter, the security threshold.

use super::values::{self, ValueError, shown};
use super::*;

/// Settings of the `gate` command.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// What the gate evaluates.
    pub settings: crate::gate::GateSettings,
    /// A command to run first (through `sh -c`) that writes the results.
    pub test_command: Option<String>,
}

pub(super) fn gate_config(r: &mut Resolver<'_>) -> GateConfig {
    use crate::gate::{CategoryPattern, Filter, GateSettings, SecurityThreshold};
    let raw = r.raw;
    let results = raw
        .get("results")
        .map(values::parse_list)
        .unwrap_or_default();
    let filter = r.parse("critical-filter", |v| {
        Filter::parse(v)
            .map(|_| v.to_string())
            .map_err(|e| ValueError {
                problem: format!("{} at column {}", e.message, e.column),
                accepted:
                    "a `dotnet test --filter` expression such as Category=Critical|Category=Payment"
                        .into(),
            })
    });
    let min_critical_tests = r
        .parse("min-critical-tests", |v| {
            values::parse_uint(v, 1, 1_000_000).map_err(|mut e| {
                e.accepted
                    .push_str(" (0 is refused: a filter typo matching nothing would pass)");
                e
            })
        })
        .unwrap_or(1);
    let security_threshold = r
        .parse("security-threshold", |v| {
            v.parse::<SecurityThreshold>().map_err(|e| ValueError {
                problem: format!("{}: {}", shown(v), e.reason),
                accepted: "error, warning, note, critical, high, medium, low, a score 0.1–10, or a level and a score comma-separated".into(),
            })
        })
        .unwrap_or_default();
    let junit_category_pattern = r.parse("junit-category-pattern", |v| {
        if v.eq_ignore_ascii_case("none") {
            return Ok(String::new());
        }
        CategoryPattern::parse(v)
            .map(|_| v.to_string())
            .map_err(|problem| ValueError {
                problem,
                accepted: "prefix{}suffix, e.g. [{}] or @{}; none to turn it off".into(),
            })
    });
    let filter_optional: Vec<String> = raw
        .get("critical-filter-optional")
        .map(values::parse_list)
        .unwrap_or_default();
    match (&filter, filter_optional.is_empty()) {
        (_, true) => {}
        (Some(f), false) => {
            if let Err(problem) = crate::gate::check_optional(f, &filter_optional) {
                r.error(
                    "critical-filter-optional",
                    problem,
                    "list alternatives or conditions exactly as critical-filter has them",
                );
            }
        }
        (None, false) => r.error(
            "critical-filter-optional",
            "is set, but there is no critical-filter",
            "leave it out, or set critical-filter",
        ),
    }
    GateConfig {
        settings: GateSettings {
            results,
            filter_optional,
            filter,
            min_critical_tests: u32::try_from(min_critical_tests).unwrap_or(u32::MAX),
            sarif: raw.get("sarif").map(values::parse_list).unwrap_or_default(),
            security_threshold,
            security_waiver: raw.get("security-waiver").map(str::to_string),
            junit_category_pattern,
            base_dir: std::path::PathBuf::from("."),
        },
        test_command: raw.get("test-command").map(str::to_string),
    }
}
