//! Cherry-pick benchmark (issue 7): expedite's minimal fetch and
//! `merge-tree` pick of a 1-file hotfix commit, against what a
//! `fetch-depth: 0` workflow does (a full clone, then `git cherry-pick -x`),
//! on the same generated repository served by the sandbox GitHub over git
//! smart-HTTP, in the same run — at the full history size and at half of it.
//!
//! ```sh
//! cargo run --release --example bench_cherry_pick -- --commits 50000 --files 20000
//! ```
//!
//! The repository is generated with `git fast-import` straight into the
//! sandbox's bare repository: `--files` files of pseudo-random text (it does
//! not compress to nothing), then `--commits` commits on `main`, each
//! rewriting two files with 4 KiB of fresh text. The release is tagged 100
//! commits before `main`'s tip; the hotfix is one commit on top of it
//! changing one file. The server's pack is then repacked with a bitmap
//! index, as GitHub serves clones (`--no-repack` skips it).
//!
//! expedite runs in-process through `expedite::app::run` exactly as the
//! action's entrypoint does (inputs as `INPUT_*`, outputs and summary to
//! files); its bytes are what its scratch repository held at the end
//! (`git count-objects`, reported in the summary). The baseline's bytes are
//! the clone's pack size.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: fast, and good enough that zlib cannot shrink it much.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `n` bytes of text: lines of 63 base64-alphabet characters.
    fn text(&mut self, n: usize, out: &mut Vec<u8>) {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let start = out.len();
        while out.len() - start < n {
            let mut r = self.next();
            for _ in 0..10 {
                out.push(A[(r & 63) as usize]);
                r >>= 6;
            }
            if (out.len() - start) % 64 >= 60 {
                out.push(b'\n');
            }
        }
        out.push(b'\n');
    }
}

fn path_of(i: usize) -> String {
    format!("src/d{:03}/f{:05}.txt", i / 100, i)
}

/// Generates the history into `bare`; returns (hotfix sha, release tag).
fn generate(bare: &Path, commits: usize, files: usize) -> String {
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut buf = Vec::with_capacity(1 << 16);
    let person = "Bench <bench@contoso.test>";
    let mut t = 1_600_000_000u64;
    // The first commit: every file, plus the hotfix's config file.
    writeln!(
        w,
        "commit refs/heads/main\nmark :1\ncommitter {person} {t} +0000\ndata <<EOM\ninitial\nEOM"
    )
    .unwrap();
    for i in 0..files {
        buf.clear();
        rng.text(1024, &mut buf);
        writeln!(w, "M 100644 inline {}\ndata {}", path_of(i), buf.len()).unwrap();
        w.write_all(&buf).unwrap();
        w.write_all(b"\n").unwrap();
    }
    let config = "limit=10000\nmode=strict\n";
    writeln!(
        w,
        "M 100644 inline config/orders.ini\ndata {}\n{config}",
        config.len()
    )
    .unwrap();
    let release_at = commits.saturating_sub(100).max(2);
    for c in 2..=commits {
        t += 60;
        writeln!(
            w,
            "commit refs/heads/main\nmark :{c}\ncommitter {person} {t} +0000\ndata <<EOM\nchange {c}\nEOM\nfrom :{}",
            c - 1
        )
        .unwrap();
        for _ in 0..2 {
            let f = (rng.next() % files as u64) as usize;
            buf.clear();
            rng.text(4096, &mut buf);
            writeln!(w, "M 100644 inline {}\ndata {}", path_of(f), buf.len()).unwrap();
            w.write_all(&buf).unwrap();
            w.write_all(b"\n").unwrap();
        }
        if c == release_at {
            writeln!(
                w,
                "tag release/2.4.0\nfrom :{c}\ntagger {person} {t} +0000\ndata <<EOM\nRelease 2.4.0\nEOM"
            )
            .unwrap();
        }
    }
    let fixed = "limit=none\nmode=strict\n";
    writeln!(
        w,
        "commit refs/heads/hotfix/INC-4521\nmark :{m}\ncommitter {person} {t} +0000\ndata <<EOM\nfix: accept large orders\nEOM\nfrom :{release_at}\nM 100644 inline config/orders.ini\ndata {}\n{fixed}\ndone",
        fixed.len(),
        m = commits + 1
    )
    .unwrap();
    w.flush().unwrap();
    drop(w);
    assert!(child.wait().unwrap().success(), "fast-import failed");
    git_bare(bare, &["rev-parse", "refs/heads/hotfix/INC-4521"])
}

fn git_bare(bare: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn pack_bytes(git_dir: &Path) -> u64 {
    let out = git_bare(git_dir, &["count-objects", "-v"]);
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            matches!(k, "size" | "size-pack").then(|| v.parse::<u64>().ok())?
        })
        .sum::<u64>()
        * 1024
}

struct Run {
    wall: Duration,
    bytes: u64,
}

async fn expedite_pick(sb: &expedite_sandbox::Sandbox, repo: &str, sha: &str, dir: &Path) -> Run {
    let s = sb.settings();
    let out = dir.join("out");
    let summary = dir.join("summary.md");
    std::fs::write(&out, "").unwrap();
    std::fs::write(&summary, "").unwrap();
    let pairs: Vec<(String, String)> = [
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_OUTPUT", out.display().to_string()),
        ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
        ("GITHUB_STATE", dir.join("state").display().to_string()),
        ("RUNNER_TEMP", dir.display().to_string()),
        ("GITHUB_API_URL", s.github_api_url.clone()),
        ("GITHUB_SERVER_URL", s.github_server_url.clone()),
        ("PATH", std::env::var("PATH").unwrap()),
        ("INPUT_COMMAND", "cherry-pick".into()),
        ("INPUT_REPOSITORY", format!("bench/{repo}")),
        ("INPUT_GITHUB-TOKEN", s.github_token.clone()),
        ("INPUT_COMMITS", sha.to_string()),
        ("INPUT_RESOLVE", s.resolve_string()),
        ("INPUT_CA-CERT", s.ca_cert_path.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    std::fs::write(dir.join("state"), "").unwrap();
    let env = expedite::action::Env::from_pairs(pairs);
    let started = Instant::now();
    let code = expedite::app::run(vec!["expedite".into()], env).await;
    let wall = started.elapsed();
    let outputs = std::fs::read_to_string(&out).unwrap();
    assert_eq!(code, 0, "expedite failed: {outputs}");
    assert!(outputs.contains("pull-request"), "{outputs}");
    let text = std::fs::read_to_string(&summary).unwrap();
    let kib: u64 = text
        .split("Fetched ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    Run {
        wall,
        bytes: kib * 1024,
    }
}

fn baseline_pick(sb: &expedite_sandbox::Sandbox, repo: &str, sha: &str, dir: &Path) -> Run {
    let h = sb.handle();
    let url = h.github_clone_url("bench", repo);
    let clone = dir.join("clone");
    let git = |cwd: &Path, args: &[&str]| {
        let mut c = Command::new("git");
        for (k, _) in std::env::vars() {
            if k.starts_with("GIT_") {
                c.env_remove(k);
            }
        }
        let basic = expedite::git::basic_auth(&secrecy::SecretString::from(h.github_token()));
        let out = c
            .current_dir(cwd)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .args(h.git_config_args())
            .args([
                "-c",
                &format!("http.extraHeader=Authorization: Basic {basic}"),
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@contoso.test",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let started = Instant::now();
    // What `actions/checkout` with `fetch-depth: 0` amounts to, then the pick.
    git(dir, &["clone", "-q", &url, clone.to_str().unwrap()]);
    git(&clone, &["cherry-pick", "-x", sha]);
    let wall = started.elapsed();
    Run {
        wall,
        bytes: pack_bytes(&clone.join(".git")),
    }
}

fn mib(b: u64) -> String {
    if b < 1 << 20 {
        format!("{} KiB", b / 1024)
    } else {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let commits = arg("--commits", 50_000);
    let files = arg("--files", 20_000);
    let repack = !args.iter().any(|a| a == "--no-repack");
    let sb = expedite_sandbox::start(expedite_sandbox::SandboxConfig::default())
        .await
        .unwrap();
    let mut rows = Vec::new();
    for (name, n) in [("half", commits / 2), ("full", commits)] {
        let bare = sb
            .handle()
            .github_create_repo("bench", name, "main")
            .unwrap();
        let t = Instant::now();
        let sha = generate(&bare, n, files);
        let gen_time = t.elapsed();
        if repack {
            git_bare(&bare, &["repack", "-a", "-d", "-q", "--write-bitmap-index"]);
        }
        let history = pack_bytes(&bare);
        eprintln!(
            "{name}: {n} commits, {files} files, {} packed; generated in {:.0?}{}",
            mib(history),
            gen_time,
            if repack { " (+ repack)" } else { "" }
        );
        let work = tempfile::tempdir().unwrap();
        let e = Box::pin(expedite_pick(&sb, name, &sha, work.path())).await;
        let b = baseline_pick(&sb, name, &sha, work.path());
        eprintln!(
            "  expedite {:.2} s, {}; full clone + cherry-pick {:.2} s, {}",
            e.wall.as_secs_f64(),
            mib(e.bytes),
            b.wall.as_secs_f64(),
            mib(b.bytes)
        );
        rows.push((name, n, history, e, b));
    }
    println!(
        "| history | commits | packed history | expedite wall | expedite fetched | full clone + cherry-pick wall | clone fetched | speed-up | less data |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, n, history, e, b) in &rows {
        println!(
            "| {name} | {n} | {} | {:.2} s | {} | {:.2} s | {} | {:.0}× | {:.0}× |",
            mib(*history),
            e.wall.as_secs_f64(),
            mib(e.bytes),
            b.wall.as_secs_f64(),
            mib(b.bytes),
            b.wall.as_secs_f64() / e.wall.as_secs_f64(),
            b.bytes as f64 / e.bytes.max(1) as f64
        );
    }
}
