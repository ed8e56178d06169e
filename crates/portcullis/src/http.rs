//! Small HTTP helpers shared by the routers (a leaf: it imports no other
//! module of this crate).

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Marks an answer as not cacheable.
pub(crate) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Adds `Retry-After: 5` to a 503.
pub(crate) fn retry_after(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    res
}

/// RFC 9112 §3.2: a request with more than one `Host` header, or with one
/// that is not a valid host and port, and an HTTP/1.1 request with none,
/// are answered 400. A request naming no host, or two, is one that a
/// proxy and this server may read as meant for different hosts.
pub(crate) async fn one_host(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let ok = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host
            .to_str()
            .is_ok_and(|h| h.parse::<axum::http::uri::Authority>().is_ok()),
        // HTTP/1.0 may omit it; HTTP/2 names the host in `:authority`.
        (None, _) => req.version() != axum::http::Version::HTTP_11,
        (Some(_), Some(_)) => false,
    };
    if ok {
        return next.run(req).await;
    }
    let body = r#"{"error":"invalid_request","error_description":"exactly one valid Host header is required"}"#;
    let mut res = Response::new(body.into());
    *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    no_store(res)
}
