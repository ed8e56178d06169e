//! Which compiled copy of the fill loop to run.

use std::fmt;

/// An instruction-set variant of the memory-filling loop.
///
/// All backends compute the same function; they differ only in speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Compiled for AVX-512 (F, VL, BW, DQ) and AVX2.
    Avx512,
    /// Compiled for AVX2.
    Avx2,
    /// Compiled for the target's baseline; available everywhere.
    Portable,
}

impl Backend {
    /// All backends, fastest first.
    pub const ALL: [Backend; 3] = [Backend::Avx512, Backend::Avx2, Backend::Portable];

    /// The fastest backend this CPU supports.
    pub fn detect() -> Backend {
        Self::ALL
            .into_iter()
            .find(|backend| backend.available())
            .unwrap_or(Backend::Portable)
    }

    /// Whether this CPU supports the backend (detected at run time).
    pub fn available(self) -> bool {
        match self {
            Backend::Portable => true,
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Backend::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx2")
            }
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Backend::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
            Backend::Avx512 | Backend::Avx2 => false,
        }
    }

    /// Short lower-case name (`avx512`, `avx2`, `portable`).
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Avx512 => "avx512",
            Backend::Avx2 => "avx2",
            Backend::Portable => "portable",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
