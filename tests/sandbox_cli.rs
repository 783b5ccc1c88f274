//! `expedite sandbox` through the built binary: settings as JSON, a
//! scenario file applied before anything is served, Ctrl-C stops it with 0.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

fn get(url: &str, path: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn sandbox_prints_settings_applies_a_scenario_file_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.json");
    std::fs::write(
        &file,
        r#"{"faults": [{"kind": "throttle", "host": "management.azure.test", "times": 2}],
            "behaviours": {"2.4.2": {"error_rate": 0.05}}}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_expedite"))
        .args(["sandbox", "--json", "--seed", "7", "--faults"])
        .arg(&file)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The settings are one pretty-printed JSON object, closed by "}".
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut json = String::new();
    for _ in 0..200 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        json.push_str(&line);
        if line.trim_end() == "}" {
            break;
        }
    }
    let settings: serde_json::Value = serde_json::from_str(&json).unwrap();
    let control = settings["control_url"].as_str().unwrap();
    assert!(
        settings["arm_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("management.azure.test")
    );
    let faults = get(control, "/_sandbox/faults");
    assert!(
        faults.contains("\"kind\":\"throttle\"") && faults.contains("\"times\":2"),
        "{faults}"
    );
    let behaviours = get(control, "/_sandbox/behaviours");
    assert!(
        behaviours.contains("2.4.2") && behaviours.contains("0.05"),
        "{behaviours}"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap();
    assert_eq!(
        code.code(),
        Some(0),
        "Ctrl-C is the normal way to stop the sandbox"
    );
}

/// `--output json`: the one object is the settings, printed on one line
/// when the sandbox is ready (with `"outcome": "running"`); nothing more is
/// printed when it stops.
#[test]
fn sandbox_with_output_json_prints_one_object_when_ready() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_expedite"))
        .args(["sandbox", "--output", "json"])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["outcome"], "running", "{line}");
    let control = v["control_url"].as_str().unwrap();
    let faults = get(control, "/_sandbox/faults");
    assert!(faults.starts_with("HTTP/1.1 200"), "{faults}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(rest, "", "more than one object on stdout");
}

#[test]
fn a_bad_scenario_file_is_an_input_error_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(&file, r#"[{"kind": "throttel"}]"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_expedite"))
        .args(["sandbox", "--faults"])
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--faults")
            && err.contains("unknown variant `throttel`")
            && err.contains("throttle"),
        "{err}"
    );
}
