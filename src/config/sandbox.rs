//! `sandbox`: the emulator's ports, scenario and seed.

use super::values::{self, ValueError, shown};
use super::*;

/// Settings of the `sandbox` command (CLI only).
#[derive(Debug, Clone)]
pub struct SandboxCliConfig {
    /// Scenario name, validated.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// HTTPS port (0: any free one).
    pub https_port: u16,
    /// Control API port (0: any free one).
    pub http_port: u16,
    /// Print settings as JSON.
    pub json: bool,
    /// Faults and behaviours to apply at start (validated JSON scenario).
    pub scenario_file: Option<serde_json::Value>,
}

pub(super) fn sandbox_config(r: &mut Resolver<'_>) -> SandboxCliConfig {
    let port = |v: &str| values::parse_uint(v, 0, 65535).map(|p| p as u16);
    SandboxCliConfig {
        scenario: r
            .parse("scenario", |v| {
                let known = ["contoso"];
                let lower = v.to_ascii_lowercase();
                if known.contains(&lower.as_str()) {
                    Ok(lower)
                } else {
                    Err(ValueError {
                        problem: format!("{} is not a scenario", shown(v)),
                        accepted: known.join(", "),
                    })
                }
            })
            .unwrap_or_else(|| "contoso".into()),
        seed: r
            .parse("seed", |v| values::parse_uint(v, 0, u64::MAX))
            .unwrap_or(0),
        https_port: r.parse("https-port", port).unwrap_or(0),
        http_port: r.parse("http-port", port).unwrap_or(0),
        json: r.parse("json", values::parse_bool).unwrap_or(false),
        scenario_file: r.parse("faults", parse_scenario_file),
    }
}

/// Reads and checks a sandbox scenario file: a list of fault rules, or an
/// object with `faults` and `behaviours`. Checked against the sandbox's own
/// types, so a typo in a rule is an input error, not a silent no-op.
pub(super) fn parse_scenario_file(path: &str) -> Result<serde_json::Value, ValueError> {
    let accepted = "a JSON file: [fault rules] or {\"faults\": [...], \"behaviours\": {...}}";
    let text = std::fs::read_to_string(path).map_err(|e| ValueError {
        problem: format!("cannot read {}: {e}", shown(path)),
        accepted: accepted.into(),
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| ValueError {
        problem: format!(
            "{} is not JSON (line {}, column {})",
            shown(path),
            e.line(),
            e.column()
        ),
        accepted: accepted.into(),
    })?;
    let scenario = match &value {
        serde_json::Value::Array(_) => serde_json::json!({ "faults": value }),
        serde_json::Value::Object(_) => value.clone(),
        _ => {
            return Err(ValueError {
                problem: format!("{} holds neither a list nor an object", shown(path)),
                accepted: accepted.into(),
            });
        }
    };
    #[cfg(feature = "sandbox")]
    {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)] // read only to validate
        struct Scenario {
            #[serde(default)]
            faults: Vec<expedite_sandbox::FaultSpec>,
            #[serde(default)]
            behaviours: BTreeMap<String, expedite_sandbox::Behaviour>,
        }
        serde_json::from_value::<Scenario>(scenario.clone()).map_err(|e| ValueError {
            problem: format!("{}: {e}", shown(path)),
            accepted: accepted.into(),
        })?;
    }
    Ok(scenario)
}
