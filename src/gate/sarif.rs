//! SARIF 2.1.0 reader.
//!
//! serde_json reads straight from the file into structs that name only the fields the gate
//! uses; everything else (notifications, artifacts, code flows, rule help texts) is skipped
//! without being stored. A result's level is its own `level`, else its rule's
//! `defaultConfiguration.level`, else `warning` (SARIF §3.27.10). Rules are looked up by
//! `rule.toolComponent.index` + `rule.index`/`ruleIndex` first, then by id across
//! `tool.driver.rules` and every `tool.extensions[].rules` (CodeQL keeps them in an
//! extension). `security-severity` is read from the result's properties, else the rule's,
//! as a string ("7.5") or a number.
//!
//! A run without a `results` array, or whose invocation says `executionSuccessful: false`,
//! is a problem: the scan did not complete, and "no findings" must not be inferred from it.

use std::collections::HashMap;
use std::io::BufRead;

use serde::Deserialize;

use super::model::{Finding, ParseError, ParsedFile, SarifLevel, push_capped};
use super::parse::MESSAGE_CAP;

#[derive(Deserialize)]
struct Log {
    #[serde(rename = "$schema")]
    schema: Option<String>,
    version: Option<String>,
    runs: Option<Vec<Run>>,
}

#[derive(Deserialize)]
struct Run {
    tool: Option<Tool>,
    results: Option<Vec<SarifResult>>,
    invocations: Option<Vec<Invocation>>,
}

#[derive(Deserialize)]
struct Invocation {
    #[serde(rename = "executionSuccessful")]
    execution_successful: Option<bool>,
}

#[derive(Deserialize)]
struct Tool {
    driver: Option<Component>,
    #[serde(default)]
    extensions: Option<Vec<Component>>,
}

#[derive(Deserialize, Default)]
struct Component {
    name: Option<String>,
    #[serde(default)]
    rules: Option<Vec<Rule>>,
}

#[derive(Deserialize)]
struct Rule {
    id: Option<String>,
    #[serde(rename = "defaultConfiguration")]
    default_configuration: Option<Configuration>,
    properties: Option<Properties>,
}

#[derive(Deserialize)]
struct Configuration {
    level: Option<String>,
}

#[derive(Deserialize)]
struct Properties {
    #[serde(rename = "security-severity")]
    security_severity: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SarifResult {
    #[serde(rename = "ruleId")]
    rule_id: Option<String>,
    #[serde(rename = "ruleIndex")]
    rule_index: Option<i64>,
    rule: Option<RuleReference>,
    level: Option<String>,
    kind: Option<String>,
    message: Option<Message>,
    locations: Option<Vec<Location>>,
    suppressions: Option<Vec<Suppression>>,
    properties: Option<Properties>,
}

#[derive(Deserialize)]
struct RuleReference {
    id: Option<String>,
    index: Option<i64>,
    #[serde(rename = "toolComponent")]
    tool_component: Option<ComponentReference>,
}

#[derive(Deserialize)]
struct ComponentReference {
    index: Option<i64>,
}

#[derive(Deserialize)]
struct Message {
    text: Option<String>,
    markdown: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    #[serde(rename = "physicalLocation")]
    physical_location: Option<PhysicalLocation>,
}

#[derive(Deserialize)]
struct PhysicalLocation {
    #[serde(rename = "artifactLocation")]
    artifact_location: Option<ArtifactLocation>,
    region: Option<Region>,
}

#[derive(Deserialize)]
struct ArtifactLocation {
    uri: Option<String>,
}

#[derive(Deserialize)]
struct Region {
    #[serde(rename = "startLine")]
    start_line: Option<i64>,
}

#[derive(Deserialize)]
struct Suppression {
    status: Option<String>,
}

pub(crate) fn parse<R: BufRead>(
    reader: R,
    path: &str,
    out: &mut ParsedFile,
) -> Result<(), ParseError> {
    let log: Log = serde_json::from_reader(reader).map_err(|e| json_error(path, &e))?;
    let version_ok = log.version.as_deref().is_some_and(|v| v.starts_with("2.1"));
    if !version_ok {
        let detail = match (&log.version, &log.schema) {
            (Some(v), _) => format!("SARIF version \"{v}\" is not supported; expected 2.1.0"),
            (None, Some(s)) if s.to_ascii_lowercase().contains("sarif") => {
                "SARIF without a \"version\" property; expected \"version\": \"2.1.0\"".to_owned()
            }
            _ => "JSON without a SARIF \"version\"; expected a SARIF 2.1.0 log".to_owned(),
        };
        return Err(ParseError::UnknownFormat {
            path: path.to_owned(),
            detail,
        });
    }
    let runs = log.runs.unwrap_or_default();
    if runs.is_empty() {
        out.problems
            .push("the SARIF log has no runs: the scan produced nothing to check".to_owned());
    }
    for (run_index, run) in runs.into_iter().enumerate() {
        read_run(run_index, run, path, out);
    }
    Ok(())
}

fn json_error(path: &str, e: &serde_json::Error) -> ParseError {
    let message = if e.is_eof() {
        "the file ends early (truncated?)".to_owned()
    } else {
        // serde_json appends " at line L column C"; the variant carries those already.
        let text = e.to_string();
        match text.rfind(" at line ") {
            Some(at) => text[..at].to_owned(),
            None => text,
        }
    };
    ParseError::Json {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message,
    }
}

fn severity(props: Option<&Properties>) -> Option<f64> {
    let value = props?.security_severity.as_ref()?;
    let number = match value {
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        serde_json::Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    number.is_finite().then_some(number)
}

fn read_run(run_index: usize, run: Run, path: &str, out: &mut ParsedFile) {
    let tool = run.tool.unwrap_or(Tool {
        driver: None,
        extensions: None,
    });
    let driver = tool.driver.unwrap_or_default();
    let extensions = tool.extensions.unwrap_or_default();
    let tool_name = driver
        .name
        .clone()
        .unwrap_or_else(|| format!("run {}", run_index + 1));

    if run
        .invocations
        .iter()
        .flatten()
        .any(|i| i.execution_successful == Some(false))
    {
        out.problems.push(format!(
            "{tool_name} reports executionSuccessful: false: the scan did not complete"
        ));
    }
    let Some(results) = run.results else {
        out.problems.push(format!(
            "{tool_name} run has no \"results\" array: the scan did not produce results (an empty array would mean no findings)"
        ));
        return;
    };

    let components: Vec<&Component> = std::iter::once(&driver).chain(extensions.iter()).collect();
    let mut by_id: HashMap<&str, &Rule> = HashMap::new();
    for component in &components {
        for rule in component.rules.iter().flatten() {
            if let Some(id) = rule.id.as_deref() {
                by_id.entry(id).or_insert(rule);
            }
        }
    }

    for result in results {
        if result.kind.as_deref().is_some_and(|k| k != "fail") {
            out.suppressed_findings += 1;
            continue;
        }
        // Suppressed only when every suppression stands (accepted, or no
        // status, which SARIF reads as accepted): one rejected or under
        // review leaves the finding open, as Microsoft's SARIF SDK and
        // GitLab read it. An empty list suppresses nothing.
        let suppressions = result.suppressions.as_deref().unwrap_or_default();
        if !suppressions.is_empty()
            && suppressions
                .iter()
                .all(|s| s.status.as_deref().is_none_or(|st| st == "accepted"))
        {
            out.suppressed_findings += 1;
            continue;
        }
        let reference = result.rule.as_ref();
        let rule_id = result
            .rule_id
            .clone()
            .or_else(|| reference.and_then(|r| r.id.clone()));
        let component = match reference
            .and_then(|r| r.tool_component.as_ref())
            .and_then(|c| c.index)
        {
            Some(i) => usize::try_from(i).ok().and_then(|i| extensions.get(i)),
            None => Some(&driver),
        };
        let index = reference.and_then(|r| r.index).or(result.rule_index);
        let rule = component
            .zip(index.and_then(|i| usize::try_from(i).ok()))
            .and_then(|(c, i)| c.rules.as_ref().and_then(|r| r.get(i)))
            .or_else(|| rule_id.as_deref().and_then(|id| by_id.get(id).copied()));
        let rule_id = rule_id
            .or_else(|| rule.and_then(|r| r.id.clone()))
            .unwrap_or_else(|| "(no rule id)".to_owned());

        let level_text = result.level.clone().or_else(|| {
            rule.and_then(|r| r.default_configuration.as_ref())
                .and_then(|c| c.level.clone())
        });
        // Fail closed: a level we do not recognise is treated as an error.
        let level = match level_text.as_deref() {
            None => SarifLevel::Warning,
            Some(text) => SarifLevel::parse(text).unwrap_or(SarifLevel::Error),
        };
        let security_severity = severity(result.properties.as_ref())
            .or_else(|| severity(rule.and_then(|r| r.properties.as_ref())));

        let mut message = String::new();
        if let Some(m) = &result.message {
            let text = m.text.as_deref().or(m.markdown.as_deref()).unwrap_or("");
            push_capped(&mut message, text.trim(), MESSAGE_CAP);
        }
        let physical = result
            .locations
            .iter()
            .flatten()
            .find_map(|l| l.physical_location.as_ref());
        let uri = physical
            .and_then(|p| p.artifact_location.as_ref())
            .and_then(|a| a.uri.clone());
        let line = physical
            .and_then(|p| p.region.as_ref())
            .and_then(|r| r.start_line)
            .and_then(|l| u32::try_from(l).ok());
        out.findings.push(Finding {
            rule_id,
            level,
            security_severity,
            message,
            uri,
            line,
            tool: tool_name.clone(),
            sarif_file: path.to_owned(),
            at_or_above_threshold: false,
        });
    }
}
