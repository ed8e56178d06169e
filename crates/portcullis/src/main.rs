//! The `portcullis` command: the server and its admin tools.

use clap::Parser as _;
use portcullis::cli::{Cli, Command};
use portcullis::{Application, Settings};
use portcullis_store::SqlStore;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    portcullis::telemetry::init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings {
                listen: args.listen,
                database_url: cli.database_url.into(),
                issuer: args.issuer,
            };
            tracing::info!(?settings, "starting");
            let app = Application::build(&settings).await?;
            tracing::info!(address = %app.local_addr()?, "listening");
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let store = SqlStore::connect(&cli.database_url)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
            store
                .migrate()
                .await
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
            store.close().await;
            eprintln!("portcullis: database is up to date");
            Ok(())
        }
    }
}
