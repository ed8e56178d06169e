//! The `portcullis` command: the server and its admin tools.

use std::time::Duration;

use clap::Parser as _;
use portcullis::cli::{Cli, ClientCommand, Command, KeysCommand, ServeArgs, UserCommand};
use portcullis::startup::open_database as open;
use portcullis::{Application, Settings, admin};

/// mimalloc instead of the system allocator: a request allocates and frees
/// many small buffers across threads, where glibc's malloc spent ~15% of
/// the refresh path's CPU (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let database_url = cli.database_url;
    match cli.command {
        Command::Serve(args) => {
            let settings = settings(&database_url, *args);
            tracing::info!(?settings, "starting");
            let app = Application::build(&settings).await?;
            // Handlers first: a SIGTERM right after "listening" must stop
            // the server cleanly.
            let stop = portcullis::startup::shutdown_signal()?;
            tracing::info!(address = %app.local_addr()?, "listening");
            app.run_until(stop).await
        }
        Command::Migrate => {
            let store = open(&database_url).await?;
            store.close().await;
            eprintln!("portcullis: database is up to date");
            Ok(())
        }
        Command::Client(cmd) => {
            let store = open(&database_url).await?;
            let out = match cmd {
                ClientCommand::Create(args) => admin::client_create(&store, args).await,
                ClientCommand::List(a) => admin::client_list(&store, a.json).await,
                ClientCommand::Show(a) => admin::client_show(&store, &a.id, a.json).await,
                ClientCommand::Revoke(a) => admin::client_revoke(&store, &a.id, a.json).await,
                ClientCommand::RotateSecret(a) => admin::client_rotate_secret(&store, &a.id, a.json).await,
            };
            store.close().await;
            print(out?)
        }
        Command::User(cmd) => {
            let store = open(&database_url).await?;
            let out = match cmd {
                UserCommand::Create(args) => admin::user_create(&store, args).await,
                UserCommand::List(a) => admin::user_list(&store, a.json).await,
                UserCommand::Disable(a) => admin::user_disable(&store, &a.username, a.json).await,
                UserCommand::SetPassword(a) => admin::user_set_password(&store, a).await,
                UserCommand::RevokeTokens(a) => admin::user_revoke_tokens(&store, &a.username, a.json).await,
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
            let store = open(&database_url).await?;
            let out = match cmd {
                KeysCommand::List(a) => admin::keys_list(&store, a.json).await,
                KeysCommand::Rotate(a) => admin::keys_rotate(&store, a.alg, a.json).await,
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

fn settings(database_url: &str, args: ServeArgs) -> Settings {
    let mut s = Settings::new(args.listen, database_url, &args.issuer);
    let t = &mut s.token;
    if let Some(aud) = args.audience {
        t.audience = aud;
    }
    t.resources = args.resources.into_iter().filter(|r| !r.is_empty()).collect();
    t.scopes_supported = args.scopes_supported.into_iter().filter(|r| !r.is_empty()).collect();
    t.access_token_ttl = Duration::from_secs(args.access_token_ttl);
    t.refresh_idle_ttl = Duration::from_secs(args.refresh_idle_ttl);
    t.refresh_absolute_ttl = Duration::from_secs(args.refresh_absolute_ttl);
    t.refresh_retry_window = Duration::from_secs(args.refresh_retry_window);
    t.refresh_race_grace = Duration::from_secs(args.refresh_race_grace);
    t.audit_refreshes = args.audit_refreshes;
    t.signing_alg = args.signing_alg;
    t.password = args.hashing.policy();
    t.refusal_delay = Duration::from_millis(args.refusal_delay_ms);
    t.key_publish_delay = Duration::from_secs(args.key_publish_delay);
    t.key_rotation_period = (args.key_rotation_period > 0).then(|| Duration::from_secs(args.key_rotation_period));
    s.behind_tls_proxy = args.behind_tls_proxy;
    s.trusted_proxies = args.trusted_proxies;
    s.header_timeout = Duration::from_secs(args.header_timeout);
    s.body_timeout = Duration::from_secs(args.body_timeout);
    s.token.revocation_feed_secret = args.revocation_feed_secret.filter(|x| !x.is_empty());
    s
}
