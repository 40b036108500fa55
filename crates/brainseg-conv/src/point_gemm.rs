//! Winograd's point GEMMs in micro-kernels of our own on AVX-512: for each of the 64 transform
//! points, `sums[co][t] += kernel[co][ci] . values[ci][t]`, tiles along the vectors, output
//! channels in registers, input channels summed in order.
//!
//! - f32 ([`point_gemm_f32`], every AVX-512 CPU): FMA. The `gemm` crate's AVX-512 kernels (its
//!   `x86-v4` feature) were as fast here but slowed the weight gradient's dot-product-shaped
//!   GEMMs by a third, so the crate keeps its AVX2 kernels for those and these shapes get these.
//! - bf16 ([`PointGemm`], CPUs with AVX512_BF16, forward passes and input gradients when
//!   [`use_bf16`] is on):
//!   `vdpbf16ps`, 32 products per instruction where an f32 FMA does 16. Both operands are rounded
//!   to bf16 (round to nearest even, 8 significant bits, as `vcvtne2ps2bf16` does) after the
//!   Winograd transforms; every sum, the transforms and everything outside the GEMMs stay f32.
//!   `vdpbf16ps` multiplies pairs along the summed axis (input channels), so the kernel is packed
//!   as `[64][Cout][Cin / 2]` pairs and each block's transformed input as `[64][Cin / 2][tiles]`
//!   pairs, both as `u32` (low half the even channel; the transforms write the latter directly,
//!   with [`pack_pair`]); an odd channel count pairs the last channel with zero. Off unless [`use_bf16`] turns it on (inference asks for it by default,
//!   training when told to; the weight gradient stays f32 either way): bf16 rounding moves results
//!   by about 1e-2 relative, f32 by 1e-7.
use std::sync::atomic::{AtomicBool, Ordering};

static BF16: AtomicBool = AtomicBool::new(false);

/// Whether this CPU multiplies in bf16 (AVX512_BF16 with AVX-512 F and BW).
pub fn bf16_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Makes forward passes and input gradients multiply in bf16 where [`bf16_supported`] (`true`)
/// or in f32 (`false`, the default), process-wide. Returns whether bf16 is now in use.
pub fn use_bf16(on: bool) -> bool {
    let on = on && bf16_supported();
    BF16.store(on, Ordering::Relaxed);
    on
}

/// Whether forward passes multiply in bf16 now.
pub fn bf16_in_use() -> bool {
    BF16.load(Ordering::Relaxed)
}

/// Whether [`point_gemm_f32`] runs on this CPU (AVX-512 F).
pub(crate) fn f32_kernel_available() -> bool {
    // std caches the detection: this is a load and a test.
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One block's f32 point GEMMs: for each point `p`, output channel `co < co_count` and tile
/// `t < tiles`, `sums[(co * 64 + p) * tiles + t] (+)= sum over ci < run_len of
/// kernel[(p * cout + co0 + co) * cin + c0 + ci] * values[(ci * 64 + p) * tiles + t]`, the sum
/// in channel order; overwrites when `accumulate` is false. Needs [`f32_kernel_available`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn point_gemm_f32(
    kernel: &[f32],
    [cout, cin]: [usize; 2],
    [co0, co_count]: [usize; 2],
    [c0, run_len]: [usize; 2],
    values: &[f32],
    tiles: usize,
    sums: &mut [f32],
    accumulate: bool,
) {
    assert!(f32_kernel_available());
    assert!(kernel.len() >= 64 * cout * cin && co0 + co_count <= cout && c0 + run_len <= cin);
    assert!(values.len() >= run_len * 64 * tiles && sums.len() >= co_count * 64 * tiles);
    #[cfg(target_arch = "x86_64")]
    for point in 0..64 {
        // SAFETY: AVX-512 F is present (asserted); the asserts above bound every access.
        unsafe {
            x86::gemm_f32(
                co_count,
                tiles,
                run_len,
                kernel.as_ptr().add((point * cout + co0) * cin + c0),
                cin,
                values.as_ptr().add(point * tiles),
                64 * tiles,
                sums.as_mut_ptr().add(point * tiles),
                64 * tiles,
                accumulate,
            );
        }
    }
}

/// `[64][Cout][Cin]` f32 kernel points to `[64][Cout][ceil(Cin / 2)]` bf16 pairs.
pub(crate) fn pack_kernel(kernel: &[f32], cin: usize) -> Vec<u32> {
    let pairs = cin.div_ceil(2);
    let rows = kernel.len() / cin;
    let mut packed = vec![0u32; rows * pairs];
    for (row, out) in kernel.chunks_exact(cin).zip(packed.chunks_exact_mut(pairs)) {
        for (pair, value) in out.iter_mut().enumerate() {
            let low = to_bf16(row[2 * pair]);
            let high = row.get(2 * pair + 1).map_or(0, |&v| to_bf16(v));
            *value = low as u32 | (high as u32) << 16;
        }
    }
    packed
}

/// f32 to bf16 bits, rounding to nearest even (NaN stays a quiet NaN). The kernel is packed with
/// this; the instruction packing the inputs rounds the same way but flushes subnormals to zero.
pub(crate) fn to_bf16(value: f32) -> u16 {
    let bits = value.to_bits();
    if value.is_nan() {
        return (bits >> 16) as u16 | 0x40;
    }
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// One block's point GEMMs in bf16: for each of the 64 points `p`,
/// `sums[co][p][t] (+)= sum over pairs k of kernel[p][co0 + co][k0 + k] . values[p][k][t]`.
pub(crate) struct PointGemm<'a> {
    /// The packed kernel `[64][Cout][Cin pairs]` (from [`pack_kernel`]).
    pub kernel: &'a [u32],
    pub kernel_pairs: usize,
    pub cout: usize,
    /// The output channels this block computes, `co0..co0 + co_count`.
    pub co0: usize,
    pub co_count: usize,
    /// The first pair of input channels of this run.
    pub k0: usize,
    pub tiles: usize,
}

impl PointGemm<'_> {
    /// Adds the products of this run's transformed input, `packed` (`[64][pairs][tiles]` bf16
    /// pairs, from [`pack_pair`] or the transforms that call it), into `sums`
    /// (`[co_count][64][tiles]`), overwriting them when `accumulate` is false.
    pub fn run(&self, packed: &[u32], pairs: usize, sums: &mut [f32], accumulate: bool) {
        let tiles = self.tiles;
        assert!(packed.len() >= 64 * pairs * tiles && sums.len() >= self.co_count * 64 * tiles);
        assert!(self.kernel.len() >= 64 * self.cout * self.kernel_pairs);
        assert!(self.k0 + pairs <= self.kernel_pairs && self.co0 + self.co_count <= self.cout);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a packed bf16 kernel is only made where the CPU has AVX512_BF16 (`use_bf16`);
        // the asserts above bound every access.
        unsafe {
            for point in 0..64 {
                x86::gemm_bf16(
                    self.co_count,
                    tiles,
                    pairs,
                    self.kernel
                        .as_ptr()
                        .add((point * self.cout + self.co0) * self.kernel_pairs + self.k0),
                    self.kernel_pairs,
                    packed.as_ptr().add(point * pairs * tiles),
                    tiles,
                    sums.as_mut_ptr().add(point * tiles),
                    64 * tiles,
                    accumulate,
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("bf16 is never in use off x86_64");
    }
}

/// Rounds `L` (16 at most) values of an even channel and of the odd one after it (zeros past an
/// odd channel count) to bf16 and stores them as `L` pairs, low half the even channel, at `out`.
///
/// # Safety
/// The CPU has AVX-512 F, BW and BF16; `even` and `odd` hold `L` floats, `out` room for `L`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
#[inline]
pub(crate) unsafe fn pack_pair<const L: usize>(
    even: *const f32,
    odd: Option<*const f32>,
    out: *mut u32,
) {
    x86::pack_pair::<L>(even, odd, out)
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // register blocks read best indexed
mod x86 {
    use std::arch::x86_64::*;

    /// See [`super::pack_pair`].
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    #[inline]
    pub(super) unsafe fn pack_pair<const L: usize>(
        even: *const f32,
        odd: Option<*const f32>,
        out: *mut u32,
    ) {
        // Word i of the result takes word INTERLEAVE[i] of (low: 16 even-channel, high: 16 odd).
        let interleave = _mm512_set_epi16(
            31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20,
            4, 19, 3, 18, 2, 17, 1, 16, 0,
        );
        let mask: __mmask16 = if L >= 16 { 0xffff } else { (1u16 << L) - 1 };
        let low = _mm512_maskz_loadu_ps(mask, even);
        let high = match odd {
            Some(odd) => _mm512_maskz_loadu_ps(mask, odd),
            None => _mm512_setzero_ps(),
        };
        let both = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(high, low));
        let pairs = _mm512_permutexvar_epi16(interleave, both);
        _mm512_mask_storeu_epi32(out as *mut i32, mask, pairs);
    }

    /// Rows of output channels per micro-kernel call.
    const ROWS: usize = 8;

    /// One point's GEMM: `sums[co * sum_row + t] (+)= sum over k < depth of
    /// kernel[co * kernel_row + k] . values[k * value_row + t]` for `co < rows_total`,
    /// `t < tiles`; each `k` a pair of bf16 channels (`u32`).
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gemm_bf16(
        rows_total: usize,
        tiles: usize,
        depth: usize,
        kernel: *const u32,
        kernel_row: usize,
        values: *const u32,
        value_row: usize,
        sums: *mut f32,
        sum_row: usize,
        accumulate: bool,
    ) {
        let a = Args {
            kernel,
            kernel_row,
            values,
            value_row,
            sums,
            sum_row,
            depth,
            accumulate,
        };
        gemm::<true>(rows_total, tiles, a)
    }

    /// [`gemm_bf16`] in f32 with FMA (AVX-512 F only): each `k` one channel.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn gemm_f32(
        rows_total: usize,
        tiles: usize,
        depth: usize,
        kernel: *const f32,
        kernel_row: usize,
        values: *const f32,
        value_row: usize,
        sums: *mut f32,
        sum_row: usize,
        accumulate: bool,
    ) {
        let a = Args {
            kernel: kernel as *const u32,
            kernel_row,
            values: values as *const u32,
            value_row,
            sums,
            sum_row,
            depth,
            accumulate,
        };
        gemm::<false>(rows_total, tiles, a)
    }

    /// The operands of [`gemm_bf16`] / [`gemm_f32`] (f32 bits read as `u32`).
    #[derive(Clone, Copy)]
    struct Args {
        kernel: *const u32,
        kernel_row: usize,
        values: *const u32,
        value_row: usize,
        sums: *mut f32,
        sum_row: usize,
        depth: usize,
        accumulate: bool,
    }

    #[inline(always)]
    unsafe fn gemm<const BF16: bool>(rows_total: usize, tiles: usize, a: Args) {
        let mut t = 0;
        while t < tiles {
            let left = tiles - t;
            let mut co = 0;
            while co < rows_total {
                let rows = (rows_total - co).min(ROWS);
                let at = Args {
                    kernel: a.kernel.add(co * a.kernel_row),
                    values: a.values.add(t),
                    sums: a.sums.add(co * a.sum_row + t),
                    ..a
                };
                macro_rules! call {
                    ($chunks:literal) => {
                        match rows {
                            8 => block::<8, $chunks, BF16>(at, left),
                            7 => block::<7, $chunks, BF16>(at, left),
                            6 => block::<6, $chunks, BF16>(at, left),
                            5 => block::<5, $chunks, BF16>(at, left),
                            4 => block::<4, $chunks, BF16>(at, left),
                            3 => block::<3, $chunks, BF16>(at, left),
                            2 => block::<2, $chunks, BF16>(at, left),
                            _ => block::<1, $chunks, BF16>(at, left),
                        }
                    };
                }
                match left {
                    49.. => call!(4),
                    33..=48 => call!(3),
                    17..=32 => call!(2),
                    _ => call!(1),
                }
                co += rows;
            }
            t += 64;
        }
    }

    /// `R` rows of output channels by `C` chunks of 16 tiles (the last chunk masked to `left`).
    #[inline(always)]
    unsafe fn block<const R: usize, const C: usize, const BF16: bool>(a: Args, left: usize) {
        let mut masks = [0xffffu16; C];
        for (c, mask) in masks.iter_mut().enumerate() {
            let lanes = left.saturating_sub(16 * c).min(16);
            *mask = if lanes == 16 {
                0xffff
            } else {
                (1u16 << lanes) - 1
            };
        }
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        if a.accumulate {
            for r in 0..R {
                for c in 0..C {
                    acc[r][c] = _mm512_maskz_loadu_ps(masks[c], a.sums.add(r * a.sum_row + 16 * c));
                }
            }
        }
        for k in 0..a.depth {
            let mut v = [_mm512_setzero_si512(); C];
            for c in 0..C {
                let at = a.values.add(k * a.value_row + 16 * c) as *const i32;
                v[c] = _mm512_maskz_loadu_epi32(masks[c], at);
            }
            for r in 0..R {
                let w = _mm512_set1_epi32(*a.kernel.add(r * a.kernel_row + k) as i32);
                for c in 0..C {
                    acc[r][c] = if BF16 {
                        _mm512_dpbf16_ps(
                            acc[r][c],
                            std::mem::transmute::<__m512i, __m512bh>(w),
                            std::mem::transmute::<__m512i, __m512bh>(v[c]),
                        )
                    } else {
                        _mm512_fmadd_ps(
                            _mm512_castsi512_ps(w),
                            _mm512_castsi512_ps(v[c]),
                            acc[r][c],
                        )
                    };
                }
            }
        }
        for r in 0..R {
            for c in 0..C {
                _mm512_mask_storeu_ps(a.sums.add(r * a.sum_row + 16 * c), masks[c], acc[r][c]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_bf16_is_to_nearest_even() {
        // bf16 keeps 8 significant bits: 1 + 2^-7 is the next value after 1.
        let one = 0x3f80;
        assert_eq!(to_bf16(1.0), one);
        assert_eq!(to_bf16(1.0 + 2f32.powi(-9)), one); // a quarter step: down
        assert_eq!(to_bf16(1.0 + 2f32.powi(-8)), one); // half a step from an even value: down
        assert_eq!(to_bf16(1.0 + 3.0 * 2f32.powi(-8)), one + 2); // half a step from odd: up, to even
        assert_eq!(to_bf16(1.0 + 3.0 * 2f32.powi(-9)), one + 1); // three quarters: up
        assert_eq!(to_bf16(-2.5), 0xc020);
        assert!(f32::from_bits((to_bf16(f32::NAN) as u32) << 16).is_nan());
    }

    #[test]
    fn packed_kernel_pairs_channels_and_pads_an_odd_one() {
        // One row of 3 input channels: pairs (1.0, 2.0) and (3.0, 0).
        let packed = pack_kernel(&[1.0, 2.0, 3.0], 3);
        assert_eq!(packed, vec![0x4000_3f80, 0x0000_4040]);
    }

    #[test]
    fn f32_point_gemm_is_the_fused_sum_in_channel_order() {
        if !f32_kernel_available() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        // 9 of 11 output channels from the 2nd (a block of 8 and one of 1), channels 3..8 of 10,
        // 70 tiles (64 + 6): each sum equals, bit for bit, fused multiply-adds in channel order
        // starting from the accumulator's value.
        let (cout, cin, tiles, (co0, co_count), (c0, run_len)) = (11, 10, 70, (2, 9), (3, 5));
        let value = |i: usize| ((i * 7919 % 1009) as f32 - 504.0) / 97.0;
        let kernel: Vec<f32> = (0..64 * cout * cin).map(|i| value(i + 5)).collect();
        let values: Vec<f32> = (0..run_len * 64 * tiles).map(value).collect();
        let start: Vec<f32> = (0..co_count * 64 * tiles).map(|i| value(i + 11)).collect();
        let mut sums = start.clone();
        point_gemm_f32(
            &kernel,
            [cout, cin],
            [co0, co_count],
            [c0, run_len],
            &values,
            tiles,
            &mut sums,
            true,
        );
        for co in 0..co_count {
            for point in 0..64 {
                for t in 0..tiles {
                    let at = (co * 64 + point) * tiles + t;
                    let expected = (0..run_len).fold(start[at], |acc, ci| {
                        kernel[(point * cout + co0 + co) * cin + c0 + ci]
                            .mul_add(values[(ci * 64 + point) * tiles + t], acc)
                    });
                    assert_eq!(sums[at].to_bits(), expected.to_bits(), "{co} {point} {t}");
                }
            }
        }
    }

    #[test]
    fn point_gemm_is_the_sum_of_bf16_products() {
        if !bf16_supported() {
            eprintln!("skipped: this CPU has no AVX512_BF16");
            return;
        }
        // 7 output channels (a block of 6 and one of 1), 5 input channels (an odd pair), 37
        // tiles (chunks of 16, 16 and 5): every sum against one computed from the rounded
        // operands in f64, where each bf16 product is exact.
        let (cout, cin, tiles) = (7, 5, 37);
        let value = |i: usize| ((i * 7919 % 1009) as f32 - 504.0) / 97.0;
        let kernel: Vec<f32> = (0..64 * cout * cin).map(|i| value(i + 3)).collect();
        let values: Vec<f32> = (0..cin * 64 * tiles).map(value).collect();
        let rounded = |v: f32| f32::from_bits((to_bf16(v) as u32) << 16) as f64;
        let packed_kernel = pack_kernel(&kernel, cin);
        let gemm = PointGemm {
            kernel: &packed_kernel,
            kernel_pairs: cin.div_ceil(2),
            cout,
            co0: 0,
            co_count: cout,
            k0: 0,
            tiles,
        };
        let mut sums = vec![1.0f32; cout * 64 * tiles];
        // [cin][64][tiles] to [64][pairs][tiles], 16 tiles and then single ones at a time.
        let pairs = cin.div_ceil(2);
        let mut packed = vec![0u32; 64 * pairs * tiles];
        for point in 0..64 {
            for pair in 0..pairs {
                let at = |ci: usize, t: usize| values[(ci * 64 + point) * tiles + t..].as_ptr();
                let out = &mut packed[(point * pairs + pair) * tiles..];
                for t in 0..tiles {
                    let (even, odd) = (
                        at(2 * pair, t),
                        (2 * pair + 1 < cin).then(|| at(2 * pair + 1, t)),
                    );
                    // SAFETY: the CPU has AVX512_BF16 (checked above); 16 or 1 values are in bounds.
                    unsafe {
                        if t % 16 == 0 && t + 16 <= tiles {
                            pack_pair::<16>(even, odd, out[t..].as_mut_ptr());
                        } else if t < tiles / 16 * 16 {
                            continue;
                        } else {
                            pack_pair::<1>(even, odd, out[t..].as_mut_ptr());
                        }
                    }
                }
            }
        }
        gemm.run(&packed, pairs, &mut sums, true);
        for co in 0..cout {
            for point in 0..64 {
                for t in 0..tiles {
                    let expected: f64 = 1.0
                        + (0..cin)
                            .map(|ci| {
                                rounded(kernel[(point * cout + co) * cin + ci])
                                    * rounded(values[(ci * 64 + point) * tiles + t])
                            })
                            .sum::<f64>();
                    let got = sums[(co * 64 + point) * tiles + t] as f64;
                    assert!(
                        (got - expected).abs() <= 1e-5 * expected.abs().max(1.0),
                        "{co} {point} {t}: {got} vs {expected}"
                    );
                }
            }
        }
    }
}
