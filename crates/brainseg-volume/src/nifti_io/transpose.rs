//! Decoding raw voxels and reordering them into canonical orientation in one cache-blocked pass.
#![allow(clippy::needless_range_loop)] // index arithmetic over the three axes reads best indexed.
use super::header::DataType;
use crate::Orientation;

/// Where canonical voxels lie in a source volume (in elements, file order: x fastest).
#[derive(Clone, Copy)]
pub(super) struct VolumeMap {
    /// Spatial shape in source order.
    pub(super) shape: [usize; 3],
    pub(super) canonical: [usize; 3],
    /// Source step along each canonical axis, and the source index of canonical (0, 0, 0).
    pub(super) strides: [isize; 3],
    pub(super) base: isize,
    /// The canonical axes that run along source x and along source z.
    pub(super) x_axis: usize,
    pub(super) z_axis: usize,
    pub(super) z_flipped: bool,
}

impl VolumeMap {
    pub(super) fn new(shape: [usize; 3], o: &Orientation) -> VolumeMap {
        let source_strides = [1, shape[0] as isize, (shape[0] * shape[1]) as isize];
        let (mut strides, mut base) = ([0isize; 3], 0isize);
        for i in 0..3 {
            let s = o.perm[i];
            strides[i] = if o.flip[i] {
                -source_strides[s]
            } else {
                source_strides[s]
            };
            if o.flip[i] {
                base += (shape[s] as isize - 1) * source_strides[s];
            }
        }
        let axis_of = |s: usize| {
            o.perm
                .iter()
                .position(|&p| p == s)
                .expect("perm is a permutation")
        };
        let z_axis = axis_of(2);
        VolumeMap {
            shape,
            canonical: o.perm.map(|s| shape[s]),
            strides,
            base,
            x_axis: axis_of(0),
            z_axis,
            z_flipped: o.flip[z_axis],
        }
    }
}

/// What converting raw voxels needs to know about the file.
#[derive(Clone, Copy)]
pub(super) struct VolumeDecoder {
    pub(super) dtype: DataType,
    pub(super) map: VolumeMap,
    pub(super) scale: Option<(f64, f64)>,
    pub(super) big: bool,
}

impl VolumeDecoder {
    /// Convert the voxels of source z-planes `z0..` (held in `bytes`) that fall in `out`, the
    /// canonical rows `first..` of one volume: decoding, scaling and reordering in one pass.
    pub(super) fn convert(&self, bytes: &[u8], z0: usize, first: usize, out: &mut [f32]) {
        let m = &self.map;
        let [nx, ny, nz] = m.shape;
        let [_, n1, n2] = m.canonical;
        let planes = bytes.len() / (nx * ny * self.dtype.size());
        let mut ranges = [first..first + out.len() / (n1 * n2), 0..n1, 0..n2];
        // The slab's planes along the canonical axis that runs along source z.
        let (lo, hi) = if m.z_flipped {
            (nz - z0 - planes, nz - z0)
        } else {
            (z0, z0 + planes)
        };
        let r = &mut ranges[m.z_axis];
        *r = r.start.max(lo)..r.end.min(hi);
        if ranges.iter().any(|r| r.is_empty()) {
            return;
        }
        let offset = (z0 * nx * ny) as isize;
        macro_rules! transpose {
            ($t:ty) => {{
                const S: usize = std::mem::size_of::<$t>();
                let (le, be) = (<$t>::from_le_bytes, <$t>::from_be_bytes);
                // One instance per byte order and scaling, so the inner loop has no branches.
                match (self.big, self.scale) {
                    (false, None) => {
                        transpose::<S>(m, bytes, offset, ranges, first, out, |b| le(b) as f32)
                    }
                    (true, None) => {
                        transpose::<S>(m, bytes, offset, ranges, first, out, |b| be(b) as f32)
                    }
                    (false, Some((slope, inter))) => {
                        transpose::<S>(m, bytes, offset, ranges, first, out, |b| {
                            (le(b) as f64 * slope + inter) as f32
                        })
                    }
                    (true, Some((slope, inter))) => {
                        transpose::<S>(m, bytes, offset, ranges, first, out, |b| {
                            (be(b) as f64 * slope + inter) as f32
                        })
                    }
                }
            }};
        }
        match self.dtype {
            DataType::Uint8 => transpose!(u8),
            DataType::Int8 => transpose!(i8),
            DataType::Int16 => transpose!(i16),
            DataType::Uint16 => transpose!(u16),
            DataType::Int32 => transpose!(i32),
            DataType::Uint32 => transpose!(u32),
            DataType::Float32 => transpose!(f32),
            DataType::Float64 => transpose!(f64),
        }
    }
}

/// Blocks of the transpose: TILE adjacent output lanes by TILE lane elements.
pub(super) const TILE: usize = 8;

/// `out[canonical (i0, i1, i2) - rows before first] = value(element at m.base + Σ i_k * m.strides[k] - offset)`
/// over `ranges`, elements `S` bytes each.
fn transpose<const S: usize>(
    m: &VolumeMap,
    bytes: &[u8],
    offset: isize,
    ranges: [std::ops::Range<usize>; 3],
    first: usize,
    out: &mut [f32],
    value: impl Fn([u8; S]) -> f32,
) {
    let [_, n1, n2] = m.canonical;
    let [s0, s1, s2] = m.strides;
    let [r0, r1, r2] = ranges;
    let source = |i0: usize, i1: usize| {
        m.base + i0 as isize * s0 + i1 as isize * s1 + r2.start as isize * s2 - offset
    };
    let target = |i0: usize, i1: usize| (i0 - first) * n1 * n2 + i1 * n2 + r2.start;
    if m.x_axis == 2 {
        // Output lanes run along source x: both sides are contiguous.
        for i0 in r0 {
            for i1 in r1.clone() {
                let (mut s, o) = (source(i0, i1), target(i0, i1));
                for v in &mut out[o..o + r2.len()] {
                    *v = value(bytes[s as usize * S..][..S].try_into().expect("S bytes"));
                    s += s2;
                }
            }
        }
        return;
    }
    // Source x runs across output lanes (along canonical axis 0 or 1): go by blocks of TILE
    // lanes, each block reading TILE short runs of x and writing TILE short runs of lanes.
    let sx = m.strides[m.x_axis];
    let lane_step = if m.x_axis == 0 { n1 * n2 } else { n2 };
    let mut block = [[0f32; TILE]; TILE];
    let mut lanes = |i0: usize, i1: usize, count: usize| {
        let (s, o) = (source(i0, i1), target(i0, i1));
        let lanes = Lanes {
            out_step: lane_step,
            count,
            len: r2.len(),
            step: s2,
        };
        if sx > 0 {
            lanes.convert::<S, false>(bytes, s, out, o, &value, &mut block);
        } else {
            lanes.convert::<S, true>(bytes, s + 1 - count as isize, out, o, &value, &mut block);
        }
    };
    if m.x_axis == 0 {
        // Lanes a few rows of canonical axis 1 at a time: the source lines they read (all
        // planes of those rows) stay in L2 while the next tiles of x reuse them.
        const ROWS: usize = 8;
        for b in r1.clone().step_by(ROWS) {
            for t in r0.clone().step_by(TILE) {
                (b..(b + ROWS).min(r1.end)).for_each(|i1| lanes(t, i1, TILE.min(r0.end - t)));
            }
        }
    } else {
        for i0 in r0 {
            r1.clone()
                .step_by(TILE)
                .for_each(|t| lanes(i0, t, TILE.min(r1.end - t)));
        }
    }
}

/// `count` (at most TILE) output lanes of `len` elements, `out_step` apart in the output; element
/// k of lane j is the source element `low + k * step + j` (`REV`: `+ count - 1 - j`).
struct Lanes {
    out_step: usize,
    count: usize,
    len: usize,
    step: isize,
}

impl Lanes {
    #[inline(always)]
    fn convert<const S: usize, const REV: bool>(
        &self,
        bytes: &[u8],
        low: isize,
        out: &mut [f32],
        o: usize,
        value: &impl Fn([u8; S]) -> f32,
        block: &mut [[f32; TILE]; TILE],
    ) {
        let count = self.count;
        for k0 in (0..self.len).step_by(TILE) {
            let width = TILE.min(self.len - k0);
            for (k, row) in block[..width].iter_mut().enumerate() {
                let at = (low + (k0 + k) as isize * self.step) as usize * S;
                if count == TILE {
                    // Fixed sizes, so the compiler converts the run with vector code.
                    let mut run = [[0u8; S]; TILE];
                    run.as_flattened_mut()
                        .copy_from_slice(&bytes[at..][..TILE * S]);
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = value(run[if REV { TILE - 1 - j } else { j }]);
                    }
                } else {
                    for (j, b) in bytes[at..][..count * S].chunks_exact(S).enumerate() {
                        row[if REV { count - 1 - j } else { j }] =
                            value(b.try_into().expect("S bytes"));
                    }
                }
            }
            for j in 0..count {
                let o = o + j * self.out_step + k0;
                for (v, row) in out[o..o + width].iter_mut().zip(block.iter()) {
                    *v = row[j];
                }
            }
        }
    }
}
