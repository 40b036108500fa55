//! In-memory NIfTI-1 for the browser: one canonical 3-D volume (optionally cropped), modalities as
//! int16, labels as uint8, the world placement in the sform. Every input brainseg reads (a file per
//! modality, a 4-D MSD image, a DICOM study converted) arrives the same way, in the same grid.
use flate2::write::GzEncoder;
use ndarray::{ArrayView3, Axis};
use std::io::Write;

/// A box of canonical voxels: `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Crop {
    pub start: [usize; 3],
    pub end: [usize; 3],
}

impl Crop {
    pub fn whole(shape: [usize; 3]) -> Crop {
        Crop {
            start: [0; 3],
            end: shape,
        }
    }

    /// The smallest box holding every voxel where `inside` is true, widened by `margin` voxels
    /// (clipped to the grid); the whole grid when nothing is inside.
    pub fn around(shape: [usize; 3], margin: usize, inside: impl Fn([usize; 3]) -> bool) -> Crop {
        let mut start = shape;
        let mut end = [0; 3];
        for x in 0..shape[0] {
            for y in 0..shape[1] {
                for z in 0..shape[2] {
                    if inside([x, y, z]) {
                        for (a, v) in [x, y, z].into_iter().enumerate() {
                            start[a] = start[a].min(v);
                            end[a] = end[a].max(v + 1);
                        }
                    }
                }
            }
        }
        if (0..3).any(|a| start[a] >= end[a]) {
            return Crop::whole(shape);
        }
        Crop {
            start: start.map(|s| s.saturating_sub(margin)),
            end: [0, 1, 2].map(|a| (end[a] + margin).min(shape[a])),
        }
    }

    pub fn view<'a, T>(&self, volume: ArrayView3<'a, T>) -> ArrayView3<'a, T> {
        let mut view = volume;
        for axis in 0..3 {
            view.slice_axis_inplace(Axis(axis), (self.start[axis]..self.end[axis]).into());
        }
        view
    }

    /// The voxel-to-world affine of the cropped grid, from the whole grid's.
    pub fn affine(&self, whole: &[[f64; 4]; 4]) -> [[f64; 4]; 4] {
        let mut out = *whole;
        for (r, row) in out.iter_mut().enumerate().take(3) {
            row[3] = (0..3)
                .map(|c| whole[r][c] * self.start[c] as f64)
                .sum::<f64>()
                + whole[r][3];
        }
        out
    }
}

/// An int16 NIfTI of `volume`: kept exact when its values are whole numbers in int16's range,
/// else scaled through `scl_slope`. Gzipped when `gzip`.
pub(crate) fn encode_i16(volume: ArrayView3<f32>, affine: &[[f64; 4]; 4], gzip: bool) -> Vec<u8> {
    let largest = volume
        .iter()
        .filter(|v| v.is_finite())
        .fold(0f32, |m, v| m.max(v.abs()));
    let exact = largest <= i16::MAX as f32 && volume.iter().all(|v| v.fract() == 0.0);
    let slope = if exact || largest == 0.0 {
        1.0
    } else {
        largest / i16::MAX as f32
    };
    let mut bytes = header(volume.dim(), 4, 16, affine, slope);
    for_each_file_order(volume, |v| {
        let stored = if v.is_finite() {
            (v / slope).round() as i16
        } else {
            0
        };
        bytes.extend_from_slice(&stored.to_le_bytes());
    });
    finish(bytes, gzip)
}

/// A uint8 NIfTI of a label map.
pub(crate) fn encode_u8(labels: ArrayView3<u8>, affine: &[[f64; 4]; 4], gzip: bool) -> Vec<u8> {
    let mut bytes = header(labels.dim(), 2, 8, affine, 1.0);
    for_each_file_order(labels, |v| bytes.push(v));
    finish(bytes, gzip)
}

/// NIfTI stores x fastest; ndarray's standard order is z fastest.
fn for_each_file_order<T: Copy>(volume: ArrayView3<T>, mut each: impl FnMut(T)) {
    let (nx, ny, nz) = volume.dim();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                each(volume[(x, y, z)]);
            }
        }
    }
}

fn finish(bytes: Vec<u8>, gzip: bool) -> Vec<u8> {
    if !gzip {
        return bytes;
    }
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(&bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// The 348-byte NIfTI-1 header plus the 4-byte empty extension flag; data follows at 352.
fn header(
    (nx, ny, nz): (usize, usize, usize),
    datatype: i16,
    bitpix: i16,
    affine: &[[f64; 4]; 4],
    slope: f32,
) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    let mut put =
        |offset: usize, bytes: &[u8]| h[offset..offset + bytes.len()].copy_from_slice(bytes);
    put(0, &348i32.to_le_bytes());
    put(38, b"r");
    let dims = [3, nx, ny, nz, 1, 1, 1, 1].map(|d| d.min(i16::MAX as usize) as i16);
    for (i, d) in dims.iter().enumerate() {
        put(40 + 2 * i, &d.to_le_bytes());
    }
    put(70, &datatype.to_le_bytes());
    put(72, &bitpix.to_le_bytes());
    let spacing = |c: usize| (0..3).map(|r| affine[r][c].powi(2)).sum::<f64>().sqrt() as f32;
    let pixdim = [1.0, spacing(0), spacing(1), spacing(2), 1.0, 1.0, 1.0, 1.0];
    for (i, p) in pixdim.iter().enumerate() {
        put(76 + 4 * i, &p.to_le_bytes());
    }
    put(108, &352f32.to_le_bytes());
    put(112, &slope.to_le_bytes());
    put(123, &[2]); // mm
    put(148, b"brainseg view");
    put(254, &1i16.to_le_bytes()); // sform: scanner coordinates; no qform
    for (r, row) in affine.iter().take(3).enumerate() {
        for (c, v) in row.iter().enumerate() {
            put(280 + 16 * r + 4 * c, &(*v as f32).to_le_bytes());
        }
    }
    put(344, b"n+1\0");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn header_and_data_in_file_order() {
        let mut volume = Array3::<f32>::zeros((3, 2, 2));
        volume[(1, 0, 0)] = 7.0;
        volume[(0, 1, 1)] = -3.0;
        let affine = [
            [2.0, 0.0, 0.0, -10.0],
            [0.0, 1.0, 0.0, 5.0],
            [0.0, 0.0, 3.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let bytes = encode_i16(volume.view(), &affine, false);
        assert_eq!(bytes.len(), 352 + 12 * 2);
        assert_eq!(&bytes[344..348], b"n+1\0");
        let value = |i: usize| i16::from_le_bytes([bytes[352 + 2 * i], bytes[353 + 2 * i]]);
        assert_eq!(value(1), 7); // x = 1 comes second
        assert_eq!(value(3 + 6), -3); // x + 3 y + 6 z
        let f = |o: usize| f32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
        assert_eq!([f(80), f(84), f(88)], [2.0, 1.0, 3.0]);
        assert_eq!(
            [f(280), f(292), f(296 + 4), f(312 + 8)],
            [2.0, -10.0, 1.0, 3.0]
        );
        assert_eq!(f(112), 1.0);
    }

    #[test]
    fn non_integer_values_are_scaled() {
        let volume = Array3::from_shape_fn((2, 1, 1), |(x, _, _)| 0.5 + x as f32 * 65535.0);
        let bytes = encode_i16(volume.view(), &[[1.0, 0.0, 0.0, 0.0]; 4], false);
        let slope = f32::from_le_bytes(bytes[112..116].try_into().unwrap());
        let top = i16::from_le_bytes([bytes[354], bytes[355]]);
        assert!(
            (top as f32 * slope - 65535.5).abs() < 2.0,
            "{top} * {slope}"
        );
    }

    #[test]
    fn crop_box_and_its_affine() {
        let crop = Crop::around([10, 10, 10], 1, |[x, y, z]| {
            (3..5).contains(&x) && y == 6 && z == 0
        });
        assert_eq!(
            crop,
            Crop {
                start: [2, 5, 0],
                end: [6, 8, 2]
            }
        );
        let affine = [
            [-1.0, 0.0, 0.0, 100.0],
            [0.0, 2.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, -5.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let cropped = crop.affine(&affine);
        assert_eq!(
            [cropped[0][3], cropped[1][3], cropped[2][3]],
            [98.0, 10.0, -5.0]
        );
        assert_eq!(
            Crop::around([2, 2, 2], 3, |_| false),
            Crop::whole([2, 2, 2])
        );
    }
}
