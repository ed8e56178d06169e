//! A minimal resource server guarded by `portcullis-verify`.
//!
//! With `portcullis serve` running on its defaults (127.0.0.1:8080):
//!
//!     cargo run -p portcullis-verify --features axum --example resource_server
//!     curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:3001/me
//!
//! `/me` needs any valid token; `/notes` needs the scope `read`. DPoP-bound
//! tokens are accepted too (`Authorization: DPoP …` with a proof for
//! `http://127.0.0.1:3001/…`).

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use portcullis_verify::Verifier;
use portcullis_verify::axum::{Authenticated, VerifyLayer};
use portcullis_verify::dpop::DpopChecker;
use serde_json::{Value, json};

async fn me(Authenticated(claims): Authenticated) -> Json<Value> {
    Json(json!({"user": claims.sub, "client": claims.client_id, "scope": claims.scope}))
}

async fn notes(Authenticated(claims): Authenticated) -> Json<Value> {
    Json(json!({"owner": claims.sub, "notes": ["buy milk"]}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let mut builder = Verifier::builder(&issuer)
        .audience(&issuer) // Portcullis's default audience is its issuer
        .jwks_url(format!("{issuer}/.well-known/jwks.json"))
        // DPoP (RFC 9449): proofs are for the URL clients call.
        .dpop(DpopChecker::new())
        .external_url("http://127.0.0.1:3001");
    // The revocation feed is not public: follow it with the server's feed
    // secret, when one is given.
    if let Ok(secret) = std::env::var("FEED_SECRET") {
        builder = builder
            .revocation_feed(format!("{issuer}/oauth/revocations"), Duration::from_secs(5))
            .revocation_feed_credential(secret);
    }
    let verifier = builder.build()?;
    let app = Router::new()
        .route(
            "/notes",
            get(notes).layer(VerifyLayer::new(verifier.clone()).require_scopes(&["read"])),
        )
        .route("/me", get(me))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
