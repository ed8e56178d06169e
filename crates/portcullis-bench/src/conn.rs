//! One raw HTTP/1.1 keep-alive connection per virtual client, reopened after
//! any transport error.

use std::{
    error::Error as StdError,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, StatusCode, Uri,
    client::conn::http1::{self, SendRequest},
    header::{self, HeaderValue},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{
    LoadError,
    dpop::{DPOP, DPOP_NONCE},
};

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// Where requests go and the headers every request carries.
pub(crate) struct Target {
    /// `host:port` to connect to.
    addr: String,
    host: HeaderValue,
    path: Uri,
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

impl Target {
    pub(crate) fn new(url: &str, authorization: Option<HeaderValue>, timeout: Duration) -> Result<Self, LoadError> {
        let bad = |why| LoadError::Url(url.to_owned(), why);
        let uri: Uri = url.parse().map_err(|_| bad("does not parse"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not supported; put a TLS terminator in front or use http")),
            _ => return Err(bad("expected http://host[:port]/path")),
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = format!("{}:{port}", authority.host());
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| bad("invalid host"))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let path = Uri::try_from(path).map_err(|_| bad("invalid path"))?;
        Ok(Self {
            addr,
            host,
            path,
            authorization,
            timeout,
        })
    }
}

/// A response, read to the end.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
    /// `Retry-After` in seconds, when the server sent one.
    pub(crate) retry_after: Option<Duration>,
    /// The `DPoP-Nonce` header, when the server sent one.
    pub(crate) dpop_nonce: Option<HeaderValue>,
    /// From handing the request to the connection to the last body byte;
    /// connecting is not included.
    pub(crate) latency: Duration,
}

pub(crate) struct Connection {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub(crate) fn new(target: Arc<Target>) -> Self {
        Self { target, sender: None }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, BoxError> {
        if let Some(sender) = &mut self.sender {
            // Fails when the server closed the connection while idle.
            if sender.ready().await.is_ok() {
                return Ok(self.sender.as_mut().expect("checked above"));
            }
            self.sender = None;
        }
        let stream = TcpStream::connect(&self.target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // Ends when the sender is dropped or the server closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(self.sender.insert(sender))
    }

    fn request(&self, body: Bytes, dpop: Option<HeaderValue>) -> Request<Full<Bytes>> {
        let t = &self.target;
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = t.path.clone();
        let headers = req.headers_mut();
        headers.insert(header::HOST, t.host.clone());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(auth) = &t.authorization {
            headers.insert(header::AUTHORIZATION, auth.clone());
        }
        if let Some(proof) = dpop {
            headers.insert(DPOP, proof);
        }
        req
    }

    /// POSTs `body` to the token endpoint, with `dpop` as the `DPoP` header
    /// when given. On any error the connection is dropped, and the next call
    /// opens a new one.
    pub(crate) async fn post(&mut self, body: Bytes, dpop: Option<HeaderValue>) -> Result<Reply, BoxError> {
        let timeout = self.target.timeout;
        match tokio::time::timeout(timeout, self.post_inner(body, dpop)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("no response within {timeout:?}").into())
            }
        }
    }

    async fn post_inner(&mut self, body: Bytes, dpop: Option<HeaderValue>) -> Result<Reply, BoxError> {
        let mut req = self.request(body, dpop);
        let mut retried = false;
        loop {
            let sender = self.connect().await?;
            let start = Instant::now();
            match sender.try_send_request(req).await {
                Ok(res) => {
                    let status = res.status();
                    let retry_after = res
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.trim().parse().ok())
                        .map(Duration::from_secs);
                    let dpop_nonce = res.headers().get(DPOP_NONCE).cloned();
                    let body = res.into_body().collect().await?.to_bytes();
                    return Ok(Reply {
                        status,
                        body,
                        retry_after,
                        dpop_nonce,
                        latency: start.elapsed(),
                    });
                }
                // Once more on a new connection only when the request never
                // left: the connection turned out to be closing.
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !retried => {
                        self.sender = None;
                        retried = true;
                        req = unsent;
                    }
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }
}
