//! Validated Argon2id cost parameters.

use crate::Error;
use crate::fill::SYNC_POINTS;

/// Argon2id cost parameters, validated with the same limits as the `argon2`
/// crate's `Params::new`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Params {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
}

impl Params {
    /// Largest degree of parallelism Argon2 allows (2^24 - 1).
    pub const MAX_P_COST: u32 = 0xFF_FFFF;

    /// Memory of `m_cost_kib` KiB (1 KiB blocks), `t_cost` passes and
    /// `p_cost` lanes.
    ///
    /// # Errors
    ///
    /// [`Error::MemoryTooLittle`] below 8 KiB per lane,
    /// [`Error::TimeTooSmall`] for zero passes, [`Error::LanesOutOfRange`]
    /// for zero lanes or more than [`Params::MAX_P_COST`].
    pub const fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Params, Error> {
        if p_cost == 0 || p_cost > Self::MAX_P_COST {
            return Err(Error::LanesOutOfRange);
        }
        // Two blocks per slice and lane; `p_cost * 8` cannot overflow here.
        if m_cost_kib < 2 * SYNC_POINTS as u32 * p_cost {
            return Err(Error::MemoryTooLittle);
        }
        if t_cost == 0 {
            return Err(Error::TimeTooSmall);
        }
        Ok(Params {
            m_cost_kib,
            t_cost,
            p_cost,
        })
    }

    /// Memory cost in KiB.
    pub const fn m_cost_kib(&self) -> u32 {
        self.m_cost_kib
    }

    /// Number of passes over the memory.
    pub const fn t_cost(&self) -> u32 {
        self.t_cost
    }

    /// Number of lanes (computed one after the other).
    pub const fn p_cost(&self) -> u32 {
        self.p_cost
    }

    /// Blocks per lane: the memory rounded down to a multiple of 4 blocks
    /// per lane, as RFC 9106 §3.2 step 5 prescribes.
    pub(crate) const fn lane_length(&self) -> usize {
        let lanes = self.p_cost as usize;
        self.m_cost_kib as usize / (lanes * SYNC_POINTS) * SYNC_POINTS
    }

    /// Total number of 1 KiB blocks the hash works on.
    pub(crate) const fn block_count(&self) -> usize {
        self.lane_length() * self.p_cost as usize
    }
}
