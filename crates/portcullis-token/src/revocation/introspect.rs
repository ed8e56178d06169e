//! `POST /oauth/introspect` (RFC 7662), and whether one of this server's
//! access tokens is still live.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use portcullis_store::{Client, ClientStatus, RevocationKind, StoreError, UnixTime, UserStatus};
use portcullis_verify::{AccessTokenClaims, Audience, Confirmation};
use serde::Serialize;
use utoipa::ToSchema;

use super::revoke::TokenQuery;
use crate::edge::client_request;
use crate::form::Form;
use crate::grants::MAX_REFRESH_TOKEN;
use crate::responses::{Forbidden, FormErrors};
use crate::{GrantError, TokenService};

/// `POST /oauth/introspect` (RFC 7662), for clients allowed to introspect.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    summary = "Introspect a token (RFC 7662)",
    description = "For confidential clients registered with `--introspect`.",
    request_body(content = TokenQuery, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = []), ()),
    responses(
        (status = 200, description = "What the token is.", body = Introspection, headers(
            ("Cache-Control" = String, description = "`no-store`"),
        )),
        FormErrors,
        Forbidden,
    ),
)]
pub(crate) async fn introspect(
    State(svc): State<Arc<TokenService>>,
    req: Request,
) -> Result<Json<Introspection>, GrantError> {
    let (_, form, client) = client_request(&svc, req).await?;
    introspect_token(&svc, &form, &client, UnixTime::now()).await.map(Json)
}

/// RFC 7662 §2.2. Anything not active is exactly `{"active": false}`; an
/// access token answers its claims, a refresh token those listed here.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct Introspection {
    active: bool,
    /// `Bearer` for an access token, `refresh_token` for a refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    token_type: Option<IntrospectedType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    scope: Option<String>,
    /// The user's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    iss: Option<String>,
    /// One audience or several.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, schema_with = audience)]
    aud: Option<Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    jti: Option<String>,
    /// The sign-in (refresh family).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    sid: Option<String>,
    /// An access token's proof-of-possession key (RFC 9449 `cnf.jkt`), when
    /// it is sender-constrained.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false, value_type = Option<ConfirmationSchema>)]
    cnf: Option<Confirmation>,
    /// How the user signed in (RFC 8176 values, e.g. `["pwd", "otp",
    /// "mfa"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    amr: Option<Vec<String>>,
    /// `"1"` for a password alone, `"2"` with a second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    acr: Option<String>,
}

/// RFC 7800 confirmation of a DPoP-bound token (RFC 9449 §6).
#[derive(ToSchema)]
#[schema(as = Confirmation)]
#[allow(
    dead_code,
    reason = "a response schema: the answer serializes portcullis_verify::Confirmation"
)]
pub(crate) struct ConfirmationSchema {
    /// The RFC 7638 SHA-256 thumbprint of the key, base64url.
    jkt: String,
}

/// The `token_type` of an active token.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(crate) enum IntrospectedType {
    Bearer,
    /// A DPoP-bound access token (RFC 9449 §6.2).
    #[serde(rename = "DPoP")]
    Dpop,
    #[serde(rename = "refresh_token")]
    RefreshToken,
}

fn audience() -> utoipa::openapi::schema::Schema {
    let string = || utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String);
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(string())
        .item(utoipa::openapi::schema::ArrayBuilder::new().items(string()))
        .into()
}

impl From<AccessTokenClaims> for Introspection {
    fn from(c: AccessTokenClaims) -> Self {
        Self {
            active: true,
            token_type: Some(if c.cnf.is_some() {
                IntrospectedType::Dpop
            } else {
                IntrospectedType::Bearer
            }),
            client_id: Some(c.client_id),
            // As in the token: no member for an empty scope.
            scope: (!c.scope.is_empty()).then_some(c.scope),
            sub: Some(c.sub),
            iss: Some(c.iss),
            aud: Some(c.aud),
            exp: Some(c.exp),
            iat: Some(c.iat),
            nbf: c.nbf,
            jti: Some(c.jti),
            sid: c.sid,
            cnf: c.cnf,
            amr: c.amr,
            acr: c.acr,
        }
    }
}

/// RFC 7662 §2.2: what `token` is, for a client allowed to ask. Anything
/// not active answers exactly `{"active": false}`.
///
/// # Errors
/// [`GrantError::NotPermitted`] for a client not allowed to introspect,
/// [`GrantError::InvalidRequest`] without a token, or the store's error.
async fn introspect_token(
    svc: &TokenService,
    form: &Form,
    client: &Client,
    now: UnixTime,
) -> Result<Introspection, GrantError> {
    if !client.introspect {
        return Err(GrantError::NotPermitted);
    }
    let token = form
        .get("token")
        .ok_or(GrantError::InvalidRequest("token is required"))?;
    let store = svc.store();
    if token.len() <= MAX_REFRESH_TOKEN {
        if let Some((presented, family)) = crate::refresh_token::family_of(store, token).await? {
            // Only the family's current token is active.
            let live = crate::refresh_token::same_hash(&presented.hash, family.current.hash.as_ref())
                && family.current_is(&presented.hash, now)
                && holder_active(svc, &family.user_id, &family.client_id).await?;
            if !live {
                return Ok(Introspection::default());
            }
            let (amr, acr) = crate::mfa::claims_of(family.amr.as_deref());
            return Ok(Introspection {
                active: true,
                token_type: Some(IntrospectedType::RefreshToken),
                client_id: Some(family.client_id.clone()),
                iat: Some(family.current_issued_at().0),
                exp: Some(family.current.expires_at.0),
                scope: Some(family.scope),
                sub: Some(family.user_id),
                iss: Some(svc.config().issuer.clone()),
                sid: Some(family.id),
                cnf: family.dpop_jkt.map(|jkt| Confirmation { jkt }),
                amr: Some(amr),
                acr: Some(acr),
                ..Introspection::default()
            });
        }
    }
    let Ok(claims) = svc.keys().own.inspect(token).await else {
        return Ok(Introspection::default());
    };
    if !access_token_live(svc, &claims).await? {
        return Ok(Introspection::default());
    }
    Ok(claims.into())
}

/// The user is active and the client not revoked.
async fn holder_active(svc: &TokenService, user_id: &str, client_id: &str) -> Result<bool, GrantError> {
    let store = svc.store();
    let user = match store.user_by_id(user_id).await {
        Ok(u) => u.status == UserStatus::Active,
        Err(StoreError::NotFound) => false,
        Err(e) => return Err(e.into()),
    };
    let client = match store.client_by_id(client_id).await {
        Ok(c) => c.status == ClientStatus::Active,
        Err(StoreError::NotFound) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(user && client)
}

/// A validly signed, unexpired access token is live unless its holder is
/// disabled or revoked, its family revoked, or it was revoked itself.
/// Every access token this server issues names its sign-in (`sid`); one
/// without it was not issued here, whoever signed it, and is not live.
pub(crate) async fn access_token_live(svc: &TokenService, c: &AccessTokenClaims) -> Result<bool, GrantError> {
    let Some(sid) = &c.sid else {
        return Ok(false);
    };
    if !holder_active(svc, &c.sub, &c.client_id).await? {
        return Ok(false);
    }
    let store = svc.store();
    match store.family_by_id(sid).await {
        Ok(f) if f.revoked_at.is_none() => {}
        Ok(_) | Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    for (kind, id) in [
        (RevocationKind::Jti, &c.jti),
        (RevocationKind::User, &c.sub),
        (RevocationKind::Client, &c.client_id),
    ] {
        if store.revoked_at(kind, id).await?.is_some_and(|t| t.0 >= c.iat) {
            return Ok(false);
        }
    }
    Ok(true)
}
