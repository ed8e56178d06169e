//! The `portcullis` command: the server and its admin tools.

use clap::{CommandFactory as _, FromArgMatches as _};
use portcullis::cli::{Cli, ClientCommand, Command, ConfigCommand, KeysCommand, UserCommand};
use portcullis::config::{self, Loaded, Overrides};
use portcullis::startup::open_database as open;
use portcullis::{Application, admin};

/// mimalloc instead of the system allocator: a request allocates and frees
/// many small buffers across threads, where glibc's malloc spent ~15% of
/// the refresh path's CPU (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli, &matches).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The configuration with the flags the user typed for this command.
fn configuration(cli: &Cli, matches: &clap::ArgMatches) -> anyhow::Result<Loaded> {
    let mut overrides = Overrides::default();
    if let Some(url) = &cli.database_url {
        overrides.set("database_url", url.clone());
    }
    // The deepest subcommand's own flags.
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    match &cli.command {
        Command::Serve(args) | Command::Config(ConfigCommand::Check(args)) => overrides.add(m, args),
        Command::User(UserCommand::Create(args)) => overrides.add(m, &args.hashing),
        Command::User(UserCommand::SetPassword(args)) => overrides.add(m, &args.hashing),
        _ => {}
    }
    let loaded = config::load(cli.config.as_deref(), &overrides)?;
    portcullis::telemetry::init(loaded.config.log_format == "json");
    for var in &loaded.unknown_env {
        tracing::warn!(variable = %var, "ignoring an environment variable that names no configuration key");
    }
    Ok(loaded)
}

async fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let loaded = configuration(&cli, matches)?;
    let database_url = loaded.database_url()?;
    match cli.command {
        Command::Serve(_) => {
            let settings = loaded.settings()?;
            tracing::info!(?settings, "starting");
            let app = Application::build(&settings).await?;
            // Handlers first: a SIGTERM right after "listening" must stop
            // the server cleanly.
            let stop = portcullis::startup::shutdown_signal()?;
            tracing::info!(address = %app.local_addr()?, "listening");
            app.run_until(stop).await
        }
        Command::Config(ConfigCommand::Check(_)) => {
            let settings = loaded.settings()?;
            // The certificate and key load as `serve` would load them.
            if let Some(tls) = &settings.tls {
                portcullis::tls::load_certified_key(&tls.cert, &tls.key)?;
            }
            print(loaded.render())
        }
        Command::Migrate => {
            let store = portcullis_store::SqlStore::connect(&database_url)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
            let applied = store.migrate_and_report().await;
            store.close().await;
            let applied = applied.map_err(|e| anyhow::anyhow!("cannot migrate the database: {e}"))?;
            if applied.is_empty() {
                eprintln!("portcullis: the database is up to date (no migration to apply)");
            } else {
                for (version, description) in &applied {
                    eprintln!("portcullis: applied migration {version}: {description}");
                }
                eprintln!(
                    "portcullis: {} migration(s) applied; the database is up to date",
                    applied.len()
                );
            }
            Ok(())
        }
        Command::Client(cmd) => {
            let store = open(&database_url).await?;
            let out = match cmd {
                ClientCommand::Create(args) => admin::client_create(&store, args).await,
                ClientCommand::List(a) => admin::client_list(&store, a.json).await,
                ClientCommand::Show(a) => admin::client_show(&store, &a.id, a.json).await,
                ClientCommand::Revoke(a) => admin::client_revoke(&store, &a.id, a.json).await,
                ClientCommand::RotateSecret(a) => admin::client_rotate_secret(&store, a).await,
            };
            store.close().await;
            print(out?)
        }
        Command::User(cmd) => {
            let policy = loaded.password_policy()?;
            let store = open(&database_url).await?;
            let out = match cmd {
                UserCommand::Create(args) => admin::user_create(&store, args, &policy).await,
                UserCommand::List(a) => admin::user_list(&store, a.json).await,
                UserCommand::Disable(a) => admin::user_disable(&store, &a.username, a.json).await,
                UserCommand::Enable(a) => admin::user_enable(&store, &a.username, a.json).await,
                UserCommand::Delete(a) => admin::user_delete(&store, &a.username, a.json).await,
                UserCommand::SetPassword(a) => admin::user_set_password(&store, a, &policy).await,
                UserCommand::RevokeTokens(a) => admin::user_revoke_tokens(&store, &a.username, a.json).await,
                UserCommand::Show(a) => admin::user_show(&store, &a.username, a.json).await,
                UserCommand::MfaReset(a) => admin::user_mfa_reset(&store, &a.username, a.json).await,
            };
            store.close().await;
            print(out?)
        }
        Command::Audit(a) => {
            let store = open(&database_url).await?;
            let out = admin::audit_list(&store, a.limit, a.before, a.json).await;
            store.close().await;
            print(out?)
        }
        Command::Keys(cmd) => {
            let kek = loaded.key_encryption_key()?;
            let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
            let times = admin::KeyTimes {
                publish_delay: secs(loaded.config.key_publish_delay),
                access_token_ttl: secs(loaded.config.access_token_ttl),
            };
            let store = open(&database_url).await?;
            let out = match cmd {
                KeysCommand::List(a) => admin::keys_list(&store, times, a.json).await,
                KeysCommand::Rotate(a) => admin::keys_rotate(&store, a.alg, kek.as_ref(), times, a.json).await,
                KeysCommand::Encrypt(a) => admin::keys_encrypt(&store, kek.as_ref(), a.json).await,
                KeysCommand::Rewrap(a) => admin::keys_rewrap(&store, kek.as_ref(), &a.new_key_file, a.json).await,
            };
            store.close().await;
            print(out?)
        }
    }
}

#[allow(clippy::print_stdout)]
fn print(text: String) -> anyhow::Result<()> {
    println!("{}", text.trim_end());
    Ok(())
}
