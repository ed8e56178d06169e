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
    state: KeyState,
    created_at: i64,
    #[schema(required = true)]
    retired_at: Option<i64>,
}

impl From<&portcullis_store::SigningKey> for SigningKey {
    fn from(k: &portcullis_store::SigningKey) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            state: k.state.into(),
            created_at: k.created_at.0,
            retired_at: k.retired_at.map(|t| t.0),
        }
    }
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
    Ok(Json(KeyList {
        keys: keys.iter().map(SigningKey::from).collect(),
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
    Ok(Json(SigningKey::from(&key)))
}
