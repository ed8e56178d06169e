//! Places in the hashing pool: at most `workers + queue` sign-ins hash or
//! wait at once, and one client address holds at most `per_address` of
//! those places, so a flood from one address cannot shut everyone else
//! out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why [`Passwords::reserve`](super::Passwords::reserve) found no place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The pool is full (the endpoint answers 503).
    #[error("password hashing is saturated")]
    Busy,
    /// This client address already holds its share (429).
    #[error("too many sign-ins at once from this address")]
    Address,
}

/// A place in the hashing pool, from
/// [`Passwords::reserve`](super::Passwords::reserve); given back when
/// dropped.
#[must_use = "a reservation is used by `verify_reserved`"]
pub struct Slot {
    _queued: OwnedSemaphorePermit,
    _address: Option<AddressHold>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

/// The pool's places: the queue and each address's share of it.
pub(super) struct Places {
    queue: Arc<Semaphore>,
    capacity: usize,
    per_address: usize,
    addresses: Arc<AddressCounts>,
}

impl Places {
    /// `capacity` places, at most `per_address` (at least one) per address.
    pub(super) fn new(capacity: usize, per_address: usize) -> Self {
        Self {
            queue: Arc::new(Semaphore::new(capacity)),
            capacity,
            per_address: per_address.max(1),
            addresses: Arc::default(),
        }
    }

    /// Places taken now (hashing or waiting).
    pub(super) fn in_use(&self) -> usize {
        self.capacity.saturating_sub(self.queue.available_permits())
    }

    /// Takes a place for `ip` (`None`: no address share), without waiting.
    pub(super) fn reserve(&self, ip: Option<IpAddr>) -> Result<Slot, SlotError> {
        let address = match ip {
            Some(ip) => Some(
                self.addresses
                    .take(crate::throttle::address_block(ip), self.per_address)
                    .ok_or(SlotError::Address)?,
            ),
            None => None,
        };
        let queued = self.queue.clone().try_acquire_owned().map_err(|_| SlotError::Busy)?;
        Ok(Slot {
            _queued: queued,
            _address: address,
        })
    }
}

/// Places held per client address block.
#[derive(Default)]
struct AddressCounts(Mutex<HashMap<IpAddr, usize>>);

/// One place held by an address; counted down when dropped.
struct AddressHold {
    counts: Arc<AddressCounts>,
    block: IpAddr,
}

impl AddressCounts {
    fn take(self: &Arc<Self>, block: IpAddr, max: usize) -> Option<AddressHold> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = map.entry(block).or_insert(0);
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(AddressHold {
            counts: self.clone(),
            block,
        })
    }
}

impl Drop for AddressHold {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = map.get_mut(&self.block) {
            *held -= 1;
            if *held == 0 {
                map.remove(&self.block);
            }
        }
    }
}
