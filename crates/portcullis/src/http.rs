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
