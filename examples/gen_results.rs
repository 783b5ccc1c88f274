//! Writes large, deterministic JUnit XML and TRX files for the gate benchmark
//! (docs/bench-gate.md).
//!
//! Usage: `cargo run --release --example gen_results -- <out-dir> [tests=100000]`
//!
//! Every 10th test has the category Critical, every 97th failed (with a message and a
//! multi-line stack trace), every 50th was skipped; the shape follows the real fixtures
//! (TRX: Results before TestDefinitions, GUID ids; JUnit: Surefire-like suites of 1,000).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: gen_results <out-dir> [tests=100000]");
        std::process::exit(2);
    };
    let tests: usize = match args.next().map(|n| n.parse()) {
        None => 100_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("tests must be a number: {e}");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(&out)?;
    write_junit(&out.join("junit-large.xml"), tests)?;
    write_trx(&out.join("trx-large.trx"), tests)?;
    println!(
        "wrote {tests} tests to {0}/junit-large.xml and {0}/trx-large.trx",
        out.display()
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Passed,
    Failed,
    Skipped,
}

fn kind(i: usize) -> Kind {
    if i.is_multiple_of(97) {
        Kind::Failed
    } else if i.is_multiple_of(50) {
        Kind::Skipped
    } else {
        Kind::Passed
    }
}

fn critical(i: usize) -> bool {
    i.is_multiple_of(10)
}

/// A GUID-looking id that is the same on every run.
fn guid(i: usize, salt: u64) -> String {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    x ^= x >> 31;
    let y = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xffff,
        y >> 48,
        y & 0xffff_ffff_ffff
    )
}

fn stack_trace(i: usize) -> String {
    (0..8)
        .map(|frame| {
            format!(
                "   at Contoso.Payments.Orders.Processor.Step{frame}(Order order) in /src/Payments/Processor.cs:line {}",
                100 + frame * 7 + i % 13
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_junit(path: &PathBuf, tests: usize) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(w, r#"<testsuites name="bench" tests="{tests}">"#)?;
    let per_suite = 1000;
    for start in (0..tests).step_by(per_suite) {
        let suite = start / per_suite;
        writeln!(
            w,
            r#"  <testsuite name="Contoso.Payments.Suite{suite}" tests="{}" time="1.0">"#,
            per_suite.min(tests - start)
        )?;
        writeln!(
            w,
            r#"    <properties><property name="java.version" value="21"/><property name="os.name" value="Linux"/></properties>"#
        )?;
        for i in start..(start + per_suite).min(tests) {
            let class = format!("Contoso.Payments.Suite{suite}.OrderTests");
            write!(
                w,
                r#"    <testcase classname="{class}" name="processes_order_{i}" time="0.004""#
            )?;
            let k = kind(i);
            if k == Kind::Passed && !critical(i) {
                writeln!(w, "/>")?;
                continue;
            }
            writeln!(w, ">")?;
            if critical(i) {
                writeln!(
                    w,
                    r#"      <properties><property name="Category" value="Critical"/></properties>"#
                )?;
            }
            match k {
                Kind::Failed => writeln!(
                    w,
                    "      <failure message=\"Expected order {i} total 10001 but was 0\" type=\"AssertionError\">{}</failure>\n      <system-out><![CDATA[processing order {i}\nretrying\n]]></system-out>",
                    stack_trace(i)
                )?,
                Kind::Skipped => writeln!(w, r#"      <skipped message="needs the sandbox"/>"#)?,
                Kind::Passed => {}
            }
            writeln!(w, "    </testcase>")?;
        }
        writeln!(w, "  </testsuite>")?;
    }
    writeln!(w, "</testsuites>")?;
    w.flush()
}

fn write_trx(path: &PathBuf, tests: usize) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    // A UTF-8 BOM, as dotnet writes it.
    w.write_all(b"\xEF\xBB\xBF")?;
    writeln!(w, r#"<?xml version="1.0" encoding="utf-8"?>"#)?;
    writeln!(
        w,
        r#"<TestRun id="{}" name="bench" runUser="ci" xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">"#,
        guid(0, 7)
    )?;
    writeln!(
        w,
        r#"  <Times creation="2026-01-01T00:00:00.0000000+00:00" start="2026-01-01T00:00:00.0000000+00:00" finish="2026-01-01T00:05:00.0000000+00:00" />"#
    )?;
    writeln!(w, "  <Results>")?;
    let (mut passed, mut failed) = (0, 0);
    for i in 0..tests {
        let outcome = match kind(i) {
            Kind::Passed => {
                passed += 1;
                "Passed"
            }
            Kind::Failed => {
                failed += 1;
                "Failed"
            }
            Kind::Skipped => "NotExecuted",
        };
        write!(
            w,
            r#"    <UnitTestResult executionId="{}" testId="{}" testName="ProcessesOrder_{i}" computerName="ci" duration="00:00:00.0040000" startTime="2026-01-01T00:00:00.0000000+00:00" endTime="2026-01-01T00:00:00.0040000+00:00" testType="13cdc9d9-ddb5-4fa4-a97d-d965ccfc6d4b" outcome="{outcome}" testListId="8c84fa94-04c1-424b-9868-57a2d4851a1d" relativeResultsDirectory="{}""#,
            guid(i, 1),
            guid(i, 2),
            guid(i, 1)
        )?;
        match kind(i) {
            Kind::Passed => writeln!(w, " />")?,
            Kind::Failed => writeln!(
                w,
                ">\n      <Output>\n        <ErrorInfo>\n          <Message>Assert.Equal() Failure: order {i} total expected 10001, actual 0</Message>\n          <StackTrace>{}</StackTrace>\n        </ErrorInfo>\n      </Output>\n    </UnitTestResult>",
                stack_trace(i)
            )?,
            Kind::Skipped => writeln!(
                w,
                ">\n      <Output>\n        <ErrorInfo>\n          <Message>needs the sandbox</Message>\n        </ErrorInfo>\n      </Output>\n    </UnitTestResult>"
            )?,
        }
    }
    writeln!(w, "  </Results>")?;
    writeln!(w, "  <TestDefinitions>")?;
    for i in 0..tests {
        writeln!(
            w,
            r#"    <UnitTest name="ProcessesOrder_{i}" storage="/src/tests/bin/release/net8.0/contoso.payments.tests.dll" id="{}">"#,
            guid(i, 2)
        )?;
        if critical(i) {
            writeln!(
                w,
                "      <TestCategory>\n        <TestCategoryItem TestCategory=\"Critical\" />\n      </TestCategory>"
            )?;
        }
        writeln!(
            w,
            r#"      <Execution id="{}" />
      <TestMethod codeBase="/src/tests/bin/Release/net8.0/Contoso.Payments.Tests.dll" adapterTypeName="executor://xunit/VsTestRunner2/netcoreapp" className="Contoso.Payments.OrderTests{}" name="ProcessesOrder_{i}" />
    </UnitTest>"#,
            guid(i, 1),
            i / 1000
        )?;
    }
    writeln!(w, "  </TestDefinitions>")?;
    writeln!(w, "  <TestEntries>")?;
    for i in 0..tests {
        writeln!(
            w,
            r#"    <TestEntry testId="{}" executionId="{}" testListId="8c84fa94-04c1-424b-9868-57a2d4851a1d" />"#,
            guid(i, 2),
            guid(i, 1)
        )?;
    }
    writeln!(w, "  </TestEntries>")?;
    writeln!(
        w,
        r#"  <ResultSummary outcome="Failed">
    <Counters total="{tests}" executed="{}" passed="{passed}" failed="{failed}" error="0" timeout="0" aborted="0" inconclusive="0" passedButRunAborted="0" notRunnable="0" notExecuted="0" disconnected="0" warning="0" completed="0" inProgress="0" pending="0" />
  </ResultSummary>
</TestRun>"#,
        passed + failed
    )?;
    w.flush()
}
