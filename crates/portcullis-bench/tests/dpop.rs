//! `portcullis-load --dpop` against a mock token endpoint that checks every
//! DPoP proof (RFC 9449) with an implementation of its own (`jsonwebtoken`),
//! hands out nonces and rotates them, and binds refresh tokens to the key
//! that signed in.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    jwk::{AlgorithmParameters, EllipticCurve},
};
use portcullis_bench::{ClientAuth, Config, Mode, Report, run};
use serde::Deserialize;
use serde_json::{Value, json};

/// `Basic base64("app:s3cret")`.
const BASIC: &str = "Basic YXBwOnMzY3JldA==";
/// Every this-many accepted proofs of a key, its nonce changes and the 200 says so.
const ANNOUNCE_EVERY: u64 = 7;
/// Every this-many accepted proofs of a key, its nonce changes silently: the
/// next request is answered `use_dpop_nonce`.
const SILENT_EVERY: u64 = 11;

/// The claims a DPoP proof must carry; `iat` a number, as RFC 9449 §4.2 says.
#[derive(Deserialize)]
struct Proof {
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    nonce: Option<String>,
}

/// What the mock knows about one DPoP key (by its `x` coordinate).
#[derive(Default)]
struct KeyState {
    nonce: String,
    /// The current nonce was announced in a 200: the next proof must carry it.
    announced: bool,
    accepted: u64,
    rotations: u64,
}

#[derive(Default)]
struct Mock {
    jtis: HashSet<String>,
    keys: HashMap<String, KeyState>,
    /// Refresh token → (chain, the key it is bound to).
    issued: HashMap<String, (u64, String)>,
    /// Chain → the only token it accepts next.
    newest: HashMap<u64, String>,
    next_id: u64,
    /// `use_dpop_nonce` answers sent.
    challenges: u64,
    /// Proofs that verified and carried the current nonce.
    accepted: u64,
    /// Anything the generator did against RFC 9449 or the contract.
    violations: Vec<String>,
}

#[derive(Clone)]
struct AppState {
    mock: Arc<Mutex<Mock>>,
    /// The `htu` every proof must name.
    url: String,
    /// What a success says; anything but `DPoP` is a server ignoring the proof.
    token_type: &'static str,
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

fn with_nonce(mut res: Response, nonce: &str) -> Response {
    res.headers_mut()
        .insert("dpop-nonce", HeaderValue::from_str(nonce).unwrap());
    res
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Verifies the proof in `headers`: one `DPoP` header, a `dpop+jwt` signed
/// with ES256 by the public P-256 key in its header, and the claims this
/// request calls for. Returns the key's `x` and the claims.
fn verify(headers: &HeaderMap, url: &str, mock: &mut Mock) -> Result<(String, Proof), String> {
    let mut all = headers.get_all("dpop").iter();
    let (Some(proof), None) = (all.next(), all.next()) else {
        return Err("not exactly one DPoP header".into());
    };
    let proof = proof.to_str().map_err(|e| e.to_string())?;
    let header = decode_header(proof).map_err(|e| format!("header: {e}"))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(format!("typ {:?}", header.typ));
    }
    let jwk = header.jwk.ok_or("no jwk in the header")?;
    let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm else {
        return Err("jwk is not an EC key".into());
    };
    if ec.curve != EllipticCurve::P256 {
        return Err(format!("curve {:?}", ec.curve));
    }
    // The header names a public key only (RFC 9449 §4.2).
    let raw = proof.split('.').next().unwrap_or_default();
    let raw: Value = serde_json::from_slice(&base64_url(raw)?).map_err(|e| e.to_string())?;
    let mut members: Vec<_> = raw["jwk"].as_object().ok_or("jwk")?.keys().cloned().collect();
    members.sort();
    if members != ["crv", "kty", "x", "y"] {
        return Err(format!("jwk members {members:?}"));
    }

    let key = DecodingKey::from_ec_components(&ec.x, &ec.y).map_err(|e| format!("key: {e}"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = decode::<Proof>(proof, &key, &validation)
        .map_err(|e| format!("signature or claims: {e}"))?
        .claims;
    if claims.htm != "POST" {
        return Err(format!("htm {}", claims.htm));
    }
    if claims.htu != url {
        return Err(format!("htu {} instead of {url}", claims.htu));
    }
    if claims.iat.abs_diff(now()) > 5 {
        return Err(format!("iat {} is not now ({})", claims.iat, now()));
    }
    if claims.jti.len() < 16 || !mock.jtis.insert(claims.jti.clone()) {
        return Err(format!("jti {:?} is short or was used before", claims.jti));
    }
    Ok((ec.x.clone(), claims))
}

fn base64_url(s: &str) -> Result<Vec<u8>, String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string())
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes) != Some(BASIC.as_bytes()) {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let mut guard = state.mock.lock().unwrap();
    let mock = &mut *guard;
    let (x, proof) = match verify(&headers, &state.url, mock) {
        Ok(ok) => ok,
        Err(why) => {
            mock.violations.push(why);
            return error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
        }
    };

    // Nonces (RFC 9449 §8): a key's first request learns one, a stale one is
    // refused with the current one.
    let keys = mock.keys.len();
    let key = mock.keys.entry(x.clone()).or_insert_with(|| KeyState {
        nonce: format!("k{keys}.r0"),
        ..KeyState::default()
    });
    if proof.nonce.as_deref() != Some(key.nonce.as_str()) {
        if key.announced {
            mock.violations.push(format!(
                "the nonce of a 200 was not used: {:?} instead of {}",
                proof.nonce, key.nonce
            ));
        }
        mock.challenges += 1;
        let nonce = key.nonce.clone();
        return with_nonce(error(StatusCode::BAD_REQUEST, "use_dpop_nonce"), &nonce);
    }
    key.announced = false;
    key.accepted += 1;
    mock.accepted += 1;
    let mut announce = None;
    if key.accepted % ANNOUNCE_EVERY == 0 || key.accepted % SILENT_EVERY == 0 {
        key.rotations += 1;
        key.nonce = format!("{}.r{}", key.nonce.split('.').next().unwrap(), key.rotations);
        if key.accepted % ANNOUNCE_EVERY == 0 {
            key.announced = true;
            announce = Some(key.nonce.clone());
        }
    }

    let field = |k: &str| form.get(k).map(String::as_str);
    let chain = match field("grant_type") {
        Some("password") => {
            let user_ok = matches!(field("username"), Some("u0" | "u1" | "u2" | "u3"));
            if !user_ok || field("password") != Some("pw") {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            mock.next_id += 1;
            mock.next_id
        }
        Some("refresh_token") => {
            let presented = field("refresh_token").unwrap_or_default();
            let Some((chain, bound)) = mock.issued.get(presented).cloned() else {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if bound != x {
                mock.violations
                    .push("a refresh token came with another key than its sign-in".into());
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if mock.newest.get(&chain).map(String::as_str) != Some(presented) {
                mock.violations.push("a spent refresh token came back".into());
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            chain
        }
        _ => return error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    mock.next_id += 1;
    let refresh = format!("rt-{chain}-{}", mock.next_id);
    mock.issued.insert(refresh.clone(), (chain, x));
    mock.newest.insert(chain, refresh.clone());
    let body = json!({
        "access_token": "a",
        "token_type": state.token_type,
        "expires_in": 300,
        "refresh_token": refresh,
    });
    let res = Json(body).into_response();
    match announce {
        Some(nonce) => with_nonce(res, &nonce),
        None => res,
    }
}

async fn spawn_mock(token_type: &'static str) -> (String, Arc<Mutex<Mock>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
    let mock = Arc::new(Mutex::new(Mock::default()));
    let state = AppState {
        mock: Arc::clone(&mock),
        url: url.clone(),
        token_type,
    };
    let app = Router::new().route("/oauth/token", post(token)).with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, mock)
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
        password_clients: Some(2),
        duration: Duration::from_millis(1000),
        warmup: Duration::from_millis(200),
        max_rps: None,
        timeout: Duration::from_secs(5),
        threads: 1,
        dpop: true,
        server_pid: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_carries_a_fresh_proof_with_the_servers_nonce() {
    let (url, mock) = spawn_mock("DPoP").await;
    let report: Report = run(&config(url, Mode::Mixed)).await.unwrap();

    let mock = mock.lock().unwrap();
    assert!(
        mock.violations.is_empty(),
        "{:?}\n{report}",
        &mock.violations[..mock.violations.len().min(5)]
    );
    assert_eq!(mock.keys.len(), 8, "one key per virtual client");
    assert!(
        mock.keys.values().all(|k| k.rotations > 0),
        "every key saw its nonce change"
    );
    assert!(report.dpop);
    assert_eq!(report.setup_failures, 0, "{report}");
    let names: Vec<_> = report.grants.keys().map(String::as_str).collect();
    assert_eq!(names, ["password", "refresh_token"], "{report}");
    let mut retries = 0;
    for (name, g) in &report.grants {
        assert!(g.count > 0, "no {name} request: {report}");
        assert_eq!(g.ok, g.count, "{name} had errors: {report}");
        assert!(g.errors.is_empty(), "{name} had errors: {report}");
        // Silent rotations happen in the window for both grants.
        assert!(g.nonce_retries > 0, "{name} never retried with a nonce: {report}");
        retries += g.nonce_retries;
    }
    // Retries follow the server's challenges (the first of each key's and
    // those of the warm-up are not counted), never more.
    assert!(
        retries <= mock.challenges,
        "{retries} retries, {} challenges",
        mock.challenges
    );
    assert!(report.to_string().contains("with DPoP"), "{report}");
    assert!(report.to_string().contains("use_dpop_nonce retries"), "{report}");

    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["dpop"], true);
    assert!(
        json["grants"]["refresh_token"]["nonce_retries"].as_u64().unwrap() > 0,
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_that_is_not_a_dpop_token_counts_as_an_error() {
    let (url, mock) = spawn_mock("Bearer").await;

    let report = run(&config(url.clone(), Mode::Password)).await.unwrap();
    let g = &report.grants["password"];
    assert!(g.count > 0, "{report}");
    assert_eq!(g.ok, 0, "{report}");
    assert_eq!(g.errors.get("not_dpop"), Some(&g.count), "{report}");
    assert!(!report.succeeded());

    // A refresh chain never starts: its sign-in already fails.
    let report = run(&config(url, Mode::Refresh)).await.unwrap();
    assert_eq!(report.setup_failures, 8, "{report}");
    let why = report.first_setup_error.as_deref().unwrap_or_default();
    assert!(why.contains("not DPoP") && why.contains("Bearer"), "{report}");
    assert!(mock.lock().unwrap().violations.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_dpop_from_the_command_line() {
    let (url, mock) = spawn_mock("DPoP").await;
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let out = {
        let json_path = json_path.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_portcullis-load"))
                .args(["--url", &url, "--client-id", "app", "--client-secret", "s3cret"])
                .args(["--username", "u{i}", "--users", "4", "--password", "pw"])
                .args(["--mode", "refresh", "--dpop", "--clients", "2"])
                .args(["--duration", "0.3", "--warmup", "0", "--json"])
                .arg(&json_path)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("refresh mode with DPoP"), "{stdout}");
    let json: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["dpop"], true);
    assert_eq!(json["grants"]["refresh_token"]["errors"], json!({}), "{json}");
    assert_eq!(mock.lock().unwrap().keys.len(), 2);
    assert!(mock.lock().unwrap().violations.is_empty());
}
