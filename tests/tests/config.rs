//! Configuration as an operator meets it: defaults, the TOML file, the
//! environment and flags, each overriding the one before; secrets from
//! files and masked in `config check`; clear errors naming the key; and a
//! `--help` for every command.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis-e2e");

/// The binary with no `PORTCULLIS_*` variable from this environment.
fn portcullis(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTCULLIS_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // Bounded: a command expected to fail that starts a server instead
    // must fail the test, not hang it.
    let mut child = Killed(Some(cmd.spawn().expect("run portcullis")));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let c = child.0.as_mut().expect("child");
        if c.try_wait().expect("wait").is_some() {
            return child.0.take().expect("child").wait_with_output().expect("output");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "portcullis {args:?} still running after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The line of `key` in `config check`'s output.
fn line<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no `{key}` in:\n{stdout}"))
}

#[test]
fn file_then_environment_then_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "issuer = \"https://auth.example\"\naccess_token_ttl = 300\nrefresh_idle_ttl = 600\n\
         trusted_proxies = [\"10.0.0.0/8\"]\n",
    )
    .expect("write");
    let out = portcullis(
        dir.path(),
        &[
            "--config",
            "portcullis.toml",
            "config",
            "check",
            "--access-token-ttl",
            "100",
        ],
        &[
            ("PORTCULLIS_ACCESS_TOKEN_TTL", "200"),
            ("PORTCULLIS_REFRESH_IDLE_TTL", "700"),
            ("PORTCULLIS_HASH_QUEUE", "32"),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        line(&stdout, "issuer"),
        "issuer = \"https://auth.example\"  # file portcullis.toml"
    );
    assert_eq!(
        line(&stdout, "access_token_ttl"),
        "access_token_ttl = 100  # --access-token-ttl"
    );
    assert_eq!(
        line(&stdout, "refresh_idle_ttl"),
        "refresh_idle_ttl = 700  # PORTCULLIS_REFRESH_IDLE_TTL"
    );
    assert_eq!(line(&stdout, "hash_queue"), "hash_queue = 32  # PORTCULLIS_HASH_QUEUE");
    assert_eq!(line(&stdout, "body_timeout"), "body_timeout = 10  # default");
    assert_eq!(
        line(&stdout, "trusted_proxies"),
        "trusted_proxies = [\"10.0.0.0/8\"]  # file portcullis.toml"
    );
    // The file name can also come from the environment.
    let out = portcullis(
        dir.path(),
        &["config", "check"],
        &[("PORTCULLIS_CONFIG", "portcullis.toml")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        line(&stdout, "access_token_ttl"),
        "access_token_ttl = 300  # file portcullis.toml"
    );
}

#[test]
fn nested_keys_come_from_double_underscore_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("c.toml"),
        "[tls]\ncert = \"/etc/portcullis/cert.pem\"\n",
    )
    .expect("write");
    let out = portcullis(
        dir.path(),
        &["--config", "c.toml", "config", "check"],
        &[("PORTCULLIS_TLS__KEY", "/etc/portcullis/key.pem")],
    );
    let (_, stderr) = text(&out);
    // Both halves arrive, from two sources, and `config check` loads them as
    // `serve` would: these files do not exist.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/etc/portcullis/cert.pem"), "{stderr}");
    // Half a pair is an error naming the missing half.
    let out = portcullis(dir.path(), &["--config", "c.toml", "config", "check"], &[]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`tls.cert` (from file c.toml)") && stderr.contains("`tls.key`"),
        "{stderr}"
    );
}

#[test]
fn unknown_keys_and_bad_values_are_errors_naming_the_key_and_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("typo.toml"), "acess_token_ttl = 60\n").expect("write");
    std::fs::write(dir.path().join("nested.toml"), "[tls]\ncertificate = \"x\"\n").expect("write");
    std::fs::write(dir.path().join("type.toml"), "header_timeout = \"soon\"\n").expect("write");
    std::fs::write(dir.path().join("broken.toml"), "issuer = \n").expect("write");
    // (arguments before the command, environment, what the error names)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case<'_>; 9] = [
        (
            &["--config", "typo.toml"],
            &[],
            &["`acess_token_ttl`", "unknown field", "typo.toml"],
        ),
        (&["--config", "nested.toml"], &[], &["`certificate`", "nested.toml"]),
        (&["--config", "type.toml"], &[], &["`header_timeout`", "type.toml"]),
        (&["--config", "broken.toml"], &[], &["broken.toml"]),
        (&["--config", "missing.toml"], &[], &["missing.toml", "not found"]),
        (
            &[],
            &[("PORTCULLIS_ACCESS_TOKEN_TTL", "soon")],
            &["`access_token_ttl`", "PORTCULLIS_ACCESS_TOKEN_TTL"],
        ),
        (
            &[],
            &[("PORTCULLIS_SIGNING_ALG", "HS256")],
            &["`signing_alg`", "PORTCULLIS_SIGNING_ALG"],
        ),
        (
            &[],
            &[("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/33")],
            &["`trusted_proxies`", "prefix"],
        ),
        (
            &[],
            &[("PORTCULLIS_HEADER_TIMEOUT", "0")],
            &["`header_timeout`", "at least 1"],
        ),
    ];
    for (args, env, expected) in cases {
        let mut all = args.to_vec();
        all.extend(["config", "check"]);
        let out = portcullis(dir.path(), &all, env);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?} {env:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        for e in expected {
            assert!(stderr.contains(e), "{args:?} {env:?}: no {e:?} in {stderr}");
        }
        // `serve` refuses to start the same way, before opening anything.
        let mut all = args.to_vec();
        all.extend(["serve", "--listen", "127.0.0.1:0"]);
        let out = portcullis(dir.path(), &all, env);
        assert_eq!(out.status.code(), Some(1), "serve {args:?} {env:?}");
        assert!(!dir.path().join("portcullis.db").exists(), "serve created a database");
    }
    // Cookies without `Secure` are for loopback development only.
    let out = portcullis(
        dir.path(),
        &["config", "check", "--web-insecure-cookies", "--listen", "0.0.0.0:8080"],
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`web_insecure_cookies`") && stderr.contains("loopback"),
        "{stderr}"
    );
    // A feed secret that could never be sent as a bearer token is refused,
    // without being shown.
    let out = portcullis(
        dir.path(),
        &["config", "check"],
        &[("PORTCULLIS_REVOCATION_FEED_SECRET", "spaced out feed secret")],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`revocation_feed_secret`") && stderr.contains("bearer token"),
        "{stderr}"
    );
    assert!(!stderr.contains("spaced out"), "{stderr}");
    // A typed flag value is checked by the command line itself.
    let out = portcullis(dir.path(), &["config", "check", "--signing-alg", "none"], &[]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("`signing_alg` (from --signing-alg)"), "{stderr}");
}

#[test]
fn secrets_come_from_files_and_are_masked() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("db-url"), "postgres://app:hunter2@db.internal/auth\n").expect("write");
    std::fs::write(dir.path().join("feed"), "feed-secret-value\n").expect("write");
    let out = portcullis(
        dir.path(),
        &["config", "check"],
        &[
            ("PORTCULLIS_DATABASE_URL_FILE", "db-url"),
            ("PORTCULLIS_REVOCATION_FEED_SECRET_FILE", "feed"),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("feed-secret-value"),
        "{stdout}"
    );
    assert_eq!(
        line(&stdout, "database_url_file"),
        "database_url_file = \"db-url\"  # PORTCULLIS_DATABASE_URL_FILE"
    );
    // Inline secrets are masked too.
    let out = portcullis(
        dir.path(),
        &["config", "check", "--revocation-feed-secret", "inline-feed-secret"],
        &[("PORTCULLIS_DATABASE_URL", "postgres://app:hunter2@db.internal/auth")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("inline-feed-secret"),
        "{stdout}"
    );
    assert!(
        stdout.contains("database_url = \"postgres://app:***@db.internal/auth\""),
        "{stdout}"
    );
    assert!(stdout.contains("revocation_feed_secret = \"***\""), "{stdout}");
    // Both forms at once, an unreadable file, or an empty one: errors.
    std::fs::write(dir.path().join("empty"), "\n").expect("write");
    for env in [
        [
            ("PORTCULLIS_DATABASE_URL_FILE", "db-url"),
            ("PORTCULLIS_DATABASE_URL", "sqlite://x.db"),
        ],
        [
            ("PORTCULLIS_DATABASE_URL_FILE", "nope"),
            ("PORTCULLIS_LISTEN", "127.0.0.1:1"),
        ],
        [
            ("PORTCULLIS_DATABASE_URL_FILE", "empty"),
            ("PORTCULLIS_LISTEN", "127.0.0.1:1"),
        ],
    ] {
        let out = portcullis(dir.path(), &["config", "check"], &env);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{env:?}");
        assert!(stderr.contains("database_url_file"), "{env:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[test]
fn unknown_environment_variables_are_named_in_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = portcullis(
        dir.path(),
        &["config", "check"],
        &[("PORTCULLIS_ISUER", "https://typo")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("PORTCULLIS_ISUER"), "{stderr}");
    assert_eq!(line(&stdout, "issuer"), "issuer = \"http://127.0.0.1:8080\"  # default");
}

/// A child process killed when dropped (a failed assertion must not leave
/// a server running).
struct Killed(Option<std::process::Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `portcullis serve` runs with what the file says.
#[tokio::test]
async fn serve_uses_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    std::fs::write(
        dir.path().join("portcullis.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\nissuer = \"https://file.example\"\n\
             database_url = \"sqlite://from-file.db\"\nscopes_supported = [\"read\", \"write\"]\n\
             log_format = \"json\"\n"
        ),
    )
    .expect("write");
    let child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["--config", "portcullis.toml", "serve"])
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env_remove("PORTCULLIS_CONFIG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut child = Killed(Some(child));
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/.well-known/oauth-authorization-server");
    let mut doc = None;
    for _ in 0..300 {
        if let Ok(res) = http.get(&url).send().await {
            doc = Some(res.json::<serde_json::Value>().await.expect("json"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let doc = doc.expect("the server did not answer within 30 s");
    assert_eq!(doc["issuer"], "https://file.example");
    assert_eq!(doc["scopes_supported"], serde_json::json!(["read", "write"]));
    assert!(dir.path().join("from-file.db").exists());
    let mut child = child.0.take().expect("child");
    child.kill().expect("kill");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().expect("a log line");
    let parsed: serde_json::Value = serde_json::from_str(first).expect("JSON logs from the file's log_format");
    assert!(parsed.get("level").is_some(), "{first}");
}

/// Every command and subcommand has a working `--help` that lists its
/// options.
#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().expect("tempdir");
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["migrate"],
        &["config"],
        &["config", "check"],
        &["client"],
        &["client", "create"],
        &["client", "list"],
        &["client", "show"],
        &["client", "revoke"],
        &["client", "rotate-secret"],
        &["user"],
        &["user", "create"],
        &["user", "list"],
        &["user", "disable"],
        &["user", "set-password"],
        &["user", "revoke-tokens"],
        &["keys"],
        &["keys", "list"],
        &["keys", "rotate"],
        &["audit"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = portcullis(dir.path(), &args, &[]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{cmd:?}: {stderr}");
        assert!(stdout.contains("Usage: portcullis"), "{cmd:?}: {stdout}");
        assert!(
            stdout.contains("--database") && stdout.contains("--config"),
            "{cmd:?}: {stdout}"
        );
    }
    let out = portcullis(dir.path(), &["serve", "--help"], &[]);
    let (stdout, _) = text(&out);
    for flag in [
        "--listen",
        "--issuer",
        "--tls-cert",
        "--tls-key",
        "--trusted-proxies",
        "--log-format",
    ] {
        assert!(stdout.contains(flag), "serve --help lacks {flag}");
    }
    assert!(stdout.contains("[default: 900]"), "{stdout}");
    assert!(!dir.path().join("portcullis.db").exists(), "--help created a database");
}

/// `config check` loads the certificate and key as `serve` would, and
/// shows where each path came from.
#[test]
fn tls_files_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("write");
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).expect("write");
    let out = portcullis(
        dir.path(),
        &["config", "check", "--tls-cert", "cert.pem"],
        &[("PORTCULLIS_TLS__KEY", "key.pem")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(line(&stdout, "cert"), "cert = \"cert.pem\"  # --tls-cert");
    assert_eq!(line(&stdout, "key"), "key = \"key.pem\"  # PORTCULLIS_TLS__KEY");
    // The key where the certificate should be: refused, the file named.
    let out = portcullis(
        dir.path(),
        &["config", "check", "--tls-cert", "key.pem", "--tls-key", "key.pem"],
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("key.pem"), "{stderr}");
}

#[test]
fn config_check_says_whether_mail_is_on_and_masks_the_smtp_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = portcullis(dir.path(), &["config", "check"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(
            "\n# mail: off (`smtp_url` and `mail_from` are not set): password reset and email verification \
             answer 501 mail_not_configured\n"
        ),
        "{stdout}"
    );
    assert_eq!(
        line(&stdout, "password_min_length"),
        "password_min_length = 15  # default"
    );

    let out = portcullis(
        dir.path(),
        &["config", "check", "--mail-from", "Example <no-reply@example.com>"],
        &[("PORTCULLIS_SMTP_URL", "smtps://apikey:hunter2-smtp@smtp.example.com")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("hunter2-smtp"), "{stdout}");
    assert_eq!(
        line(&stdout, "smtp_url"),
        "smtp_url = \"smtps://apikey:***@smtp.example.com\"  # PORTCULLIS_SMTP_URL"
    );
    assert!(
        stdout.contains(
            "\n# mail: on, via smtps://apikey:***@smtp.example.com (TLS), from Example <no-reply@example.com>\n"
        ),
        "{stdout}"
    );
}

#[test]
fn bad_mail_and_password_settings_are_refused_with_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("PORTCULLIS_SMTP_URL", "smtp://mail.example.com")], "`mail_from`"),
        (
            &[
                ("PORTCULLIS_SMTP_URL", "http://mail.example.com"),
                ("PORTCULLIS_MAIL_FROM", "a@example.com"),
            ],
            "`smtp_url` must be smtp:// or smtps://",
        ),
        (
            &[
                ("PORTCULLIS_SMTP_URL", "smtp://mail.example.com"),
                ("PORTCULLIS_MAIL_FROM", "nobody"),
            ],
            "`mail_from` is not an address",
        ),
        (&[("PORTCULLIS_PASSWORD_MIN_LENGTH", "7")], "`password_min_length`"),
    ];
    for (env, expected) in cases {
        let out = portcullis(dir.path(), &["config", "check"], env);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{env:?}");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}
