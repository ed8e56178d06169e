//! The tests' HTTP client: `reqwest` with every answer checked against
//! `docs/openapi.json` ([`super::openapi::check_answer`]) as it arrives,
//! whether or not the test reads its body.
//!
//! [`Http`], [`HttpRequest`] and [`HttpResponse`] mirror the part of
//! `reqwest`'s `Client`, `RequestBuilder` and `Response` that the tests
//! use; the answer's body is read in full by `send`, so the reading
//! methods (`json`, `text`, `bytes`) cannot fail on the network.

use std::convert::Infallible;

use reqwest::header::HeaderMap;
use reqwest::{IntoUrl, Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::openapi::{check_answer, checked_in};

/// A `reqwest::Client` whose answers are checked against the document.
#[derive(Clone, Debug)]
pub struct Http {
    inner: reqwest::Client,
}

impl From<reqwest::Client> for Http {
    fn from(inner: reqwest::Client) -> Self {
        // Compiling the document's schemas takes a few hundred
        // milliseconds: do it now, before a test measures anything.
        let _ = checked_in();
        Self { inner }
    }
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// A client with `reqwest`'s defaults.
    pub fn new() -> Self {
        reqwest::Client::new().into()
    }

    /// A request with `method` to `url`.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> HttpRequest {
        HttpRequest {
            inner: self.inner.request(method, url),
        }
    }

    /// `GET url`.
    pub fn get(&self, url: impl IntoUrl) -> HttpRequest {
        self.request(Method::GET, url)
    }

    /// `POST url`.
    pub fn post(&self, url: impl IntoUrl) -> HttpRequest {
        self.request(Method::POST, url)
    }

    /// `DELETE url`.
    pub fn delete(&self, url: impl IntoUrl) -> HttpRequest {
        self.request(Method::DELETE, url)
    }

    /// `HEAD url`.
    pub fn head(&self, url: impl IntoUrl) -> HttpRequest {
        self.request(Method::HEAD, url)
    }
}

/// A request being built; [`HttpRequest::send`] checks its answer.
#[derive(Debug)]
pub struct HttpRequest {
    inner: reqwest::RequestBuilder,
}

impl HttpRequest {
    /// Adds a header.
    pub fn header(self, name: &str, value: impl AsRef<str>) -> Self {
        Self {
            inner: self.inner.header(name, value.as_ref()),
        }
    }

    /// Adds `Authorization: Bearer token`.
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        Self {
            inner: self.inner.bearer_auth(token),
        }
    }

    /// Adds `Authorization: Basic …`.
    pub fn basic_auth(self, user: impl std::fmt::Display, password: Option<impl std::fmt::Display>) -> Self {
        Self {
            inner: self.inner.basic_auth(user, password),
        }
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        Self {
            inner: self.inner.body(body),
        }
    }

    /// Sends the request and reads the whole answer, then checks it
    /// against the document (panicking on a mismatch, see
    /// [`check_answer`]).
    ///
    /// # Errors
    ///
    /// Those of `reqwest`: no connection, a timeout, a body cut short.
    pub async fn send(self) -> reqwest::Result<HttpResponse> {
        let (client, request) = self.inner.build_split();
        let request = request?;
        let method = request.method().clone();
        let res = client.execute(request).await?;
        let status = res.status();
        let headers = res.headers().clone();
        let url = res.url().clone();
        let body = res.bytes().await?.to_vec();
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        check_answer(method.as_str(), url.path(), status.as_u16(), content_type, &body);
        Ok(HttpResponse {
            status,
            headers,
            url,
            body,
        })
    }
}

/// An answer, read in full and checked against the document.
#[derive(Debug)]
pub struct HttpResponse {
    status: StatusCode,
    headers: HeaderMap,
    url: Url,
    body: Vec<u8>,
}

impl HttpResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The final URL (after redirects).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The body as JSON.
    ///
    /// # Errors
    ///
    /// A body that is not `T` in JSON.
    pub async fn json<T: DeserializeOwned>(self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }

    /// The body as text (invalid UTF-8 replaced, as `reqwest` does).
    ///
    /// # Errors
    ///
    /// None; a `Result` like `reqwest`'s.
    pub async fn text(self) -> Result<String, Infallible> {
        Ok(String::from_utf8_lossy(&self.body).into_owned())
    }

    /// The body.
    ///
    /// # Errors
    ///
    /// None; a `Result` like `reqwest`'s.
    pub async fn bytes(self) -> Result<Vec<u8>, Infallible> {
        Ok(self.body)
    }
}
