//! Round trips through every orientation, datatype and scaling.
use super::header::DataType;
use super::write::{output_header, write_nifti};
use super::*;
use crate::orientation::all_orientations as orientations;
use crate::Orientation;
use std::path::Path;

/// Write `channels` volumes of `shape` in orientation `o` (each voxel a distinct value derived
/// from its file index) and return the canonical array a correct reader gives.
fn write_case(
    path: &Path,
    shape: [usize; 3],
    channels: usize,
    o: Orientation,
    dtype: DataType,
    scale: (f32, f32),
) -> Array4<f32> {
    let mut geometry = Geometry::synthetic(shape, [1.0; 3]);
    let mut rows = [[0f32; 4]; 3];
    for w in 0..3 {
        rows[w][o.perm[w]] = if o.flip[w] { -1.0 } else { 1.0 };
    }
    (
        geometry.header.srow_x,
        geometry.header.srow_y,
        geometry.header.srow_z,
    ) = (rows[0], rows[1], rows[2]);
    let mut header = output_header(&geometry, dtype, channels, (0.0, 0.0));
    (header.scl_slope, header.scl_inter) = scale;
    geometry.orientation = o;
    let n: usize = shape.iter().product();
    let raw = |i: usize| -> f64 {
        let v = (i * 7919 % 2003) as f64 - 1001.0;
        if dtype == DataType::Uint8 {
            v.abs() % 256.0
        } else {
            v
        }
    };
    let mut data = Vec::new();
    for i in 0..n * channels {
        let v = raw(i);
        match dtype {
            DataType::Uint8 => data.push(v as u8),
            DataType::Int16 => data.extend((v as i16).to_le_bytes()),
            DataType::Int32 => data.extend((v as i32).to_le_bytes()),
            DataType::Float32 => data.extend((v as f32 * 0.5).to_le_bytes()),
            DataType::Float64 => data.extend((v * 0.25).to_le_bytes()),
            _ => unreachable!("not written by this test"),
        }
    }
    write_nifti(path, &header, &data).unwrap();
    let [x, y, z] = geometry.canonical_shape();
    let (slope, inter) = (scale.0 as f64, scale.1 as f64);
    Array4::from_shape_fn((channels, x, y, z), |(c, i, j, k)| {
        let s = o.source_index([i, j, k], shape);
        let v = raw(c * n + s[0] + shape[0] * (s[1] + shape[1] * s[2]));
        let v = match dtype {
            DataType::Float32 => (v as f32 * 0.5) as f64,
            DataType::Float64 => v * 0.25,
            _ => v,
        };
        if slope != 0.0 && !(slope == 1.0 && inter == 0.0) {
            (v * slope + inter) as f32
        } else {
            v as f32
        }
    })
}

#[test]
fn every_orientation_reads_in_canonical_order() {
    let folder = tempfile::tempdir().unwrap();
    for (n, o) in orientations().into_iter().enumerate() {
        for (shape, channels) in [
            ([5, 7, 9], 1),
            ([5, 7, 9], 3),
            ([37, 20, 11], 2),
            ([3, 40, 6], 1),
        ] {
            let path = folder
                .path()
                .join(if n % 2 == 0 { "a.nii.gz" } else { "a.nii" });
            let expected = write_case(&path, shape, channels, o, DataType::Int16, (1.0, 0.0));
            let image = read_image(&path).unwrap();
            assert_eq!(image.geometry.orientation, o);
            assert_eq!(image.data, expected, "{o:?} {shape:?}x{channels}");
        }
    }
}

#[test]
fn every_datatype_and_scaling_reads_exactly() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("a.nii.gz");
    let o = Orientation {
        perm: [1, 2, 0],
        flip: [true, false, true],
    };
    for dtype in [
        DataType::Uint8,
        DataType::Int16,
        DataType::Int32,
        DataType::Float32,
        DataType::Float64,
    ] {
        for scale in [(1.0, 0.0), (0.0, 3.0), (0.5, -2.0)] {
            for channels in [1, 4] {
                let expected = write_case(&path, [9, 6, 17], channels, o, dtype, scale);
                assert_eq!(
                    read_image(&path).unwrap().data,
                    expected,
                    "{dtype:?} {scale:?} x{channels}"
                );
            }
        }
    }
}

/// Small files, read many times, so the threads meet in every order.
#[test]
fn repeated_reads_give_the_same_image() {
    let folder = tempfile::tempdir().unwrap();
    let o = Orientation {
        perm: [0, 1, 2],
        flip: [true, true, false],
    };
    for (shape, channels) in [([6, 5, 3], 1), ([6, 5, 9], 1), ([20, 9, 4], 4)] {
        let path = folder.path().join("a.nii.gz");
        let expected = write_case(&path, shape, channels, o, DataType::Uint8, (1.0, 0.0));
        for _ in 0..200 {
            assert_eq!(read_image(&path).unwrap().data, expected);
        }
    }
}

#[test]
fn separate_files_read_as_channels() {
    let folder = tempfile::tempdir().unwrap();
    for o in orientations() {
        let paths = [folder.path().join("a.nii.gz"), folder.path().join("b.nii")];
        let a = write_case(&paths[0], [33, 4, 10], 1, o, DataType::Int16, (1.0, 0.0));
        let b = write_case(&paths[1], [33, 4, 10], 1, o, DataType::Float32, (2.0, 1.0));
        let image = read_channels(&[(&paths[0], "a"), (&paths[1], "b")]).unwrap();
        assert_eq!(
            image.data,
            ndarray::concatenate(Axis(0), &[a.view(), b.view()]).unwrap(),
            "{o:?}"
        );
    }
}

#[test]
fn integer_types_refuse_values_they_cannot_hold() {
    // Each bad value sits in the last voxel of a 2-channel image, so the check must cover every
    // voxel of every volume; the error names it and no file is left behind.
    let dir = tempfile::tempdir().unwrap();
    let geometry = Geometry::synthetic([3, 4, 5], [1.0; 3]);
    let cases = [
        ("int16", 1.5f32, "1.5"),
        ("int16", 32768.0, "32768"),
        ("int16", f32::NAN, "NaN"),
        ("uint8", -1.0, "-1"),
        ("uint8", 256.0, "256"),
        ("int32", 3e9, "3000000000"),
    ];
    for (dtype, bad, shown) in cases {
        let mut image = Array4::from_elem((2, 3, 4, 5), 7.0f32);
        image[[1, 2, 3, 4]] = bad;
        let path = dir.path().join("out.nii");
        let error = write_image(&path, &image, &geometry, dtype).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with(&format!("value {shown} cannot be stored as {dtype}")),
            "{dtype} {bad}: {error}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
    // The limits themselves fit, and come back exactly.
    let mut image = Array4::from_elem((1, 3, 4, 5), 0.0f32);
    image[[0, 0, 0, 0]] = -32768.0;
    image[[0, 2, 3, 4]] = 32767.0;
    let path = dir.path().join("limits.nii");
    write_image(&path, &image, &geometry, "int16").unwrap();
    assert_eq!(read_image(&path).unwrap().data, image);
}
