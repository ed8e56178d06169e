//! The credential the revocation-feed poller presents: the server's feed
//! secret, or an access token with the scope `portcullis:feed`, which
//! expires and so is asked for again before every poll.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::verifier::VerifierBuilder;

type Pending = Pin<Box<dyn Future<Output = Option<String>> + Send>>;
type Source = Arc<dyn Fn() -> Pending + Send + Sync>;

/// What the poller sends as `Authorization: Bearer …`.
#[derive(Clone, Default)]
pub(crate) enum Credential {
    /// Nothing: only a feed the server serves publicly answers.
    #[default]
    None,
    /// The same value every time (the feed secret).
    Fixed(String),
    /// Asked for before each poll (a fresh access token).
    Source(Source),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret itself.
        f.write_str(match self {
            Self::None => "None",
            Self::Fixed(_) => "Fixed([redacted])",
            Self::Source(_) => "Source(..)",
        })
    }
}

impl Credential {
    /// The value for this poll, if any.
    pub(crate) async fn current(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Fixed(s) => Some(s.clone()),
            Self::Source(source) => source().await,
        }
    }
}

impl VerifierBuilder {
    /// The feed secret (`revocation_feed_secret` on the server): the
    /// revocation feed is not public unless the server is configured so.
    #[must_use]
    pub fn revocation_feed_credential(mut self, secret: impl Into<String>) -> Self {
        self.feed_credential = Credential::Fixed(secret.into());
        self
    }

    /// Asks `source` for the feed credential before every poll: for an
    /// access token with the scope `portcullis:feed` (of a client allowed
    /// to introspect), which expires, so `source` returns a live one
    /// (refreshing it as needed). `None` polls without a credential.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn fresh_feed_token() -> Option<String> { None }
    /// let builder = portcullis_verify::Verifier::builder("https://auth.example.com")
    ///     .revocation_feed("https://auth.example.com/oauth/revocations", Duration::from_secs(5))
    ///     .revocation_feed_credential_source(|| async { fresh_feed_token().await });
    /// ```
    #[must_use]
    pub fn revocation_feed_credential_source<F, Fut>(mut self, source: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        self.feed_credential = Credential::Source(Arc::new(move || -> Pending { Box::pin(source()) }));
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::Verifier;

    #[test]
    fn the_feed_secret_is_not_in_debug_output() {
        let builder = Verifier::builder("https://auth.example").revocation_feed_credential("s3cret-feed-value");
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("s3cret-feed-value") && shown.contains("[redacted]"),
            "{shown}"
        );
    }
}
