//! Headers that promise more data than their file holds, or impossible geometry, are refused
//! quickly with one-line errors naming the file, before anything big is allocated.
use brainseg_volume::nifti_io::write_image;
use brainseg_volume::{read_image, Error, Geometry};
use flate2::write::GzEncoder;
use flate2::Compression;
use ndarray::Array4;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A valid uncompressed NIfTI-1 file (352-byte header, no extensions, int16) of `shape`, as bytes;
/// voxel `i` (file order) holds a pseudo-random value so that gzip cannot shrink it much.
fn nii_bytes(shape: [usize; 3]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.nii");
    let mut state = 12345u32;
    let data = Array4::from_shape_fn((1, shape[0], shape[1], shape[2]), |_| {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        ((state >> 16) % 30000) as f32
    });
    write_image(&path, &data, &Geometry::synthetic(shape, [1.0; 3]), "int16").unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 352 + 2 * shape.iter().product::<usize>());
    bytes
}

/// Set dim[k] (a little-endian i16 at byte 40 + 2k).
fn set_dim(bytes: &mut [u8], k: usize, value: i16) {
    bytes[40 + 2 * k..42 + 2 * k].copy_from_slice(&value.to_le_bytes());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Read `path`, which must fail within 5 s (nothing big allocated or inflated) with an error
/// naming it and saying `problem`.
fn refused(path: &Path, problem: &str) -> Error {
    let start = Instant::now();
    let err = read_image(path).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "refusing {} took {:?}",
        path.display(),
        start.elapsed()
    );
    assert_eq!(
        err.path.as_deref(),
        Some(path),
        "error {err} names the wrong file"
    );
    assert!(
        err.problem.contains(problem),
        "error {err:?} does not say {problem:?}"
    );
    assert!(!err.to_string().contains('\n'), "one line");
    err
}

#[test]
fn tiny_gzip_files_with_huge_headers_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    for (name, dims, promised) in [
        // 32767^3 int16 voxels: 2 * 32767^3 bytes.
        (
            "cube.nii.gz",
            [32767i16, 32767, 32767],
            70_362_301_923_326u64,
        ),
        // 16390 * 8199 * 8 * 2 bytes.
        ("slab.nii.gz", [16390, 8199, 8], 2_150_105_760),
        // 1000^3 * 2 bytes.
        ("giga.nii.gz", [1000, 1000, 1000], 2_000_000_000),
    ] {
        let mut bytes = nii_bytes([6, 5, 4]);
        for (k, &d) in dims.iter().enumerate() {
            set_dim(&mut bytes, k + 1, d);
        }
        let compressed = gzip(&bytes);
        let path = write(dir.path(), name, &compressed);
        // Deflate inflates at most 1032-fold; the data start after the 352-byte header.
        let at_most = 1032 * compressed.len() as u64 - 352;
        refused(
            &path,
            &format!(
                "header promises {promised} bytes, file holds at most {at_most} once inflated"
            ),
        );
    }
}

#[test]
fn uncompressed_files_are_compared_with_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = nii_bytes([6, 5, 4]);
    for k in 1..=3 {
        set_dim(&mut bytes, k, 1000);
    }
    let path = write(dir.path(), "giga.nii", &bytes);
    // 240 data bytes follow the header.
    refused(
        &path,
        "the header says 1000x1000x1000x1 int16 voxels (header promises 2000000000 bytes, file holds 240)",
    );

    // Trailing bytes after the data are allowed (as nibabel allows them).
    let mut longer = nii_bytes([6, 5, 4]);
    longer.extend_from_slice(&[0; 10]);
    let path = write(dir.path(), "longer.nii", &longer);
    assert_eq!(read_image(&path).unwrap().data.shape(), &[1, 6, 5, 4]);
}

#[test]
fn gzip_data_shorter_than_promised_is_found_while_inflating() {
    let dir = tempfile::tempdir().unwrap();
    // Pseudo-random voxels barely compress, so the 1032-fold bound passes and inflating must find
    // the shortfall: 40x40x40 int16 stored (128000 bytes), the header says 40x40x80 (256000).
    let mut bytes = nii_bytes([40, 40, 40]);
    set_dim(&mut bytes, 3, 80);
    let compressed = gzip(&bytes);
    assert!(1032 * compressed.len() > 256_000 + 352);
    let path = write(dir.path(), "short.nii.gz", &compressed);
    refused(
        &path,
        "truncated data: the header says 40x40x80x1 int16 voxels (header promises 256000 bytes, file holds 128000)",
    );
}

#[test]
fn a_header_within_bounds_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = nii_bytes([40, 40, 40]);
    let path = write(dir.path(), "ok.nii.gz", &gzip(&bytes));
    let image = read_image(&path).unwrap();
    assert_eq!(image.data.shape(), &[1, 40, 40, 40]);
    // The first stored voxel (file index 0) lands at canonical (0, 0, 0): synthetic geometry is RAS.
    let first = i16::from_le_bytes([bytes[352], bytes[353]]) as f32;
    assert_eq!(image.data[[0, 0, 0, 0]], first);
}

/// Set a little-endian f32 header field at byte `offset` (pixdim[k] at 76 + 4k, quatern_b/c/d at
/// 256/260/264, srow_x/y/z at 280/296/312).
fn set_f32(bytes: &mut [u8], offset: usize, value: f32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

/// Set qform_code (byte 252) and sform_code (254).
fn set_codes(bytes: &mut [u8], qform: i16, sform: i16) {
    bytes[252..254].copy_from_slice(&qform.to_le_bytes());
    bytes[254..256].copy_from_slice(&sform.to_le_bytes());
}

fn zero_sform(bytes: &mut [u8]) {
    bytes[280..328].fill(0);
}

fn affine_3x3(path: &Path) -> [[f64; 3]; 3] {
    let a = read_image(path).unwrap().geometry.source_affine();
    [0, 1, 2].map(|r| [a[r][0], a[r][1], a[r][2]])
}

fn assert_close(got: [[f64; 3]; 3], expected: [[f64; 3]; 3]) {
    for r in 0..3 {
        for c in 0..3 {
            assert!(
                (got[r][c] - expected[r][c]).abs() < 1e-6,
                "{got:?} is not {expected:?}"
            );
        }
    }
}

#[test]
fn zero_nan_and_negative_spacings() {
    let dir = tempfile::tempdir().unwrap();
    // The synthetic header has qform_code 1 (identity quaternion) and sform_code 1 (identity).
    for (k, value, name, problem) in [
        (
            2,
            0.0f32,
            "zero.nii",
            "impossible geometry: pixdim[2] = 0: voxel spacing must be",
        ),
        (
            1,
            f32::NAN,
            "nan.nii",
            "impossible geometry: pixdim[1] = NaN",
        ),
        (
            3,
            f32::INFINITY,
            "inf.nii",
            "impossible geometry: pixdim[3] = inf",
        ),
    ] {
        let mut bytes = nii_bytes([6, 5, 4]);
        set_f32(&mut bytes, 76 + 4 * k, value);
        refused(&write(dir.path(), name, &bytes), problem);
    }
    // A negative spacing: refused when the qform is used (as nibabel's get_qform refuses it)...
    let mut bytes = nii_bytes([6, 5, 4]);
    set_f32(&mut bytes, 76 + 12, -2.0);
    set_codes(&mut bytes, 1, 0);
    refused(
        &write(dir.path(), "negative_qform.nii", &bytes),
        "pixdim[3] = -2 is negative",
    );
    // ...and without any form; with a usable sform the sform's own spacings are used.
    set_codes(&mut bytes, 0, 0);
    refused(
        &write(dir.path(), "negative.nii", &bytes),
        "pixdim[3] = -2 is negative",
    );
    set_codes(&mut bytes, 1, 1);
    set_f32(&mut bytes, 312 + 8, 3.0); // srow_z = (0, 0, 3, 0)
    let path = write(dir.path(), "negative_sform.nii", &bytes);
    assert_close(
        affine_3x3(&path),
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]],
    );
    assert_eq!(
        read_image(&path).unwrap().geometry.spacing(),
        [1.0, 1.0, 3.0]
    );
}

#[test]
fn unusable_sform_falls_back_to_the_qform_or_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = nii_bytes([6, 5, 4]);
    zero_sform(&mut bytes);
    set_codes(&mut bytes, 0, 1);
    refused(
        &write(dir.path(), "zero_sform.nii", &bytes),
        "the sform (sform_code 1) is singular (determinant 0) and there is no qform (qform_code 0)",
    );

    // A NaN in the sform, no qform.
    let mut bytes = nii_bytes([6, 5, 4]);
    set_f32(&mut bytes, 296 + 4, f32::NAN);
    set_codes(&mut bytes, 0, 2);
    refused(
        &write(dir.path(), "nan_sform.nii", &bytes),
        "the sform (sform_code 2) holds a non-finite number",
    );

    // A zero sform with a qform: the qform is used. pixdim (2, 3, 4), qfac -1 and the identity
    // quaternion give diag(2, 3, -4) (NIfTI-1 method 2: R * diag(dx, dy, qfac * dz)).
    let mut bytes = nii_bytes([6, 5, 4]);
    zero_sform(&mut bytes);
    set_codes(&mut bytes, 1, 1);
    for (k, v) in [(0, -1.0), (1, 2.0), (2, 3.0), (3, 4.0)] {
        set_f32(&mut bytes, 76 + 4 * k, v);
    }
    let path = write(dir.path(), "qform_fallback.nii", &bytes);
    assert_close(
        affine_3x3(&path),
        [[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, -4.0]],
    );
    assert_eq!(read_image(&path).unwrap().geometry.source_code(), "RAI");
}

#[test]
fn quaternions_are_normalised_as_the_reference_library_does() {
    let dir = tempfile::tempdir().unwrap();
    // b = c = d = 5: b² + c² + d² = 75 > 1, so (b, c, d) becomes (1, 1, 1)/√3 and a = 0, whose
    // rotation matrix has b² - c² - d² = -1/3 on the diagonal and 2bc = 2/3 elsewhere.
    let mut bytes = nii_bytes([6, 5, 4]);
    set_codes(&mut bytes, 1, 0);
    for offset in [256, 260, 264] {
        set_f32(&mut bytes, offset, 5.0);
    }
    let path = write(dir.path(), "quaternion.nii", &bytes);
    let (p, q) = (2.0 / 3.0, -1.0 / 3.0);
    assert_close(affine_3x3(&path), [[q, p, p], [p, q, p], [p, p, q]]);

    set_f32(&mut bytes, 260, f32::NAN);
    refused(
        &write(dir.path(), "nan_quaternion.nii", &bytes),
        "impossible geometry: the qform (quaternion b, c, d = 5, NaN, 5",
    );
}
