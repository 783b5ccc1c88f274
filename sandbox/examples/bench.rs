//! Measures sandbox start-up (start() to first served request) and demo
//! traffic sustained on loopback against `POST /api/payments`, with a
//! bounded load loop (fixed concurrency, fixed duration).
//!
//! `cargo run -p expedite-sandbox --example bench [--release] -- [SECONDS] [CONCURRENCY]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use expedite_sandbox::{SandboxConfig, start};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5)
        .min(60);
    let concurrency: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(16)
        .clamp(1, 256);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let mut startups = Vec::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            let sb = start(SandboxConfig::default()).await?;
            let client = reqwest::Client::builder()
                .use_preconfigured_tls(sb.client_tls_config()?)
                .resolve("app-contoso-payments.azurewebsites.test", sb.https_addr())
                .build()?;
            let r = client.get("https://app-contoso-payments.azurewebsites.test/health").send().await?;
            assert!(r.status().is_success());
            startups.push(t0.elapsed());
            sb.shutdown().await;
        }
        startups.sort();
        println!("start-up to first served request (5 runs): min {:?}, median {:?}, max {:?}", startups[0], startups[2], startups[4]);

        let sb = start(SandboxConfig::default()).await?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(sb.client_tls_config()?)
            .resolve("app-contoso-payments-staging.azurewebsites.test", sb.https_addr())
            .pool_max_idle_per_host(concurrency)
            .build()?;
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, ok, failed) = (client.clone(), ok.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                // Bounded by the deadline and by a hard cap per worker.
                for _ in 0..1_000_000u32 {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let r = client
                        .post("https://app-contoso-payments-staging.azurewebsites.test/api/payments")
                        .header("content-type", "application/json")
                        .body(r#"{"amount":120,"currency":"USD"}"#)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let secs = t0.elapsed().as_secs_f64();
        let n = ok.load(Ordering::Relaxed);
        println!(
            "POST /api/payments over HTTPS, {concurrency} connections, {secs:.1} s: {n} ok, {} failed, {:.0} requests/s",
            failed.load(Ordering::Relaxed),
            n as f64 / secs
        );
        sb.shutdown().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
