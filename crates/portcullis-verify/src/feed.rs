//! The revocation feed: poll `GET /oauth/revocations?since=CURSOR` and
//! reject tokens issued before a matching revocation.
//!
//! The feed answers `{"entries": [{"cursor": 7, "kind": "family", "id":
//! "…", "revoked_at": 1800000000}, …]}` in cursor order; `kind` is
//! `client` (matches `client_id`), `user` (`sub`), `family` (`sid`) or `jti`.
//! A token is revoked when an entry matches it with `revoked_at >= iat`.
//!
//! The feed is not public by default: the poller presents a
//! [`Credential`] (the feed secret, or an access token with the scope
//! `portcullis:feed`), asked for afresh before every poll.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Deserialize;

use crate::AccessTokenClaims;
use crate::credential::Credential;

/// Most pages read in one poll; the rest waits for the next poll.
const MAX_PAGES_PER_POLL: usize = 20;

#[derive(Default)]
struct Revoked {
    cursor: i64,
    by_kind: HashMap<String, HashMap<String, i64>>,
    synced: bool,
}

/// The state shared by the poller and the verifier.
#[derive(Default)]
pub(crate) struct Feed {
    state: RwLock<Revoked>,
}

#[derive(Deserialize)]
struct Page {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    cursor: i64,
    kind: String,
    id: String,
    revoked_at: i64,
}

impl Feed {
    /// Whether a revocation matches the token.
    pub(crate) fn revokes(&self, c: &AccessTokenClaims) -> bool {
        let s = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let hit = |kind: &str, id: Option<&str>| {
            id.and_then(|id| s.by_kind.get(kind)?.get(id))
                .is_some_and(|&at| at >= c.iat)
        };
        hit("client", Some(&c.client_id))
            || hit("user", Some(&c.sub))
            || hit("family", c.sid.as_deref())
            || hit("jti", Some(&c.jti))
    }

    /// Whether the first poll has completed.
    pub(crate) fn synced(&self) -> bool {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .synced
    }

    fn apply(&self, page: Page) -> usize {
        let mut s = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = page.entries.len();
        for e in page.entries {
            if e.cursor <= s.cursor {
                continue;
            }
            s.cursor = e.cursor;
            let at = s.by_kind.entry(e.kind).or_default().entry(e.id).or_insert(e.revoked_at);
            *at = (*at).max(e.revoked_at);
        }
        n
    }

    /// Reads every new page once.
    pub(crate) async fn poll(&self, http: &reqwest::Client, url: &str, credential: &Credential) {
        let credential = credential.current().await;
        for _ in 0..MAX_PAGES_PER_POLL {
            let cursor = self
                .state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .cursor;
            let mut req = http.get(url).query(&[("since", cursor)]);
            if let Some(c) = &credential {
                req = req.bearer_auth(c);
            }
            let page = match req.send().await {
                Ok(r) if r.status().is_success() => r.json::<Page>().await,
                Ok(r) if matches!(r.status().as_u16(), 401 | 403) => {
                    // A set-up mistake, not a passing failure: say what is
                    // missing. Tokens stay unchecked against the feed.
                    tracing::error!(
                        status = %r.status(),
                        with_credential = credential.is_some(),
                        "the revocation feed refused this resource server: give the verifier the feed \
                         secret (revocation_feed_credential) or an access token with the scope \
                         portcullis:feed (revocation_feed_credential_source)"
                    );
                    return;
                }
                Ok(r) => {
                    tracing::warn!(status = %r.status(), "revocation feed poll failed");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "revocation feed poll failed");
                    return;
                }
            };
            match page {
                Ok(page) => {
                    if self.apply(page) == 0 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "revocation feed answer is not understood");
                    return;
                }
            }
        }
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .synced = true;
    }
}

/// Polls the feed every `every` until dropped.
pub(crate) struct Poller {
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    pub(crate) fn spawn(
        feed: Arc<Feed>,
        http: reqwest::Client,
        url: String,
        credential: Credential,
        every: Duration,
    ) -> Self {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                feed.poll(&http, &url, &credential).await;
            }
        });
        Self { task }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.task.abort();
    }
}
