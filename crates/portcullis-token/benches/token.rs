//! Benchmarks of the token endpoint's hot paths, in-process:
//!
//! - `sign/<alg>`: signing one access token per algorithm (ES256, EdDSA,
//!   RS256), with a key parsed once.
//! - `refresh/store_rotate`: the store's atomic rotation alone on SQLite
//!   (the baseline: one durable write transaction).
//! - `refresh/endpoint`: a full `POST /oauth/token` refresh through the
//!   router (parse, client auth, rotation, signing, JSON), following the
//!   rotation chain, on the same kind of database.
//!
//! - `refresh_x64/grouped`, `refresh_x64/single`: 64 devices rotating at
//!   once, on SQLite with group commit on (the default) and off; reported
//!   per rotation (criterion's "elements").
//! - `form/<grant>`: parsing a token request body.
//!
//! Compare `refresh/endpoint` with `refresh/store_rotate` from the same
//! run: the ratio is what the endpoint adds to its unavoidable write.
//!
//!     cargo bench -p portcullis-token --bench token

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_store::{
    ClientStore as _, ConnectOptions, NewClient, NewFamily, NewUser, RefreshStore as _, Rotate, SqlStore, Store,
    TokenHash, UnixTime, UserStore as _,
};
use portcullis_token::keys::{Alg, KeySet, generate};
use portcullis_token::password::{PasswordPolicy, Passwords};
use portcullis_token::{TokenConfig, TokenService};
use serde_json::{Value, json};
use tower::ServiceExt as _;

fn sign(c: &mut Criterion) {
    let claims = json!({
        "iss": "https://auth.example", "sub": "0192f0c1-7d9a-7c4e-9a55-3b0f5f2d1e11", "aud": "https://api.example",
        "client_id": "mobile", "scope": "read write", "iat": 1_800_000_000, "nbf": 1_800_000_000,
        "exp": 1_800_000_900, "jti": "9f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", "sid": "0192f0c1-7d9a-7c4e-9a55-3b0f5f2d1e12"
    });
    for alg in [Alg::Es256, Alg::EdDsa, Alg::Rs256] {
        let new = generate(alg, None).expect("key");
        let stored = portcullis_store::SigningKey {
            kid: new.kid,
            alg: new.alg,
            public_jwk: new.public_jwk,
            private_key: new.private_key,
            state: portcullis_store::KeyState::Active,
            created_at: UnixTime(1),
            retire_after: None,
            retired_at: None,
        };
        let set = KeySet::from_stored(&[stored], None, UnixTime(2), 60, 0).expect("set");
        let header = json!({"typ": "at+jwt", "alg": alg.as_str(), "kid": set.signer(UnixTime(2)).kid()});
        c.bench_function(&format!("sign/{alg}"), |b| {
            b.iter(|| set.signer(UnixTime(2)).sign_jwt(&header, &claims).expect("sign"))
        });
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqlStore,
    user_id: String,
}

async fn fixture(rt_password: &str) -> Fixture {
    fixture_with(rt_password, &ConnectOptions::default()).await
}

async fn fixture_with(rt_password: &str, opts: &ConnectOptions) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = SqlStore::connect_with(&url, opts).await.expect("open");
    store.migrate().await.expect("migrate");
    let hash = Passwords::new(&PasswordPolicy::default())
        .expect("policy")
        .hash(rt_password)
        .await
        .expect("hash");
    let user = store
        .create_user(
            &NewUser {
                username: portcullis_domain::Username::parse("alice").expect("username"),
                password_hash: Some(hash),
                scope: portcullis_domain::Scopes::parse("read write").expect("scope"),
                email: None,
                email_verified: false,
            },
            UnixTime::now(),
        )
        .await
        .expect("user");
    let client = NewClient {
        id: portcullis_domain::ClientId::parse("mobile").expect("client id"),
        name: "Mobile".into(),
        secret_hash: None,
        grant_types: portcullis_domain::GrantTypes::parse("password refresh_token").expect("grant types"),
        scope: portcullis_domain::Scopes::parse("read write").expect("scope"),
        default_scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        introspect: false,
        web_origins: portcullis_domain::WebOrigins::default(),
        allow_sign_up: false,
        sign_up_scope: portcullis_domain::Scopes::empty(),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party: false,
        mfa_required: false,
    };
    store.create_client(&client, UnixTime::now()).await.expect("client");
    Fixture {
        _dir: dir,
        store,
        user_id: user.id,
    }
}

fn refresh(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("refresh");

    // Baseline: the store's rotation alone.
    let f = rt.block_on(fixture("pw"));
    let now = UnixTime::now();
    let mut current = 0u64;
    let fam = NewFamily {
        user_id: f.user_id.clone(),
        client_id: "mobile".into(),
        scope: "read".into(),
        device_label: None,
        expires_at: now.plus(86_400),
        selector: TokenHash::of(b"selector"),
        first_token: TokenHash::of(b"0"),
        first_token_expires_at: now.plus(86_400),
        sessions_epoch: 0,
        password_hash: None,
        sign_in: None,
        dpop_jkt: None,
        amr: None,
    };
    let family = rt.block_on(f.store.start_family(&fam, now)).expect("family");
    group.bench_function("store_rotate", |b| {
        b.iter(|| {
            let next = current + 1;
            let r = Rotate {
                family_id: &family.id,
                presented: TokenHash::of(current.to_string().as_bytes()),
                client_id: "mobile",
                selector: TokenHash::of(b"selector"),
                child: TokenHash::of(next.to_string().as_bytes()),
                child_expires_at: now.plus(86_400),
                successor: None,
                audit: None,
                now,
            };
            let out = rt.block_on(f.store.rotate_refresh(&r)).expect("rotate");
            assert!(matches!(out, portcullis_store::Rotation::Rotated(_)));
            current = next;
        });
    });

    // The whole endpoint, following the chain.
    let f = rt.block_on(fixture("correct horse"));
    let store: Arc<dyn Store> = Arc::new(f.store.clone());
    let svc = rt
        .block_on(TokenService::start(store, TokenConfig::new("https://auth.example")))
        .expect("service");
    let router = svc.router();
    let post = |body: String| {
        let router = router.clone();
        async move {
            let req = Request::post("/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .expect("request");
            let res = router.oneshot(req).await.expect("response");
            assert_eq!(res.status(), 200);
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.expect("body");
            let v: Value = serde_json::from_slice(&bytes).expect("json");
            v["refresh_token"].as_str().expect("refresh_token").to_owned()
        }
    };
    let mut token = rt.block_on(post(
        "grant_type=password&client_id=mobile&username=alice&password=correct+horse".to_owned(),
    ));
    group.bench_function("endpoint", |b| {
        b.iter(|| {
            token = rt.block_on(post(format!(
                "grant_type=refresh_token&client_id=mobile&refresh_token={token}"
            )));
        });
    });
    group.finish();
}

/// 64 devices, each following its own chain, rotate at once; one iteration
/// is one such round. Group commit on versus off, same run.
fn refresh_concurrent(c: &mut Criterion) {
    const DEVICES: u64 = 64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("refresh_x64");
    group.throughput(criterion::Throughput::Elements(DEVICES));
    for (name, group_commit) in [("grouped", true), ("single", false)] {
        let opts = ConnectOptions {
            group_commit,
            ..ConnectOptions::default()
        };
        let f = rt.block_on(fixture_with("pw", &opts));
        let now = UnixTime::now();
        let mut families = Vec::new();
        for d in 0..DEVICES {
            let fam = NewFamily {
                user_id: f.user_id.clone(),
                client_id: "mobile".into(),
                scope: "read".into(),
                device_label: None,
                expires_at: now.plus(86_400),
                selector: TokenHash::of(format!("{d}").as_bytes()),
                first_token: TokenHash::of(format!("{d}/0").as_bytes()),
                first_token_expires_at: now.plus(86_400),
                sessions_epoch: 0,
                password_hash: None,
                sign_in: None,
                dpop_jkt: None,
                amr: None,
            };
            families.push(rt.block_on(f.store.start_family(&fam, now)).expect("family").id);
        }
        let families = Arc::new(families);
        let store = Arc::new(f.store.clone());
        let mut step = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                let rounds = || {
                    (0..DEVICES).map(|d| {
                        let store = store.clone();
                        let families = families.clone();
                        tokio::spawn(async move {
                            let r = Rotate {
                                family_id: &families[usize::try_from(d).expect("device")],
                                presented: TokenHash::of(format!("{d}/{step}").as_bytes()),
                                client_id: "mobile",
                                selector: TokenHash::of(format!("{d}").as_bytes()),
                                child: TokenHash::of(format!("{d}/{}", step + 1).as_bytes()),
                                child_expires_at: now.plus(86_400),
                                successor: None,
                                audit: None,
                                now,
                            };
                            store.rotate_refresh(&r).await.expect("rotate")
                        })
                    })
                };
                let all = rt.block_on(async { futures_util::future::join_all(rounds().collect::<Vec<_>>()).await });
                assert!(
                    all.iter()
                        .all(|r| matches!(r, Ok(portcullis_store::Rotation::Rotated(_))))
                );
                step += 1;
            });
        });
    }
    group.finish();
}

fn form(c: &mut Criterion) {
    use portcullis_token::form::Form;
    let refresh = b"grant_type=refresh_token&client_id=mobile&refresh_token=Yk3v0Jx9Qm2LwZr8Tn5Hc1Ps7Df4Ga6Ue0Ib3Ko9Wy";
    let password = b"grant_type=password&client_id=mobile&username=alice%40example.com\
                     &password=correct+horse+battery+staple&scope=read+write";
    let mut group = c.benchmark_group("form");
    group.bench_function("refresh_token", |b| b.iter(|| Form::parse(refresh).expect("form")));
    group.bench_function("password", |b| b.iter(|| Form::parse(password).expect("form")));
    group.finish();
}

criterion_group!(benches, sign, refresh, refresh_concurrent, form);
criterion_main!(benches);
