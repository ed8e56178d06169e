//! `portcullis-load` against a mock token endpoint that, like a real server
//! with refresh-token rotation, accepts only the newest token of each chain.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use portcullis_bench::{ClientAuth, Config, Mode, Report, run};
use serde_json::{Value, json};

/// `Basic base64("app:s3cret")`.
const BASIC: &str = "Basic YXBwOnMzY3JldA==";

#[derive(Default)]
struct Mock {
    /// Every refresh token ever issued → its chain.
    issued: HashMap<String, u64>,
    /// Chain → the only token it accepts next.
    newest: HashMap<u64, String>,
    next_id: u64,
}

#[derive(Clone, Default)]
struct AppState {
    mock: Arc<Mutex<Mock>>,
    /// The next this-many sign-ins get 503 with `Retry-After: 0`.
    unavailable: Arc<AtomicUsize>,
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

fn issue(mock: &mut Mock, chain: u64) -> Response {
    mock.next_id += 1;
    let token = format!("rt-{chain}-{}", mock.next_id);
    mock.issued.insert(token.clone(), chain);
    mock.newest.insert(chain, token.clone());
    let body = json!({ "access_token": "a", "token_type": "Bearer", "expires_in": 300, "refresh_token": token });
    Json(body).into_response()
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes) != Some(BASIC.as_bytes()) {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let field = |k: &str| form.get(k).map(String::as_str);
    let mut mock = state.mock.lock().unwrap();
    match field("grant_type") {
        Some("password") => {
            let dec = |n: usize| n.checked_sub(1);
            if state
                .unavailable
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, dec)
                .is_ok()
            {
                let mut res = error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
                return res;
            }
            let user_ok = matches!(field("username"), Some("u0" | "u1" | "u2" | "u3"));
            if !user_ok || field("password") != Some("pw") {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            mock.next_id += 1;
            let chain = mock.next_id;
            issue(&mut mock, chain)
        }
        Some("refresh_token") => {
            let presented = field("refresh_token").unwrap_or_default();
            let Some(&chain) = mock.issued.get(presented) else {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if mock.newest.get(&chain).map(String::as_str) != Some(presented) {
                // A replay: like a real server, revoke the whole chain.
                mock.newest.remove(&chain);
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            issue(&mut mock, chain)
        }
        _ => error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

async fn spawn_mock(unavailable: usize) -> String {
    let state = AppState {
        unavailable: Arc::new(AtomicUsize::new(unavailable)),
        ..AppState::default()
    };
    let app = Router::new().route("/oauth/token", post(token)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/oauth/token")
}

fn config(url: String, mode: Mode) -> Config {
    Config {
        url,
        client_id: Some("app".into()),
        client_secret: Some("s3cret".into()),
        client_auth: ClientAuth::Basic,
        scope: None,
        username: "u{i}".into(),
        users: 4,
        password: "pw".into(),
        mode,
        clients: 8,
        password_clients: None,
        duration: Duration::from_millis(1000),
        warmup: Duration::from_millis(200),
        max_rps: None,
        timeout: Duration::from_secs(5),
        threads: 1,
        dpop: false,
        server_pid: None,
    }
}

fn assert_clean(report: &Report, grants: &[&str]) {
    let names: Vec<_> = report.grants.keys().map(String::as_str).collect();
    assert_eq!(names, grants, "{report}");
    for (name, g) in &report.grants {
        assert!(g.count > 0, "no {name} request: {report}");
        assert_eq!(g.ok, g.count, "{name} had errors: {report}");
        assert!(g.errors.is_empty(), "{name} had errors: {report}");
        assert!(g.rps > 0.0, "{report}");
        assert!(
            g.p50_ms <= g.p90_ms && g.p90_ms <= g.p99_ms && g.p99_ms <= g.max_ms,
            "{report}"
        );
        assert!(g.max_ms > 0.0, "{report}");
    }
    assert_eq!(report.setup_failures, 0, "{report}");
    assert!(report.succeeded());

    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["mode"], serde_json::to_value(report.mode).unwrap());
    assert_eq!(json["clients"], 8);
    assert_eq!(json["duration_s"], 1.0);
    assert_eq!(json["url"], report.url);
    for name in grants {
        let g = &json["grants"][name];
        for key in ["count", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms"] {
            assert!(g[key].is_number(), "{name}.{key} missing in {json}");
        }
        assert_eq!(g["errors"], json!({}), "{json}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_chains_always_present_the_newest_token() {
    // Every initial sign-in is first refused with 503: the retries absorb it.
    let url = spawn_mock(8).await;
    let report = run(&config(url, Mode::Refresh)).await.unwrap();
    assert_clean(&report, &["refresh_token"]);
    assert_eq!(report.password_clients, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_cpu_of_the_window_is_reported_per_request() {
    let url = spawn_mock(0).await;
    let without = run(&config(url.clone(), Mode::Refresh)).await.unwrap();
    assert_eq!(without.server_cpu_s, None);
    assert_eq!(without.server_cpu_us_per_request(), None);
    assert!(!without.to_string().contains("server CPU"), "{without}");

    // The mock server runs in this process: its CPU is this process's.
    let config = Config {
        server_pid: Some(std::process::id()),
        ..config(url, Mode::Refresh)
    };
    let report = run(&config).await.unwrap();
    let cpu = report.server_cpu_s.expect("measured");
    // A second of 8 busy clients and their server costs some CPU (the
    // process also runs the other tests: no upper bound).
    assert!(cpu > 0.0, "{cpu} {report}");
    let per = report.server_cpu_us_per_request().expect("per request");
    let requests = report.grants["refresh_token"].ok as f64;
    assert!((per - cpu * 1e6 / requests).abs() < 1e-6, "{per}");
    assert!(report.to_string().contains("server CPU: "), "{report}");
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    let reported = json["server_cpu_s"].as_f64().expect("a number");
    assert!((reported - cpu).abs() < 1e-9, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_mode_signs_in_again_and_again() {
    let url = spawn_mock(0).await;
    let report = run(&config(url, Mode::Password)).await.unwrap();
    assert_clean(&report, &["password"]);
    assert_eq!(report.password_clients, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_mode_reports_both_grants_separately() {
    let url = spawn_mock(0).await;
    let report = run(&config(url, Mode::Mixed)).await.unwrap();
    assert_clean(&report, &["password", "refresh_token"]);
    assert_eq!(report.password_clients, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_cap_bounds_the_request_rate() {
    let url = spawn_mock(0).await;
    let config = Config {
        max_rps: Some(200.0),
        ..config(url, Mode::Refresh)
    };
    let report = run(&config).await.unwrap();
    let rps = report.grants["refresh_token"].rps;
    assert!((150.0..=210.0).contains(&rps), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_writes_json_and_fails_when_nothing_succeeds() {
    let url = spawn_mock(0).await;
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let load = |password: &'static str| {
        let (url, json_path) = (url.clone(), json_path.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_portcullis-load"))
                .args(["--url", &url, "--client-id", "app", "--client-secret", "s3cret"])
                .args([
                    "--username",
                    "u{i}",
                    "--users",
                    "4",
                    "--password",
                    password,
                    "--mode",
                    "mixed",
                ])
                .args(["--clients", "4", "--duration", "0.5", "--warmup", "0", "--json"])
                .arg(&json_path)
                .output()
                .unwrap()
        })
    };

    let ok = load("pw").await.unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(
        stdout.contains("refresh_token") && stdout.contains("p99 ms"),
        "{stdout}"
    );
    let json: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["mode"], "mixed");
    assert_eq!(json["clients"], 4);
    assert!(json["grants"]["refresh_token"]["count"].as_u64().unwrap() > 0, "{json}");

    let bad = load("wrong").await.unwrap();
    assert_eq!(bad.status.code(), Some(1), "{}", String::from_utf8_lossy(&bad.stdout));
    let json: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert!(
        json["grants"]["password"]["errors"]["400"].as_u64().unwrap() > 0,
        "{json}"
    );
}
