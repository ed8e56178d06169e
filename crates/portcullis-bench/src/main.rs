//! `portcullis-load`: parse the command line, run on a runtime of
//! `--threads` workers, print the table, write the JSON.

use std::process::ExitCode;

use clap::Parser;
use portcullis_bench::{cli::Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config();
    // One thread by default: the generator must leave the cores to the server.
    let mut builder = if config.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(config.threads);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis-load: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(run(&config)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("portcullis-load: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{report}");
    if let Some(path) = &cli.json {
        if let Err(e) = std::fs::write(path, report.to_json() + "\n") {
            eprintln!("portcullis-load: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        eprintln!("portcullis-load: no request succeeded");
        ExitCode::FAILURE
    }
}
