//! The OpenAPI document: served at `/openapi.json`, OpenAPI 3.1, identical
//! to the checked-in `docs/openapi.json`, and describing every route the
//! router has. Every answer the end-to-end tests receive is checked against
//! it (`support/openapi.rs`, tested here); `tests/api-contract/run.sh`
//! also probes the server with generated requests.

mod support;

use std::path::{Path, PathBuf};

use portcullis_store::testing::TestDb;
use serde_json::{Value, json};
use support::openapi::Spec;
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
        ("DELETE", "/account/v1"),
        ("DELETE", "/account/v1/devices/{id}"),
        ("DELETE", "/account/v1/mfa/totp"),
        ("DELETE", "/admin/v1/users/{username}"),
        ("DELETE", "/admin/v1/users/{username}/devices/{id}"),
        ("DELETE", "/admin/v1/users/{username}/mfa"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/account/v1/devices"),
        ("GET", "/account/v1/me"),
        ("GET", "/account/v1/mfa"),
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
        ("PATCH", "/admin/v1/clients/{id}"),
        ("PATCH", "/admin/v1/users/{username}"),
        ("POST", "/account/v1/email"),
        ("POST", "/account/v1/email/verify"),
        ("POST", "/account/v1/mfa/recovery-codes"),
        ("POST", "/account/v1/mfa/totp"),
        ("POST", "/account/v1/mfa/totp/confirm"),
        ("POST", "/account/v1/password"),
        ("POST", "/account/v1/password-reset"),
        ("POST", "/account/v1/password-reset/confirm"),
        ("POST", "/account/v1/sign-up"),
        ("POST", "/admin/v1/clients"),
        ("POST", "/admin/v1/clients/{id}/revoke"),
        ("POST", "/admin/v1/clients/{id}/secret"),
        ("POST", "/admin/v1/keys/rotate"),
        ("POST", "/admin/v1/users"),
        ("POST", "/admin/v1/users/{username}/disable"),
        ("POST", "/admin/v1/users/{username}/enable"),
        ("POST", "/admin/v1/users/{username}/password"),
        ("POST", "/admin/v1/users/{username}/revoke-tokens"),
        ("POST", "/oauth/authorize-challenge"),
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

/// A made-up document: `GET /things/{id}` answers a `Thing` (200), a
/// `Pair` (201, an `allOf` of two components) or an empty 204.
fn made_up() -> Spec {
    let content =
        |name: &str| json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}});
    let doc = json!({
        "openapi": "3.1.0",
        "paths": {"/things/{id}": {"get": {"responses": {
            "200": {"description": "a thing", "content": content("Thing")},
            "201": {"description": "a pair", "content": content("Pair")},
            "204": {"description": "nothing"},
        }}}},
        "components": {"schemas": {
            "Thing": {
                "type": "object",
                "required": ["id", "tags"],
                "properties": {
                    "id": {"type": "string"},
                    "note": {"type": ["string", "null"]},
                    "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}},
                },
            },
            "Tag": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
            "Pair": {"allOf": [
                {"$ref": "#/components/schemas/Tag"},
                {"type": "object", "required": ["size"], "properties": {"size": {"type": "integer"}}},
            ]},
        }},
    });
    Spec::new(&doc).expect("compiles")
}

fn check(spec: &Spec, status: u16, body: &Value) -> Result<(), String> {
    let body = serde_json::to_vec(body).expect("json");
    spec.check("GET", "/things/42", status, Some("application/json"), &body)
}

#[test]
fn the_answer_check_passes_an_answer_the_document_describes() {
    let spec = made_up();
    check(&spec, 200, &json!({"id": "42", "tags": [{"name": "a"}]})).expect("a thing");
    check(&spec, 200, &json!({"id": "42", "note": null, "tags": []})).expect("an optional member");
    check(&spec, 201, &json!({"name": "a", "size": 3})).expect("members of both allOf branches");
    spec.check("GET", "/things/42", 204, None, b"")
        .expect("an empty answer");
}

#[test]
fn the_answer_check_refuses_unknown_members_at_any_depth() {
    let spec = made_up();
    let err = check(&spec, 200, &json!({"id": "42", "tags": [], "secret": "x"})).expect_err("extra member");
    assert!(
        err.starts_with("GET /things/{id} 200: ") && err.contains("secret"),
        "{err}"
    );
    let err = check(&spec, 200, &json!({"id": "42", "tags": [{"name": "a", "x": 1}]})).expect_err("nested");
    assert!(err.contains("/tags/0") && err.contains("'x'"), "{err}");
    let err = check(&spec, 201, &json!({"name": "a", "size": 3, "x": 1})).expect_err("allOf");
    assert!(err.contains("'x'"), "{err}");
}

#[test]
fn the_answer_check_refuses_missing_members_and_wrong_types() {
    let spec = made_up();
    let err = check(&spec, 200, &json!({"id": "42"})).expect_err("missing member");
    assert!(err.contains("tags"), "{err}");
    check(&spec, 200, &json!({"id": 42, "tags": []})).expect_err("a number for a string");
    check(&spec, 201, &json!({"name": "a"})).expect_err("missing allOf member");
}

#[test]
fn the_answer_check_refuses_what_the_document_does_not_describe() {
    let spec = made_up();
    let ok = serde_json::to_vec(&json!({"id": "42", "tags": []})).expect("json");
    let err = spec
        .check("POST", "/things/42", 200, Some("application/json"), &ok)
        .expect_err("unknown method");
    assert!(err.contains("no such operation"), "{err}");
    spec.check("GET", "/things", 200, Some("application/json"), &ok)
        .expect_err("unknown path");
    spec.check("POST", "/things/42", 405, None, b"")
        .expect("a bare 405 to an undocumented method");
    spec.check("POST", "/things", 405, None, b"")
        .expect_err("a 405 on an undocumented path");
    let err = spec
        .check("GET", "/things/42", 404, Some("application/json"), &ok)
        .expect_err("unknown status");
    assert!(err.contains("status not described"), "{err}");
    let err = spec
        .check("GET", "/things/42", 204, Some("application/json"), &ok)
        .expect_err("a body where none is described");
    assert!(err.contains("not described"), "{err}");
    spec.check("GET", "/things/42", 200, Some("text/plain"), b"hi")
        .expect_err("another media type");
    spec.check("GET", "/things/42", 200, None, b"")
        .expect_err("an empty answer where JSON is described");
}

#[test]
fn every_response_schema_of_docs_openapi_json_compiles() {
    // Panics with the operation whose schema does not compile.
    let _ = support::openapi::checked_in();
}
