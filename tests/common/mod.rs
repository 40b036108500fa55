//! Helpers shared by the CLI integration tests: running the binary, checking how it fails, and small
//! NIfTI fixtures written in code.
#![allow(dead_code)] // Each test binary uses its own subset of these helpers.

use brainseg_volume::nifti_io::write_image;
use brainseg_volume::{write_label, Geometry};
use ndarray::{Array3, Array4};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shared real data (beside the checkout, as in CI).
pub const SHARED_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

pub fn shared(relative: &str) -> PathBuf {
    Path::new(SHARED_DATA).join(relative)
}

/// `brainseg!("info", &path)`: run the binary with arguments of any string or path type.
#[macro_export]
macro_rules! brainseg {
    ($($arg:expr),* $(,)?) => {
        $crate::common::brainseg(vec![$(std::ffi::OsString::from($arg)),*])
    };
}

/// `brainseg_ok!("info", &path)`: run the binary, require success, return stdout.
#[macro_export]
macro_rules! brainseg_ok {
    ($($arg:expr),* $(,)?) => {
        $crate::common::brainseg_ok(vec![$(std::ffi::OsString::from($arg)),*])
    };
}

/// Run `brainseg` with these arguments.
pub fn brainseg<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_brainseg"))
        .args(args)
        // A backtrace would be printed only on a panic; asking for one makes a panic impossible to miss.
        .env("RUST_BACKTRACE", "1")
        // Runs share decoded cases in the test's own cache, not the user's.
        .env(
            "BRAINSEG_CACHE",
            std::env::temp_dir().join("brainseg-test-cache"),
        )
        .output()
        .expect("the brainseg binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run `brainseg` and require success; returns stdout.
pub fn brainseg_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let out = brainseg(&args);
    assert!(
        out.status.success(),
        "brainseg {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Trains a 2-level, 2-filter U-Net on `data` into `run` for one step of one 16x16x8 patch (a
/// second of work); returns its model file. For tests that need a model, not a good one.
pub fn train_tiny_model(data: &Path, run: &Path) -> PathBuf {
    brainseg_ok!(
        "train",
        "-i",
        data,
        "-o",
        run,
        "--patch",
        "16,16,8",
        "--depth",
        "2",
        "--base-filters",
        "2",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--batch-size",
        "1",
        "--valid-patches",
        "1"
    );
    run.join("best.safetensors")
}

/// A failure the way users should see it: exit code 1, no panic, and stderr ending in one `error: ...` line
/// that holds every `needle` (file names and the problem). Returns that line.
pub fn assert_user_error(out: &Output, needles: &[&str]) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit code 1; stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "a panic:\n{stderr}");
    assert!(
        !stderr.contains("stack backtrace"),
        "a backtrace:\n{stderr}"
    );
    let last = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string();
    assert!(
        last.starts_with("error: "),
        "the last line of stderr is not an error line:\n{stderr}"
    );
    // Per-case errors come on their own `error:` lines before the final summary; the needles may be in any.
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    for needle in needles {
        assert!(
            errors.iter().any(|l| l.contains(needle)),
            "no error line mentions {needle:?}:\n{stderr}"
        );
    }
    last
}

/// As [`assert_user_error`], and the error is all of stderr: a single line.
pub fn assert_one_line_error(out: &Output, needles: &[&str]) -> String {
    let line = assert_user_error(out, needles);
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "more than one line on stderr:\n{stderr}"
    );
    assert!(
        text(&out.stdout).trim().is_empty(),
        "a failed command printed results:\n{}",
        text(&out.stdout)
    );
    line
}

/// Every file under `dir` (recursively), sorted; empty when `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Small test volumes: 1 mm voxels, identity orientation.
pub fn geometry(shape: [usize; 3]) -> Geometry {
    Geometry::synthetic(shape, [1.0, 1.0, 1.0])
}

/// A 3-D int16 volume whose voxels vary (so gzip cannot shrink it to almost nothing).
pub fn varied_volume(shape: [usize; 3], offset: usize) -> Array4<f32> {
    Array4::from_shape_fn((1, shape[0], shape[1], shape[2]), |(_, x, y, z)| {
        ((x * 131 + y * 71 + z * 29 + offset * 17) % 997) as f32
    })
}

pub fn write_volume(path: &Path, shape: [usize; 3], offset: usize) {
    write_image(
        path,
        &varied_volume(shape, offset),
        &geometry(shape),
        "int16",
    )
    .expect("fixture volume written");
}

/// A BraTS label map (values 0, 1, 2, 4) of this shape.
pub fn brats_label(shape: [usize; 3]) -> Array3<u8> {
    Array3::from_shape_fn(shape, |(x, y, z)| [0, 1, 2, 4][(x + 2 * y + 3 * z) % 4])
}

/// The BraTS modality file suffixes in channel order (FLAIR, T1w, T1Gd, T2w).
pub const BRATS_SUFFIXES: [&str; 4] = ["flair", "t1", "t1ce", "t2"];

/// Write a raw BraTS case folder `<dir>/<id>/` with four modalities and a segmentation, all of `shape`.
pub fn write_brats_case(dir: &Path, id: &str, shape: [usize; 3]) -> PathBuf {
    let folder = dir.join(id);
    std::fs::create_dir_all(&folder).expect("case folder created");
    for (k, suffix) in BRATS_SUFFIXES.iter().enumerate() {
        write_volume(&folder.join(format!("{id}_{suffix}.nii.gz")), shape, k);
    }
    write_label(
        &folder.join(format!("{id}_seg.nii.gz")),
        &brats_label(shape),
        &geometry(shape),
        None,
    )
    .expect("fixture label written");
    folder
}
