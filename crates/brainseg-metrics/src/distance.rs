//! Surface distances between binary masks: an exact Euclidean distance transform (Felzenszwalb & Huttenlocher's
//! separable lower-envelope algorithm, with anisotropic voxel spacing), mask surfaces, and the Hausdorff distance
//! and its 95th percentile (HD95) under either of the two conventions in use ([`HausdorffConvention`]):
//!
//! - [`HausdorffConvention::DirectedMax`] (the default): the larger of the two directed 95th percentiles, as
//!   MONAI's `HausdorffDistanceMetric(percentile=95)` computes it and the BraTS evaluation toolkits report it
//!   (some of those define surfaces or percentiles differently, e.g. weighting by surface area, so values can
//!   differ slightly from theirs; this crate matches MONAI's definition);
//! - [`HausdorffConvention::Pooled`]: the 95th percentile of both directed distance sets pooled into one, MedPy's
//!   `hd95`.
//!
//! Both start from the same two directed sets ([`SurfaceDistances`]): for every surface voxel of one mask, the
//! distance in millimetres to the nearest surface voxel of the other. A surface voxel is a foreground voxel with a
//! background 6-neighbour or on the array's border ([`surface`]), which is what MedPy and MONAI get from
//! `mask ^ binary_erosion(mask)` with SciPy's default (6-connected) structuring element and zero border. Percentiles
//! interpolate linearly between neighbouring ranks ([`percentile`]), as `numpy.percentile` (MedPy) and
//! `torch.quantile` (MONAI) do by default.
//!
//! The two conventions can differ a lot: when one mask has a far-away part that is a small share of the pooled
//! surface voxels, the pooled 95th percentile can miss it while its own directed percentile does not. The plain
//! Hausdorff distance (the 100th percentile, [`SurfaceDistances::hausdorff`]) is the same under both.
//!
//! Empty masks: every function here returns `None` when either mask (or both) is empty, under both conventions;
//! the case metrics ([`crate::CaseMetrics`]) then apply the BraTS values (0 mm when both are empty,
//! [`crate::HD95_ONE_EMPTY_MM`] when exactly one is).
use std::fmt;
use std::str::FromStr;

use ndarray::{s, Array3, ArrayView3, Axis, Zip};
use serde::{Deserialize, Serialize};

/// How HD95 combines the two directed surface-distance sets (see the [module documentation](self)). Serialised
/// in snake case: `"directed_max"` or `"pooled"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HausdorffConvention {
    /// The larger of the two directed percentiles: MONAI's `HausdorffDistanceMetric(percentile=95)` and the
    /// BraTS evaluation toolkits. The default.
    #[default]
    DirectedMax,
    /// The percentile of both directed sets pooled into one: MedPy's `hd95`.
    Pooled,
}

impl HausdorffConvention {
    /// Both conventions, the default first.
    pub const ALL: [HausdorffConvention; 2] = [
        HausdorffConvention::DirectedMax,
        HausdorffConvention::Pooled,
    ];

    /// The serialised name: `"directed_max"` or `"pooled"` (also what [`FromStr`] reads and [`fmt::Display`]
    /// writes).
    pub fn name(self) -> &'static str {
        match self {
            HausdorffConvention::DirectedMax => "directed_max",
            HausdorffConvention::Pooled => "pooled",
        }
    }

    /// A table heading that says which HD95 a column holds.
    pub fn description(self) -> &'static str {
        match self {
            HausdorffConvention::DirectedMax => {
                "HD95 (BraTS/MONAI, max of directed 95th percentiles)"
            }
            HausdorffConvention::Pooled => "HD95 (MedPy, pooled)",
        }
    }
}

impl fmt::Display for HausdorffConvention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HausdorffConvention {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        HausdorffConvention::ALL
            .into_iter()
            .find(|convention| convention.name() == text)
            .ok_or_else(|| {
                format!("unknown HD95 convention {text:?}; expected \"directed_max\" or \"pooled\"")
            })
    }
}

/// Euclidean distance in millimetres from every voxel to the nearest `true` voxel of `sites`, with voxel sizes
/// `spacing` along the three axes. Every voxel is infinitely far when there is no site.
pub fn euclidean_distance_transform(sites: ArrayView3<bool>, spacing: [f32; 3]) -> Array3<f64> {
    let mut squared = Array3::zeros(sites.raw_dim());
    // Along the first (contiguous) pass the input is binary: two sweeps find each voxel's nearest site in its row.
    let row_step = spacing[2] as f64;
    Zip::from(squared.lanes_mut(Axis(2)))
        .and(sites.lanes(Axis(2)))
        .for_each(|mut out, row| {
            let mut previous_site = None;
            for (z, (value, &site)) in out.iter_mut().zip(row).enumerate() {
                if site {
                    previous_site = Some(z);
                }
                *value =
                    previous_site.map_or(f64::INFINITY, |p| ((z - p) as f64 * row_step).powi(2));
            }
            let mut next_site = None;
            for (z, (value, &site)) in out.iter_mut().zip(row).enumerate().rev() {
                if site {
                    next_site = Some(z);
                }
                if let Some(n) = next_site {
                    *value = value.min(((n - z) as f64 * row_step).powi(2));
                }
            }
        });
    let mut envelope = LowerEnvelope::default();
    for axis in [1, 0] {
        let step = spacing[axis] as f64;
        let length = squared.len_of(Axis(axis));
        let (mut line, mut transformed) = (vec![0.0; length], vec![0.0; length]);
        for mut lane in squared.lanes_mut(Axis(axis)) {
            line.iter_mut()
                .zip(lane.iter())
                .for_each(|(to, &from)| *to = from);
            envelope.transform(&line, step, &mut transformed);
            lane.iter_mut()
                .zip(&transformed)
                .for_each(|(to, &from)| *to = from);
        }
    }
    squared.mapv_inplace(f64::sqrt);
    squared
}

/// Buffers for the 1-D pass: the parabolas of the lower envelope and where each one starts.
#[derive(Default)]
struct LowerEnvelope {
    apexes: Vec<usize>,
    starts: Vec<f64>,
}

impl LowerEnvelope {
    /// `out[x] = min_q (step * (x - q))^2 + f[q]`, over the `q` where `f` is finite.
    fn transform(&mut self, f: &[f64], step: f64, out: &mut [f64]) {
        self.apexes.clear();
        self.starts.clear();
        for q in (0..f.len()).filter(|&q| f[q].is_finite()) {
            let position = q as f64 * step;
            loop {
                let Some(&last) = self.apexes.last() else {
                    self.apexes.push(q);
                    self.starts.push(f64::NEG_INFINITY);
                    break;
                };
                let last_position = last as f64 * step;
                let crossing = ((f[q] + position * position)
                    - (f[last] + last_position * last_position))
                    / (2.0 * (position - last_position));
                if crossing <= *self.starts.last().expect("one start per apex") {
                    self.apexes.pop();
                    self.starts.pop();
                } else {
                    self.apexes.push(q);
                    self.starts.push(crossing);
                    break;
                }
            }
        }
        if self.apexes.is_empty() {
            out.fill(f64::INFINITY);
            return;
        }
        let mut k = 0;
        for (x, value) in out.iter_mut().enumerate() {
            let position = x as f64 * step;
            while k + 1 < self.apexes.len() && self.starts[k + 1] < position {
                k += 1;
            }
            let apex = self.apexes[k] as f64 * step;
            *value = (position - apex) * (position - apex) + f[self.apexes[k]];
        }
    }
}

/// The surface of a mask: foreground voxels with at least one background 6-neighbour (sharing a face); voxels on
/// the array's border count as having one. This is `mask ^ binary_erosion(mask)` with SciPy's default 6-connected
/// structuring element and zero border, the edges MedPy's `hd95` and MONAI's `get_mask_edges` use. A non-empty
/// mask always has a non-empty surface.
pub fn surface(mask: ArrayView3<bool>) -> Array3<bool> {
    let (nx, ny, nz) = mask.dim();
    Array3::from_shape_fn((nx, ny, nz), |(x, y, z)| {
        if !mask[(x, y, z)] {
            return false;
        }
        let on_border = x == 0 || y == 0 || z == 0 || x + 1 == nx || y + 1 == ny || z + 1 == nz;
        on_border
            || !mask[(x - 1, y, z)]
            || !mask[(x + 1, y, z)]
            || !mask[(x, y - 1, z)]
            || !mask[(x, y + 1, z)]
            || !mask[(x, y, z - 1)]
            || !mask[(x, y, z + 1)]
    })
}

/// The two directed surface-distance sets of two non-empty masks, in millimetres, each sorted ascending: from
/// every surface voxel of `a` to the nearest surface voxel of `b`, and from every surface voxel of `b` to the
/// nearest of `a` (surfaces as [`surface`] defines them). Neither set is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct SurfaceDistances {
    a_to_b: Vec<f64>,
    b_to_a: Vec<f64>,
}

impl SurfaceDistances {
    /// The directed distances of `a` and `b` with voxel sizes `spacing`; `None` when either mask is empty. Work is
    /// confined to the bounding box of both masks, which gives the same distances: every surface voxel of either
    /// mask lies inside it.
    ///
    /// Panics when the masks differ in shape (callers check shapes of user data first).
    pub fn between(a: ArrayView3<bool>, b: ArrayView3<bool>, spacing: [f32; 3]) -> Option<Self> {
        assert_eq!(
            a.shape(),
            b.shape(),
            "surface distances need masks of one shape"
        );
        let [(x0, x1), (y0, y1), (z0, z1)] = bounding_box(a)?.union(bounding_box(b)?);
        let window = s![x0..x1, y0..y1, z0..z1];
        let (a, b) = (a.slice(window), b.slice(window));
        // Outside the window both masks are empty, so a window face borders background exactly as the array
        // border does: the surfaces are the same as cut from the full masks.
        let (surface_a, surface_b) = (surface(a), surface(b));
        let mut a_to_b = distances_at(
            surface_a.view(),
            euclidean_distance_transform(surface_b.view(), spacing),
        );
        let mut b_to_a = distances_at(
            surface_b.view(),
            euclidean_distance_transform(surface_a.view(), spacing),
        );
        a_to_b.sort_by(f64::total_cmp);
        b_to_a.sort_by(f64::total_cmp);
        Some(SurfaceDistances { a_to_b, b_to_a })
    }

    /// Distances from each surface voxel of `a` to the surface of `b`, ascending.
    pub fn a_to_b(&self) -> &[f64] {
        &self.a_to_b
    }

    /// Distances from each surface voxel of `b` to the surface of `a`, ascending.
    pub fn b_to_a(&self) -> &[f64] {
        &self.b_to_a
    }

    /// The `q`-th percentile (0 to 100, linear interpolation) under `convention`: the larger of the two directed
    /// percentiles, or the percentile of both sets pooled.
    ///
    /// Panics when `q` is outside 0..=100.
    pub fn percentile(&self, q: f64, convention: HausdorffConvention) -> f64 {
        assert!((0.0..=100.0).contains(&q), "percentile {q} outside 0..=100");
        match convention {
            HausdorffConvention::DirectedMax => {
                sorted_percentile(&self.a_to_b, q).max(sorted_percentile(&self.b_to_a, q))
            }
            HausdorffConvention::Pooled => {
                let mut pooled = [self.a_to_b.as_slice(), &self.b_to_a].concat();
                percentile(&mut pooled, q)
            }
        }
    }

    /// HD95 in millimetres under `convention`.
    pub fn hd95(&self, convention: HausdorffConvention) -> f64 {
        self.percentile(95.0, convention)
    }

    /// The Hausdorff distance in millimetres: the largest distance of either set, the same under both conventions.
    pub fn hausdorff(&self) -> f64 {
        let last = |distances: &[f64]| *distances.last().expect("a non-empty surface");
        last(&self.a_to_b).max(last(&self.b_to_a))
    }
}

/// HD95 in millimetres in the default convention, [`HausdorffConvention::DirectedMax`] (BraTS, MONAI): the larger
/// of the two directed 95th percentiles. `None` when either mask is empty (the caller applies its convention).
/// Before conventions were named this function pooled both sets (MedPy's `hd95`); [`hd95_with`] with
/// [`HausdorffConvention::Pooled`] gives that value.
///
/// Panics when the masks differ in shape (callers check shapes of user data first).
pub fn hd95(a: ArrayView3<bool>, b: ArrayView3<bool>, spacing: [f32; 3]) -> Option<f64> {
    hd95_with(a, b, spacing, HausdorffConvention::default())
}

/// HD95 in millimetres under `convention`; `None` when either mask is empty.
///
/// Panics when the masks differ in shape.
pub fn hd95_with(
    a: ArrayView3<bool>,
    b: ArrayView3<bool>,
    spacing: [f32; 3],
    convention: HausdorffConvention,
) -> Option<f64> {
    SurfaceDistances::between(a, b, spacing).map(|distances| distances.hd95(convention))
}

/// The Hausdorff distance in millimetres (largest surface distance either way); `None` when either mask is empty.
///
/// Panics when the masks differ in shape.
pub fn hausdorff(a: ArrayView3<bool>, b: ArrayView3<bool>, spacing: [f32; 3]) -> Option<f64> {
    SurfaceDistances::between(a, b, spacing).map(|distances| distances.hausdorff())
}

/// The values of `distance_map` on the `true` voxels of `at`.
fn distances_at(at: ArrayView3<bool>, distance_map: Array3<f64>) -> Vec<f64> {
    let mut values = Vec::new();
    Zip::from(&at)
        .and(&distance_map)
        .for_each(|&on_surface, &distance| {
            if on_surface {
                values.push(distance);
            }
        });
    values
}

/// The `q`-th percentile with linear interpolation between neighbouring ranks (NumPy's default).
/// Sorts `values` in place; `values` must not be empty.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    sorted_percentile(values, q)
}

/// [`percentile`] of values already sorted ascending.
fn sorted_percentile(values: &[f64], q: f64) -> f64 {
    let rank = (values.len() - 1) as f64 * q / 100.0;
    let (below, fraction) = (rank.floor() as usize, rank.fract());
    match values.get(below + 1) {
        Some(&above) => values[below] + fraction * (above - values[below]),
        None => values[below],
    }
}

/// Half-open index ranges of the `true` voxels along each axis.
struct BoundingBox([(usize, usize); 3]);

impl BoundingBox {
    fn union(self, other: BoundingBox) -> [(usize, usize); 3] {
        std::array::from_fn(|axis| {
            (
                self.0[axis].0.min(other.0[axis].0),
                self.0[axis].1.max(other.0[axis].1),
            )
        })
    }
}

fn bounding_box(mask: ArrayView3<bool>) -> Option<BoundingBox> {
    let mut ranges = [(usize::MAX, 0); 3];
    // Row by row: finding the first and last voxel of a row is much cheaper than visiting every index.
    for (x, plane) in mask.outer_iter().enumerate() {
        for (y, row) in plane.outer_iter().enumerate() {
            let Some(first) = row.iter().position(|&inside| inside) else {
                continue;
            };
            let last = row
                .iter()
                .rposition(|&inside| inside)
                .expect("the row has a first voxel");
            for (range, (low, high)) in ranges.iter_mut().zip([(x, x), (y, y), (first, last)]) {
                *range = (range.0.min(low), range.1.max(high + 1));
            }
        }
    }
    (ranges[0].0 != usize::MAX).then_some(BoundingBox(ranges))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use rand::{Rng, SeedableRng};

    fn mask_with(shape: (usize, usize, usize), voxels: &[(usize, usize, usize)]) -> Array3<bool> {
        let mut mask = Array3::from_elem(shape, false);
        voxels.iter().for_each(|&v| mask[v] = true);
        mask
    }

    #[test]
    fn distance_transform_matches_brute_force_with_anisotropic_spacing() {
        let spacing = [0.7f32, 1.3, 2.1];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let sites = Array3::from_shape_fn((7, 6, 5), |_| rng.random_bool(0.08));
        let site_list: Vec<_> = sites
            .indexed_iter()
            .filter(|(_, &s)| s)
            .map(|(i, _)| i)
            .collect();
        assert!(site_list.len() > 3, "the fixture needs a few sites");
        let transform = euclidean_distance_transform(sites.view(), spacing);
        for ((x, y, z), &distance) in transform.indexed_iter() {
            let brute = site_list
                .iter()
                .map(|&(sx, sy, sz)| {
                    let d = [
                        x as f64 - sx as f64,
                        y as f64 - sy as f64,
                        z as f64 - sz as f64,
                    ];
                    (0..3)
                        .map(|a| (d[a] * spacing[a] as f64).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                (distance - brute).abs() < 1e-9,
                "at {:?}: {distance} vs {brute}",
                (x, y, z)
            );
        }
    }

    #[test]
    fn distance_transform_without_sites_is_infinite() {
        let transform =
            euclidean_distance_transform(Array3::from_elem((3, 4, 2), false).view(), [1.0; 3]);
        assert!(transform.iter().all(|d| d.is_infinite()));
    }

    #[test]
    fn surface_keeps_voxels_next_to_background_or_border() {
        let mut cube = Array3::from_elem((5, 5, 5), false);
        cube.slice_mut(s![1..4, 1..4, 1..4]).fill(true);
        let shell = surface(cube.view());
        assert_eq!(
            shell.iter().filter(|&&v| v).count(),
            26,
            "a 3x3x3 cube minus its centre"
        );
        assert!(!shell[(2, 2, 2)]);
        let full = surface(Array3::from_elem((5, 5, 5), true).view());
        assert_eq!(
            full.iter().filter(|&&v| v).count(),
            125 - 27,
            "only the array border"
        );
    }

    /// HD95 under both conventions and the Hausdorff distance, each with the masks in both orders.
    fn both_ways(a: &Array3<bool>, b: &Array3<bool>, spacing: [f32; 3]) -> (f64, f64, f64) {
        let directed = hd95_with(
            a.view(),
            b.view(),
            spacing,
            HausdorffConvention::DirectedMax,
        );
        let pooled = hd95_with(a.view(), b.view(), spacing, HausdorffConvention::Pooled);
        let max = hausdorff(a.view(), b.view(), spacing);
        assert_eq!(
            (directed, pooled, max),
            (
                hd95_with(
                    b.view(),
                    a.view(),
                    spacing,
                    HausdorffConvention::DirectedMax
                ),
                hd95_with(b.view(), a.view(), spacing, HausdorffConvention::Pooled),
                hausdorff(b.view(), a.view(), spacing)
            ),
            "swapping the masks changes nothing"
        );
        assert_eq!(hd95(a.view(), b.view(), spacing), directed, "the default");
        (directed.unwrap(), pooled.unwrap(), max.unwrap())
    }

    fn assert_close(actual: f64, expected: f64, what: &str) {
        assert!(
            (actual - expected).abs() < 1e-12,
            "{what}: {actual} vs {expected}"
        );
    }

    #[test]
    fn hd95_of_two_single_voxels_is_their_distance_in_millimetres_in_both_conventions() {
        let a = mask_with((5, 5, 5), &[(1, 1, 1)]);
        let b = mask_with((5, 5, 5), &[(3, 2, 1)]);
        // One distance each way, (2 voxels * 1 mm, 1 voxel * 2 mm, 0): sqrt(4 + 4).
        let (directed, pooled, max) = both_ways(&a, &b, [1.0, 2.0, 3.0]);
        for (value, what) in [(directed, "directed"), (pooled, "pooled"), (max, "max")] {
            assert_close(value, 8f64.sqrt(), what);
        }
    }

    #[test]
    fn hd95_of_parallel_planes_is_their_gap_in_both_conventions() {
        let mut a = Array3::from_elem((6, 4, 3), false);
        let mut b = a.clone();
        a.slice_mut(s![1, .., ..]).fill(true);
        b.slice_mut(s![4, .., ..]).fill(true);
        // Every surface voxel of either plane faces its twin 3 voxels of 1.5 mm away: every distance is 4.5.
        let (directed, pooled, max) = both_ways(&a, &b, [1.5, 1.0, 1.0]);
        for (value, what) in [(directed, "directed"), (pooled, "pooled"), (max, "max")] {
            assert_close(value, 4.5, what);
        }
    }

    #[test]
    fn hd95_interpolates_within_each_convention() {
        let a = mask_with((6, 2, 2), &[(0, 0, 0)]);
        let b = mask_with((6, 2, 2), &[(0, 0, 0), (4, 0, 0)]);
        // a -> b: [0]; b -> a: [0, 4].
        // Directed: a -> b gives 0; b -> a rank 0.95 * 1 = 0.95: 0 + 0.95 * 4 = 3.8; the larger is 3.8.
        // Pooled [0, 0, 4]: rank 0.95 * 2 = 1.9: 0 + 0.9 * 4 = 3.6.
        let (directed, pooled, max) = both_ways(&a, &b, [1.0; 3]);
        assert_close(directed, 3.8, "directed");
        assert_close(pooled, 3.6, "pooled");
        assert_close(max, 4.0, "max");
        let empty = Array3::from_elem((6, 2, 2), false);
        for convention in HausdorffConvention::ALL {
            for (x, y) in [(&a, &empty), (&empty, &a), (&empty, &empty)] {
                assert_eq!(hd95_with(x.view(), y.view(), [1.0; 3], convention), None);
                assert_eq!(hausdorff(x.view(), y.view(), [1.0; 3]), None);
            }
        }
    }

    #[test]
    fn a_voxel_against_itself_plus_a_far_line_with_anisotropic_spacing() {
        // Spacing 2 mm along x, 1 mm along y, 3 mm along z. A: the voxel (0, 0, 0). B: that voxel and the line
        // x = 7, z = 0..4. With y of length 1 every voxel is on the array border, so every voxel is surface.
        let spacing = [2.0, 1.0, 3.0];
        let a = mask_with((8, 1, 4), &[(0, 0, 0)]);
        let b = mask_with(
            (8, 1, 4),
            &[(0, 0, 0), (7, 0, 0), (7, 0, 1), (7, 0, 2), (7, 0, 3)],
        );
        // a -> b: [0]. b -> a: 0, then sqrt((7 * 2)^2 + (3 z)^2) = sqrt(196 + 9 z^2) for z = 0..4:
        // [0, 14, sqrt(205), sqrt(232), sqrt(277)].
        let distances = SurfaceDistances::between(a.view(), b.view(), spacing).unwrap();
        assert_eq!(distances.a_to_b(), [0.0]);
        let expected_b_to_a = [0.0, 14.0, 205f64.sqrt(), 232f64.sqrt(), 277f64.sqrt()];
        assert_eq!(distances.b_to_a().len(), 5);
        for (&got, expected) in distances.b_to_a().iter().zip(expected_b_to_a) {
            assert_close(got, expected, "b -> a");
        }
        // Directed: a -> b is 0; b -> a has 5 values, rank 0.95 * 4 = 3.8, between sqrt(232) and sqrt(277).
        let directed = 232f64.sqrt() + 0.8 * (277f64.sqrt() - 232f64.sqrt()); // 16.36093...
                                                                              // Pooled: [0, 0, 14, sqrt(205), sqrt(232), sqrt(277)], rank 0.95 * 5 = 4.75, between the same two.
        let pooled = 232f64.sqrt() + 0.75 * (277f64.sqrt() - 232f64.sqrt()); // 16.29034...
        let (got_directed, got_pooled, max) = both_ways(&a, &b, spacing);
        assert_close(got_directed, directed, "directed");
        assert_close(got_pooled, pooled, "pooled");
        assert_close(max, 277f64.sqrt(), "max");
        assert_close(
            distances.percentile(100.0, HausdorffConvention::Pooled),
            max,
            "100th",
        );
        assert_close(
            distances.percentile(0.0, HausdorffConvention::DirectedMax),
            0.0,
            "0th",
        );
    }

    #[test]
    fn a_small_far_part_counts_in_its_own_directed_percentile_but_not_when_pooled() {
        // A: the line x = 0..10; B: A plus the voxel x = 19, 1 mm voxels. Every voxel is surface (y, z of length 1).
        let line: Vec<_> = (0..10).map(|x| (x, 0, 0)).collect();
        let a = mask_with((20, 1, 1), &line);
        let b = mask_with((20, 1, 1), &[line.as_slice(), &[(19, 0, 0)]].concat());
        // a -> b: ten 0s. b -> a: ten 0s and 19 - 9 = 10.
        // Directed: a -> b gives 0; b -> a, 11 values, rank 0.95 * 10 = 9.5: halfway from 0 to 10 = 5.
        // Pooled: twenty 0s and 10, rank 0.95 * 20 = 19: the 20th zero = 0.
        let (directed, pooled, max) = both_ways(&a, &b, [1.0; 3]);
        assert_eq!(directed, 5.0);
        assert_eq!(pooled, 0.0);
        assert_eq!(max, 10.0);
    }

    #[test]
    fn conventions_have_names_descriptions_and_serialise_in_snake_case() {
        assert_eq!(
            HausdorffConvention::default(),
            HausdorffConvention::DirectedMax
        );
        assert_eq!(
            serde_json::to_string(&HausdorffConvention::ALL).unwrap(),
            r#"["directed_max","pooled"]"#
        );
        for convention in HausdorffConvention::ALL {
            assert_eq!(convention.name().parse(), Ok(convention));
            assert_eq!(convention.to_string(), convention.name());
            assert_eq!(
                serde_json::from_str::<HausdorffConvention>(&format!("\"{convention}\"")).unwrap(),
                convention
            );
        }
        assert!(HausdorffConvention::DirectedMax
            .description()
            .contains("BraTS/MONAI"));
        assert!(HausdorffConvention::Pooled.description().contains("MedPy"));
        assert!("max".parse::<HausdorffConvention>().is_err());
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let mut ranks: Vec<f64> = (1..=21).map(f64::from).collect();
        assert_eq!(percentile(&mut ranks, 95.0), 20.0);
        assert_eq!(percentile(&mut [10.0, 0.0], 95.0), 9.5);
        assert_eq!(percentile(&mut [3.0], 95.0), 3.0);
    }
}
