//! The resampling kernels behind [`crate::augmentation`]: an affine map about the patch centre
//! (trilinear for images, nearest for targets), nnU-Net's low-resolution simulation (nearest-exact
//! down, linear up), and a separable Gaussian blur. None of them draws random numbers.
use ndarray::{Array4, ArrayViewMut3, Axis};

/// The 3x3 matrix `Rz(γ) · Ry(β) · Rx(α) · s·I` (angles in radians, axes X, Y, Z = array axes 1, 2,
/// 3 of a `(C, X, Y, Z)` patch): nnU-Net's composition order (batchgeneratorsv2
/// `create_affine_matrix_3d`), isotropic scale.
pub fn rotation_scale_matrix(angles: [f64; 3], scale: f64) -> [[f64; 3]; 3] {
    let [a, b, g] = angles;
    let rx = [
        [1.0, 0.0, 0.0],
        [0.0, a.cos(), -a.sin()],
        [0.0, a.sin(), a.cos()],
    ];
    let ry = [
        [b.cos(), 0.0, b.sin()],
        [0.0, 1.0, 0.0],
        [-b.sin(), 0.0, b.cos()],
    ];
    let rz = [
        [g.cos(), -g.sin(), 0.0],
        [g.sin(), g.cos(), 0.0],
        [0.0, 0.0, 1.0],
    ];
    let m = matmul(&matmul(&rz, &ry), &rx);
    m.map(|row| row.map(|v| v * scale))
}

fn matmul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

/// Resample a `(C, X, Y, Z)` image (trilinear) and its `(K, X, Y, Z)` target (nearest) through the
/// map `source = centre + matrix · (output - centre)`, with `centre = (n - 1) / 2` per axis, i.e.
/// about the patch centre, in voxel units. Source positions outside the patch read 0 (zero padding,
/// as `grid_sample(padding_mode="zeros")` in nnU-Net): for a trilinear sample each corner that falls
/// outside contributes 0; a nearest sample whose rounded position falls outside is 0 (background).
///
/// A scale above 1 reads a larger region, so structures shrink (nnU-Net's convention).
pub fn affine_resample(image: &mut Array4<f32>, target: &mut Array4<f32>, matrix: &[[f64; 3]; 3]) {
    let (_, nx, ny, nz) = image.dim();
    assert_eq!(
        (nx, ny, nz),
        (target.dim().1, target.dim().2, target.dim().3),
        "image and target share the spatial shape"
    );
    let src_img = image.as_standard_layout().into_owned();
    let src_tgt = target.as_standard_layout().into_owned();
    let img = src_img.as_slice().expect("standard layout");
    let tgt = src_tgt.as_slice().expect("standard layout");
    let channels = src_img.len_of(Axis(0));
    let targets = src_tgt.len_of(Axis(0));
    let plane = nx * ny * nz;
    let (sx, sy) = (ny * nz, nz);
    let mut out_img = vec![0.0f32; channels * plane];
    let mut out_tgt = vec![0.0f32; targets * plane];
    let centre = [
        (nx as f64 - 1.0) / 2.0,
        (ny as f64 - 1.0) / 2.0,
        (nz as f64 - 1.0) / 2.0,
    ];
    let column = |j: usize| [matrix[0][j], matrix[1][j], matrix[2][j]];
    let (cx, cy, cz) = (column(0), column(1), column(2));
    // source(p) = centre + M (p - centre) = origin + x cx + y cy + z cz.
    let origin: [f64; 3] =
        std::array::from_fn(|i| centre[i] - (0..3).map(|j| matrix[i][j] * centre[j]).sum::<f64>());
    let dims = [nx, ny, nz];
    for x in 0..nx {
        for y in 0..ny {
            let row: [f64; 3] =
                std::array::from_fn(|i| origin[i] + x as f64 * cx[i] + y as f64 * cy[i]);
            for z in 0..nz {
                let q: [f64; 3] = std::array::from_fn(|i| row[i] + z as f64 * cz[i]);
                let out = x * sx + y * sy + z;
                // Nearest for the target (round half away from zero: positions are never ties in
                // practice, and this matches `f64::round`).
                let r: [f64; 3] = q.map(f64::round);
                if (0..3).all(|i| r[i] >= 0.0 && r[i] <= (dims[i] - 1) as f64) {
                    let src = r[0] as usize * sx + r[1] as usize * sy + r[2] as usize;
                    for k in 0..targets {
                        out_tgt[k * plane + out] = tgt[k * plane + src];
                    }
                }
                // Trilinear for the image.
                let f: [f64; 3] = q.map(f64::floor);
                if (0..3).any(|i| f[i] < -1.0 || f[i] > (dims[i] - 1) as f64) {
                    continue; // every corner outside
                }
                let w1: [f32; 3] = std::array::from_fn(|i| (q[i] - f[i]) as f32);
                let lo: [isize; 3] = f.map(|v| v as isize);
                let inside = (0..3).all(|i| lo[i] >= 0 && lo[i] + 1 < dims[i] as isize);
                if inside {
                    let base = lo[0] as usize * sx + lo[1] as usize * sy + lo[2] as usize;
                    let w = corner_weights(w1);
                    let offs = [0, 1, sy, sy + 1, sx, sx + 1, sx + sy, sx + sy + 1];
                    for c in 0..channels {
                        let src = &img[c * plane + base..];
                        let mut v = 0.0f32;
                        for t in 0..8 {
                            v += w[t] * src[offs[t]];
                        }
                        out_img[c * plane + out] = v;
                    }
                } else {
                    // Edge: accumulate only the corners inside the patch.
                    for t in 0..8usize {
                        let bits = [(t >> 2) & 1, (t >> 1) & 1, t & 1];
                        let idx: [isize; 3] = std::array::from_fn(|i| lo[i] + bits[i] as isize);
                        if (0..3).any(|i| idx[i] < 0 || idx[i] >= dims[i] as isize) {
                            continue;
                        }
                        let weight: f32 = (0..3)
                            .map(|i| if bits[i] == 1 { w1[i] } else { 1.0 - w1[i] })
                            .product();
                        let src = idx[0] as usize * sx + idx[1] as usize * sy + idx[2] as usize;
                        for c in 0..channels {
                            out_img[c * plane + out] += weight * img[c * plane + src];
                        }
                    }
                }
            }
        }
    }
    *image = Array4::from_shape_vec((channels, nx, ny, nz), out_img).expect("shape");
    *target = Array4::from_shape_vec((targets, nx, ny, nz), out_tgt).expect("shape");
}

/// Weights of the 8 corners, corner t = (bit 2: +X, bit 1: +Y, bit 0: +Z).
fn corner_weights(w1: [f32; 3]) -> [f32; 8] {
    let w0 = w1.map(|w| 1.0 - w);
    std::array::from_fn(|t| {
        let pick = |i: usize, bit: usize| if (t >> bit) & 1 == 1 { w1[i] } else { w0[i] };
        pick(0, 2) * pick(1, 1) * pick(2, 0)
    })
}

/// Python's `round` (ties to even), as nnU-Net uses for the low-resolution shape and kernel size.
fn round_half_even(v: f64) -> f64 {
    v.round_ties_even()
}

/// nnU-Net's simulated low resolution of one channel: downsample each axis to `round(n * zoom)`
/// voxels (ties to even, at least 1) by nearest-exact sampling, then back to `n` by linear
/// interpolation with half-pixel centres (PyTorch `interpolate(mode="nearest-exact")` then
/// `mode="trilinear", align_corners=False`). A constant stays that constant.
pub fn simulate_low_resolution(mut channel: ArrayViewMut3<f32>, zoom: f64) {
    let dims = [channel.dim().0, channel.dim().1, channel.dim().2];
    let small: [usize; 3] = dims.map(|n| (round_half_even(n as f64 * zoom) as usize).max(1));
    // Down: small[i] samples per axis at floor((j + 0.5) * n / m).
    let pick: [Vec<usize>; 3] = std::array::from_fn(|a| {
        let (n, m) = (dims[a], small[a]);
        (0..m)
            .map(|j| ((((j as f64 + 0.5) * n as f64 / m as f64).floor()) as usize).min(n - 1))
            .collect()
    });
    let down = ndarray::Array3::from_shape_fn((small[0], small[1], small[2]), |(i, j, k)| {
        channel[[pick[0][i], pick[1][j], pick[2][k]]]
    });
    // Up: per axis, output i reads (i + 0.5) * m / n - 0.5 (clamped at 0) between two samples.
    let taps: [Vec<(usize, usize, f32)>; 3] = std::array::from_fn(|a| {
        let (n, m) = (dims[a], small[a]);
        (0..n)
            .map(|i| {
                let s = ((i as f64 + 0.5) * m as f64 / n as f64 - 0.5).max(0.0);
                let i0 = (s.floor() as usize).min(m - 1);
                let i1 = (i0 + 1).min(m - 1);
                (i0, i1, (s - i0 as f64) as f32)
            })
            .collect()
    });
    for ((i, j, k), v) in channel.indexed_iter_mut() {
        let (x0, x1, wx) = taps[0][i];
        let (y0, y1, wy) = taps[1][j];
        let (z0, z1, wz) = taps[2][k];
        let lerp_z = |x: usize, y: usize| down[[x, y, z0]] * (1.0 - wz) + down[[x, y, z1]] * wz;
        let lerp_y = |x: usize| lerp_z(x, y0) * (1.0 - wy) + lerp_z(x, y1) * wy;
        *v = lerp_y(x0) * (1.0 - wx) + lerp_y(x1) * wx;
    }
}

/// The normalised 1-D Gaussian nnU-Net blurs with: `k` taps at integer offsets `-(k-1)/2..=(k-1)/2`,
/// `k` the odd number nearest `6 σ + 0.5` (batchgeneratorsv2 `blur_dimension`, truncate 6).
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let n = sigma * 6.0 + 0.5;
    let r = round_half_even(n);
    let size = if r as i64 % 2 == 1 {
        r
    } else if n - r >= 0.0 {
        r + 1.0
    } else {
        r - 1.0
    };
    let half = ((size as i64).max(1) - 1) / 2;
    let pdf: Vec<f64> = (-half..=half)
        .map(|x| (-0.5 * (x as f64 / sigma).powi(2)).exp())
        .collect();
    let sum: f64 = pdf.iter().sum();
    pdf.iter().map(|p| (p / sum) as f32).collect()
}

/// Mirror an out-of-range index back into `0..n` without repeating the edge (PyTorch "reflect").
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Separable Gaussian blur of one channel, `sigmas` per axis X, Y, Z, reflect padding.
pub fn gaussian_blur(mut channel: ArrayViewMut3<f32>, sigmas: [f64; 3]) {
    for (axis, &sigma) in sigmas.iter().enumerate() {
        let kernel = gaussian_kernel(sigma);
        let half = (kernel.len() / 2) as isize;
        let n = channel.len_of(Axis(axis));
        let mut line = vec![0.0f32; n];
        for mut lane in channel.lanes_mut(Axis(axis)) {
            line.iter_mut().zip(lane.iter()).for_each(|(l, &v)| *l = v);
            for (i, out) in lane.iter_mut().enumerate() {
                let mut acc = 0.0f32;
                for (t, &w) in kernel.iter().enumerate() {
                    acc += w * line[reflect(i as isize + t as isize - half, n)];
                }
                *out = acc;
            }
        }
    }
}
