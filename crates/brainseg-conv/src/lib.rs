//! brainseg-conv: the U-Net's 3x3x3 "same" convolution (stride 1, padding 1) on the CPU, forward
//! and both gradients, without im2col.
//!
//! Each pass is 27 GEMMs, one per kernel tap, on a zero-padded copy of the input: on the padded
//! grid a tap is a fixed shift of the flat index, so the tap's input is a strided view of the
//! padded buffer and needs no copy. The grid puts the longest spatial axis innermost, so the two
//! padding columns per row waste little (1-2% for 160x160x16). Work is split over tiles of output
//! positions sized so one tile's accumulator stays in half the L2 across the 27 taps (the sizes
//! come from the CPU's caches: [`CacheSizes`]); rayon spreads the tiles, and the `gemm` crate picks
//! AVX2 / NEON micro-kernels at run time.
//!
//! Where both channel counts are 16 or more, the passes instead run Winograd F(2x2x2, 3x3x3)
//! ([`winograd`]; the weight gradient as its transposition, F(3x3x3, 2x2x2), while input and
//! output channels together stay within 512): 8 multiplications per output and channel pair
//! instead of 27. Its forward and input-gradient point GEMMs run in micro-kernels of our own on
//! AVX-512 CPUs ([`point_gemm`]: f32, or bf16 products with [`use_bf16`], for inference and
//! optionally training), the
//! weight gradient's in the `gemm` crate's. [`use_direct_convolution`] turns Winograd off.
//!
//! Layouts are PyTorch's: input `[B, Cin, X, Y, Z]`, weight `[Cout, Cin, 3, 3, 3]`, output
//! `[B, Cout, X, Y, Z]`, all contiguous f32. The direct passes are exact f32 sums in a different
//! order from a direct loop, so they agree with one to rounding; Winograd's transforms add
//! rounding of their own, about doubling the error (both tested against an f64 definition).
//! Work is split by sizes alone, never by the thread count, so every pass gives the same bits on
//! any number of threads.
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

mod caches;
mod point_gemm;
mod winograd;
pub use caches::CacheSizes;
pub use point_gemm::{bf16_in_use, bf16_supported, use_bf16};
use winograd::Winograd;

/// Set: every pass takes the direct shifted-GEMM path, never Winograd.
static DIRECT_ONLY: AtomicBool = AtomicBool::new(false);

/// Makes every convolution use the direct 27-tap sum (`true`) instead of Winograd where it
/// applies (`false`, the default), process-wide: for benchmarks, and for users who want the
/// plain sum's rounding.
pub fn use_direct_convolution(on: bool) {
    DIRECT_ONLY.store(on, Ordering::Relaxed);
}

/// Whether [`use_direct_convolution`] is on.
pub fn direct_convolution() -> bool {
    DIRECT_ONLY.load(Ordering::Relaxed)
}

/// The algorithm a pass may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// Winograd where it applies, else direct.
    Fastest,
    /// The direct 27-tap sums.
    Direct,
}

/// Fewer tasks than this (deep, small levels) and the passes split output channels too: enough
/// for the cores of a workstation. A constant, so the split (and with it the GEMM blocking, which
/// can round differently) depends on sizes alone and never on the thread count.
const MIN_TASKS: usize = 8;

/// One convolution's sizes: kernel 3x3x3, stride 1, padding 1, no dilation, one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv3x3x3 {
    pub batch: usize,
    pub channels_in: usize,
    pub channels_out: usize,
    /// Spatial size `[X, Y, Z]` of input and output.
    pub size: [usize; 3],
}

/// One part of a convolution's input; a list of parts is their channels one after another.
#[derive(Clone, Copy, Debug)]
pub enum InputPart<'a> {
    /// `[B, channels, X, Y, Z]`, at the convolution's size.
    Full { values: &'a [f32], channels: usize },
    /// `[B, channels, X / 2, Y / 2, Z / 2]`, read as its nearest-neighbour x2 upsampling (each
    /// value fills a 2x2x2 block).
    Upsampled { values: &'a [f32], channels: usize },
}

impl InputPart<'_> {
    /// Values, channels, and whether it is upsampled.
    fn layout(&self) -> (&[f32], usize, bool) {
        match *self {
            InputPart::Full { values, channels } => (values, channels, false),
            InputPart::Upsampled { values, channels } => (values, channels, true),
        }
    }
}

/// Accumulator floats per position tile of the direct weight gradient (512 KiB, half a Zen 4
/// core's L2). Fixed, not from the caches: its tiles split the sum over positions, and the same
/// run must give the same weights on any CPU. The other passes' tiles follow the L2
/// ([`CacheSizes::direct_tile_floats`]).
const WEIGHT_TILE_FLOATS: usize = 128 * 1024;

/// Runs of position tiles summed separately in the weight gradient: enough for the cores of a
/// workstation, few enough that the partial copies stay small.
const PARTIAL_SUMS: usize = 8;

impl Conv3x3x3 {
    fn voxels(&self) -> usize {
        self.size.iter().product()
    }

    fn path() -> Path {
        if direct_convolution() {
            Path::Direct
        } else {
            Path::Fastest
        }
    }

    /// Winograd pays off once both channel counts fill a GEMM; the first layer (4 input
    /// channels) stays direct. The condition is symmetric: forward pass and input gradient take
    /// the same path (the weight gradient adds a condition of its own).
    fn winograd(&self, path: Path) -> bool {
        path == Path::Fastest
            && self.channels_in >= 16
            && self.channels_out >= 16
            && self.batch * self.voxels() > 0
    }

    /// Past 512 channels in and out together, the weight gradient's point sums (64 x Cout x Cin)
    /// outgrow the caches and the blocks of tiles that fit beside them get short; the direct sum
    /// is faster there.
    fn winograd_weight_grad(&self, path: Path) -> bool {
        self.winograd(path) && self.channels_in + self.channels_out <= 512
    }

    fn check(&self, name: &str, data: &[f32], expected: usize) {
        assert_eq!(
            data.len(),
            expected,
            "conv3x3x3 {name}: length for {self:?}"
        );
    }

    /// `y = conv(x, w) + bias`. `x`: `[B, Cin, X, Y, Z]`, `weight`: `[Cout, Cin, 3, 3, 3]`,
    /// `bias`: `[Cout]`; returns `[B, Cout, X, Y, Z]`.
    pub fn forward(&self, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
        self.forward_on(Self::path(), x, weight, bias)
    }

    /// Gradient of the input from the output's gradient `grad` (`[B, Cout, X, Y, Z]`): the
    /// same convolution of the padded gradient with the flipped, channel-transposed kernel.
    pub fn input_grad(&self, grad: &[f32], weight: &[f32]) -> Vec<f32> {
        self.input_grad_on(Self::path(), grad, weight)
    }

    /// Gradient of the weight, `[Cout, Cin, 3, 3, 3]`: for each tap, the output gradient times
    /// the shifted padded input, summed over positions and batch.
    pub fn weight_grad(&self, x: &[f32], grad: &[f32]) -> Vec<f32> {
        self.weight_grad_on(Self::path(), x, grad)
    }

    /// Both gradients, input then weight (the direct path pads the output gradient once for
    /// the two).
    pub fn backward(&self, x: &[f32], grad: &[f32], weight: &[f32]) -> (Vec<f32>, Vec<f32>) {
        self.backward_on(Self::path(), x, grad, weight)
    }

    /// [`Conv3x3x3::forward`] of the input made of `parts` along the channels (a U-Net decoder's
    /// upsampled lower level, then its skip connection). Winograd reads the parts while padding
    /// its input, so the upsampled and concatenated input is never made (it was 5% of a
    /// prediction); the direct path makes it first. The same bits as `forward` of that input.
    pub fn forward_parts(&self, parts: &[InputPart], weight: &[f32], bias: &[f32]) -> Vec<f32> {
        self.forward_parts_in(Self::path(), bf16_in_use(), parts, weight, bias)
    }

    fn forward_parts_in(
        &self,
        path: Path,
        bf16: bool,
        parts: &[InputPart],
        weight: &[f32],
        bias: &[f32],
    ) -> Vec<f32> {
        let voxels = self.voxels();
        let mut channels = 0;
        for part in parts {
            let (values, count, upsampled) = part.layout();
            let len = if upsampled {
                assert!(
                    self.size.iter().all(|side| side % 2 == 0),
                    "conv3x3x3: upsampled input needs even sides, got {self:?}"
                );
                voxels / 8
            } else {
                voxels
            };
            self.check("input part", values, self.batch * count * len);
            channels += count;
        }
        assert_eq!(
            channels, self.channels_in,
            "conv3x3x3: input parts' channels for {self:?}"
        );
        if self.winograd(path) && self.batch * voxels > 0 {
            self.check("weight", weight, self.channels_out * channels * 27);
            self.check("bias", bias, self.channels_out);
            let plan = Winograd::new(self.batch, channels, self.channels_out, self.size);
            let kernel = plan.transform_kernel(weight, false);
            let bf16_kernel = bf16.then(|| point_gemm::pack_kernel(&kernel, channels));
            return plan.run_parts(parts, &kernel, bf16_kernel.as_deref(), Some(bias));
        }
        self.forward_in(path, bf16, &self.concatenate(parts), weight, bias)
    }

    /// The input `parts` stand for, `[B, Cin, X, Y, Z]`.
    fn concatenate(&self, parts: &[InputPart]) -> Vec<f32> {
        let voxels = self.voxels();
        let [_, ny, nz] = self.size;
        let mut input = Vec::with_capacity(self.batch * self.channels_in * voxels);
        for b in 0..self.batch {
            for part in parts {
                let (values, channels, upsampled) = part.layout();
                if !upsampled {
                    input.extend_from_slice(&values[b * channels * voxels..][..channels * voxels]);
                    continue;
                }
                let low = &values[b * channels * voxels / 8..][..channels * voxels / 8];
                let (ly, lz) = (ny / 2, nz / 2);
                for channel in low.chunks_exact(voxels / 8) {
                    for i in 0..voxels {
                        let (x, y, z) = (i / (ny * nz), i / nz % ny, i % nz);
                        input.push(channel[((x / 2) * ly + y / 2) * lz + z / 2]);
                    }
                }
            }
        }
        input
    }

    fn forward_on(&self, path: Path, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
        self.forward_in(path, bf16_in_use(), x, weight, bias)
    }

    /// The forward pass, Winograd's products in bf16 when `bf16` (which needs
    /// [`bf16_supported`]).
    fn forward_in(
        &self,
        path: Path,
        bf16: bool,
        x: &[f32],
        weight: &[f32],
        bias: &[f32],
    ) -> Vec<f32> {
        let (cin, cout) = (self.channels_in, self.channels_out);
        self.check("input", x, self.batch * cin * self.voxels());
        self.check("weight", weight, cout * cin * 27);
        self.check("bias", bias, cout);
        if self.batch * self.voxels() == 0 {
            return Vec::new();
        }
        if self.winograd(path) {
            let plan = Winograd::new(self.batch, cin, cout, self.size);
            let kernel = plan.transform_kernel(weight, false);
            let bf16_kernel = bf16.then(|| point_gemm::pack_kernel(&kernel, cin));
            return plan.run(x, &kernel, bf16_kernel.as_deref(), Some(bias));
        }
        let grid = Grid::new(self.size);
        let padded = grid.pad(x, self.batch * cin);
        let taps = taps_major(weight, cout, cin, false);
        let out = grid.shifted_gemm(&padded, self.batch, cin, &taps, cout);
        grid.crop(&out, self.batch, cout, Some(bias))
    }

    fn input_grad_on(&self, path: Path, grad: &[f32], weight: &[f32]) -> Vec<f32> {
        self.input_grad_in(path, bf16_in_use(), grad, weight)
    }

    /// The input gradient, Winograd's products in bf16 when `bf16` (which needs
    /// [`bf16_supported`]).
    fn input_grad_in(&self, path: Path, bf16: bool, grad: &[f32], weight: &[f32]) -> Vec<f32> {
        let cout = self.channels_out;
        self.check("output gradient", grad, self.batch * cout * self.voxels());
        if self.batch * self.voxels() == 0 {
            return Vec::new();
        }
        if self.winograd(path) {
            return self.input_grad_winograd(bf16, grad, weight);
        }
        let grid = Grid::new(self.size);
        self.input_grad_padded(&grid, &grid.pad(grad, self.batch * cout), weight)
    }

    fn weight_grad_on(&self, path: Path, x: &[f32], grad: &[f32]) -> Vec<f32> {
        let (cin, cout) = (self.channels_in, self.channels_out);
        self.check("output gradient", grad, self.batch * cout * self.voxels());
        self.check("input", x, self.batch * cin * self.voxels());
        if self.batch * self.voxels() == 0 {
            return vec![0.0; cout * cin * 27];
        }
        if self.winograd_weight_grad(path) {
            return Winograd::new(self.batch, cin, cout, self.size).weight_grad(x, grad);
        }
        let grid = Grid::new(self.size);
        self.weight_grad_padded(&grid, x, &grid.pad(grad, self.batch * cout))
    }

    fn backward_on(
        &self,
        path: Path,
        x: &[f32],
        grad: &[f32],
        weight: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        if self.winograd(path) || self.batch * self.voxels() == 0 {
            return (
                self.input_grad_on(path, grad, weight),
                self.weight_grad_on(path, x, grad),
            );
        }
        let cout = self.channels_out;
        self.check("output gradient", grad, self.batch * cout * self.voxels());
        let grid = Grid::new(self.size);
        let padded_grad = grid.pad(grad, self.batch * cout);
        let input_grad = self.input_grad_padded(&grid, &padded_grad, weight);
        (input_grad, self.weight_grad_padded(&grid, x, &padded_grad))
    }

    /// The input gradient as a Winograd convolution of the output gradient (Cout channels in,
    /// Cin out) with the flipped kernel.
    fn input_grad_winograd(&self, bf16: bool, grad: &[f32], weight: &[f32]) -> Vec<f32> {
        let (cin, cout) = (self.channels_in, self.channels_out);
        self.check("weight", weight, cout * cin * 27);
        let plan = Winograd::new(self.batch, cout, cin, self.size);
        let kernel = plan.transform_kernel(weight, true);
        // The plan's input channels are the layer's outputs.
        let bf16_kernel = bf16.then(|| point_gemm::pack_kernel(&kernel, cout));
        plan.run(grad, &kernel, bf16_kernel.as_deref(), None)
    }

    fn input_grad_padded(&self, grid: &Grid, padded_grad: &[f32], weight: &[f32]) -> Vec<f32> {
        let (cin, cout) = (self.channels_in, self.channels_out);
        self.check("weight", weight, cout * cin * 27);
        let taps = taps_major(weight, cout, cin, true);
        let out = grid.shifted_gemm(padded_grad, self.batch, cout, &taps, cin);
        grid.crop(&out, self.batch, cin, None)
    }

    fn weight_grad_padded(&self, grid: &Grid, x: &[f32], padded_grad: &[f32]) -> Vec<f32> {
        let (cin, cout) = (self.channels_in, self.channels_out);
        self.check("input", x, self.batch * cin * self.voxels());
        let padded = grid.pad(x, self.batch * cin);
        let per_tap = grid.weight_gemm(&padded, padded_grad, self.batch, cin, cout);
        // [27][Cout][Cin] -> [Cout][Cin][27]
        let mut weight_grad = vec![0.0f32; cout * cin * 27];
        for (tap, block) in per_tap.chunks_exact(cout * cin).enumerate() {
            for (pair, value) in block.iter().enumerate() {
                weight_grad[pair * 27 + tap] = *value;
            }
        }
        weight_grad
    }

    /// Gradient of the bias, `[Cout]`: the output gradient summed over batch and positions.
    pub fn bias_grad(&self, grad: &[f32]) -> Vec<f32> {
        let cout = self.channels_out;
        self.check("output gradient", grad, self.batch * cout * self.voxels());
        let mut sums = vec![0.0f64; cout];
        for (index, channel) in grad.chunks_exact(self.voxels()).enumerate() {
            sums[index % cout] += channel.iter().map(|&v| v as f64).sum::<f64>();
        }
        sums.into_iter().map(|v| v as f32).collect()
    }
}

/// Weights regrouped tap-major, `[27][M][K]`: forward `M = Cout, K = Cin`; for the input gradient
/// (`flip`) `M = Cin, K = Cout` with the taps reversed.
fn taps_major(weight: &[f32], cout: usize, cin: usize, flip: bool) -> Vec<f32> {
    let mut taps = vec![0.0f32; 27 * cout * cin];
    for co in 0..cout {
        for ci in 0..cin {
            let kernel = &weight[(co * cin + ci) * 27..][..27];
            for (tap, &value) in kernel.iter().enumerate() {
                let index = if flip {
                    ((26 - tap) * cin + ci) * cout + co
                } else {
                    (tap * cout + co) * cin + ci
                };
                taps[index] = value;
            }
        }
    }
    taps
}

/// The zero-padded grid: each side grown by 2, the longest axis innermost.
///
/// Output position `j` (in `0..span`) is the voxel whose padded index is `j + origin`; only the
/// positions of real voxels are read back, the rest (the padding columns inside the span) are
/// computed and dropped.
struct Grid {
    size: [usize; 3],
    /// Stride of each original axis (X, Y, Z) in the padded grid.
    strides: [usize; 3],
    /// Floats per padded channel.
    padded: usize,
    /// Output positions, first voxel to last.
    span: usize,
    /// Padded index of voxel (0, 0, 0).
    origin: usize,
    /// Flat shift of each tap, indexed like PyTorch's kernel (`kx * 9 + ky * 3 + kz`).
    shifts: [usize; 27],
    /// Accumulator floats per position tile of [`Grid::shifted_gemm`] (from the caches; the
    /// result does not depend on it).
    tile_floats: usize,
}

impl Grid {
    fn new(size: [usize; 3]) -> Grid {
        let mut order = [0usize, 1, 2];
        order.sort_by_key(|&axis| size[axis]); // stable: ties keep X, Y, Z order
        let mut strides = [0usize; 3];
        let mut stride = 1;
        for &axis in order.iter().rev() {
            strides[axis] = stride;
            stride *= size[axis] + 2;
        }
        let padded = stride;
        let span = (0..3).map(|a| (size[a] - 1) * strides[a]).sum::<usize>() + 1;
        let origin = strides.iter().sum();
        let mut shifts = [0usize; 27];
        for (tap, shift) in shifts.iter_mut().enumerate() {
            *shift = (tap / 9) * strides[0] + (tap / 3 % 3) * strides[1] + (tap % 3) * strides[2];
        }
        Grid {
            size,
            strides,
            padded,
            span,
            origin,
            shifts,
            tile_floats: CacheSizes::detected().direct_tile_floats(),
        }
    }

    fn voxels(&self) -> usize {
        self.size.iter().product()
    }

    /// Copies each `[X, Y, Z]` channel onto a zeroed buffer of `stride` floats per channel,
    /// voxel (0, 0, 0) at `offset`. Reads run in memory order; the scattered writes of one
    /// Z row land on at most 3 rows of the grid, which stay in L1.
    fn scatter(&self, source: &[f32], channels: usize, stride: usize, offset: usize) -> Vec<f32> {
        let mut grid = zeroed(channels * stride);
        let [_, ny, nz] = self.size;
        let [sx, sy, sz] = self.strides;
        grid.par_chunks_mut(stride)
            .zip(source.par_chunks_exact(self.voxels()))
            .for_each(|(dst, src)| {
                for (row, values) in src.chunks_exact(nz).enumerate() {
                    let base = offset + (row / ny) * sx + (row % ny) * sy;
                    for (k, &value) in values.iter().enumerate() {
                        dst[base + k * sz] = value;
                    }
                }
            });
        grid
    }

    /// Input channels on the padded grid, zero borders.
    fn pad(&self, source: &[f32], channels: usize) -> Vec<f32> {
        self.scatter(source, channels, self.padded, self.origin)
    }

    /// Reads the voxels back from `[B, C, span]` into `[B, C, X, Y, Z]`, adding a bias per channel.
    fn crop(&self, grid: &[f32], batch: usize, channels: usize, bias: Option<&[f32]>) -> Vec<f32> {
        let len = batch * channels * self.voxels();
        debug_assert_eq!(
            grid.len(),
            batch * channels * self.span,
            "one grid per channel"
        );
        let mut out = room_for(len);
        let [_, ny, nz] = self.size;
        let [sx, sy, sz] = self.strides;
        out.spare_capacity_mut()[..len]
            .par_chunks_mut(self.voxels())
            .zip(grid.par_chunks_exact(self.span))
            .enumerate()
            .for_each(|(index, (dst, src))| {
                let add = bias.map_or(0.0, |b| b[index % channels]);
                for (row, values) in dst.chunks_exact_mut(nz).enumerate() {
                    let base = (row / ny) * sx + (row % ny) * sy;
                    for (k, value) in values.iter_mut().enumerate() {
                        *value = std::mem::MaybeUninit::new(src[base + k * sz] + add);
                    }
                }
            });
        // SAFETY: the loop above wrote every voxel of every channel.
        unsafe { out.set_len(len) };
        out
    }

    /// `out[b, m, j] = sum over taps t and k of taps[t, m, k] * input[b, k, j + shift_t]` for
    /// `j` in `0..span`: `input` is `[B, K, padded]`, `taps` is `[27][M][K]`.
    fn shifted_gemm(
        &self,
        input: &[f32],
        batch: usize,
        k: usize,
        taps: &[f32],
        m: usize,
    ) -> Vec<f32> {
        let span = self.span;
        let len = batch * m * span;
        // The first tap's GEMM writes without reading, so `out` needs no zeros.
        let mut out = room_for(len);
        let tile = (self.tile_floats / m).clamp(256, 8192).min(span);
        let tiles = span.div_ceil(tile);
        // Few tiles (deep, small levels) leave cores idle: split the output channels as well.
        let row_blocks = if batch * tiles >= MIN_TASKS {
            1
        } else {
            MIN_TASKS.div_ceil(batch * tiles).min(m.div_ceil(16)).max(1)
        };
        let rows = m.div_ceil(row_blocks);
        let out_ptr = SharedMut(out.as_mut_ptr());
        (0..batch * tiles * row_blocks)
            .into_par_iter()
            .for_each(|task| {
                let (b, rest) = (task / (tiles * row_blocks), task % (tiles * row_blocks));
                let (t, block) = (rest / row_blocks, rest % row_blocks);
                let (start, len) = (t * tile, tile.min(span - t * tile));
                let (row0, row_count) = (block * rows, rows.min(m - block * rows));
                let input = &input[b * k * self.padded..][..k * self.padded];
                // SAFETY: tasks write disjoint (batch, row block, position tile) parts of `out`;
                // every read stays inside `input` (shift + span <= padded) and `taps`.
                unsafe {
                    let dst = out_ptr.get().add((b * m + row0) * span + start);
                    for (i, &shift) in self.shifts.iter().enumerate() {
                        gemm::gemm(
                            row_count,
                            len,
                            k,
                            dst,
                            1,
                            span as isize,
                            i > 0,
                            taps.as_ptr().add((i * m + row0) * k),
                            1,
                            k as isize,
                            input.as_ptr().add(shift + start),
                            1,
                            self.padded as isize,
                            1.0,
                            1.0,
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        );
                    }
                }
            });
        // SAFETY: the tasks cover every batch, row block and position tile, and each one's
        // first GEMM wrote its part.
        unsafe { out.set_len(len) };
        out
    }

    /// `dW[t, co, ci] = sum over b, j of grad[b, co, j + origin] * input[b, ci, j + shift_t]`,
    /// `[27][Cout][Cin]`; both operands padded (the gradient is zero off the voxels).
    fn weight_gemm(
        &self,
        input: &[f32],
        grad: &[f32],
        batch: usize,
        cin: usize,
        cout: usize,
    ) -> Vec<f32> {
        let span = self.span;
        let size = 27 * cout * cin;
        let tile = (WEIGHT_TILE_FLOATS / (cout + cin))
            .clamp(256, 8192)
            .min(span);
        let tiles = span.div_ceil(tile);
        // One tile's taps into `dw` (rows `co0..co0 + count`), accumulating.
        let accumulate = |dw: *mut f32, b: usize, t: usize, co0: usize, count: usize| {
            let (start, len) = (t * tile, tile.min(span - t * tile));
            // SAFETY: reads stay inside `grad` and `input` ([B, C, padded]: origin + span <= padded);
            // the caller owns rows `co0..co0 + count` of every tap block of `dw`.
            unsafe {
                let grad = grad
                    .as_ptr()
                    .add((b * cout + co0) * self.padded + self.origin + start);
                let input = input.as_ptr().add(b * cin * self.padded + start);
                for (i, &shift) in self.shifts.iter().enumerate() {
                    gemm::gemm(
                        count,
                        cin,
                        len,
                        dw.add((i * cout + co0) * cin),
                        1,
                        cin as isize,
                        true,
                        grad,
                        1,
                        self.padded as isize,
                        input.add(shift),
                        self.padded as isize,
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
        };
        let accumulate =
            |dw: SharedMut, tasks: std::ops::Range<usize>, co0: usize, count: usize| {
                for task in tasks {
                    accumulate(dw.get(), task / tiles, task % tiles, co0, count);
                }
            };
        fixed_order_sum(size, batch * tiles, PARTIAL_SUMS, cout, 8, accumulate)
    }
}

/// A sum over `tasks` runs of positions into `len` floats, in an order fixed by the sizes alone,
/// never by the thread count or by which worker runs what, so the sums (and a training run) come
/// out the same bit for bit. With at least `many` tasks: [`PARTIAL_SUMS`] fixed runs of tasks,
/// each summed into its own copy, then the copies added in order. With fewer (few positions, many
/// channels: the deep levels): up to [`PARTIAL_SUMS`] groups of at least `min_group` of the `cout`
/// output channels, each summing every task in order. `accumulate(sums, tasks, co0, count)` adds
/// `tasks` for output channels `co0..co0 + count`, touching only those channels' rows.
fn fixed_order_sum(
    len: usize,
    tasks: usize,
    many: usize,
    cout: usize,
    min_group: usize,
    accumulate: impl Fn(SharedMut, std::ops::Range<usize>, usize, usize) + Sync,
) -> Vec<f32> {
    if tasks >= many {
        let partials: Vec<Vec<f32>> = (0..PARTIAL_SUMS)
            .into_par_iter()
            .map(|part| {
                let mut sums = vec![0.0f32; len];
                let run = part * tasks / PARTIAL_SUMS..(part + 1) * tasks / PARTIAL_SUMS;
                accumulate(SharedMut(sums.as_mut_ptr()), run, 0, cout);
                sums
            })
            .collect();
        let mut partials = partials.into_iter();
        let mut sums = partials.next().expect("PARTIAL_SUMS > 0");
        for partial in partials {
            sums.par_iter_mut().zip(&partial).for_each(|(x, y)| *x += y);
        }
        sums
    } else {
        let mut sums = vec![0.0f32; len];
        let groups = PARTIAL_SUMS.min(cout.div_ceil(min_group)).max(1);
        let group_len = cout.div_ceil(groups);
        let sums_ptr = SharedMut(sums.as_mut_ptr());
        (0..cout.div_ceil(group_len))
            .into_par_iter()
            .for_each(|group| {
                let co0 = group * group_len;
                accumulate(sums_ptr, 0..tasks, co0, group_len.min(cout - co0));
            });
        sums
    }
}

/// A zeroed buffer backed by transparent huge pages where the kernel allows: the passes work on
/// fresh buffers of up to hundreds of MiB, and first-touch faults on 4 KiB pages cost as much as
/// the copies that fill them.
fn zeroed(len: usize) -> Vec<f32> {
    // Large zeroed allocations come straight from mmap, untouched, so the hint lands before the
    // first fault.
    let buffer = vec![0.0f32; len];
    advise_huge_pages(buffer.as_ptr(), len);
    buffer
}

/// An empty buffer with room for `len` floats, for a pass that writes every one of them (through
/// `spare_capacity_mut` or a pointer) before `set_len`: no zeroing, which memory the allocator
/// reuses would get on the calling thread alone (a memset of hundreds of MiB while the other
/// cores wait), and first touches happen in the parallel pass that fills it.
fn room_for(len: usize) -> Vec<f32> {
    #[allow(unused_mut)] // written only in tests
    let mut buffer = Vec::with_capacity(len);
    advise_huge_pages(buffer.as_ptr(), len);
    // Tests see NaN wherever a pass forgot a float (fresh memory would read as zeros, which
    // padding expects).
    #[cfg(test)]
    buffer
        .spare_capacity_mut()
        .fill(std::mem::MaybeUninit::new(f32::NAN));
    buffer
}

/// Asks for transparent huge pages behind the `len` floats from `start` (an allocation's).
fn advise_huge_pages(start: *const f32, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE_PAGE: usize = 1 << 21;
        let start = start as usize;
        let end = start + len * std::mem::size_of::<f32>();
        let (from, to) = (
            (start + HUGE_PAGE - 1) & !(HUGE_PAGE - 1),
            end & !(HUGE_PAGE - 1),
        );
        if to > from {
            // SAFETY: the range lies inside the allocation, and MADV_HUGEPAGE is only a
            // hint that never changes the memory's contents; a refusal is harmless.
            unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, len);
}

/// A pointer tasks write through at disjoint offsets.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: every user writes a region no other task touches.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}
impl SharedMut {
    fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(count: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..count).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// The definition, in f64: y[b,co,v] = bias[co] + sum w[co,ci,t] x[b,ci,v+t-1] (zero outside),
    /// and its two gradients for the output gradient `g`.
    fn direct(c: &Conv3x3x3, x: &[f32], w: &[f32], bias: &[f32], g: &[f32]) -> [Vec<f64>; 3] {
        let [nx, ny, nz] = c.size;
        let vol = nx * ny * nz;
        let (cin, cout) = (c.channels_in, c.channels_out);
        let mut y = vec![0.0f64; c.batch * cout * vol];
        let mut dx = vec![0.0f64; c.batch * cin * vol];
        let mut dw = vec![0.0f64; cout * cin * 27];
        for b in 0..c.batch {
            for co in 0..cout {
                for i in 0..vol {
                    y[(b * cout + co) * vol + i] = bias[co] as f64;
                }
                for ci in 0..cin {
                    for (i, j, k) in itertools(nx, ny, nz) {
                        let out = (b * cout + co) * vol + (i * ny + j) * nz + k;
                        for t in 0..27 {
                            let (p, q, r) = (i + t / 9, j + t / 3 % 3, k + t % 3);
                            if p < 1 || q < 1 || r < 1 || p > nx || q > ny || r > nz {
                                continue;
                            }
                            let inp = (b * cin + ci) * vol + ((p - 1) * ny + (q - 1)) * nz + r - 1;
                            let wi = (co * cin + ci) * 27 + t;
                            y[out] += w[wi] as f64 * x[inp] as f64;
                            dx[inp] += w[wi] as f64 * g[out] as f64;
                            dw[wi] += g[out] as f64 * x[inp] as f64;
                        }
                    }
                }
            }
        }
        [y, dx, dw]
    }

    fn itertools(nx: usize, ny: usize, nz: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        (0..nx).flat_map(move |i| (0..ny).flat_map(move |j| (0..nz).map(move |k| (i, j, k))))
    }

    /// A convolution of these sizes with random input, weight, bias and output gradient.
    struct Case {
        conv: Conv3x3x3,
        x: Vec<f32>,
        w: Vec<f32>,
        bias: Vec<f32>,
        g: Vec<f32>,
    }

    fn case(sizes: (usize, usize, usize, [usize; 3]), rng: &mut ChaCha8Rng) -> Case {
        let (batch, cin, cout, size) = sizes;
        let conv = Conv3x3x3 {
            batch,
            channels_in: cin,
            channels_out: cout,
            size,
        };
        let vol: usize = size.iter().product();
        Case {
            conv,
            x: random(batch * cin * vol, rng),
            w: random(cout * cin * 27, rng),
            bias: random(cout, rng),
            g: random(batch * cout * vol, rng),
        }
    }

    /// Every pass against the definition, relative error under 1e-5.
    fn check_against_definition(sizes: &[(usize, usize, usize, [usize; 3])], seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for &sizes in sizes {
            let Case {
                conv: c,
                x,
                w,
                bias,
                g,
            } = case(sizes, &mut rng);
            let [y, dx, dw] = direct(&c, &x, &w, &bias, &g);
            // Both paths: the direct one serves layers under 16 channels and --direct-conv.
            for path in [Path::Fastest, Path::Direct] {
                let (dx_both, dw_both) = c.backward_on(path, &x, &g, &w);
                let errors = [
                    relative_error(&c.forward_on(path, &x, &w, &bias), &y),
                    relative_error(&c.input_grad_on(path, &g, &w), &dx),
                    relative_error(&c.weight_grad_on(path, &x, &g), &dw),
                    relative_error(&dx_both, &dx),
                    relative_error(&dw_both, &dw),
                ];
                assert!(
                    errors.iter().all(|&e| e < 1e-5),
                    "{c:?} {path:?}: errors {errors:?}"
                );
            }
        }
    }

    /// Largest difference relative to the largest reference magnitude.
    fn relative_error(got: &[f32], want: &[f64]) -> f64 {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        got.iter()
            .zip(want)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max)
            / scale
    }

    #[test]
    fn all_passes_match_the_definition_on_odd_shapes() {
        // Odd sides, sides of 1 and 2 (every voxel on a padding edge), each axis the longest
        // in turn (a different grid order), batch 1 to 3, channels 1 to 20.
        let shapes = [
            (1, 3, 5, [7, 4, 5]),
            (2, 4, 2, [2, 9, 3]),
            (1, 1, 1, [1, 1, 1]),
            (3, 2, 3, [3, 3, 11]),
            (1, 20, 17, [5, 6, 2]),
            (2, 5, 6, [1, 7, 1]),
        ];
        check_against_definition(&shapes, 7);
    }

    #[test]
    fn tiled_and_channel_split_paths_match_the_definition() {
        // Several tiles in one case, enough tiles for the weight gradient's partial sums in the
        // next (spans not a multiple of the tile), then many channels over few positions.
        let shapes = [
            (2, 3, 4, [30, 25, 9]),
            (2, 3, 4, [40, 41, 40]),
            (1, 64, 40, [3, 2, 2]),
        ];
        check_against_definition(&shapes, 11);
    }

    #[test]
    fn winograd_paths_match_the_definition() {
        // 16+ channels both ways: all three passes run Winograd. Odd sides (tiles cut by the
        // edge), each axis the longest in turn, sides of 1, a full 16-lane chunk plus a
        // remainder along the innermost axis, two blocks of tiles; the weight gradient in
        // groups of output channels (few blocks) and in partial sums (many).
        let shapes = [
            (2, 16, 16, [7, 4, 5]),
            (1, 16, 18, [3, 9, 4]),
            (1, 17, 16, [1, 2, 9]),
            (1, 16, 16, [4, 3, 40]),
            (1, 80, 16, [20, 8, 20]),
            // 32 blocks of tiles: the weight gradient's fixed partial sums.
            (2, 16, 16, [16, 16, 64]),
            // 48 tiles, 352 input channels: two runs of input channels (341 + 11) summed into
            // one accumulator.
            (1, 352, 16, [2, 2, 96]),
            // Over 512 channels: Winograd input gradient beside the direct weight gradient.
            (1, 520, 16, [3, 4, 2]),
        ];
        check_against_definition(&shapes, 13);
    }

    /// A decoder's input read from its parts (the lower level upsampled, then the skip) gives the
    /// same bits as the convolution of that input made in memory, on every path: Winograd in
    /// f32 and bf16 (the parts read while padding, rows in memory order and, for [6, 4, 4],
    /// permuted) and the direct sums (too few channels, and when asked for). The upsampling by hand: voxel (x, y, z) takes low (x/2, y/2, z/2).
    #[test]
    fn input_parts_equal_the_concatenated_input() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (batch, low_channels, skip_channels, size) in [
            (2, 12, 8, [4, 6, 10]),
            (1, 8, 12, [6, 4, 4]),
            (1, 4, 3, [2, 4, 8]),
        ] {
            let [nx, ny, nz] = size;
            let voxels = nx * ny * nz;
            let low = random(batch * low_channels * voxels / 8, &mut rng);
            let skip = random(batch * skip_channels * voxels, &mut rng);
            let channels_in = low_channels + skip_channels;
            let mut x = Vec::new();
            for b in 0..batch {
                for c in 0..low_channels {
                    let channel = &low[(b * low_channels + c) * voxels / 8..];
                    for (i, j, k) in (0..nx)
                        .flat_map(|i| (0..ny).flat_map(move |j| (0..nz).map(move |k| (i, j, k))))
                    {
                        x.push(channel[((i / 2) * (ny / 2) + j / 2) * (nz / 2) + k / 2]);
                    }
                }
                x.extend_from_slice(&skip[b * skip_channels * voxels..][..skip_channels * voxels]);
            }
            let conv = Conv3x3x3 {
                batch,
                channels_in,
                channels_out: 16,
                size,
            };
            let w = random(16 * channels_in * 27, &mut rng);
            let bias = random(16, &mut rng);
            let parts = [
                InputPart::Upsampled {
                    values: &low,
                    channels: low_channels,
                },
                InputPart::Full {
                    values: &skip,
                    channels: skip_channels,
                },
            ];
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            for path in [Path::Fastest, Path::Direct] {
                for bf16 in [false, bf16_supported()] {
                    assert_eq!(
                        bits(conv.forward_parts_in(path, bf16, &parts, &w, &bias)),
                        bits(conv.forward_in(path, bf16, &x, &w, &bias)),
                        "{conv:?} {path:?} bf16 {bf16}"
                    );
                }
            }
        }
    }

    #[test]
    fn bf16_forward_and_input_gradient_stay_near_the_definition() {
        if !bf16_supported() {
            eprintln!("skipped: this CPU has no AVX512_BF16");
            return;
        }
        // Operands rounded to 8 significant bits: each product is off by at most about 2^-8
        // relative, and the errors of the Cin x 27 products partly cancel. Bound: 2^-6 of the
        // largest output, stated here and in the README; f32 stays under 1e-5.
        let shapes = [
            (1, 16, 16, [7, 4, 5]),
            (1, 17, 16, [1, 2, 9]),
            // 17 output channels: the input gradient sums an odd count (the last paired with 0).
            (1, 16, 17, [3, 5, 6]),
            (2, 32, 24, [9, 8, 20]),
            (1, 352, 16, [2, 2, 96]),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        for sizes in shapes {
            let Case {
                conv: c,
                x,
                w,
                bias,
                g,
            } = case(sizes, &mut rng);
            let [y, dx, _] = direct(&c, &x, &w, &bias, &g);
            let error = relative_error(&c.forward_in(Path::Fastest, true, &x, &w, &bias), &y);
            let exact = relative_error(&c.forward_in(Path::Fastest, false, &x, &w, &bias), &y);
            eprintln!("{c:?}: bf16 error {error:.2e}, f32 {exact:.2e}");
            assert!(
                error < 2f64.powi(-6) && error > 10.0 * exact,
                "{c:?}: {error} (f32 {exact})"
            );
            // The input gradient (bf16 training) is the same convolution, flipped: same bound.
            let error = relative_error(&c.input_grad_in(Path::Fastest, true, &g, &w), &dx);
            let exact = relative_error(&c.input_grad_in(Path::Fastest, false, &g, &w), &dx);
            eprintln!("{c:?}: input gradient bf16 error {error:.2e}, f32 {exact:.2e}");
            assert!(
                error < 2f64.powi(-6) && error > 10.0 * exact,
                "{c:?} input gradient: {error} (f32 {exact})"
            );
        }
    }

    #[test]
    fn one_tap_by_hand() {
        // 1 channel, 1x1x3 volume [1, 2, 3], only the centre-right tap (kz = 2) set to 10:
        // y[z] = 10 * x[z + 1] + 0.5 -> [20.5, 30.5, 0.5].
        let c = Conv3x3x3 {
            batch: 1,
            channels_in: 1,
            channels_out: 1,
            size: [1, 1, 3],
        };
        let mut w = vec![0.0f32; 27];
        w[9 + 3 + 2] = 10.0;
        assert_eq!(
            c.forward(&[1.0, 2.0, 3.0], &w, &[0.5]),
            vec![20.5, 30.5, 0.5]
        );
        // dx[z] = 10 * g[z - 1]: g = [1, 2, 4] -> [0, 10, 20]; dw at that tap = sum g[z] x[z+1]
        // = 1*2 + 2*3 = 8; the bias gradient is sum g = 7.
        assert_eq!(c.input_grad(&[1.0, 2.0, 4.0], &w), vec![0.0, 10.0, 20.0]);
        assert_eq!(c.weight_grad(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0])[14], 8.0);
        assert_eq!(c.bias_grad(&[1.0, 2.0, 4.0]), vec![7.0]);
    }

    /// The direct path's position tiles follow the L2; they split only the outputs, so the
    /// bits stay the same whatever their size.
    #[test]
    fn direct_tile_size_does_not_change_the_bits() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        // 4 -> 16 channels (the U-Net's first layer), 24 -> 40, and a sum over 600 channels
        // (longer than the gemm crate's inner blocks).
        for sizes in [
            (1, 4, 16, [40, 41, 40]),
            (2, 24, 40, [20, 21, 22]),
            (1, 600, 8, [10, 11, 12]),
        ] {
            let Case {
                conv: c,
                x,
                w,
                bias,
                ..
            } = case(sizes, &mut rng);
            let forward = |tile_floats: usize| -> Vec<u32> {
                let mut grid = Grid::new(c.size);
                grid.tile_floats = tile_floats;
                let taps = taps_major(&w, c.channels_out, c.channels_in, false);
                let padded = grid.pad(&x, c.batch * c.channels_in);
                let out = grid.shifted_gemm(&padded, c.batch, c.channels_in, &taps, c.channels_out);
                let out = grid.crop(&out, c.batch, c.channels_out, Some(&bias));
                out.iter().map(|v| v.to_bits()).collect()
            };
            let tuned = forward(CacheSizes::TUNED.direct_tile_floats());
            assert!(
                forward(32 << 10) == tuned && forward(1 << 20) == tuned,
                "{c:?}"
            );
        }
    }

    #[test]
    fn same_bits_on_any_number_of_threads() {
        // Each on both paths: enough tiles for the partial sums of the weight gradient, a
        // channel-split case, a Winograd case with partial sums, and 768 input channels over
        // few tiles (channel groups whose GEMMs sum over k = 768).
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for sizes in [
            (2, 3, 4, [40, 41, 40]),
            (1, 24, 40, [3, 2, 2]),
            (2, 16, 16, [16, 16, 64]),
            (1, 768, 64, [2, 4, 4]),
        ] {
            let Case {
                conv: c,
                x,
                w,
                bias: b,
                g,
            } = case(sizes, &mut rng);
            for path in [Path::Fastest, Path::Direct] {
                let run = |threads: usize| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    pool.install(|| {
                        let (dx, dw) = c.backward_on(path, &x, &g, &w);
                        [
                            c.forward_on(path, &x, &w, &b),
                            dx,
                            dw,
                            c.weight_grad_on(path, &x, &g),
                        ]
                    })
                };
                let bits =
                    |v: [Vec<f32>; 4]| v.map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>());
                let one = bits(run(1));
                assert_eq!(one, bits(run(3)), "{path:?}");
                assert_eq!(one, bits(run(4)), "{path:?}");
            }
        }
    }
}
