//! axum integration (feature `axum`): an extractor and a tower layer.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use portcullis_verify::{Verifier, axum::{Authenticated, VerifyLayer}};
//!
//! async fn me(Authenticated(claims): Authenticated) -> String {
//!     claims.sub
//! }
//!
//! # fn demo(verifier: Verifier) {
//! // Every route below the layer needs a valid token with scope `read`;
//! // handlers take the claims with the `Authenticated` extractor.
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(VerifyLayer::new(verifier.clone()).require_scopes(&["read"]))
//!     .with_state(verifier);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::dpop::DpopChecker;
use crate::{AccessTokenClaims, Scheme, Verifier, VerifyError, access_token, dpop_proof, require_scopes};

/// The claims of a verified token.
///
/// As an extractor it takes the claims left by [`VerifyLayer`], or, without
/// the layer, verifies the request's token with the [`Verifier`] in the
/// router state (`Verifier: FromRef<S>`).
#[derive(Debug, Clone)]
pub struct Authenticated(pub AccessTokenClaims);

impl Authenticated {
    /// Fails with 403 `insufficient_scope` unless the token grants every
    /// scope in `required`.
    ///
    /// # Errors
    /// [`Rejection`] with [`VerifyError::InsufficientScope`].
    pub fn require_scopes(&self, required: &[&str]) -> Result<(), Rejection> {
        require_scopes(&self.0, required).map_err(|e| Rejection::new(e, "api"))
    }

    /// Whether the token is DPoP-bound, and so came with a valid proof of
    /// its key (a bound token is never accepted as a bearer token).
    #[must_use]
    pub fn is_dpop_bound(&self) -> bool {
        self.0.cnf.is_some()
    }
}

/// A refused request, answered per RFC 6750 §3 (and RFC 9449 §7.1 when
/// DPoP is accepted).
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Why.
    pub error: VerifyError,
    realm: String,
    dpop: Option<DpopChallenge>,
}

/// The DPoP side of a rejection, when the verifier takes DPoP.
#[derive(Debug, Clone)]
struct DpopChallenge {
    algs: Vec<&'static str>,
    /// The request used the DPoP scheme.
    used: bool,
    /// A fresh nonce, for `use_dpop_nonce`.
    nonce: Option<String>,
}

impl Rejection {
    /// A rejection for `error` with challenges in `realm`.
    #[must_use]
    pub fn new(error: VerifyError, realm: &str) -> Self {
        Self {
            error,
            realm: realm.to_owned(),
            dpop: None,
        }
    }

    /// A rejection by `verifier` of a request that used `scheme`: with DPoP
    /// accepted, the challenges name both schemes (RFC 9449 §7.1).
    fn by(verifier: &Verifier, error: VerifyError, scheme: Option<Scheme>) -> Self {
        match verifier.dpop() {
            Some(checker) => Self::with_dpop(error, verifier.realm(), checker, scheme),
            None => Self::new(error, verifier.realm()),
        }
    }

    /// A rejection where DPoP is accepted beside bearer tokens, of a
    /// request that used `scheme` (`None`: no token): the `DPoP` challenge
    /// names `checker`'s algorithms, and a `use_dpop_nonce` answer carries
    /// a fresh nonce in `DPoP-Nonce` (RFC 9449 §7.1, §9).
    #[must_use]
    pub fn with_dpop(error: VerifyError, realm: &str, checker: &DpopChecker, scheme: Option<Scheme>) -> Self {
        let dpop = DpopChallenge {
            algs: checker.algorithm_names(),
            used: scheme == Some(Scheme::Dpop),
            nonce: if error == VerifyError::UseDpopNonce {
                checker.nonce()
            } else {
                None
            },
        };
        Self {
            error,
            realm: realm.to_owned(),
            dpop: Some(dpop),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let mut res = status.into_response();
        let challenges = match &self.dpop {
            None => vec![self.error.www_authenticate(&self.realm)],
            Some(d) if d.used || self.error.is_dpop() => {
                vec![self.error.www_authenticate_dpop(&self.realm, &d.algs)]
            }
            // A bearer request (or none): the bearer answer, and the DPoP
            // scheme offered beside it.
            Some(d) => vec![
                self.error.www_authenticate(&self.realm),
                VerifyError::Missing.www_authenticate_dpop(&self.realm, &d.algs),
            ],
        };
        for challenge in challenges {
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                res.headers_mut().append(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(nonce) = self.dpop.as_ref().and_then(|d| d.nonce.as_deref()) {
            if let Ok(v) = HeaderValue::from_str(nonce) {
                res.headers_mut().insert("dpop-nonce", v);
            }
        }
        if self.error == VerifyError::KeysUnavailable {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

async fn check(verifier: &Verifier, parts: &Parts, required: &[&str]) -> Result<AccessTokenClaims, Rejection> {
    let (scheme, token) = access_token(
        parts
            .headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes),
        parts.uri.query(),
    )
    .map_err(|e| Rejection::by(verifier, e, None))?;
    let claims = match scheme {
        Scheme::Bearer => verifier.verify(token).await,
        Scheme::Dpop => verify_dpop(verifier, parts, token).await,
    };
    claims
        .and_then(|claims| require_scopes(&claims, required).map(|()| claims))
        .map_err(|e| Rejection::by(verifier, e, Some(scheme)))
}

/// A `DPoP` request: its one proof, for this method and the external URL
/// of this path.
async fn verify_dpop(verifier: &Verifier, parts: &Parts, token: &str) -> Result<AccessTokenClaims, VerifyError> {
    let base = verifier
        .external_url()
        .ok_or(VerifyError::InvalidRequest("DPoP is not accepted"))?;
    let proof = dpop_proof(parts.headers.get_all("dpop").iter().map(HeaderValue::as_bytes))?;
    let url = format!("{base}{}", parts.uri.path());
    verifier.verify_dpop(token, proof, parts.method.as_str(), &url).await
}

impl<S> FromRequestParts<S> for Authenticated
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        if let Some(claims) = parts.extensions.get::<AccessTokenClaims>() {
            return Ok(Self(claims.clone()));
        }
        let verifier = Verifier::from_ref(state);
        check(&verifier, parts, &[]).await.map(Self)
    }
}

/// A tower layer that verifies every request's token (and required
/// scopes) before the inner service sees it, and leaves the claims in the
/// request extensions for [`Authenticated`].
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
    scopes: std::sync::Arc<[String]>,
}

impl VerifyLayer {
    /// Requires a valid token.
    #[must_use]
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            scopes: std::sync::Arc::from([]),
        }
    }

    /// Also requires these scopes.
    #[must_use]
    pub fn require_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }
}

impl<I> tower_layer::Layer<I> for VerifyLayer {
    type Service = VerifyService<I>;
    fn layer(&self, inner: I) -> VerifyService<I> {
        VerifyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`VerifyLayer`].
#[derive(Debug, Clone)]
pub struct VerifyService<I> {
    inner: I,
    layer: VerifyLayer,
}

impl<I> tower_service::Service<Request> for VerifyService<I>
where
    I: tower_service::Service<Request, Response = Response> + Clone + Send + 'static,
    I::Future: Send + 'static,
{
    type Response = Response;
    type Error = I::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, I::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), I::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let scopes: Vec<&str> = layer.scopes.iter().map(String::as_str).collect();
            match check(&layer.verifier, &parts, &scopes).await {
                Ok(claims) => {
                    parts.extensions.insert(claims);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}
