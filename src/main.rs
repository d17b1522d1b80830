//! The multi-call binary: `barnacle`, `walpush`, `restore` and the
//! `barman-cloud-*` names (by argv[0]). Parses, runs, prints, logs an error
//! once, and exits with Barman's codes.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use barnacle::cli::{self, Invocation};
use barnacle::commands;
use barnacle::logging::{self, Redactor};

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let program = argv
        .first()
        .map(|a| {
            a.to_string_lossy()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_else(|| "barnacle".into());
    let invocation: Invocation = match cli::parse(argv) {
        Ok(inv) => inv,
        Err(failure) if failure.exit_code == 0 => {
            print!("{}", failure.message);
            return ExitCode::SUCCESS;
        }
        Err(failure) => {
            eprintln!("{program}: error: {}", failure.message);
            return ExitCode::from(failure.exit_code);
        }
    };
    // archive_command beside a sidecar: answer before setting anything up.
    if let Invocation::WalPush { args, .. } = &invocation
        && commands::wal::already_pushed(args)
    {
        return ExitCode::SUCCESS;
    }
    let redactor = Redactor::from_env();
    let common = invocation.common();
    logging::init(common.verbosity(), common.log_format, redactor.clone());

    let runtime = match build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(4);
        }
    };
    match runtime.block_on(commands::run(invocation)) {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(report.stdout.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::from(4);
            }
            ExitCode::from(report.code)
        }
        Err(e) => {
            tracing::error!("{}", redactor.redact(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

/// The runtime. tokio panics instead of failing when its signal driver cannot get a socket
/// pair (too many open files): that becomes an error here, not a panic message.
fn build_runtime() -> Result<tokio::runtime::Runtime, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let built = std::panic::catch_unwind(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    });
    std::panic::set_hook(hook);
    match built {
        Ok(runtime) => runtime.map_err(|e| e.to_string()),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the runtime could not be built".into())),
    }
}
