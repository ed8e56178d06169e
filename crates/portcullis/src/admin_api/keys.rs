//! `/admin/v1/keys…`: the signing keys, and a rotation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json};
use portcullis_token::keys::Alg;
use portcullis_verify::AccessTokenClaims;
use serde::{Deserialize, Serialize};
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::common::{AdminErrors, Api, ApiError, ApiErrorCode, ApiResult, Query, Routes, admin};
use crate::ops;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/keys", get(keys))
        .route("/keys/rotate", post(rotate_key))
}

/// A signing key (its public half is in the JWKS).
#[derive(Serialize, ToSchema)]
pub(crate) struct SigningKey {
    kid: String,
    #[schema(schema_with = alg)]
    alg: String,
    /// As stored: `active` (published, signing or superseded) or `retired`.
    state: KeyState,
    /// Where the key is in its life: `published` (in the JWKS, signing
    /// from `signs_from`), `signing`, `retiring` (superseded, in the JWKS
    /// until about `retiring_until`) or `retired`.
    phase: KeyPhase,
    created_at: i64,
    /// When the key signs (or signed) first: its creation plus the
    /// publication delay.
    signs_from: i64,
    /// For a `retiring` key: about when the housekeeping retires it.
    #[schema(required = true)]
    retiring_until: Option<i64>,
    #[schema(required = true)]
    retired_at: Option<i64>,
}

impl SigningKey {
    /// The key `k` in `phase`, with the servers' publication delay in
    /// seconds.
    pub(crate) fn new(k: &portcullis_store::SigningKey, phase: ops::keys::Phase, publish_delay: i64) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            state: k.state.into(),
            phase: phase.into(),
            created_at: k.created_at.0,
            signs_from: k.created_at.plus(publish_delay).0,
            retiring_until: match phase {
                ops::keys::Phase::Retiring { until } => Some(until.0),
                _ => None,
            },
            retired_at: k.retired_at.map(|t| t.0),
        }
    }

    /// Every key of `keys` with its phase at `now`.
    pub(crate) fn all(
        keys: &[portcullis_store::SigningKey],
        now: portcullis_store::UnixTime,
        publish_delay: i64,
        access_token_ttl: i64,
    ) -> Vec<Self> {
        let phases = ops::keys::phases(keys, now, publish_delay, access_token_ttl);
        keys.iter()
            .zip(phases)
            .map(|(k, p)| Self::new(k, p, publish_delay))
            .collect()
    }
}

/// Where a signing key is in its life.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KeyPhase {
    Published,
    Signing,
    Retiring,
    Retired,
}

impl From<ops::keys::Phase> for KeyPhase {
    fn from(p: ops::keys::Phase) -> Self {
        match p {
            ops::keys::Phase::Published { .. } => Self::Published,
            ops::keys::Phase::Signing => Self::Signing,
            ops::keys::Phase::Retiring { .. } => Self::Retiring,
            ops::keys::Phase::Retired => Self::Retired,
        }
    }
}

/// A configured duration in whole seconds, as the key rules count them.
pub(crate) fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The signing algorithms.
fn alg() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("The signing algorithms."))
        .enum_values(Some([Alg::Es256, Alg::EdDsa, Alg::Rs256].map(Alg::as_str)))
        .build()
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KeyState {
    Active,
    Retired,
}

impl From<portcullis_store::KeyState> for KeyState {
    fn from(s: portcullis_store::KeyState) -> Self {
        match s {
            portcullis_store::KeyState::Active => Self::Active,
            portcullis_store::KeyState::Retired => Self::Retired,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct KeyList {
    keys: Vec<SigningKey>,
}

/// `POST /admin/v1/keys/rotate?alg=`.
#[derive(Deserialize)]
pub(crate) struct Rotate {
    alg: Option<String>,
}

impl IntoParams for Rotate {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let alg = ParameterBuilder::new()
            .name("alg")
            .parameter_in(ParameterIn::Query)
            .description(Some("The algorithm (default: the configured one)."))
            .required(Required::False)
            .schema(Some(alg()))
            .build();
        vec![alg]
    }
}

#[utoipa::path(
    get,
    path = "/admin/v1/keys",
    tag = "admin",
    summary = "The signing keys",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Every stored key.", body = KeyList, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
    ),
)]
pub(crate) async fn keys(State(api): State<Api>) -> ApiResult<KeyList> {
    let keys = ops::keys::list(&api.store).await?;
    let cfg = api.tokens.config();
    Ok(Json(KeyList {
        keys: SigningKey::all(
            &keys,
            portcullis_store::UnixTime::now(),
            secs(cfg.key_publish_delay),
            secs(cfg.access_token_ttl),
        ),
    }))
}

#[utoipa::path(
    post,
    path = "/admin/v1/keys/rotate",
    tag = "admin",
    summary = "Create a signing key",
    params(Rotate),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The new key; it signs once its publication delay has passed.", body = SigningKey, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
    ),
)]
pub(crate) async fn rotate_key(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Query(q): Query<Rotate>,
) -> ApiResult<SigningKey> {
    let alg = match q.alg.as_deref() {
        None => api.tokens.config().signing_alg,
        Some(a) => a
            .parse()
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, ApiErrorCode::UnsupportedAlgorithm))?,
    };
    let kek = api.tokens.config().key_encryption_key.as_ref();
    let key = ops::keys::rotate(&api.store, &admin(&me), alg, kek, Some(&api.tokens)).await?;
    let delay = secs(api.tokens.config().key_publish_delay);
    let phase = if delay > 0 {
        ops::keys::Phase::Published {
            signs_from: key.created_at.plus(delay),
        }
    } else {
        ops::keys::Phase::Signing
    };
    Ok(Json(SigningKey::new(&key, phase, delay)))
}
