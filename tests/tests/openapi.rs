//! The OpenAPI document: served at `/openapi.json`, OpenAPI 3.1, identical
//! to the checked-in `docs/openapi.json`, and describing every route the
//! router has. (Whether the server's answers match it is the API contract
//! test's job: `tests/api-contract/run.sh`.)

mod support;

use std::path::{Path, PathBuf};

use portcullis_store::testing::TestDb;
use serde_json::Value;
use support::*;

/// How to bring `docs/openapi.json` up to date.
const REGENERATE: &str = "PORTCULLIS_UPDATE_OPENAPI=1 cargo test -p portcullis-tests --test openapi";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

async fn served(app: &App) -> String {
    let res = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.text().await.expect("text")
}

/// The documented operations, as (METHOD, path).
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            ops.push((method.to_uppercase(), path.clone()));
        }
    }
    ops.sort();
    ops
}

#[tokio::test]
async fn the_served_document_is_the_checked_in_docs_openapi_json() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db).await;
    let served = served(&app).await;
    let file = repo().join("docs/openapi.json");
    if std::env::var_os("PORTCULLIS_UPDATE_OPENAPI").is_some() {
        std::fs::write(&file, &served).expect("write docs/openapi.json");
    }
    let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        served == checked_in,
        "docs/openapi.json differs from the document the server serves. If the change to the API is \
         intended, regenerate the file and commit it:\n\n    {REGENERATE}\n"
    );
    db.finish().await;
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db).await;
    let doc: Value = serde_json::from_str(&served(&app).await).expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Portcullis");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["info"]["license"]["identifier"], "Apache-2.0");

    let expected = [
        ("DELETE", "/account/v1/devices/{id}"),
        ("DELETE", "/admin/v1/users/{username}/devices/{id}"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/account/v1/devices"),
        ("GET", "/account/v1/me"),
        ("GET", "/admin/v1/audit"),
        ("GET", "/admin/v1/clients"),
        ("GET", "/admin/v1/clients/{id}"),
        ("GET", "/admin/v1/keys"),
        ("GET", "/admin/v1/users"),
        ("GET", "/admin/v1/users/{username}"),
        ("GET", "/admin/v1/users/{username}/devices"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/oauth/revocations"),
        ("GET", "/openapi.json"),
        ("GET", "/readyz"),
        ("OPTIONS", "/web/refresh"),
        ("OPTIONS", "/web/sign-in"),
        ("OPTIONS", "/web/sign-out"),
        ("POST", "/admin/v1/clients/{id}/revoke"),
        ("POST", "/admin/v1/keys/rotate"),
        ("POST", "/admin/v1/users/{username}/disable"),
        ("POST", "/admin/v1/users/{username}/revoke-tokens"),
        ("POST", "/oauth/introspect"),
        ("POST", "/oauth/revoke"),
        ("POST", "/oauth/token"),
        ("POST", "/web/refresh"),
        ("POST", "/web/sign-in"),
        ("POST", "/web/sign-out"),
    ];
    let documented = operations(&doc);
    let expected: Vec<(String, String)> = expected.iter().map(|(m, p)| ((*m).into(), (*p).into())).collect();
    assert_eq!(documented, expected, "the documented operations");

    // Each documented operation is routed: asked without credentials or
    // body it is refused or answered, never 404 or 405 (no such route).
    for (method, path) in &documented {
        let url = format!("{}{}", app.base, path.replace("{id}", "x").replace("{username}", "x"));
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let res = app.http.request(method.clone(), &url).send().await.expect("request");
        assert!(
            ![404, 405].contains(&res.status().as_u16()),
            "{method} {path} is documented but not routed: {}",
            res.status()
        );
    }
    db.finish().await;
}

/// Each `.route(…)` call in the server's sources adds one operation (each
/// registers a single method), so a route added without an
/// `#[utoipa::path]` annotation listed in the document changes the count.
#[tokio::test]
async fn every_route_in_the_sources_is_documented() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db).await;
    let doc: Value = serde_json::from_str(&served(&app).await).expect("json");
    let mut routes = 0;
    for dir in ["crates/portcullis/src", "crates/portcullis-token/src"] {
        routes += count_routes(&repo().join(dir));
    }
    assert_eq!(
        routes,
        operations(&doc).len(),
        "the router has {routes} routes and the document {} operations: annotate the new handler with \
         #[utoipa::path], list it in crates/portcullis/src/openapi.rs (or the token crate's openapi.rs), then \
         {REGENERATE}",
        operations(&doc).len()
    );
    db.finish().await;
}

fn count_routes(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("source directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            n += count_routes(&path);
        } else if path.file_name().is_some_and(|n| n == "ui.rs") {
            // The static pages (demo, admin console) are not part of the API.
        } else if path.extension().is_some_and(|e| e == "rs") {
            n += std::fs::read_to_string(&path)
                .expect("source")
                .matches(".route(")
                .count();
        }
    }
    n
}
