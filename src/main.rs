//! The `expedite` binary: a thin shell around [`expedite::app::run`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let env = expedite::action::Env::from_process();
    // Two workers: the container gets few cores, and the work is waiting on
    // networks, not computing.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("::error::expedite cannot start its runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(expedite::app::run(argv, env));
    // Do not wait for stray background tasks (signal listener, deadline).
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}
