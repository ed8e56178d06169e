//! The grants: functions of a parsed request ([`PasswordGrant`],
//! [`RefreshGrant`]) and an authenticated client, with no HTTP types,
//! returning a token response or a [`GrantError`]. [`run`] is the one way
//! in, for `/oauth/token` and the `/web/` endpoints alike.

pub(crate) mod challenge;
mod code;
mod password;
mod refresh;
mod request;

use std::net::IpAddr;

use portcullis_domain::{GrantType, Scopes};
use portcullis_store::{Client, StoreError, UnixTime};
use portcullis_verify::{AccessTokenClaims, Audience};
use serde::Serialize;
use serde_json::json;

use crate::config::secs;
use crate::password::{Slot, SlotError};
use crate::secret::OpaqueSecret;
use crate::{GrantError, TokenService};

pub(crate) use refresh::{Context, prefetch};
pub(crate) use request::{ChallengeRequest, CodeGrant, MAX_REFRESH_TOKEN, PasswordGrant, RefreshGrant};

/// A successful token response (RFC 6749 §5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// The JWT access token (RFC 9068).
    pub access_token: String,
    /// `Bearer` (RFC 6750), or `DPoP` for an access token bound to the
    /// key of the request's DPoP proof (RFC 9449 §5).
    #[schema(value_type = String, example = "Bearer")]
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    pub expires_in: i64,
    /// The new refresh token, when the client may refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scope, sorted.
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A token request of one grant type, parsed at the HTTP edge, with what
/// was prepared for it before its client was authenticated. A parse error
/// is carried, not returned at once: it is answered only after client
/// authentication, and counted like any other outcome of the grant.
#[allow(
    clippy::large_enum_variant,
    reason = "built once per request and moved into `run`; boxing the refresh context would add an allocation to the refresh path"
)]
pub(crate) enum Grant {
    /// The password grant, with its place in the hashing pool.
    Password(Result<PasswordGrant, GrantError>, Slot),
    /// The refresh grant, with its token's context if it was read already
    /// (see [`prefetch`]).
    Refresh(Result<RefreshGrant, GrantError>, Option<Result<Context, StoreError>>),
    /// The authorization_code grant (codes of the Authorization Challenge
    /// Endpoint).
    Code(Result<CodeGrant, GrantError>),
}

impl Grant {
    fn grant_type(&self) -> GrantType {
        match self {
            Self::Password(..) => GrantType::Password,
            Self::Refresh(..) => GrantType::RefreshToken,
            Self::Code(..) => GrantType::AuthorizationCode,
        }
    }
}

/// Runs `grant` for `client` (authenticated, and allowed the grant type),
/// calling from `ip`. Every outcome is counted in
/// `portcullis_grants_total`; a refusal is also counted and held (see
/// [`refused`]).
///
/// # Errors
/// The grant's [`GrantError`].
pub(crate) async fn run(
    svc: &TokenService,
    grant: Grant,
    client: &Client,
    ip: Option<IpAddr>,
    dpop: Option<&str>,
) -> Result<TokenResponse, GrantError> {
    let grant_type = grant.grant_type();
    let req = Request {
        client,
        ip,
        now: UnixTime::now(),
        dpop,
    };
    let outcome = match grant {
        Grant::Password(Ok(g), slot) => password::password(svc, g, &req, slot).await,
        Grant::Refresh(Ok(g), context) => refresh::refresh(svc, &g, &req, context).await,
        Grant::Code(Ok(g)) => code::authorization_code(svc, g, &req).await,
        Grant::Password(Err(e), _) | Grant::Refresh(Err(e), _) | Grant::Code(Err(e)) => Err(e),
    };
    let result = outcome.as_ref().map_or_else(GrantError::code, |_| "success");
    metrics::counter!("portcullis_grants_total", "grant_type" => grant_type.as_str(), "result" => result).increment(1);
    if let Err(e) = &outcome {
        refused(svc, e).await;
    }
    outcome
}

/// Takes a place in the hashing pool for a sign-in from `ip`, first of
/// all: an attempt refused for want of one (a flood) costs no database
/// read or write and is not counted against the account it names, so a
/// flood can neither slow the server down with lookups nor lock an
/// account's owner out. A refusal is counted and held (see [`refused`]).
///
/// # Errors
/// [`GrantError::Saturated`] when the pool is full,
/// [`GrantError::AddressBusy`] when `ip` holds its share of it.
pub(crate) async fn reserve(svc: &TokenService, ip: Option<IpAddr>) -> Result<Slot, GrantError> {
    let reserved = svc.passwords().reserve(ip).map_err(|e| match e {
        SlotError::Busy => GrantError::Saturated,
        SlotError::Address => GrantError::AddressBusy,
    });
    if let Err(e) = &reserved {
        refused(svc, e).await;
    }
    reserved
}

/// For a refusal of a sign-in (429, 503 for load): counts it in
/// `portcullis_sign_in_refusals_total` and holds the answer for the
/// refusal delay. A tarpit: a client that retries at once (a flood's closed
/// loop) is held to one attempt per delay per connection, so refusing it
/// costs almost nothing.
async fn refused(svc: &TokenService, e: &GrantError) {
    if !e.is_refusal() {
        return;
    }
    let reason = match e {
        GrantError::AddressBusy => "address_busy",
        GrantError::Saturated => "saturated",
        _ => "throttled",
    };
    metrics::counter!("portcullis_sign_in_refusals_total", "reason" => reason).increment(1);
    tokio::time::sleep(svc.config().refusal_delay).await;
}

/// A signed access token, its lifetime in seconds, and whether it is
/// DPoP-bound.
pub(crate) struct AccessToken {
    jwt: String,
    ttl: i64,
    bound: bool,
}

/// A token request's client, address and time, and the thumbprint of the
/// key its DPoP proof proved possession of.
pub(crate) struct Request<'a> {
    pub(crate) client: &'a Client,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) now: UnixTime,
    pub(crate) dpop: Option<&'a str>,
}

/// The audience: the configured default, or an RFC 8707 `resource` the
/// server knows.
fn audience(svc: &TokenService, resource: Option<&str>) -> Result<String, GrantError> {
    let cfg = svc.config();
    match resource {
        None => Ok(cfg.audience.clone()),
        Some(r) if r == cfg.audience || cfg.resources.iter().any(|k| k == r) => Ok(r.to_owned()),
        Some(_) => Err(GrantError::InvalidTarget),
    }
}

impl TokenService {
    /// Signs an access token (RFC 9068) for a user, client and family,
    /// bound to the DPoP key `jkt` when there is one (`cnf`, RFC 9449 §6).
    #[allow(clippy::too_many_arguments, reason = "the claims of the token, each its own")]
    pub(crate) fn mint(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scopes,
        audience: String,
        family_id: &str,
        now: UnixTime,
        jkt: Option<&str>,
        amr: Option<&str>,
    ) -> Result<AccessToken, GrantError> {
        let (amr, acr) = crate::mfa::claims_of(amr);
        let ttl = secs(self.config().access_token_ttl);
        let claims = AccessTokenClaims {
            iss: self.config().issuer.clone(),
            sub: user_id.to_owned(),
            aud: Audience::One(audience),
            client_id: client_id.to_owned(),
            scope: scope.to_string(),
            iat: now.0,
            nbf: Some(now.0),
            exp: now.0.saturating_add(ttl),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            sid: Some(family_id.to_owned()),
            cnf: jkt.map(|jkt| portcullis_verify::Confirmation { jkt: jkt.to_owned() }),
            amr: Some(amr),
            acr: Some(acr),
        };
        let keys = self.keys();
        let signer = keys.set.signer(now);
        let header = json!({"typ": "at+jwt", "alg": signer.alg().as_str(), "kid": signer.kid()});
        let jwt = signer.sign_jwt(&header, &claims).map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            GrantError::Internal
        })?;
        Ok(AccessToken {
            jwt,
            ttl,
            bound: jkt.is_some(),
        })
    }

    /// The response for a new access token and an optional refresh token.
    pub(crate) fn respond(&self, access: AccessToken, refresh: Option<&OpaqueSecret>, scope: &Scopes) -> TokenResponse {
        TokenResponse {
            access_token: access.jwt,
            // RFC 9449 §5: `DPoP` for a bound token.
            token_type: if access.bound { "DPoP" } else { "Bearer" },
            expires_in: access.ttl,
            refresh_token: refresh.map(|r| r.expose().to_owned()),
            scope: scope.to_string(),
        }
    }
}
