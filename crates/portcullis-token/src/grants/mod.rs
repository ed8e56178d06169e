//! The grants: functions of a parsed request and an authenticated client,
//! with no HTTP types, returning a token response or a [`GrantError`].

mod password;
mod refresh;

use std::net::IpAddr;

use portcullis_store::{Client, UnixTime};
use portcullis_verify::{AccessTokenClaims, Audience};
use serde::Serialize;
use serde_json::json;

use crate::config::secs;
use crate::form::Form;
use crate::secret::OpaqueSecret;
use crate::{GrantError, TokenService};
use portcullis_domain::Scopes;

pub(crate) use password::{password, reserve};
pub(crate) use refresh::{prefetch_refresh, refresh};

/// A successful token response (RFC 6749 §5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// The JWT access token (RFC 9068).
    pub access_token: String,
    /// Always `Bearer` (RFC 6750) for now; DPoP would add `DPoP`.
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

/// A token request after parsing and client authentication.
pub(crate) struct Request<'a> {
    pub(crate) form: &'a Form,
    pub(crate) client: &'a Client,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) now: UnixTime,
}

impl Request<'_> {
    /// The requested scope, if any, parsed.
    pub(crate) fn scope(&self) -> Result<Option<Scopes>, GrantError> {
        self.form
            .get("scope")
            .map(|s| Scopes::parse(s).map_err(|_| GrantError::InvalidScope))
            .transpose()
    }

    /// The audience: the configured default, or an RFC 8707 `resource` the
    /// server knows.
    pub(crate) fn audience(&self, svc: &TokenService) -> Result<String, GrantError> {
        let cfg = svc.config();
        match self.form.get("resource") {
            None => Ok(cfg.audience.clone()),
            Some(r) if r == cfg.audience || cfg.resources.iter().any(|k| k == r) => Ok(r.to_owned()),
            Some(_) => Err(GrantError::InvalidTarget),
        }
    }
}

impl TokenService {
    /// Signs an access token (RFC 9068) for a user, client and family.
    pub(crate) fn mint(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scopes,
        audience: String,
        family_id: &str,
        now: UnixTime,
    ) -> Result<(String, i64), GrantError> {
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
            cnf: None,
        };
        let keys = self.keys();
        let signer = keys.set.signer(now);
        let header = json!({"typ": "at+jwt", "alg": signer.alg().as_str(), "kid": signer.kid()});
        let jwt = signer.sign_jwt(&header, &claims).map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            GrantError::Internal
        })?;
        Ok((jwt, ttl))
    }

    /// The response for a new access token and an optional refresh token.
    pub(crate) fn respond(
        &self,
        access: (String, i64),
        refresh: Option<&OpaqueSecret>,
        scope: &Scopes,
    ) -> TokenResponse {
        TokenResponse {
            access_token: access.0,
            token_type: "Bearer",
            expires_in: access.1,
            refresh_token: refresh.map(|r| r.expose().to_owned()),
            scope: scope.to_string(),
        }
    }
}
