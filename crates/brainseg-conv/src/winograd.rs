//! Winograd F(2x2x2, 3x3x3): all three passes of the 3x3x3 convolution with 8 multiplications
//! per output voxel and channel pair instead of 27 (Lavin & Gray 2016, in three dimensions).
//!
//! Forward (and the input gradient, a forward pass with the flipped kernel): the output is cut
//! into 2x2x2 tiles. Each tile's 4x4x4 input window is transformed (`B^T d B` along each axis),
//! multiplied point by point with the transformed kernel (`G g G^T`), summed over input channels,
//! and transformed back (`A^T m A`). The sum over channels at each of the 64 transform points is
//! a GEMM, `M[p] = U[p] V[p]`, so the multiplications run in the `gemm` crate's micro-kernels at
//! 8/27 of the direct pass's work. The weight gradient is the same algorithm transposed (see
//! [`Winograd::weight_grad`]). The transforms use only 0, +-1 and +-1/2, so the result is f32
//! arithmetic whose rounding error stays within about twice the direct sum's (tested against an
//! f64 definition).
//!
//! Work goes in blocks of about [`CacheSizes::winograd_tiles`] tiles (whole rows of tiles along
//! the innermost axis): a block transforms a run of input channels into a per-thread scratch buffer, runs the
//! 64 GEMMs into its accumulator, and after the last run transforms the accumulator into the
//! output. The padded input stores the even and odd positions of the innermost axis apart, so
//! the transforms are contiguous vector arithmetic, compiled for AVX-512, AVX2 or neither and
//! chosen at run time.
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

use crate::caches::CacheSizes;
use crate::{fixed_order_sum, room_for, zeroed, InputPart, SharedMut, MIN_TASKS, PARTIAL_SUMS};

/// Floats of transformed input per block and channel run (4 MiB): with 48 tiles, runs of up to
/// 341 input channels (227 with 72), so most layers sum all channels in one GEMM per point.
const SCRATCH_FLOATS: usize = 1 << 20;

/// Tiles per block of the weight gradient at most: its GEMMs sum over tiles, so longer blocks
/// mean fewer passes over the point sums. Fixed, not from the caches: the blocks split the sum.
const WEIGHT_TARGET_TILES: usize = 128;

/// Floats of transformed input and gradient per block of the weight gradient (8 MiB).
const WEIGHT_SCRATCH_FLOATS: usize = 1 << 21;

/// Lanes processed together in the transforms (one AVX-512 register, two AVX2 ones).
const LANES: usize = 16;

/// Transform points per tile.
const POINTS: usize = 64;

/// Calls `chunk::<L, G..>(args)` for `u` over the `tiles` tiles of a row, `L` lanes at a time:
/// 16, then 8, 4 and single tiles for the rest (`args` may use `u`; `G..` are further generics).
macro_rules! along_row {
    ($tiles:expr, $u:ident, $chunk:ident $(::<$($generic:tt),*>)? ($($arg:expr),* $(,)?)) => {{
        let mut $u = 0;
        while $u + LANES <= $tiles {
            $chunk::<LANES $($(, $generic)*)?>($($arg),*);
            $u += LANES;
        }
        if $u + 8 <= $tiles {
            $chunk::<8 $($(, $generic)*)?>($($arg),*);
            $u += 8;
        }
        if $u + 4 <= $tiles {
            $chunk::<4 $($(, $generic)*)?>($($arg),*);
            $u += 4;
        }
        while $u < $tiles {
            $chunk::<1 $($(, $generic)*)?>($($arg),*);
            $u += 1;
        }
    }};
}

/// The sizes of one Winograd convolution and the layout of its padded input.
pub(crate) struct Winograd {
    batch: usize,
    channels_in: usize,
    channels_out: usize,
    /// Spatial sizes along the permuted axes (outer A, middle B, inner C).
    sizes: [usize; 3],
    /// Tiles along each permuted axis.
    tiles: [usize; 3],
    /// Stride of each permuted axis in the `[X, Y, Z]` source layout.
    source_strides: [usize; 3],
    /// The source axis (0 = X, 1 = Y, 2 = Z) behind each permuted axis.
    order: [usize; 3],
    /// The instruction set the transforms run with.
    isa: Isa,
    /// Tiles per block of [`Winograd::run`] (from the caches; the result does not depend on it).
    target_tiles: usize,
}

impl Winograd {
    pub(crate) fn new(
        batch: usize,
        channels_in: usize,
        channels_out: usize,
        size: [usize; 3],
    ) -> Self {
        // Vectors run along the innermost axis. Z, innermost in memory, serves when it has 8
        // voxels or more (then reads and writes are contiguous); a thinner Z gives way to the
        // longest axis, at the price of strided output writes.
        let mut order = [0usize, 1, 2];
        if size[2] < 8 {
            order.sort_by_key(|&axis| size[axis]); // stable: ties keep X, Y, Z order
        }
        let strides = [size[1] * size[2], size[2], 1];
        Winograd {
            batch,
            channels_in,
            channels_out,
            sizes: order.map(|axis| size[axis]),
            tiles: order.map(|axis| size[axis].div_ceil(2)),
            source_strides: order.map(|axis| strides[axis]),
            order,
            isa: Isa::detect(),
            // Our AVX-512 point GEMMs add each channel in order into the stored sums, so the block
            // size cannot change a bit; the gemm crate's fallback sums each channel run apart and
            // the runs' length follows the block, so there the tuned size stays.
            target_tiles: if crate::point_gemm::f32_kernel_available() {
                CacheSizes::detected()
            } else {
                CacheSizes::TUNED
            }
            .winograd_tiles(),
        }
    }

    /// The same plan with `tiles` tiles per block (tests: results must not depend on it).
    #[cfg(test)]
    pub(crate) fn with_target_tiles(mut self, tiles: usize) -> Self {
        self.target_tiles = tiles;
        self
    }

    fn voxels(&self) -> usize {
        self.sizes.iter().product()
    }

    /// Floats per padded row along C: even positions, then odd ones, `tiles[2] + 1` each.
    fn row_len(&self) -> usize {
        2 * (self.tiles[2] + 1)
    }

    /// Padded rows along B.
    fn rows_b(&self) -> usize {
        2 * self.tiles[1] + 2
    }

    fn padded_channel(&self) -> usize {
        (2 * self.tiles[0] + 2) * self.rows_b() * self.row_len()
    }

    /// The tap of the `[Cout, Cin, 3, 3, 3]` kernel (`kx * 9 + ky * 3 + kz`) behind each tap
    /// `(a, b, c)` of the permuted axes; with `flip`, every axis reversed.
    fn source_taps(&self, flip: bool) -> [usize; 27] {
        let mut source_taps = [0usize; 27];
        for (index, source_tap) in source_taps.iter_mut().enumerate() {
            let permuted = [index / 9, index / 3 % 3, index % 3];
            let mut tap = [0usize; 3];
            for q in 0..3 {
                tap[self.order[q]] = permuted[q];
            }
            let tap = tap[0] * 9 + tap[1] * 3 + tap[2];
            *source_tap = if flip { 26 - tap } else { tap };
        }
        source_taps
    }

    /// The kernel `[Cout, Cin, 3, 3, 3]` transformed to `[64][Cout][Cin]` (`G g G^T` per axis,
    /// on the permuted axes). With `flip`, `weight` is the forward kernel of the convolution whose
    /// input gradient this one computes, `[Cin, Cout, 3, 3, 3]` in this plan's channels, and is
    /// read with every axis reversed.
    pub(crate) fn transform_kernel(&self, weight: &[f32], flip: bool) -> Vec<f32> {
        let (cin, cout) = (self.channels_in, self.channels_out);
        let source_taps = self.source_taps(flip);
        let mut transformed = zeroed(POINTS * cout * cin);
        let transformed_ptr = SharedMut(transformed.as_mut_ptr());
        // One output channel per task, vectors across input channels: rows of `cin` floats.
        (0..cout).into_par_iter().for_each(|co| {
            let mut taps = vec![0.0f32; 27 * cin]; // [a][b][c]
            for ci in 0..cin {
                let kernel = if flip {
                    (ci * cout + co) * 27
                } else {
                    (co * cin + ci) * 27
                };
                for (t, &source_tap) in source_taps.iter().enumerate() {
                    taps[t * cin + ci] = weight[kernel + source_tap];
                }
            }
            let mut along_c = vec![0.0f32; 36 * cin]; // [a][b][p]
            for line in 0..9 {
                kernel_transform(
                    &taps,
                    [3 * line, 3 * line + 1, 3 * line + 2],
                    &mut along_c[4 * line * cin..][..4 * cin],
                    cin,
                );
            }
            let mut along_b = vec![0.0f32; 48 * cin]; // [a][q][p]
            let mut column = vec![0.0f32; 4 * cin];
            for a in 0..3 {
                for p in 0..4 {
                    let rows = [(a * 3) * 4 + p, (a * 3 + 1) * 4 + p, (a * 3 + 2) * 4 + p];
                    kernel_transform(&along_c, rows, &mut column, cin);
                    for q in 0..4 {
                        along_b[(a * 16 + q * 4 + p) * cin..][..cin]
                            .copy_from_slice(&column[q * cin..][..cin]);
                    }
                }
            }
            for qp in 0..16 {
                kernel_transform(&along_b, [qp, 16 + qp, 32 + qp], &mut column, cin);
                for i in 0..4 {
                    let point = i * 16 + qp;
                    // SAFETY: row (point, co) of `transformed` ([64][Cout][Cin]) belongs to this task.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            column[i * cin..].as_ptr(),
                            transformed_ptr.get().add((point * cout + co) * cin),
                            cin,
                        )
                    };
                }
            }
        });
        transformed
    }

    /// `[B, C, X, Y, Z]` onto the zero-padded, permuted, parity-split grid, `[B, C, padded]`.
    fn pad(&self, source: &[f32], channels: usize) -> Vec<f32> {
        self.pad_parts(
            &[InputPart::Full {
                values: source,
                channels,
            }],
            1,
        )
    }

    /// [`Winograd::pad`] of the `batch` inputs made of `parts` along the channels, an upsampled
    /// part read block by block: `[batch, channels of all parts, padded]`.
    fn pad_parts(&self, parts: &[InputPart], batch: usize) -> Vec<f32> {
        let row_len = self.row_len();
        let half = self.tiles[2] + 1;
        // Padded offset of each coordinate along each permuted axis (padding 1 in front).
        let offsets: [Vec<usize>; 3] = [
            (0..self.sizes[0])
                .map(|i| (i + 1) * self.rows_b() * row_len)
                .collect(),
            (0..self.sizes[1]).map(|i| (i + 1) * row_len).collect(),
            (1..=self.sizes[2]).map(|p| p % 2 * half + p / 2).collect(),
        ];
        // The same tables indexed by source axis.
        let mut by_source: [&[usize]; 3] = [&[], &[], &[]];
        for q in 0..3 {
            by_source[self.order[q]] = &offsets[q];
        }
        let [ox, oy, oz] = by_source;
        let voxels = self.voxels();
        // Each padded channel's source: one channel of one part.
        let sources: Vec<(&[f32], bool)> = (0..batch)
            .flat_map(|b| {
                parts.iter().flat_map(move |part| {
                    let (values, channels, upsampled) = part.layout();
                    let len = if upsampled { voxels / 8 } else { voxels };
                    (0..channels)
                        .map(move |c| (&values[(b * channels + c) * len..][..len], upsampled))
                })
            })
            .collect();
        let padded_channel = self.padded_channel();
        let len = sources.len() * padded_channel;
        let mut grid = room_for(len);
        let in_memory_order = self.order == [0, 1, 2];
        grid.spare_capacity_mut()[..len]
            .par_chunks_mut(padded_channel)
            .zip(sources.par_iter())
            .for_each(|(dst, &(src, upsampled))| {
                if in_memory_order {
                    // Rows of the source are rows of the grid: each padded row written whole.
                    self.pad_channel(src, upsampled, dst);
                    return;
                }
                dst.fill(MaybeUninit::new(0.0));
                // SAFETY: every float of `dst` was just initialised.
                let dst = unsafe { &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32]) };
                if upsampled {
                    // Voxel (x, y, z) takes the value at (x / 2, y / 2, z / 2).
                    let (ly, lz) = (oy.len() / 2, oz.len() / 2);
                    for (x, &xo) in ox.iter().enumerate() {
                        for (y, &yo) in oy.iter().enumerate() {
                            let row = &src[((x / 2) * ly + y / 2) * lz..][..lz];
                            let base = xo + yo;
                            for (z, &zo) in oz.iter().enumerate() {
                                dst[base + zo] = row[z / 2];
                            }
                        }
                    }
                    return;
                }
                let mut rows = src.chunks_exact(oz.len());
                for &x in ox {
                    for &y in oy {
                        let row = rows.next().expect("voxel count");
                        let base = x + y;
                        for (&z, &value) in oz.iter().zip(row) {
                            dst[base + z] = value;
                        }
                    }
                }
            });
        // SAFETY: the tasks above initialised every float of the `len`.
        unsafe { grid.set_len(len) };
        grid
    }

    /// One padded channel of [`Winograd::pad_parts`] whole, zeros included, when the permuted
    /// axes are the source's (`order` X, Y, Z): planes and rows of padding are zeroed, and each
    /// padded row holds position `p = z + 1` at slot `p / 2` of its even or odd half.
    fn pad_channel(&self, src: &[f32], upsampled: bool, dst: &mut [MaybeUninit<f32>]) {
        let zero = MaybeUninit::new(0.0f32);
        let [na, nb, nc] = self.sizes;
        let (row_len, half) = (self.row_len(), self.tiles[2] + 1);
        let plane_len = self.rows_b() * row_len;
        let pairs = nc / 2;
        debug_assert!(
            !upsampled || nc % 2 == 0,
            "an upsampled part has even sizes"
        );
        for (pa, plane) in dst.chunks_exact_mut(plane_len).enumerate() {
            if pa == 0 || pa > na {
                plane.fill(zero);
                continue;
            }
            let a = pa - 1;
            for (pb, padded_row) in plane.chunks_exact_mut(row_len).enumerate() {
                if pb == 0 || pb > nb {
                    padded_row.fill(zero);
                    continue;
                }
                let b = pb - 1;
                let (even, odd) = padded_row.split_at_mut(half);
                even[0] = zero; // p = 0, the padding in front
                if upsampled {
                    // z takes low[z / 2]: even slot j (z = 2j - 1) low[j - 1], odd slot j
                    // (z = 2j) low[j]. Upsampled sizes are even.
                    let low = &src[((a / 2) * (nb / 2) + b / 2) * pairs..][..pairs];
                    for (slot, &value) in even[1..=pairs].iter_mut().zip(low) {
                        *slot = MaybeUninit::new(value);
                    }
                    for (slot, &value) in odd[..pairs].iter_mut().zip(low) {
                        *slot = MaybeUninit::new(value);
                    }
                } else {
                    // Even slot j holds z = 2j - 1, odd slot j holds z = 2j.
                    let row = &src[(a * nb + b) * nc..][..nc];
                    for ((two, odd_slot), even_slot) in row
                        .chunks_exact(2)
                        .zip(odd.iter_mut())
                        .zip(even[1..].iter_mut())
                    {
                        *odd_slot = MaybeUninit::new(two[0]);
                        *even_slot = MaybeUninit::new(two[1]);
                    }
                    if nc % 2 == 1 {
                        odd[pairs] = MaybeUninit::new(row[nc - 1]);
                    }
                }
                // The padding behind: p = nc + 1 and the slot an odd size leaves over.
                even[pairs + 1..].fill(zero);
                odd[nc.div_ceil(2)..].fill(zero);
            }
        }
    }

    /// `out = conv(input) (+ bias)`, with the transformed kernel `kernel` (`[64][Cout][Cin]`,
    /// from [`Winograd::transform_kernel`]). `input` is `[B, Cin, X, Y, Z]`; returns
    /// `[B, Cout, X, Y, Z]`.
    /// With `bf16_kernel` (the kernel packed by [`crate::point_gemm::pack_kernel`]), the point GEMMs
    /// multiply in bf16.
    pub(crate) fn run(
        &self,
        input: &[f32],
        kernel: &[f32],
        bf16_kernel: Option<&[u32]>,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        let input = InputPart::Full {
            values: input,
            channels: self.channels_in,
        };
        self.run_parts(&[input], kernel, bf16_kernel, bias)
    }

    /// [`Winograd::run`] on the input made of `parts` along the channels.
    pub(crate) fn run_parts(
        &self,
        parts: &[InputPart],
        kernel: &[f32],
        bf16_kernel: Option<&[u32]>,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        let (cin, cout) = (self.channels_in, self.channels_out);
        let padded = self.pad_parts(parts, self.batch);
        let out_len = self.batch * cout * self.voxels();
        // Every voxel of every channel is written by one task's output transform.
        let mut out = room_for(out_len);
        let [_, tiles_b, tiles_c] = self.tiles;
        let rows = self.tiles[0] * tiles_b;
        let rows_per_block = self.target_tiles.div_ceil(tiles_c).max(1).min(rows);
        let blocks = rows.div_ceil(rows_per_block);
        // Few blocks (the deep levels) leave cores idle: split the output channels as well.
        let groups = if self.batch * blocks >= MIN_TASKS {
            1
        } else {
            MIN_TASKS
                .div_ceil(self.batch * blocks)
                .min(cout.div_ceil(16))
                .max(1)
        };
        let group_len = cout.div_ceil(groups);
        let groups = cout.div_ceil(group_len);
        let out_ptr = SharedMut(out.as_mut_ptr());
        let isa = self.isa;
        (0..self.batch * blocks * groups)
            .into_par_iter()
            .for_each(|task| {
                let (b, rest) = (task / (blocks * groups), task % (blocks * groups));
                let (block, group) = (rest / groups, rest % groups);
                let first_row = block * rows_per_block;
                let row_count = rows_per_block.min(rows - first_row);
                let co0 = group * group_len;
                let co_count = group_len.min(cout - co0);
                let input =
                    &padded[b * cin * self.padded_channel()..][..cin * self.padded_channel()];
                SCRATCH.with_borrow_mut(|(values, sums)| {
                    let tiles = row_count * tiles_c;
                    let run = (SCRATCH_FLOATS / (POINTS * tiles)).max(8).min(cin);
                    // bf16 multiplies channel pairs: runs start at even channels.
                    let run = if bf16_kernel.is_some() && run < cin {
                        run & !1
                    } else {
                        run
                    };
                    // bf16 transforms stage one chunk of a channel pair (2 x 64 x 16 floats).
                    values.resize(
                        if bf16_kernel.is_some() {
                            2 * POINTS * LANES
                        } else {
                            POINTS * run * tiles
                        },
                        0.0,
                    );
                    sums.resize(POINTS * co_count * tiles, 0.0);
                    let channel = |c: usize| -> &[f32] {
                        &input[c * self.padded_channel()..][..self.padded_channel()]
                    };
                    for c0 in (0..cin).step_by(run) {
                        let run_len = run.min(cin - c0);
                        if let Some(packed_kernel) = bf16_kernel {
                            let pairs = run_len.div_ceil(2);
                            let gemm = crate::point_gemm::PointGemm {
                                kernel: packed_kernel,
                                kernel_pairs: cin.div_ceil(2),
                                cout,
                                co0,
                                co_count,
                                k0: c0 / 2,
                                tiles,
                            };
                            PACKED.with_borrow_mut(|packed| {
                                packed.resize(POINTS * pairs * tiles, 0);
                                for pair in 0..pairs {
                                    let even = channel(c0 + 2 * pair);
                                    let odd = (2 * pair + 1 < run_len)
                                        .then(|| channel(c0 + 2 * pair + 1));
                                    transform_pair_bf16(
                                        self,
                                        [even, odd.unwrap_or_default()],
                                        first_row,
                                        row_count,
                                        values,
                                        PairRows {
                                            packed,
                                            pair,
                                            pairs,
                                        },
                                    );
                                }
                                gemm.run(packed, pairs, sums, c0 > 0)
                            });
                            continue;
                        }
                        for (ci, points) in values
                            .chunks_exact_mut(POINTS * tiles)
                            .take(run_len)
                            .enumerate()
                        {
                            isa.window_transform::<4, InputWindow>(
                                self,
                                channel(c0 + ci),
                                first_row,
                                row_count,
                                points,
                            );
                        }
                        if crate::point_gemm::f32_kernel_available() {
                            crate::point_gemm::point_gemm_f32(
                                kernel,
                                [cout, cin],
                                [co0, co_count],
                                [c0, run_len],
                                values,
                                tiles,
                                sums,
                                c0 > 0,
                            );
                            continue;
                        }
                        for point in 0..POINTS {
                            // SAFETY: the operands lie inside `kernel` ([64][Cout][Cin]), `values`
                            // ([run_len][64][tiles]) and `sums` ([co_count][64][tiles]).
                            unsafe {
                                gemm::gemm(
                                    co_count,
                                    tiles,
                                    run_len,
                                    sums.as_mut_ptr().add(point * tiles),
                                    1,
                                    (POINTS * tiles) as isize,
                                    c0 > 0,
                                    kernel.as_ptr().add((point * cout + co0) * cin + c0),
                                    1,
                                    cin as isize,
                                    values.as_ptr().add(point * tiles),
                                    1,
                                    (POINTS * tiles) as isize,
                                    1.0,
                                    1.0,
                                    false,
                                    false,
                                    false,
                                    gemm::Parallelism::None,
                                );
                            }
                        }
                    }
                    for co in 0..co_count {
                        let add = bias.map_or(0.0, |bias| bias[co0 + co]);
                        // SAFETY: the channel is `voxels` floats inside `out`, and this task alone
                        // writes its voxels in these rows of tiles.
                        let channel = OutChannel(unsafe {
                            out_ptr.get().add((b * cout + co0 + co) * self.voxels())
                        });
                        isa.output_transform(self, sums, co, first_row, row_count, add, channel);
                    }
                });
            });
        // SAFETY: the tasks cover every batch, row of tiles and output channel, and the output
        // transform writes every voxel of its tiles.
        unsafe { out.set_len(out_len) };
        out
    }
}

impl Winograd {
    /// The weight gradient `[Cout, Cin, 3, 3, 3]` for input `x` (`[B, Cin, X, Y, Z]`) and output
    /// gradient `grad` (`[B, Cout, X, Y, Z]`), by Winograd F(3x3x3, 2x2x2): per tile, the 2x2x2
    /// gradient transformed by `A` and the 4x4x4 input window by `B^T` meet point by point; summed
    /// over tiles that is one GEMM per point, `S[p] += Ga[p] V[p]^T`, and `G^T s G` per channel
    /// pair turns the 64 sums into the 27 taps (the transposition of the forward algorithm).
    ///
    /// The sum over tiles runs in an order fixed by the sizes alone: [`PARTIAL_SUMS`] fixed runs
    /// of blocks added in order, or, with few blocks, groups of output channels each summing all
    /// blocks. The result is the same bit for bit on any number of threads.
    pub(crate) fn weight_grad(&self, x: &[f32], grad: &[f32]) -> Vec<f32> {
        let (cin, cout) = (self.channels_in, self.channels_out);
        let padded_x = self.pad(x, self.batch * cin);
        let padded_grad = self.pad(grad, self.batch * cout);
        let [_, tiles_b, tiles_c] = self.tiles;
        let rows = self.tiles[0] * tiles_b;
        let target =
            (WEIGHT_SCRATCH_FLOATS / (POINTS * (cin + cout))).clamp(16, WEIGHT_TARGET_TILES);
        let rows_per_block = target.div_ceil(tiles_c).max(1).min(rows);
        let blocks = rows.div_ceil(rows_per_block);
        let total = self.batch * blocks;
        let channel_len = self.padded_channel();
        let isa = self.isa;
        // Blocks `from..to` (of batch x blocks) for output channels `co0..co0 + count`, added
        // into `sums` (`[64][Cout][Cin]`, rows `co0..` of each point).
        let accumulate =
            |sums: SharedMut, tasks: std::ops::Range<usize>, co0: usize, count: usize| {
                SCRATCH.with_borrow_mut(|(values, grads)| {
                    for task in tasks {
                        let (b, block) = (task / blocks, task % blocks);
                        let first_row = block * rows_per_block;
                        let row_count = rows_per_block.min(rows - first_row);
                        let tiles = row_count * tiles_c;
                        values.resize(POINTS * cin * tiles, 0.0);
                        grads.resize(POINTS * count * tiles, 0.0);
                        for (ci, points) in values
                            .chunks_exact_mut(POINTS * tiles)
                            .take(cin)
                            .enumerate()
                        {
                            let channel = &padded_x[(b * cin + ci) * channel_len..][..channel_len];
                            isa.window_transform::<4, InputWindow>(
                                self, channel, first_row, row_count, points,
                            );
                        }
                        for (co, points) in grads
                            .chunks_exact_mut(POINTS * tiles)
                            .take(count)
                            .enumerate()
                        {
                            let channel =
                                &padded_grad[(b * cout + co0 + co) * channel_len..][..channel_len];
                            isa.window_transform::<2, GradientWindow>(
                                self, channel, first_row, row_count, points,
                            );
                        }
                        for point in 0..POINTS {
                            // SAFETY: `grads` is [count][64][tiles], `values` [cin][64][tiles], and the
                            // caller owns rows `co0..co0 + count` of `sums` ([64][Cout][Cin]).
                            unsafe {
                                gemm::gemm(
                                    count,
                                    cin,
                                    tiles,
                                    sums.get().add((point * cout + co0) * cin),
                                    1,
                                    cin as isize,
                                    true,
                                    grads.as_ptr().add(point * tiles),
                                    1,
                                    (POINTS * tiles) as isize,
                                    values.as_ptr().add(point * tiles),
                                    (POINTS * tiles) as isize,
                                    1,
                                    1.0,
                                    1.0,
                                    false,
                                    false,
                                    false,
                                    gemm::Parallelism::None,
                                );
                            }
                        }
                    }
                })
            };
        // Many blocks: fixed partial sums; few (the deep levels): groups of output channels.
        let sums = fixed_order_sum(
            POINTS * cout * cin,
            total,
            4 * PARTIAL_SUMS,
            cout,
            16,
            accumulate,
        );
        self.taps_from_sums(&sums)
    }

    /// `G^T s G` along each axis: the 64 point sums of each channel pair (`[64][Cout][Cin]`) to
    /// the weight gradient `[Cout, Cin, 3, 3, 3]` in the source axis order.
    fn taps_from_sums(&self, sums: &[f32]) -> Vec<f32> {
        let (cin, cout) = (self.channels_in, self.channels_out);
        let source_taps = self.source_taps(false);
        let mut weight_grad = vec![0.0f32; cout * cin * 27];
        weight_grad
            .par_chunks_mut(cin * 27)
            .enumerate()
            .for_each(|(co, out)| {
                let mut points = vec![0.0f32; POINTS * cin]; // [a][b][c] points, rows of cin
                for (point, row) in points.chunks_exact_mut(cin).enumerate() {
                    row.copy_from_slice(&sums[(point * cout + co) * cin..][..cin]);
                }
                let mut along_c = vec![0.0f32; 48 * cin]; // [a][b][c tap]
                for line in 0..16 {
                    sum_transform(
                        &points,
                        [4 * line, 4 * line + 1, 4 * line + 2, 4 * line + 3],
                        &mut along_c[3 * line * cin..][..3 * cin],
                        cin,
                    );
                }
                let mut along_b = vec![0.0f32; 36 * cin]; // [a][b tap][c tap]
                let mut column = vec![0.0f32; 3 * cin];
                for a in 0..4 {
                    for c in 0..3 {
                        let rows = [0, 1, 2, 3].map(|b| (a * 4 + b) * 3 + c);
                        sum_transform(&along_c, rows, &mut column, cin);
                        for b in 0..3 {
                            along_b[((a * 3 + b) * 3 + c) * cin..][..cin]
                                .copy_from_slice(&column[b * cin..][..cin]);
                        }
                    }
                }
                for bc in 0..9 {
                    sum_transform(&along_b, [bc, 9 + bc, 18 + bc, 27 + bc], &mut column, cin);
                    for a in 0..3 {
                        let tap = source_taps[a * 9 + bc];
                        for (ci, &value) in column[a * cin..][..cin].iter().enumerate() {
                            out[ci * 27 + tap] = value;
                        }
                    }
                }
            });
        weight_grad
    }
}

/// One output channel, `[X, Y, Z]`, which several tasks write in disjoint rows of tiles.
#[derive(Clone, Copy)]
struct OutChannel(*mut f32);

thread_local! {
    /// Per-worker transformed inputs and GEMM accumulators, kept between calls.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// Per-worker transformed inputs packed as bf16 pairs (bf16 forward passes only).
    static PACKED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// The instruction set the transforms are compiled for, chosen at run time.
#[derive(Clone, Copy)]
enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Isa {
    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    fn window_transform<const W: usize, S: Window<W>>(
        self,
        plan: &Winograd,
        channel: &[f32],
        first_row: usize,
        row_count: usize,
        points: &mut [f32],
    ) {
        match self {
            // SAFETY: the variant was chosen because the processor has the feature.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe {
                window_transform_avx512::<W, S>(plan, channel, first_row, row_count, points)
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe {
                window_transform_avx2::<W, S>(plan, channel, first_row, row_count, points)
            },
            Isa::Portable => window_transform::<W, S>(plan, channel, first_row, row_count, points),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn output_transform(
        self,
        plan: &Winograd,
        sums: &[f32],
        co: usize,
        first_row: usize,
        row_count: usize,
        bias: f32,
        out: OutChannel,
    ) {
        match self {
            // SAFETY: the variant was chosen because the processor has the feature.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe {
                output_transform_avx512(plan, sums, co, first_row, row_count, bias, out)
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe {
                output_transform_avx2(plan, sums, co, first_row, row_count, bias, out)
            },
            Isa::Portable => output_transform(plan, sums, co, first_row, row_count, bias, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn window_transform_avx512<const W: usize, S: Window<W>>(
    plan: &Winograd,
    channel: &[f32],
    first_row: usize,
    row_count: usize,
    points: &mut [f32],
) {
    window_transform::<W, S>(plan, channel, first_row, row_count, points)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn window_transform_avx2<const W: usize, S: Window<W>>(
    plan: &Winograd,
    channel: &[f32],
    first_row: usize,
    row_count: usize,
    points: &mut [f32],
) {
    window_transform::<W, S>(plan, channel, first_row, row_count, points)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn output_transform_avx512(
    plan: &Winograd,
    sums: &[f32],
    co: usize,
    first_row: usize,
    row_count: usize,
    bias: f32,
    out: OutChannel,
) {
    output_transform(plan, sums, co, first_row, row_count, bias, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn output_transform_avx2(
    plan: &Winograd,
    sums: &[f32],
    co: usize,
    first_row: usize,
    row_count: usize,
    bias: f32,
    out: OutChannel,
) {
    output_transform(plan, sums, co, first_row, row_count, bias, out)
}

/// `G^T = [[1, 1/2, 1/2, 0], [0, 1/2, -1/2, 0], [0, 1/2, 1/2, 1]]` on rows `rows` (of `len`
/// floats) of `source`, into the three rows of `out`.
fn sum_transform(source: &[f32], rows: [usize; 4], out: &mut [f32], len: usize) {
    let [s0, s1, s2, s3] = rows.map(|row| &source[row * len..][..len]);
    let (out0, rest) = out.split_at_mut(len);
    let (out1, out2) = rest.split_at_mut(len);
    for i in 0..len {
        let (half_sum, half_difference) = (0.5 * (s1[i] + s2[i]), 0.5 * (s1[i] - s2[i]));
        out0[i] = s0[i] + half_sum;
        out1[i] = half_difference;
        out2[i] = half_sum + s3[i];
    }
}

/// `G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]` on rows `rows` (of `len` floats)
/// of `source`, into the four rows of `out`.
fn kernel_transform(source: &[f32], rows: [usize; 3], out: &mut [f32], len: usize) {
    let [g0, g1, g2] = rows.map(|row| &source[row * len..][..len]);
    let (out0, rest) = out.split_at_mut(len);
    let (out1, rest) = rest.split_at_mut(len);
    let (out2, out3) = rest.split_at_mut(len);
    for i in 0..len {
        let (a, b, c) = (g0[i], g1[i], g2[i]);
        out0[i] = a;
        out1[i] = 0.5 * (a + b + c);
        out2[i] = 0.5 * (a - b + c);
        out3[i] = c;
    }
}

/// `B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]` on four vectors.
#[inline(always)]
fn data_transform<const L: usize>(d: [&[f32; L]; 4]) -> [[f32; L]; 4] {
    let mut out = [[0.0f32; L]; 4];
    for l in 0..L {
        out[0][l] = d[0][l] - d[2][l];
        out[1][l] = d[1][l] + d[2][l];
        out[2][l] = d[2][l] - d[1][l];
        out[3][l] = d[1][l] - d[3][l];
    }
    out
}

/// `A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]` on four vectors.
#[inline(always)]
fn inverse_transform<const L: usize>(m: [&[f32; L]; 4]) -> [[f32; L]; 2] {
    let mut out = [[0.0f32; L]; 2];
    for l in 0..L {
        out[0][l] = m[0][l] + m[1][l] + m[2][l];
        out[1][l] = m[1][l] - m[2][l] - m[3][l];
    }
    out
}

/// A tile's window along one axis and its 1-D transform to the 4 points: the input's 4x4x4
/// window (`B^T`, from padded position 2t) or the output gradient's 2x2x2 tile (`A`, from
/// padded position 2t + 1, past the padding).
trait Window<const W: usize> {
    /// Padded position of the window's first sample in tile 0.
    const FIRST: usize;
    fn line<const L: usize>(samples: [&[f32; L]; W]) -> [[f32; L]; 4];
}

struct InputWindow;

impl Window<4> for InputWindow {
    const FIRST: usize = 0;
    #[inline(always)]
    fn line<const L: usize>(samples: [&[f32; L]; 4]) -> [[f32; L]; 4] {
        data_transform(samples)
    }
}

struct GradientWindow;

impl Window<2> for GradientWindow {
    const FIRST: usize = 1;
    #[inline(always)]
    fn line<const L: usize>(samples: [&[f32; L]; 2]) -> [[f32; L]; 4] {
        gradient_transform(samples)
    }
}

/// The start of each padded row of the windows along row `row` of tiles (A and B tile indices
/// `row / tiles[1]` and `row % tiles[1]`): `[i][j]` for window positions i (A) and j (B) in 0..W.
#[inline(always)]
fn window_starts<const W: usize, S: Window<W>>(plan: &Winograd, row: usize) -> [[usize; W]; W] {
    let (ta, tb) = (row / plan.tiles[1], row % plan.tiles[1]);
    std::array::from_fn(|i| {
        std::array::from_fn(|j| {
            ((2 * ta + S::FIRST + i) * plan.rows_b() + 2 * tb + S::FIRST + j) * plan.row_len()
        })
    })
}

/// This channel pair's rows in a run's bf16 input, `packed` (`[64][pairs][tiles]`).
struct PairRows<'a> {
    packed: &'a mut [u32],
    pair: usize,
    pairs: usize,
}

/// [`window_transform`] of an even channel and the odd one after it (empty past an odd channel
/// count: zeros), rounded to bf16 pairs straight into their rows of the packed input: no f32
/// copy of the block's transformed input and no packing pass over it. `stage` holds 2 x 64 x 16
/// floats. Only called with a bf16 kernel, which exists only where the CPU has AVX512_BF16.
fn transform_pair_bf16(
    plan: &Winograd,
    channels: [&[f32]; 2],
    first_row: usize,
    row_count: usize,
    stage: &mut [f32],
    rows: PairRows,
) {
    assert!(crate::bf16_supported() && stage.len() >= 2 * POINTS * LANES);
    assert!(rows.packed.len() >= POINTS * rows.pairs * row_count * plan.tiles[2]);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX-512 F, BW and BF16 (asserted).
    unsafe {
        transform_pair_bf16_avx512(plan, channels, first_row, row_count, stage, rows)
    };
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("bf16 is never in use off x86_64");
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn transform_pair_bf16_avx512(
    plan: &Winograd,
    [even, odd]: [&[f32]; 2],
    first_row: usize,
    row_count: usize,
    stage: &mut [f32],
    rows: PairRows,
) {
    let tiles_c = plan.tiles[2];
    let tiles = row_count * tiles_c;
    let (even_stage, odd_stage) = stage.split_at_mut(POINTS * LANES);
    for row in 0..row_count {
        let starts = window_starts::<4, InputWindow>(plan, first_row + row);
        along_row!(
            tiles_c,
            u,
            pair_chunk(
                plan,
                [even, odd],
                &starts,
                u,
                [&mut *even_stage, &mut *odd_stage],
                &mut *rows.packed,
                [rows.pair, rows.pairs, tiles, row * tiles_c + u],
            )
        );
    }
}

/// One chunk of `L` tiles of [`transform_pair_bf16`]: both channels' 64 points in f32 (the
/// same arithmetic as [`window_chunk`] everywhere), then rounded and paired point by point.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
#[inline]
unsafe fn pair_chunk<const L: usize>(
    plan: &Winograd,
    [even, odd]: [&[f32]; 2],
    starts: &[[usize; 4]; 4],
    u: usize,
    [even_stage, odd_stage]: [&mut [f32]; 2],
    packed: &mut [u32],
    [pair, pairs, tiles, t]: [usize; 4],
) {
    window_chunk::<L, 4, InputWindow>(plan, even, starts, u, even_stage, L, 0);
    if !odd.is_empty() {
        window_chunk::<L, 4, InputWindow>(plan, odd, starts, u, odd_stage, L, 0);
    }
    for point in 0..POINTS {
        let out = &mut packed[(point * pairs + pair) * tiles + t..][..L];
        let odd_values = (!odd.is_empty()).then(|| odd_stage[point * L..][..L].as_ptr());
        // SAFETY: the features are enabled here; each pointer has L floats (or u32s) behind it.
        unsafe {
            crate::point_gemm::pack_pair::<L>(
                even_stage[point * L..][..L].as_ptr(),
                odd_values,
                out.as_mut_ptr(),
            )
        };
    }
}

/// Transforms the windows of one padded channel (input or output gradient, after `S`) over rows
/// `first_row..first_row + row_count` of tiles into `points` (`[64][tiles]`).
#[inline(always)]
fn window_transform<const W: usize, S: Window<W>>(
    plan: &Winograd,
    channel: &[f32],
    first_row: usize,
    row_count: usize,
    points: &mut [f32],
) {
    let tiles_c = plan.tiles[2];
    let tiles = row_count * tiles_c;
    for row in 0..row_count {
        let starts = window_starts::<W, S>(plan, first_row + row);
        along_row!(
            tiles_c,
            u,
            window_chunk::<W, S>(plan, channel, &starts, u, points, tiles, row * tiles_c + u)
        );
    }
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // index arithmetic reads clearer
fn window_chunk<const L: usize, const W: usize, S: Window<W>>(
    plan: &Winograd,
    channel: &[f32],
    starts: &[[usize; W]; W],
    u: usize,
    points: &mut [f32],
    tiles: usize,
    t: usize,
) {
    let half = plan.tiles[2] + 1;
    // Along C: sample k of tile u sits at padded position p = 2u + FIRST + k, stored at
    // even[p / 2] or odd[p / 2].
    // The two stages' arrays start uninitialised: zeroed, they cost a memset call of 8 KiB (at
    // 16 lanes) per chunk, 3% of a whole-scan prediction. Every element is written before it is
    // read (the loops below cover every index).
    let mut along_c = [[[MaybeUninit::<[f32; L]>::uninit(); 4]; W]; W]; // [i][j][c point]
    for i in 0..W {
        for j in 0..W {
            let start = starts[i][j];
            let lines = S::line(std::array::from_fn(|k| {
                let p = S::FIRST + k;
                channel[start + p % 2 * half + u + p / 2..][..L]
                    .try_into()
                    .unwrap()
            }));
            for (slot, line) in along_c[i][j].iter_mut().zip(lines) {
                slot.write(line);
            }
        }
    }
    // Along B (j), then A (i).
    let mut along_b = [[[MaybeUninit::<[f32; L]>::uninit(); 4]; 4]; W]; // [i][b point][c point]
    for i in 0..W {
        for c in 0..4 {
            // SAFETY: the loop above wrote along_c[i][j][c] for every i, j and c.
            let rows = S::line(std::array::from_fn(|j| unsafe {
                along_c[i][j][c].assume_init_ref()
            }));
            for (q, row) in rows.into_iter().enumerate() {
                along_b[i][q][c].write(row);
            }
        }
    }
    for q in 0..4 {
        for c in 0..4 {
            // SAFETY: the loop above wrote along_b[i][q][c] for every i, q and c.
            let transformed = S::line(std::array::from_fn(|i| unsafe {
                along_b[i][q][c].assume_init_ref()
            }));
            for (p, point) in transformed.iter().enumerate() {
                let index = p * 16 + q * 4 + c;
                points[index * tiles + t..][..L].copy_from_slice(point);
            }
        }
    }
}

/// `A = [[1, 0], [1, 1], [1, -1], [0, -1]]` on two vectors.
#[inline(always)]
fn gradient_transform<const L: usize>(g: [&[f32; L]; 2]) -> [[f32; L]; 4] {
    let mut out = [[0.0f32; L]; 4];
    for l in 0..L {
        out[0][l] = g[0][l];
        out[1][l] = g[0][l] + g[1][l];
        out[2][l] = g[0][l] - g[1][l];
        out[3][l] = -g[1][l];
    }
    out
}

/// Transforms output channel `co` of `sums` (`[co_count][64][tiles]`) back to voxels over rows
/// `first_row..first_row + row_count` of tiles, adding `bias`, into `out` (`[X, Y, Z]`).
#[inline(always)]
fn output_transform(
    plan: &Winograd,
    sums: &[f32],
    co: usize,
    first_row: usize,
    row_count: usize,
    bias: f32,
    out: OutChannel,
) {
    let tiles_c = plan.tiles[2];
    let tiles = row_count * tiles_c;
    for row in 0..row_count {
        let (ta, tb) = (
            (first_row + row) / plan.tiles[1],
            (first_row + row) % plan.tiles[1],
        );
        along_row!(
            tiles_c,
            u,
            output_chunk(
                plan,
                sums,
                co,
                tiles,
                row * tiles_c + u,
                [ta, tb, u],
                bias,
                out,
            )
        );
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)] // index arithmetic reads clearer
fn output_chunk<const L: usize>(
    plan: &Winograd,
    sums: &[f32],
    co: usize,
    tiles: usize,
    t: usize,
    [ta, tb, u]: [usize; 3],
    bias: f32,
    out: OutChannel,
) {
    let point = |p: usize| -> &[f32; L] {
        sums[(co * POINTS + p) * tiles + t..][..L]
            .try_into()
            .unwrap()
    };
    // Along A: points p = i * 16 + q * 4 + c.
    let mut along_a = [[[0.0f32; L]; 16]; 2]; // [output a][q * 4 + c]
    for qc in 0..16 {
        [along_a[0][qc], along_a[1][qc]] =
            inverse_transform([point(qc), point(16 + qc), point(32 + qc), point(48 + qc)]);
    }
    let [sa, sb, sc] = plan.source_strides;
    let [na, nb, nc] = plan.sizes;
    for (oa, plane) in along_a.iter().enumerate() {
        let a = 2 * ta + oa;
        if a >= na {
            continue;
        }
        let mut along_b = [[[0.0f32; L]; 4]; 2]; // [output b][c]
        for c in 0..4 {
            let rows = inverse_transform([&plane[c], &plane[4 + c], &plane[8 + c], &plane[12 + c]]);
            along_b[0][c] = rows[0];
            along_b[1][c] = rows[1];
        }
        for (ob, line) in along_b.iter().enumerate() {
            let b = 2 * tb + ob;
            if b >= nb {
                continue;
            }
            let [even, odd] = inverse_transform([&line[0], &line[1], &line[2], &line[3]]);
            let base = a * sa + b * sb;
            // SAFETY: a < na, b < nb and c < nc keep every index inside the channel.
            if 2 * (u + L) <= nc && sc == 1 {
                let mut row = [0.0f32; 2 * LANES];
                for l in 0..L {
                    row[2 * l] = even[l] + bias;
                    row[2 * l + 1] = odd[l] + bias;
                }
                unsafe {
                    std::ptr::copy_nonoverlapping(row.as_ptr(), out.0.add(base + 2 * u), 2 * L)
                };
            } else {
                for l in 0..L {
                    let c = 2 * (u + l);
                    if c < nc {
                        unsafe { *out.0.add(base + c * sc) = even[l] + bias };
                    }
                    if c + 1 < nc {
                        unsafe { *out.0.add(base + (c + 1) * sc) = odd[l] + bias };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The padded grid against its definition, float by float: slot `s` of a padded row holds
    /// position `p = 2s` (first half) or `2(s - half) + 1`, padded coordinate `p` is voxel
    /// `p - 1` along each permuted axis, and everything else is zero. Full and upsampled parts,
    /// odd and even sizes, in memory order (Z of 8 or more, or the longest) and permuted; the
    /// grid's room starts as NaN in tests, so a float never written cannot pass for a zero.
    #[test]
    fn padded_grid_follows_its_definition() {
        for size in [
            [3, 5, 7],
            [4, 4, 6],
            [2, 4, 10],
            [5, 3, 9],
            [6, 4, 4],
            [4, 6, 2],
        ] {
            let plan = Winograd::new(2, 5, 16, size);
            let [nx, ny, nz] = size;
            let voxels = nx * ny * nz;
            let upsampled = size.iter().all(|n| n % 2 == 0);
            let low_channels = if upsampled { 2 } else { 0 };
            let full: Vec<f32> = (0..2 * 3 * voxels).map(|i| i as f32 + 0.5).collect();
            let low: Vec<f32> = (0..2 * low_channels * voxels / 8)
                .map(|i| -(i as f32) - 0.25)
                .collect();
            let mut parts = vec![InputPart::Full {
                values: &full,
                channels: 3,
            }];
            if upsampled {
                parts.push(InputPart::Upsampled {
                    values: &low,
                    channels: low_channels,
                });
            }
            let grid = plan.pad_parts(&parts, 2);
            let channels = 3 + low_channels;
            let padded = plan.padded_channel();
            assert_eq!(grid.len(), 2 * channels * padded);
            let (row_len, half) = (plan.row_len(), plan.tiles[2] + 1);
            let plane = plan.rows_b() * row_len;
            for (index, &value) in grid.iter().enumerate() {
                let (channel, at) = (index / padded, index % padded);
                let (b, c) = (channel / channels, channel % channels);
                let s = at % row_len;
                let p = if s < half { 2 * s } else { 2 * (s - half) + 1 };
                let permuted = [at / plane, at % plane / row_len, p];
                let inside = (0..3).all(|q| (1..=plan.sizes[q]).contains(&permuted[q]));
                let expected = if !inside {
                    0.0
                } else {
                    let mut voxel = [0usize; 3];
                    for q in 0..3 {
                        voxel[plan.order[q]] = permuted[q] - 1;
                    }
                    let [x, y, z] = voxel;
                    if c < 3 {
                        full[(b * 3 + c) * voxels + (x * ny + y) * nz + z]
                    } else {
                        let (ly, lz) = (ny / 2, nz / 2);
                        low[(b * low_channels + c - 3) * voxels / 8
                            + ((x / 2) * ly + y / 2) * lz
                            + z / 2]
                    }
                };
                assert_eq!(
                    value.to_bits(),
                    expected.to_bits(),
                    "size {size:?} order {:?} channel {channel} padded {permuted:?}",
                    plan.order
                );
            }
        }
    }

    /// Every instruction set the processor has gives the same bits as the portable build: the
    /// transforms are the same IEEE operations in the same order, only wider (no fused
    /// multiply-adds), and the GEMMs are the same.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        // 29 tiles along Z: one chunk each of 16, 8 and 4 lanes, then a single tile.
        let (batch, cin, cout, size) = (2, 16, 20, [3, 4, 57]);
        let voxels: usize = size.iter().product();
        let values = |count: usize, salt: u32| -> Vec<f32> {
            (0..count as u32)
                .map(|i| {
                    (i.wrapping_mul(2_654_435_761).wrapping_add(salt) % 2001) as f32 / 1000.0 - 1.0
                })
                .collect()
        };
        let x = values(batch * cin * voxels, 1);
        let weight = values(cout * cin * 27, 2);
        let grad = values(batch * cout * voxels, 3);
        let bias = values(cout, 4);
        let run = |isa: Isa| -> Vec<Vec<u32>> {
            let mut forward = Winograd::new(batch, cin, cout, size);
            let mut backward = Winograd::new(batch, cout, cin, size);
            forward.isa = isa;
            backward.isa = isa;
            let passes = [
                forward.run(
                    &x,
                    &forward.transform_kernel(&weight, false),
                    None,
                    Some(&bias),
                ),
                backward.run(&grad, &backward.transform_kernel(&weight, true), None, None),
                forward.weight_grad(&x, &grad),
            ];
            passes
                .iter()
                .map(|pass| pass.iter().map(|v| v.to_bits()).collect())
                .collect()
        };
        let portable = run(Isa::Portable);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                assert!(
                    run(Isa::Avx2) == portable,
                    "AVX2 differs from the portable build"
                );
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                assert!(
                    run(Isa::Avx512) == portable,
                    "AVX-512 differs from the portable build"
                );
            }
        }
        assert_eq!(portable[0].len(), batch * cout * voxels);
    }

    /// The bf16 forward pass rounds the f32 transform of each channel and pairs neighbours: the
    /// fused transform-and-pack gives exactly the f32 transform rounded to nearest even
    /// ([`crate::point_gemm::to_bf16`]), even channel in the low half, an odd last channel
    /// paired with zero, over rows whose 29 tiles take chunks of 16, 8, 4 and 1.
    #[test]
    fn bf16_pairs_are_the_rounded_f32_transforms() {
        if !crate::bf16_supported() {
            eprintln!("skipped: this CPU has no AVX512_BF16");
            return;
        }
        let (cin, size) = (3, [5, 6, 57]);
        let plan = Winograd::new(1, cin, 16, size);
        let voxels: usize = size.iter().product();
        let x: Vec<f32> = (0..(cin * voxels) as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let padded = plan.pad(&x, cin);
        let channel = |c: usize| &padded[c * plan.padded_channel()..][..plan.padded_channel()];
        let (first_row, row_count) = (2, 3);
        let tiles = row_count * plan.tiles[2];
        let pairs = cin.div_ceil(2);
        let mut packed = vec![0u32; POINTS * pairs * tiles];
        let mut stage = vec![0.0f32; 2 * POINTS * LANES];
        for pair in 0..pairs {
            let odd = if 2 * pair + 1 < cin {
                channel(2 * pair + 1)
            } else {
                &[]
            };
            let rows = PairRows {
                packed: &mut packed,
                pair,
                pairs,
            };
            transform_pair_bf16(
                &plan,
                [channel(2 * pair), odd],
                first_row,
                row_count,
                &mut stage,
                rows,
            );
        }
        let mut f32_points = vec![vec![0.0f32; POINTS * tiles]; cin];
        for (c, points) in f32_points.iter_mut().enumerate() {
            window_transform::<4, InputWindow>(&plan, channel(c), first_row, row_count, points);
        }
        let bits = |c: usize, at: usize| {
            f32_points
                .get(c)
                .map_or(0, |points| crate::point_gemm::to_bf16(points[at]) as u32)
        };
        for point in 0..POINTS {
            for pair in 0..pairs {
                for t in 0..tiles {
                    let at = point * tiles + t;
                    let expected = bits(2 * pair, at) | bits(2 * pair + 1, at) << 16;
                    assert_eq!(
                        packed[(point * pairs + pair) * tiles + t],
                        expected,
                        "{point} {pair} {t}"
                    );
                }
            }
        }
        assert!(f32_points[2].iter().any(|&v| v != 0.0));
    }

    /// The tiles per block follow the CPU's caches where our AVX-512 point GEMMs run, so there
    /// they must not change a single bit: every output tile sums the same channels in the same
    /// order whatever block it falls in (f32 and bf16 products, forward and input gradient, one
    /// and several channel runs, an odd last run).
    #[test]
    fn block_size_does_not_change_the_bits() {
        if !crate::point_gemm::f32_kernel_available() {
            eprintln!("skipped: no AVX-512 here, so the blocks keep the tuned size");
            return;
        }
        let values = |count: usize, salt: u32| -> Vec<f32> {
            (0..count as u32)
                .map(|i| {
                    (i.wrapping_mul(2_654_435_761).wrapping_add(salt) % 2001) as f32 / 1000.0 - 1.0
                })
                .collect()
        };
        // 11 x 6 x 29 tiles; 400 input channels (or 401 output channels, for the input gradient)
        // need two channel runs with blocks of 48 tiles or more.
        for (batch, cin, cout, size) in [
            (2, 16, 20, [22, 12, 57]),
            (1, 400, 16, [6, 4, 40]),
            (1, 16, 401, [6, 4, 40]),
        ] {
            let voxels: usize = size.iter().product();
            let x = values(batch * cin * voxels, 1);
            let weight = values(cout * cin * 27, 2);
            let grad = values(batch * cout * voxels, 3);
            let bias = values(cout, 4);
            let bf16_options = if crate::bf16_supported() {
                &[false, true][..]
            } else {
                &[false]
            };
            for &bf16 in bf16_options {
                let passes = |tiles: usize| -> Vec<Vec<u32>> {
                    let forward = Winograd::new(batch, cin, cout, size).with_target_tiles(tiles);
                    let backward = Winograd::new(batch, cout, cin, size).with_target_tiles(tiles);
                    let kernel = forward.transform_kernel(&weight, false);
                    let flipped = backward.transform_kernel(&weight, true);
                    let packed = bf16.then(|| crate::point_gemm::pack_kernel(&kernel, cin));
                    let packed_flipped =
                        bf16.then(|| crate::point_gemm::pack_kernel(&flipped, cout));
                    [
                        forward.run(&x, &kernel, packed.as_deref(), Some(&bias)),
                        backward.run(&grad, &flipped, packed_flipped.as_deref(), None),
                    ]
                    .iter()
                    .map(|pass| pass.iter().map(|v| v.to_bits()).collect())
                    .collect()
                };
                let tuned = passes(48);
                for tiles in [16, 72, 192] {
                    assert!(
                        passes(tiles) == tuned,
                        "{cin}->{cout}, bf16 {bf16}: {tiles} tiles per block differ from 48"
                    );
                }
            }
        }
    }
}
