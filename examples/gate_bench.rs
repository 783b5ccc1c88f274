//! Gates the given result files once and prints the wall time and the verdict, for
//! measuring under `/usr/bin/time -v` (docs/bench-gate.md).
//!
//! Usage: `gate_bench <base-dir> <filter> <results-pattern>...`

use std::path::PathBuf;
use std::time::Instant;

use expedite::gate::{GateSettings, evaluate};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: gate_bench <base-dir> <filter> <results-pattern>...");
        std::process::exit(2);
    }
    let settings = GateSettings {
        base_dir: PathBuf::from(&args[0]),
        filter: Some(args[1].clone()),
        results: args[2..].to_vec(),
        security_waiver: Some("benchmark: no scan".to_owned()),
        ..GateSettings::default()
    };
    let start = Instant::now();
    let report = match evaluate(&settings) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let elapsed = start.elapsed();
    let summary = report.summary_markdown();
    println!(
        "gated {} tests ({} critical: {} passed, {} failed, {} skipped; {} non-critical failed) in {:.3} s; verdict {:?}; {} reasons; summary {} bytes",
        report.tests_total,
        report.critical_total,
        report.critical_passed,
        report.critical_failed,
        report.critical_skipped,
        report.non_critical_failed,
        elapsed.as_secs_f64(),
        report.verdict,
        report.reasons.len(),
        summary.len()
    );
}
