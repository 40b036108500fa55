//! The data caches of the CPU the kernels run on, read with `cpuid`, and the block sizes that
//! follow from them.
//!
//! The block sizes were measured on an AMD Zen 4 core ([`CacheSizes::TUNED`]: 32 KiB L1d, 1 MiB
//! L2); another CPU gets blocks in proportion to its own caches (an Intel Xeon with 48 KiB L1d and
//! 2 MiB L2: 72 tiles per Winograd block instead of 48, 256 Ki accumulator floats instead of 128 Ki).
//! Only blocks that split independent outputs follow the caches, and the Winograd blocks only where
//! our AVX-512 point GEMMs run: every output still sums the same terms in the same order, so our
//! block sizes never change a bit (tested). The blocks that split a sum (the weight gradients' runs
//! of tiles and positions) keep fixed sizes. (The `gemm` crate, which runs the direct path and the
//! weight gradients, picks its own inner blocks from its own cache detection.)
//!
//! Sizes are as cpuid reports them: a cache's whole size, shared or not (on the CPUs seen so far
//! L1d and L2 belong to one core and its SMT sibling).
use std::sync::OnceLock;

/// Data cache sizes in bytes, as cpuid reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSizes {
    pub l1d: usize,
    pub l2: usize,
}

impl CacheSizes {
    /// The caches the block sizes were measured with (AMD Zen 4), and what a CPU whose caches
    /// cannot be read is taken to have.
    pub const TUNED: CacheSizes = CacheSizes {
        l1d: 32 << 10,
        l2: 1 << 20,
    };

    /// This CPU's caches (read once), or [`CacheSizes::TUNED`] where `cpuid` does not tell.
    pub fn detected() -> CacheSizes {
        Self::read().unwrap_or(CacheSizes::TUNED)
    }

    /// This CPU's caches (read once), or `None` where `cpuid` does not tell.
    pub fn read() -> Option<CacheSizes> {
        static READ: OnceLock<Option<CacheSizes>> = OnceLock::new();
        *READ.get_or_init(read)
    }

    /// Tiles per block of a Winograd forward pass or input gradient: 48 with a 32 KiB L1d (faster
    /// than 16-32 and 96-512 by 5-25% on the seed U-Net's layers, Zen 4), in proportion to the
    /// L1d otherwise, since each transform point's operands (channels x tiles) should stay in it.
    pub(crate) fn winograd_tiles(self) -> usize {
        (48 * self.l1d / Self::TUNED.l1d).clamp(16, 192)
    }

    /// Accumulator floats per position tile of the direct path's forward passes and input
    /// gradients: half the L2, leaving room for the packed GEMM operands.
    pub(crate) fn direct_tile_floats(self) -> usize {
        (self.l2 / 2 / size_of::<f32>()).clamp(32 << 10, 1 << 20)
    }
}

/// `cpuid`'s deterministic cache parameters: leaf 4 (Intel and others) or 0x8000001D (AMD, with
/// topology extensions). `None` where neither answers for a level-1 data and a level-2 cache.
#[cfg(target_arch = "x86_64")]
// Newer Rust makes cpuid a safe function; older compilers within the MSRV want `unsafe`.
#[allow(unused_unsafe)]
fn read() -> Option<CacheSizes> {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // SAFETY: every x86-64 CPU has cpuid, and leaves above the maximum it reports are not asked.
    let vendor = unsafe { __cpuid(0) };
    let leaf = if [vendor.ebx, vendor.edx, vendor.ecx] == [0x6874_7541, 0x6974_6e65, 0x444d_4163] {
        // "AuthenticAMD": leaf 0x8000001D needs the topology extensions (0x80000001 ECX bit 22).
        let extended = unsafe { __cpuid(0x8000_0000) }.eax;
        let topology =
            extended >= 0x8000_001D && unsafe { __cpuid(0x8000_0001) }.ecx & (1 << 22) != 0;
        if !topology {
            return None;
        }
        0x8000_001D
    } else if vendor.eax >= 4 {
        4
    } else {
        return None;
    };
    let (mut l1d, mut l2) = (None, None);
    for subleaf in 0..16 {
        let r = unsafe { __cpuid_count(leaf, subleaf) };
        let (kind, level) = (r.eax & 0x1f, (r.eax >> 5) & 0x7);
        if kind == 0 {
            break;
        }
        let ways = ((r.ebx >> 22) & 0x3ff) as usize + 1;
        let partitions = ((r.ebx >> 12) & 0x3ff) as usize + 1;
        let line = (r.ebx & 0xfff) as usize + 1;
        let sets = r.ecx as usize + 1;
        let size = ways * partitions * line * sets;
        // Kinds: 1 data, 2 instruction, 3 unified.
        match (level, kind) {
            (1, 1) => l1d = Some(size),
            (2, 1 | 3) => l2 = Some(size),
            _ => {}
        }
    }
    Some(CacheSizes { l1d: l1d?, l2: l2? })
}

#[cfg(not(target_arch = "x86_64"))]
fn read() -> Option<CacheSizes> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_follow_the_caches() {
        assert_eq!(CacheSizes::TUNED.winograd_tiles(), 48);
        assert_eq!(CacheSizes::TUNED.direct_tile_floats(), 128 * 1024);
        let xeon = CacheSizes {
            l1d: 48 << 10,
            l2: 2 << 20,
        };
        assert_eq!(xeon.winograd_tiles(), 72);
        assert_eq!(xeon.direct_tile_floats(), 256 * 1024);
    }

    /// Where Linux lists the caches, `cpuid` agrees with it.
    #[test]
    fn cpuid_agrees_with_linux() {
        let index = |i: usize, file: &str| {
            std::fs::read_to_string(format!(
                "/sys/devices/system/cpu/cpu0/cache/index{i}/{file}"
            ))
            .map(|s| s.trim().to_string())
        };
        let mut listed = (None, None);
        for i in 0..8 {
            let (Ok(level), Ok(kind), Ok(size)) =
                (index(i, "level"), index(i, "type"), index(i, "size"))
            else {
                continue;
            };
            let Some(kib) = size.strip_suffix('K').and_then(|k| k.parse::<usize>().ok()) else {
                continue;
            };
            match (level.as_str(), kind.as_str()) {
                ("1", "Data") => listed.0 = Some(kib << 10),
                ("2", "Unified" | "Data") => listed.1 = Some(kib << 10),
                _ => {}
            }
        }
        let (Some(l1d), Some(l2)) = listed else {
            eprintln!("skipped: Linux lists no L1d and L2 here");
            return;
        };
        if cfg!(target_arch = "x86_64") {
            assert_eq!(read(), Some(CacheSizes { l1d, l2 }));
        }
    }
}
