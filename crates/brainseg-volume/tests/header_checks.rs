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

/// Read `path`, which must fail within a second with an error naming it and saying `problem`.
fn refused(path: &Path, problem: &str) -> Error {
    let start = Instant::now();
    let err = read_image(path).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
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
