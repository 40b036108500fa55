//! Surface distances between binary masks: an exact Euclidean distance transform (Felzenszwalb & Huttenlocher's
//! separable lower-envelope algorithm, with anisotropic voxel spacing), mask surfaces and HD95 as MedPy and MONAI
//! compute it.
use ndarray::{s, Array3, ArrayView3, Axis, Zip};

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

/// Foreground voxels with at least one background 6-neighbour; voxels on the array's border count as having one
/// (as a binary erosion with a zero border, which MedPy uses).
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

/// 95th percentile of the symmetric surface distances in millimetres: distances from each surface voxel of `a`
/// to the nearest surface voxel of `b` and from each surface voxel of `b` to `a`, pooled. `None` when a mask is
/// empty (the caller applies its convention). Work is confined to the bounding box of both masks, which gives the
/// same distances: every surface voxel of either mask lies inside it.
///
/// Panics when the masks differ in shape (callers check shapes of user data first).
pub fn hd95(a: ArrayView3<bool>, b: ArrayView3<bool>, spacing: [f32; 3]) -> Option<f64> {
    assert_eq!(a.shape(), b.shape(), "hd95 needs masks of one shape");
    let [(x0, x1), (y0, y1), (z0, z1)] = bounding_box(a)?.union(bounding_box(b)?);
    let window = s![x0..x1, y0..y1, z0..z1];
    let (a, b) = (a.slice(window), b.slice(window));
    // Outside the window both masks are empty, so a window face borders background exactly as the array border
    // does: the surfaces are the same as cut from the full masks.
    let (surface_a, surface_b) = (surface(a), surface(b));
    let mut distances = distances_at(
        surface_a.view(),
        euclidean_distance_transform(surface_b.view(), spacing),
    );
    distances.extend(distances_at(
        surface_b.view(),
        euclidean_distance_transform(surface_a.view(), spacing),
    ));
    Some(percentile(&mut distances, 95.0))
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

    #[test]
    fn hd95_of_two_single_voxels_is_their_distance_in_millimetres() {
        let a = mask_with((5, 5, 5), &[(1, 1, 1)]);
        let b = mask_with((5, 5, 5), &[(3, 2, 1)]);
        // (2 voxels * 1 mm, 1 voxel * 2 mm, 0): sqrt(4 + 4).
        let hd = hd95(a.view(), b.view(), [1.0, 2.0, 3.0]).unwrap();
        assert!((hd - 8f64.sqrt()).abs() < 1e-9, "{hd}");
    }

    #[test]
    fn hd95_of_parallel_planes_is_their_gap() {
        let mut a = Array3::from_elem((6, 4, 3), false);
        let mut b = a.clone();
        a.slice_mut(s![1, .., ..]).fill(true);
        b.slice_mut(s![4, .., ..]).fill(true);
        let hd = hd95(a.view(), b.view(), [1.5, 1.0, 1.0]).unwrap();
        assert!((hd - 4.5).abs() < 1e-9, "3 voxels of 1.5 mm: {hd}");
    }

    #[test]
    fn hd95_interpolates_the_pooled_distances() {
        let a = mask_with((6, 2, 2), &[(0, 0, 0)]);
        let b = mask_with((6, 2, 2), &[(0, 0, 0), (4, 0, 0)]);
        // a -> b: [0]; b -> a: [0, 4]; pooled [0, 0, 4], rank 0.95 * 2 = 1.9: 0 + 0.9 * 4.
        let hd = hd95(a.view(), b.view(), [1.0; 3]).unwrap();
        assert!((hd - 3.6).abs() < 1e-9, "{hd}");
        assert_eq!(
            hd95(
                a.view(),
                Array3::from_elem((6, 2, 2), false).view(),
                [1.0; 3]
            ),
            None
        );
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let mut ranks: Vec<f64> = (1..=21).map(f64::from).collect();
        assert_eq!(percentile(&mut ranks, 95.0), 20.0);
        assert_eq!(percentile(&mut [10.0, 0.0], 95.0), 9.5);
        assert_eq!(percentile(&mut [3.0], 95.0), 3.0);
    }
}
