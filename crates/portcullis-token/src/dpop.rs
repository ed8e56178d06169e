//! DPoP (RFC 9449) at the token, revocation and `/web/` endpoints: the
//! proof a request carries, checked against the configured issuer's URL of
//! the endpoint, and the nonces handed out with the answers.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use portcullis_store::Client;
use portcullis_verify::dpop::{DpopError, Target};

use crate::{GrantError, TokenService};

/// The `DPoP` request header (RFC 9449 §4.1).
pub(crate) const DPOP: &str = "dpop";
/// The `DPoP-Nonce` answer header (RFC 9449 §8).
pub(crate) const DPOP_NONCE: &str = "dpop-nonce";

/// The request's one `DPoP` header, if it has one.
///
/// # Errors
/// [`GrantError::InvalidDpopProof`] for two headers (§4.3 (1)) or one that
/// is not visible ASCII.
pub(crate) fn proof_header(headers: &HeaderMap) -> Result<Option<&str>, GrantError> {
    let mut all = headers.get_all(DPOP).iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(one), None) => one
            .to_str()
            .map(Some)
            .map_err(|_| GrantError::InvalidDpopProof("malformed")),
        (Some(_), Some(_)) => Err(GrantError::InvalidDpopProof("more than one DPoP header")),
    }
}

impl TokenService {
    /// The key a token request to `path` proves possession of, for
    /// `client`: `None` without a proof, refused if the client must send
    /// one (`dpop_bound_access_tokens`). Checked before the grant runs, so
    /// a refused proof or a nonce round trip never reaches the password
    /// check and never counts as a failed sign-in.
    ///
    /// # Errors
    /// [`GrantError::InvalidDpopProof`], [`GrantError::UseDpopNonce`].
    pub(crate) fn dpop_key(
        &self,
        headers: &HeaderMap,
        path: &str,
        client: &Client,
    ) -> Result<Option<String>, GrantError> {
        match proof_header(headers)? {
            None if client.dpop_bound_access_tokens => {
                Err(GrantError::InvalidDpopProof("this client must send a DPoP proof"))
            }
            None => Ok(None),
            Some(proof) => self
                .check_proof(proof, path, None, client.dpop_nonce_required)
                .map(Some),
        }
    }

    /// Checks `proof` for a `POST` to `path` of this server (its issuer's
    /// URL: the one clients address, also behind a proxy), with `ath` of
    /// `access_token` when given; the key's thumbprint.
    ///
    /// # Errors
    /// [`GrantError::InvalidDpopProof`], [`GrantError::UseDpopNonce`].
    pub(crate) fn check_proof(
        &self,
        proof: &str,
        path: &str,
        access_token: Option<&str>,
        require_nonce: bool,
    ) -> Result<String, GrantError> {
        let url = format!("{}{path}", self.config().issuer);
        let target = Target {
            method: "POST",
            url: &url,
            access_token,
        };
        match self.dpop().check(proof, &target, require_nonce) {
            Ok(proof) => Ok(proof.jkt),
            Err(DpopError::InvalidProof(why)) => Err(GrantError::InvalidDpopProof(why)),
            Err(DpopError::UseNonce) => Err(GrantError::UseDpopNonce),
        }
    }
}

/// A layer for the endpoints that take DPoP proofs: an answer to a request
/// that carried one (or was told to) gets a current nonce in `DPoP-Nonce`,
/// so a client that must send nonces always holds a fresh one (§8.2).
pub(crate) async fn nonce_layer(State(svc): State<std::sync::Arc<TokenService>>, req: Request, next: Next) -> Response {
    let dpop = req.headers().contains_key(DPOP);
    let mut res = next.run(req).await;
    if dpop {
        if let Some(nonce) = svc.dpop().nonce() {
            if let Ok(v) = HeaderValue::from_str(&nonce) {
                res.headers_mut().insert(DPOP_NONCE, v);
            }
        }
    }
    res
}
