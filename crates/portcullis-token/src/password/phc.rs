//! Argon2id PHC strings: hashing with the pooled memory blocks, and
//! verification that refuses stored hashes with out-of-range parameters
//! without computing them.

use std::sync::Mutex;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Params, Version};
use subtle::ConstantTimeEq as _;

/// Largest memory cost accepted in a stored hash (256 MiB).
pub(super) const MAX_M_COST_KIB: u32 = 256 * 1024;
/// Largest time cost accepted in a stored hash.
pub(super) const MAX_T_COST: u32 = 16;
/// Largest parallelism accepted in a stored hash.
pub(super) const MAX_P_COST: u32 = 16;

/// Hashers for the current parameters, each with its memory block, kept
/// between hashes. At most `workers` exist: that many threads hash, each
/// taking one hasher for the duration of a hash.
pub(super) struct HasherPool {
    params: portcullis_argon2::Params,
    pub(super) backend: portcullis_argon2::Backend,
    idle: Mutex<Vec<portcullis_argon2::Hasher>>,
}

impl HasherPool {
    pub(super) fn new(params: &Params) -> Result<Self, portcullis_argon2::Error> {
        let params = portcullis_argon2::Params::new(params.m_cost(), params.t_cost(), params.p_cost())?;
        Ok(Self {
            params,
            backend: portcullis_argon2::Backend::detect(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` with a hasher for `params`: a pooled one when they are the
    /// current parameters, a one-off otherwise (a stored hash made with
    /// older parameters, verified once before its rehash).
    fn with<T>(&self, params: portcullis_argon2::Params, f: impl FnOnce(&mut portcullis_argon2::Hasher) -> T) -> T {
        if params != self.params {
            return f(&mut portcullis_argon2::Hasher::new(params));
        }
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut hasher = pooled.unwrap_or_else(|| portcullis_argon2::Hasher::new(self.params));
        let result = f(&mut hasher);
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(hasher);
        result
    }
}

/// Length of the hashes this server writes (the PHC default).
const OUTPUT_LEN: usize = 32;
/// Length of the salts this server writes.
const SALT_LEN: usize = 16;

/// A new PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for `password`.
pub(super) fn hash_blocking(
    hashers: &HasherPool,
    params: &Params,
    password: &str,
) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::Error as E;
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|_| E::Crypto)?;
    let p = portcullis_argon2::Params::new(params.m_cost(), params.t_cost(), params.p_cost()).map_err(|_| E::Crypto)?;
    let mut out = [0u8; OUTPUT_LEN];
    hashers
        .with(p, |h| h.hash_into(password.as_bytes(), &salt, &mut out))
        .map_err(|_| E::Crypto)?;
    Ok(format!(
        "${}$v={}$m={},t={},p={}${}${}",
        Algorithm::Argon2id.ident(),
        u32::from(Version::V0x13),
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        SaltString::encode_b64(&salt)?.as_str(),
        Output::new(&out)?,
    ))
}

/// Whether `password` matches the parsed `hash` (compared in constant time).
fn matches(hashers: &HasherPool, password: &str, hash: &PasswordHash<'_>) -> bool {
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let Ok(p) = Params::try_from(hash) else { return false };
    let Ok(p) = portcullis_argon2::Params::new(p.m_cost(), p.t_cost(), p.p_cost()) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    hashers
        .with(p, |h| h.hash_into(password.as_bytes(), salt, &mut out))
        .is_ok_and(|()| bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}

/// Verifies against `stored` if its parameters are acceptable; otherwise
/// spends the same time on the dummy hash and fails.
pub(super) fn verify_blocking(hashers: &HasherPool, password: &str, stored: &str, dummy: &str) -> bool {
    match acceptable_hash(stored) {
        Some(hash) => matches(hashers, password, &hash),
        None => {
            tracing::error!("a stored password hash is not an acceptable Argon2id hash; refused");
            if let Some(d) = acceptable_hash(dummy) {
                let _ = matches(hashers, password, &d);
            }
            false
        }
    }
}

/// The parsed hash, if it is Argon2id v1.3 with parameters in range.
pub(super) fn acceptable_hash(stored: &str) -> Option<PasswordHash<'_>> {
    let hash = PasswordHash::new(stored).ok()?;
    if hash.algorithm != Algorithm::Argon2id.ident() || hash.version != Some(Version::V0x13.into()) {
        return None;
    }
    let p = Params::try_from(&hash).ok()?;
    (p.m_cost() <= MAX_M_COST_KIB && p.t_cost() <= MAX_T_COST && p.p_cost() <= MAX_P_COST).then_some(hash)
}

pub(super) fn needs_rehash(stored: &str, params: &Params) -> bool {
    let Some(hash) = acceptable_hash(stored) else {
        return true;
    };
    let Ok(p) = Params::try_from(&hash) else { return true };
    (p.m_cost(), p.t_cost(), p.p_cost()) != (params.m_cost(), params.t_cost(), params.p_cost())
}

pub(super) fn random_password() -> String {
    let mut bytes = [0u8; 24];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
