//! A corpus of bad input, run through the `brainseg` binary as a table: every kind must end with a
//! non-zero exit code (not 101, a panic, nor 134, an abort), a single `error: ...` line on stderr
//! naming the file (or the flag) and the problem, no panic text, every input byte-identical
//! afterwards, and nothing left behind (no partial output, no `.brainseg-*.tmp`).
//!
//! Kinds that fail because of a known bug outside the reader are kept in the table with the reason
//! (`known_bug`); `cargo test --test bad_input_corpus -- --ignored` runs them and fails while the
//! bug is there.
#[macro_use]
mod common;

use brainseg_model::checkpoint::{save_checkpoint, StorageDtype};
use brainseg_model::{cpu_device, UNet3d, UNet3dConfig};
use brainseg_volume::nifti_io::write_image;
use brainseg_volume::write_label;
use common::*;
use ndarray::{Array3, Array4};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Shape of the small fixture volumes.
const SHAPE: [usize; 3] = [8, 6, 4];
/// Shape of cases a tiny model can train on and predict (patch 16x16x8, depth 2).
const TRAIN_SHAPE: [usize; 3] = [16, 16, 8];

/// What one kind runs and expects.
struct Run {
    args: Vec<OsString>,
    /// Each must appear in the error line: the file or flag, and words for the problem.
    needles: Vec<String>,
    /// After the refusal, this is done (e.g. the data fixed) and the same command must then succeed.
    retry: Option<Box<dyn FnOnce()>>,
}

/// Fixture builders get a fresh folder of their own; `None` skips the kind (real data absent).
type Build = fn(&Fixture) -> Option<Run>;

struct Kind {
    name: &'static str,
    /// A known bug outside the reader that makes this kind fail; the reason is printed.
    known_bug: Option<&'static str>,
    build: Build,
}

struct Fixture {
    dir: PathBuf,
    /// A tiny model file (outside `dir`, hashed as an input too).
    model: PathBuf,
}

impl Fixture {
    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$(OsString::from($a)),*] };
}

fn run(args: Vec<OsString>, needles: &[&str]) -> Option<Run> {
    Some(Run {
        args,
        needles: needles.iter().map(|n| n.to_string()).collect(),
        retry: None,
    })
}

// ------------------------------------------------------------------ fixtures

/// Rewrite a NIfTI file with `edit` applied to its header (byte offsets of NIfTI-1), keeping its
/// compression: the fixture is written as `.nii`, edited, then stored (gzip without compression
/// when the name ends in `.gz`).
fn edit_header(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let plain = path.with_file_name(format!("{name}.plain.nii"));
    let image = brainseg_volume::read_image(path).expect("the fixture reads");
    let dtype = image.source_dtype.clone();
    write_image(&plain, &image.data, &image.geometry, &dtype).unwrap();
    let mut bytes = std::fs::read(&plain).unwrap();
    std::fs::remove_file(&plain).unwrap();
    edit(&mut bytes);
    if name.ends_with(".gz") {
        bytes = gzip_stored(&bytes);
    }
    std::fs::write(path, bytes).unwrap();
}

fn put_i16(bytes: &mut [u8], at: usize, v: i16) {
    bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_f32(bytes: &mut [u8], at: usize, v: f32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

const DIM: usize = 40;
const DATATYPE: usize = 70;
const BITPIX: usize = 72;
const PIXDIM: usize = 76;
const VOX_OFFSET: usize = 108;
const QFORM_CODE: usize = 252;
const SFORM_CODE: usize = 254;
const QUATERN_B: usize = 256;
const SROW_X: usize = 280;

/// CRC-32 (IEEE), bit by bit: fixtures are small.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid gzip member holding `bytes` in stored (uncompressed) deflate blocks.
fn gzip_stored(bytes: &[u8]) -> Vec<u8> {
    let mut z = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut chunks = bytes.chunks(65535).peekable();
    if chunks.peek().is_none() {
        z.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        z.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(chunk);
    }
    z.extend_from_slice(&crc32(bytes).to_le_bytes());
    z.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    z
}

/// A BraTS case `<dir>/<id>/` of SHAPE; returns the folder.
fn case(f: &Fixture, id: &str) -> PathBuf {
    write_brats_case(&f.dir, id, SHAPE)
}

fn modality(case: &Path, suffix: &str) -> PathBuf {
    let id = case.file_name().unwrap().to_string_lossy().to_string();
    case.join(format!("{id}_{suffix}.nii.gz"))
}

/// A 4-D MSD dataset at `<dir>/<name>` with `cases` cases of `shape` and `channels` channels.
fn msd_dataset(
    f: &Fixture,
    name: &str,
    cases: usize,
    shape: [usize; 3],
    channels: usize,
) -> PathBuf {
    let root = f.path(name);
    std::fs::create_dir_all(root.join("imagesTr")).unwrap();
    std::fs::create_dir_all(root.join("labelsTr")).unwrap();
    let mut training = vec![];
    for k in 0..cases {
        let id = format!("case_{k:03}");
        let image =
            Array4::from_shape_fn((channels, shape[0], shape[1], shape[2]), |(c, x, y, z)| {
                ((c * 37 + x * 13 + y * 7 + z * 3 + k) % 101) as f32
            });
        write_image(
            &root.join(format!("imagesTr/{id}.nii.gz")),
            &image,
            &geometry(shape),
            "int16",
        )
        .unwrap();
        let label = Array3::from_shape_fn(shape, |(x, y, z)| ((x + y + z + k) % 4) as u8);
        write_label(
            &root.join(format!("labelsTr/{id}.nii.gz")),
            &label,
            &geometry(shape),
            None,
        )
        .unwrap();
        training.push(serde_json::json!({
            "image": format!("./imagesTr/{id}.nii.gz"),
            "label": format!("./labelsTr/{id}.nii.gz"),
        }));
    }
    write_json(&root.join("dataset.json"), &training);
    root
}

fn write_json(path: &Path, training: &[serde_json::Value]) {
    let json = serde_json::json!({ "name": "corpus", "training": training, "test": [] });
    std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

/// A valid single 4-D image of SHAPE with `channels` channels.
fn four_d(path: &Path, channels: usize) {
    let image = Array4::from_shape_fn((channels, SHAPE[0], SHAPE[1], SHAPE[2]), |(c, x, y, z)| {
        (c * 5 + x + 2 * y + 3 * z) as f32
    });
    write_image(path, &image, &geometry(SHAPE), "int16").unwrap();
}

fn label_file(path: &Path, values: &Array3<u8>) {
    write_label(
        path,
        values,
        &geometry([values.dim().0, values.dim().1, values.dim().2]),
        None,
    )
    .unwrap();
}

fn real_case() -> Option<PathBuf> {
    let case = shared("brats2018/Brats18_2013_2_1");
    if case.is_dir() {
        Some(case)
    } else {
        println!(
            "note: {} is absent; real-data kinds are skipped",
            case.display()
        );
        None
    }
}

/// Copy a real case into the fixture folder (so edits never touch the shared data).
fn real_case_copy(f: &Fixture) -> Option<PathBuf> {
    let src = real_case()?;
    let dest = f.path(&src.file_name().unwrap().to_string_lossy());
    std::fs::create_dir_all(&dest).unwrap();
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let to = dest.join(entry.file_name());
        std::fs::copy(entry.path(), &to).unwrap();
        let mut permissions = std::fs::metadata(&to).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(&to, permissions).unwrap();
    }
    Some(dest)
}

fn train_args(data: &Path, run: &Path, patch: [&str; 3], depth: &str) -> Vec<OsString> {
    args![
        "train",
        "-i",
        data,
        "-o",
        run,
        "--patch",
        patch[0],
        patch[1],
        patch[2],
        "--depth",
        depth,
        "--base-filters",
        "2",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--batch-size",
        "1",
        "--valid-patches",
        "1",
        "--standardization",
        "none",
        "--no-augment"
    ]
}

// ------------------------------------------------------------------ the kinds

fn kinds() -> Vec<Kind> {
    macro_rules! kind {
        ($name:expr, $build:expr) => {
            Kind {
                name: $name,
                known_bug: None,
                build: $build,
            }
        };
        ($name:expr, bug: $why:expr, $build:expr) => {
            Kind {
                name: $name,
                known_bug: Some($why),
                build: $build,
            }
        };
    }
    const QUATERNION: &str = "accepted by design: (b, c, d) is normalised and a = 0 as the NIfTI \
                              reference library (nifti_quatern_to_mat44) does (nifti_io/geometry.rs); \
                              nibabel refuses it";
    vec![
        // ---- files that are not there or not files
        kind!("missing file", |f| {
            let file = f.path("Brats18_x_1_flair.nii.gz");
            run(args!["info", &file], &[&s(&file), "no such file"])
        }),
        kind!("predict input path that does not exist", |f| {
            let input = f.path("no/such/dataset");
            let out = f.path("predictions");
            run(
                args!["predict", "-i", &input, "-o", &out, "--model", &f.model],
                &[&s(&input), "no such file"],
            )
        }),
        kind!("evaluate truth that does not exist", |f| {
            let pred = f.path("pred.nii.gz");
            label_file(&pred, &brats_label(SHAPE).mapv(|v| v.min(3)));
            let truth = f.path("nowhere/truth.nii.gz");
            run(
                args!["evaluate", "-i", &pred, "--truth", &truth],
                &[&s(&truth), "does not exist"],
            )
        }),
        kind!("empty file", |f| {
            let file = f.path("empty.nii");
            std::fs::write(&file, b"").unwrap();
            run(args!["info", &file], &[&s(&file), "truncated"])
        }),
        kind!("text file named .nii.gz", |f| {
            let file = f.path("notes.nii.gz");
            std::fs::write(&file, "these are not voxels\n".repeat(40)).unwrap();
            run(args!["info", &file], &[&s(&file), "not a NIfTI"])
        }),
        kind!("a folder named like a modality file", |f| {
            let case = case(f, "Brats_dir_1");
            let t1 = modality(&case, "t1");
            std::fs::remove_file(&t1).unwrap();
            std::fs::create_dir(&t1).unwrap();
            run(
                args!["info", &case],
                &[&s(&t1), "named like the T1w file", "folder"],
            )
        }),
        kind!("a FIFO named like a modality file", |f| {
            let case = case(f, "Brats_fifo_1");
            let t2 = modality(&case, "t2");
            std::fs::remove_file(&t2).unwrap();
            let made = std::process::Command::new("mkfifo")
                .arg(&t2)
                .status()
                .unwrap();
            assert!(made.success(), "mkfifo {}", t2.display());
            run(
                args!["info", &case],
                &[&s(&t2), "named like the T2w file", "FIFO"],
            )
        }),
        kind!("a broken symlink named like a modality file", |f| {
            let case = case(f, "Brats_link_1");
            let flair = modality(&case, "flair");
            std::fs::remove_file(&flair).unwrap();
            std::os::unix::fs::symlink(f.path("gone.nii.gz"), &flair).unwrap();
            run(
                args!["info", &case],
                &[&s(&flair), "named like the FLAIR file", "a link to nothing"],
            )
        }),
        kind!("a case missing a modality", |f| {
            let case = case(f, "Brats_miss_1");
            std::fs::remove_file(modality(&case, "t1ce")).unwrap();
            run(args!["info", &case], &[&s(&case), "missing the T1Gd file"])
        }),
        kind!("an empty folder", |f| {
            let empty = f.path("empty");
            std::fs::create_dir(&empty).unwrap();
            run(args!["info", &empty], &[&s(&empty), "no dataset here"])
        }),
        // ---- broken bytes
        kind!("truncated .nii", |f| {
            let file = f.path("cut.nii");
            write_volume(&file, [24, 24, 24], 0);
            let bytes = std::fs::read(&file).unwrap();
            std::fs::write(&file, &bytes[..bytes.len() - 1000]).unwrap();
            run(args!["info", &file], &[&s(&file), "truncated"])
        }),
        kind!("truncated header (.nii, 200 bytes)", |f| {
            let file = f.path("short.nii");
            write_volume(&file, SHAPE, 0);
            let bytes = std::fs::read(&file).unwrap();
            std::fs::write(&file, &bytes[..200]).unwrap();
            run(args!["info", &file], &[&s(&file), "truncated"])
        }),
        kind!("truncated .nii.gz", |f| {
            let file = f.path("cut.nii.gz");
            write_volume(&file, [24, 24, 24], 0);
            let bytes = std::fs::read(&file).unwrap();
            std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
            run(args!["info", &file], &[&s(&file), "truncated"])
        }),
        kind!("corrupt gzip", |f| {
            let file = f.path("corrupt.nii.gz");
            write_volume(&file, [24, 24, 24], 0);
            let mut bytes = std::fs::read(&file).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle..middle + 32].fill(0xff);
            std::fs::write(&file, &bytes).unwrap();
            run(args!["info", &file], &[&s(&file), "corrupt gzip"])
        }),
        kind!("gzip trailer CRC wrong", |f| {
            let file = f.path("crc.nii.gz");
            write_volume(&file, SHAPE, 0);
            let mut bytes = std::fs::read(&file).unwrap();
            let at = bytes.len() - 8;
            bytes[at] ^= 0x55;
            std::fs::write(&file, &bytes).unwrap();
            run(args!["info", &file], &[&s(&file), "corrupt gzip"])
        }),
        kind!("header promising more voxels than the file holds", |f| {
            let file = f.path("promise.nii");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| put_i16(h, DIM + 6, 40));
            run(args!["info", &file], &[&s(&file), "truncated"])
        }),
        kind!("dims 32767^3 in a tiny .nii.gz", |f| {
            let file = f.path("huge.nii.gz");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| {
                (1..=3).for_each(|k| put_i16(h, DIM + 2 * k, 32767))
            });
            run(args!["info", &file], &[&s(&file), "32767x32767x32767"])
        }),
        kind!("dim[0] = 0", |f| {
            let file = f.path("dim0.nii");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| put_i16(h, DIM, 0));
            run(
                args!["info", &file],
                &[&s(&file), "impossible dims", "dim[0] = 0"],
            )
        }),
        kind!("negative dim", |f| {
            let file = f.path("negdim.nii.gz");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| put_i16(h, DIM + 4, -6));
            run(
                args!["info", &file],
                &[&s(&file), "impossible dims", "dim[2] = -6"],
            )
        }),
        kind!("unsupported datatype (complex64)", |f| {
            let file = f.path("complex.nii");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| {
                put_i16(h, DATATYPE, 32);
                put_i16(h, BITPIX, 64);
            });
            run(
                args!["info", &file],
                &[&s(&file), "unsupported datatype code 32"],
            )
        }),
        kind!("datatype code 0 (unknown)", |f| {
            let file = f.path("dtype0.nii");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| {
                put_i16(h, DATATYPE, 0);
                put_i16(h, BITPIX, 0);
            });
            run(
                args!["info", &file],
                &[&s(&file), "unsupported datatype code 0"],
            )
        }),
        kind!("vox_offset past the end of the file", |f| {
            let file = f.path("offset.nii");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| put_f32(h, VOX_OFFSET, 1.0e6));
            run(
                args!["info", &file],
                &[&s(&file), "ends before the first voxel (offset 1000000)"],
            )
        }),
        kind!("sizeof_hdr of NIfTI-2", |f| {
            let file = f.path("nifti2.nii");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| h[0..4].copy_from_slice(&540i32.to_le_bytes()));
            run(args!["info", &file], &[&s(&file), "NIfTI"])
        }),
        kind!("bad magic", |f| {
            let file = f.path("magic.nii");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| h[344..348].copy_from_slice(b"abc\0"));
            run(args!["info", &file], &[&s(&file), "magic"])
        }),
        // ---- geometry
        kind!("pixdim 0", |f| {
            let file = f.path("pixdim0.nii.gz");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| put_f32(h, PIXDIM + 8, 0.0));
            run(args!["info", &file], &[&s(&file), "pixdim[2] = 0"])
        }),
        kind!("pixdim NaN", |f| {
            let file = f.path("pixdimnan.nii.gz");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| put_f32(h, PIXDIM + 4, f32::NAN));
            run(args!["info", &file], &[&s(&file), "pixdim[1] = NaN"])
        }),
        kind!("pixdim negative", |f| {
            let file = f.path("pixdimneg.nii.gz");
            write_volume(&file, SHAPE, 0);
            // Without a usable sform the spacings come from pixdim (with a sform they are unused).
            edit_header(&file, |h| {
                put_i16(h, SFORM_CODE, 0);
                put_f32(h, PIXDIM + 12, -1.5);
            });
            run(
                args!["info", &file],
                &[&s(&file), "pixdim[3] = -1.5 is negative"],
            )
        }),
        kind!("zero sform with qform_code 0", |f| {
            let file = f.path("sform0.nii.gz");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| {
                put_i16(h, QFORM_CODE, 0);
                put_i16(h, SFORM_CODE, 1);
                (0..12).for_each(|k| put_f32(h, SROW_X + 4 * k, 0.0));
            });
            run(args!["info", &file], &[&s(&file), "sform"])
        }),
        kind!("NaN sform with qform_code 0", |f| {
            let file = f.path("sformnan.nii.gz");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| {
                put_i16(h, QFORM_CODE, 0);
                put_i16(h, SFORM_CODE, 1);
                put_f32(h, SROW_X + 4, f32::NAN);
            });
            run(
                args!["info", &file],
                &[&s(&file), "sform (sform_code 1) holds a non-finite number"],
            )
        }),
        kind!("quaternion b = c = d = 5", bug: QUATERNION, |f| {
            let file = f.path("quatern.nii.gz");
            write_volume(&file, SHAPE, 0);
            edit_header(&file, |h| {
                put_i16(h, QFORM_CODE, 1);
                put_i16(h, SFORM_CODE, 0);
                (0..3).for_each(|k| put_f32(h, QUATERN_B + 4 * k, 5.0));
            });
            run(args!["info", &file], &[&s(&file), "quaternion"])
        }),
        // ---- cases and datasets
        kind!(
            "wrong number of modalities in a 4-D file (MSD dataset)",
            |f| {
                let root = msd_dataset(f, "msd3", 1, SHAPE, 3);
                let image = root.join("./imagesTr/case_000.nii.gz");
                run(
                    args!["info", &root],
                    &[
                        &s(&image),
                        "expected 4 channels (FLAIR, T1w, T1Gd, T2w), found 3",
                    ],
                )
            }
        ),
        kind!("wrong number of modalities in a 4-D file (predict)", |f| {
            let input = f.path("five.nii.gz");
            four_d(&input, 5);
            let out = f.path("predictions");
            run(
                args!["predict", "-i", &input, "-o", &out, "--model", &f.model],
                &[&s(&input), "5 volumes"],
            )
        }),
        kind!("a 3-D file given to predict", |f| {
            let input = f.path("three_d.nii.gz");
            write_volume(&input, SHAPE, 0);
            let out = f.path("predictions");
            run(
                args!["predict", "-i", &input, "-o", &out, "--model", &f.model],
                &[&s(&input), "4-D"],
            )
        }),
        kind!("modalities of different shapes", |f| {
            let case = case(f, "Brats_shape_1");
            let t2 = modality(&case, "t2");
            write_volume(&t2, [8, 7, 4], 3);
            run(
                args!["info", &case],
                &[&s(&t2), "T2w image (8x7x4", "does not match"],
            )
        }),
        kind!("a modality shifted 50 mm (same grid)", |f| {
            let case = case(f, "Brats_shift_1");
            let t1ce = modality(&case, "t1ce");
            let mut g = geometry(SHAPE);
            g.header.srow_x[3] += 50.0;
            g.header.quatern_x += 50.0;
            write_image(&t1ce, &varied_volume(SHAPE, 2), &g, "int16").unwrap();
            run(args!["info", &case], &[&s(&t1ce), "50"])
        }),
        kind!("a label map shifted 50 mm", |f| {
            let case = case(f, "Brats_lshift_1");
            let seg = modality(&case, "seg");
            let mut g = geometry(SHAPE);
            g.header.srow_z[3] -= 50.0;
            g.header.quatern_z -= 50.0;
            write_label(&seg, &brats_label(SHAPE), &g, None).unwrap();
            run(args!["info", &case], &[&s(&seg), "50"])
        }),
        kind!("label and image of different shapes", |f| {
            let case = case(f, "Brats_lshape_1");
            let seg = modality(&case, "seg");
            label_file(&seg, &brats_label([8, 6, 5]));
            run(
                args!["info", &case],
                &[&s(&seg), "label shape 8x6x5 differs"],
            )
        }),
        kind!("unknown label value", |f| {
            let case = case(f, "Brats_label_1");
            let seg = modality(&case, "seg");
            let mut label = brats_label(SHAPE);
            label[[3, 2, 1]] = 5;
            label_file(&seg, &label);
            run(args!["info", &case], &[&s(&seg), "unknown label value 5"])
        }),
        kind!("label value that is not a whole number", |f| {
            let case = case(f, "Brats_frac_1");
            let seg = modality(&case, "seg");
            let mut values = brats_label(SHAPE)
                .mapv(f32::from)
                .insert_axis(ndarray::Axis(0));
            values[[0, 1, 1, 1]] = 1.5;
            write_image(&seg, &values, &geometry(SHAPE), "float32").unwrap();
            run(
                args!["info", &case],
                &[&s(&seg), "1.5", "not a whole number"],
            )
        }),
        kind!("a 4-D label map", |f| {
            let case = case(f, "Brats_l4d_1");
            let seg = modality(&case, "seg");
            let values =
                Array4::from_shape_fn((2, SHAPE[0], SHAPE[1], SHAPE[2]), |(c, ..)| c as f32);
            write_image(&seg, &values, &geometry(SHAPE), "uint8").unwrap();
            run(args!["info", &case], &[&s(&seg), "2 volumes"])
        }),
        kind!("NaN voxel", |f| {
            let file = f.path("nan.nii.gz");
            let mut image = varied_volume(SHAPE, 0);
            image[[0, 5, 4, 3]] = f32::NAN;
            write_image(&file, &image, &geometry(SHAPE), "float32").unwrap();
            run(
                args!["info", &file],
                &[&s(&file), "voxel (5, 4, 3) holds NaN"],
            )
        }),
        kind!("infinite voxel in a case", |f| {
            let case = case(f, "Brats_inf_1");
            let flair = modality(&case, "flair");
            let mut image = varied_volume(SHAPE, 0);
            image[[0, 1, 2, 3]] = f32::INFINITY;
            write_image(&flair, &image, &geometry(SHAPE), "float32").unwrap();
            run(
                args!["info", &case],
                &[&s(&flair), "voxel (1, 2, 3) holds inf"],
            )
        }),
        kind!("two case folders with the same non-UTF-8 id", |f| {
            use std::os::unix::ffi::OsStringExt;
            let data = f.path("data");
            for byte in [0xffu8, 0xfe] {
                let id = OsString::from_vec([b"Brats_".as_slice(), &[byte], b"_1"].concat());
                let made = write_brats_case(&data, "tmp_case", SHAPE);
                let folder = data.join(&id);
                for suffix in BRATS_SUFFIXES.iter().chain(&["seg"]) {
                    let mut name = id.clone();
                    name.push(format!("_{suffix}.nii.gz"));
                    std::fs::rename(
                        made.join(format!("tmp_case_{suffix}.nii.gz")),
                        made.join(name),
                    )
                    .unwrap();
                }
                std::fs::rename(&made, &folder).unwrap();
            }
            run(args!["info", &data], &[&s(&data), "two cases have the id"])
        }),
        kind!("dataset.json with a ../ path", |f| {
            let root = msd_dataset(f, "msd_up", 1, SHAPE, 4);
            let json = root.join("dataset.json");
            write_json(
                &json,
                &[
                    serde_json::json!({"image": "../outside.nii.gz", "label": "./labelsTr/case_000.nii.gz"}),
                ],
            );
            run(
                args!["info", &root],
                &[
                    &s(&json),
                    "../outside.nii.gz",
                    "must stay inside the dataset",
                ],
            )
        }),
        kind!("dataset.json with an absolute path", |f| {
            let root = msd_dataset(f, "msd_abs", 1, SHAPE, 4);
            let json = root.join("dataset.json");
            let image = root.join("imagesTr/case_000.nii.gz");
            write_json(
                &json,
                &[serde_json::json!({"image": s(&image), "label": null})],
            );
            run(
                args!["info", &root],
                &[&s(&json), "must stay inside the dataset"],
            )
        }),
        kind!("dataset.json that is not JSON", |f| {
            let root = msd_dataset(f, "msd_text", 1, SHAPE, 4);
            let json = root.join("dataset.json");
            std::fs::write(&json, "{\"training\": [").unwrap();
            run(
                args!["info", &root],
                &[&s(&json), "not an MSD dataset.json"],
            )
        }),
        kind!("dataset.json listing no cases", |f| {
            let root = msd_dataset(f, "msd_none", 1, SHAPE, 4);
            let json = root.join("dataset.json");
            write_json(&json, &[]);
            run(
                args!["info", &root],
                &[&s(&json), "lists no training cases"],
            )
        }),
        kind!("dataset.json listing a missing image", |f| {
            let root = msd_dataset(f, "msd_gone", 1, SHAPE, 4);
            let image = root.join("./imagesTr/case_000.nii.gz");
            std::fs::remove_file(&image).unwrap();
            let json = root.join("dataset.json");
            let listed = format!("listed in {} but missing", s(&json));
            run(args!["info", &root], &[&s(&image), &listed])
        }),
        // ---- outputs that would overwrite inputs
        kind!("predict -o the input's own folder", |f| {
            let case = case(f, "Brats_own_1");
            run(
                args!["predict", "-i", &case, "-o", &case, "--model", &f.model],
                &[&s(&case)],
            )
        }),
        kind!("predict -i D -o D/labelsTr", |f| {
            let root = msd_dataset(f, "msd_out", 1, SHAPE, 4);
            let out = root.join("labelsTr");
            run(
                args!["predict", "-i", &root, "-o", &out, "--model", &f.model],
                &[&s(&out)],
            )
        }),
        kind!("evaluate --csv the truth file", |f| {
            let pred = f.path("pred.nii.gz");
            let truth = f.path("truth.nii.gz");
            label_file(&pred, &brats_label(SHAPE));
            label_file(&truth, &brats_label(SHAPE));
            run(
                args!["evaluate", "-i", &pred, "--truth", &truth, "--csv", &truth],
                &[
                    &s(&truth),
                    "is an input of this command; refusing to overwrite it",
                ],
            )
        }),
        kind!("evaluate --json the prediction file", |f| {
            let pred = f.path("pred.nii.gz");
            let truth = f.path("truth.nii.gz");
            label_file(&pred, &brats_label(SHAPE));
            label_file(&truth, &brats_label(SHAPE));
            run(
                args!["evaluate", "-i", &pred, "--truth", &truth, "--json", &pred],
                &[
                    &s(&pred),
                    "is an input of this command; refusing to overwrite it",
                ],
            )
        }),
        kind!("evaluate a prediction with an unknown label value", |f| {
            let pred = f.path("pred.nii.gz");
            let truth = f.path("truth.nii.gz");
            label_file(&pred, &Array3::from_elem(SHAPE, 9));
            label_file(&truth, &brats_label(SHAPE));
            let csv = f.path("out/evaluation.csv");
            run(
                args!["evaluate", "-i", &pred, "--truth", &truth, "--csv", &csv],
                &[&s(&pred), "unknown label value 9"],
            )
        }),
        kind!("evaluate on an empty prediction folder", |f| {
            let preds = f.path("preds");
            std::fs::create_dir(&preds).unwrap();
            let truth = msd_dataset(f, "msd_truth", 1, SHAPE, 4);
            run(
                args!["evaluate", "-i", &preds, "--truth", &truth],
                &[&s(&preds)],
            )
        }),
        // ---- training
        kind!(
            "train on a bad dataset, then retried once it is fixed",
            |f| {
                let data = f.path("data");
                write_brats_case(&data, "Brats_a_1", TRAIN_SHAPE);
                let broken = write_brats_case(&data, "Brats_b_1", TRAIN_SHAPE);
                let seg = broken.join("Brats_b_1_seg.nii.gz");
                let good = std::fs::read(&seg).unwrap();
                label_file(&seg, &Array3::from_elem(TRAIN_SHAPE, 7));
                let run_dir = f.path("run");
                Some(Run {
                    args: train_args(&data, &run_dir, ["16", "16", "8"], "2"),
                    needles: vec![s(&seg), "unknown label value 7".into()],
                    retry: Some(Box::new(move || std::fs::write(&seg, good).unwrap())),
                })
            }
        ),
        kind!("train with a patch the network cannot take", |f| {
            let data = f.path("data");
            write_brats_case(&data, "Brats_a_1", TRAIN_SHAPE);
            let run_dir = f.path("run");
            let a = train_args(&data, &run_dir, ["16", "14", "8"], "3");
            run(a, &["16x14x8", "multiple of 4"])
        }),
        kind!("train on a data folder that does not exist", |f| {
            let data = f.path("no_data");
            let a = train_args(&data, &f.path("run"), ["16", "16", "8"], "2");
            run(a, &[&s(&data), "path does not exist"])
        }),
        kind!("train with a patch that is not three numbers", |f| {
            let data = f.path("data");
            write_brats_case(&data, "Brats_a_1", TRAIN_SHAPE);
            let a = train_args(&data, &f.path("run"), ["16", "abc", "8"], "2");
            run(a, &["--patch"])
        }),
        // ---- flags
        kind!("predict --threshold 1.5", |f| {
            let input = f.path("case.nii.gz");
            four_d(&input, 4);
            let out = f.path("predictions");
            run(
                args![
                    "predict",
                    "-i",
                    &input,
                    "-o",
                    &out,
                    "--model",
                    &f.model,
                    "--threshold",
                    "1.5"
                ],
                &["threshold 1.5", "[0, 1)"],
            )
        }),
        kind!("predict --threshold NaN", |f| {
            let input = f.path("case.nii.gz");
            four_d(&input, 4);
            let out = f.path("predictions");
            run(
                args![
                    "predict",
                    "-i",
                    &input,
                    "-o",
                    &out,
                    "--model",
                    &f.model,
                    "--threshold",
                    "NaN"
                ],
                &["threshold NaN", "[0, 1)"],
            )
        }),
        kind!("predict --overlap 1", |f| {
            let input = f.path("case.nii.gz");
            four_d(&input, 4);
            let out = f.path("predictions");
            run(
                args![
                    "predict",
                    "-i",
                    &input,
                    "-o",
                    &out,
                    "--model",
                    &f.model,
                    "--tiling",
                    "sliding",
                    "--overlap",
                    "1"
                ],
                &["overlap"],
            )
        }),
        kind!("predict with an unknown --tiling value", |f| {
            let input = f.path("case.nii.gz");
            four_d(&input, 4);
            let out = f.path("predictions");
            run(
                args![
                    "predict", "-i", &input, "-o", &out, "--model", &f.model, "--tiling",
                    "diagonal"
                ],
                &["--tiling", "diagonal"],
            )
        }),
        kind!("predict with a corrupt model", |f| {
            let input = f.path("case.nii.gz");
            four_d(&input, 4);
            let model = f.path("garbage.safetensors");
            std::fs::write(&model, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}").unwrap();
            let out = f.path("predictions");
            run(
                args!["predict", "-i", &input, "-o", &out, "--model", &model],
                &[&s(&model), "not a valid safetensors checkpoint"],
            )
        }),
        kind!("model -i a file that is not a model", |f| {
            let model = f.path("model.safetensors");
            std::fs::write(&model, [0u8; 4]).unwrap();
            run(args!["model", "-i", &model], &[&s(&model)])
        }),
        kind!("show with a point outside the volume", |f| {
            let case = write_brats_case(&f.dir, "Brats_show_1", TRAIN_SHAPE);
            let seg = case.join("Brats_show_1_seg.nii.gz");
            let out = f.path("pictures");
            run(
                args![
                    "show", "-i", &case, "--pred", &seg, "--labels", "brats", "-o", &out,
                    "--point", "3", "16", "2"
                ],
                &["point [3, 16, 2] is outside the volume [16, 16, 8]"],
            )
        }),
        kind!("show with a prediction of another shape", |f| {
            let case = case(f, "Brats_showp_1");
            let pred = f.path("pred.nii.gz");
            label_file(&pred, &brats_label([8, 6, 5]));
            let out = f.path("pictures");
            run(
                args!["show", "-i", &case, "--pred", &pred, "--labels", "brats", "-o", &out],
                &[&s(&pred), "8x6x5"],
            )
        }),
        kind!("report on an empty folder", |f| {
            let empty = f.path("empty");
            std::fs::create_dir(&empty).unwrap();
            run(args!["report", &empty], &[&s(&empty), "nothing to report"])
        }),
        kind!("convert a dataset with a broken case", |f| {
            let src = f.path("raw");
            write_brats_case(&src, "Brats_a_1", SHAPE);
            let broken = write_brats_case(&src, "Brats_b_1", SHAPE);
            let t1 = broken.join("Brats_b_1_t1.nii.gz");
            let bytes = std::fs::read(&t1).unwrap();
            std::fs::write(&t1, &bytes[..bytes.len() / 2]).unwrap();
            let out = f.path("msd");
            run(args!["convert", &src, &out], &[&s(&t1), "truncated"])
        }),
        // ---- real data (skipped with a note when absent)
        kind!("real case with a truncated modality", |f| {
            let case = real_case_copy(f)?;
            let t2 = case.join(format!("{}_t2.nii.gz", case.file_name()?.to_string_lossy()));
            let bytes = std::fs::read(&t2).unwrap();
            std::fs::write(&t2, &bytes[..bytes.len() * 2 / 3]).unwrap();
            run(args!["info", &case], &[&s(&t2), "truncated"])
        }),
        kind!("real case with its label on another grid", |f| {
            let case = real_case_copy(f)?;
            let id = case.file_name()?.to_string_lossy().to_string();
            let seg = case.join(format!("{id}_seg.nii.gz"));
            let (labels, mut g) = brainseg_volume::read_label(&seg).unwrap();
            g.header.srow_y[3] += 50.0;
            g.header.quatern_y += 50.0;
            write_label(&seg, &labels, &g, None).unwrap();
            run(args!["info", &case], &[&s(&seg), "50"])
        }),
    ]
}

// ------------------------------------------------------------------ checking

#[derive(Debug, PartialEq)]
enum Entry {
    File(u64, u64),
    Folder,
    Link(PathBuf),
    Other,
}

/// Every entry under `dir` with a hash of each file's bytes (FIFOs and links are not opened).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            let e = if kind.is_symlink() {
                Entry::Link(std::fs::read_link(&path).unwrap())
            } else if kind.is_dir() {
                stack.push(path.clone());
                Entry::Folder
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                Entry::File(bytes.len() as u64, h.finish())
            } else {
                Entry::Other
            };
            found.insert(path, e);
        }
    }
    found
}

/// What is wrong with how the command failed; empty when it failed well.
fn judge(
    out: &std::process::Output,
    needles: &[String],
    before: &BTreeMap<PathBuf, Entry>,
    after: &BTreeMap<PathBuf, Entry>,
) -> Vec<String> {
    let mut problems = vec![];
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    match out.status.code() {
        None => problems.push(format!("killed by a signal ({})", out.status)),
        Some(0) => problems.push("exit code 0".into()),
        Some(101) => problems.push("exit code 101 (a panic)".into()),
        Some(134) => problems.push("exit code 134 (an abort)".into()),
        Some(_) => {}
    }
    for word in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        if stderr.contains(word) || stdout.contains(word) {
            problems.push(format!("{word:?} in the output"));
        }
    }
    // Progress lines of a log (`decoding 1/2: <case>`) may come first; the error is the last line
    // and the only one that says error or warning.
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let said = lines
        .iter()
        .filter(|l| l.starts_with("error") || l.starts_with("warning"))
        .count();
    if said != 1 {
        problems.push(format!("{said} error or warning lines on stderr, not 1"));
    }
    let last = lines.last().copied().unwrap_or("");
    if !last.starts_with("error: ") {
        problems.push("the last line of stderr does not start with \"error: \"".into());
    }
    for needle in needles {
        if !last.contains(needle.as_str()) {
            problems.push(format!("the error line does not mention {needle:?}"));
        }
    }
    for (path, entry) in before {
        match after.get(path) {
            None => problems.push(format!("input {} was removed", path.display())),
            Some(e) if e != entry => problems.push(format!("input {} was changed", path.display())),
            Some(_) => {}
        }
    }
    for (path, entry) in after {
        if before.contains_key(path) {
            continue;
        }
        // An empty folder may be left (a folder the user named); no file may.
        if *entry != Entry::Folder {
            problems.push(format!("left behind: {}", path.display()));
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(".brainseg-") {
            problems.push(format!("temporary file left: {}", path.display()));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("stderr was:\n{stderr}"));
    }
    problems
}

/// Run one kind; returns what went wrong, or None when the kind was skipped.
fn check(kind: &Kind, model: &Path) -> Option<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture {
        dir: dir.path().to_path_buf(),
        model: model.to_path_buf(),
    };
    let Run {
        args,
        needles,
        retry,
    } = (kind.build)(&fixture)?;
    let before = snapshot(dir.path());
    let model_before = snapshot(model.parent().unwrap());
    let out = brainseg(&args);
    let mut problems = judge(&out, &needles, &before, &snapshot(dir.path()));
    if snapshot(model.parent().unwrap()) != model_before {
        problems.push(format!("the model folder {} changed", model.display()));
    }
    if let Some(retry) = retry {
        retry();
        let again = brainseg(&args);
        if !again.status.success() {
            problems.push(format!(
                "the same command failed again once the input was fixed:\n{}",
                text(&again.stderr)
            ));
        }
    }
    Some(problems)
}

fn tiny_model(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.safetensors");
    let config = UNet3dConfig {
        depth: 2,
        base_filters: 2,
        ..UNet3dConfig::default()
    };
    let model = UNet3d::new(&config, 0, &cpu_device()).unwrap();
    save_checkpoint(&model, &path, StorageDtype::F32).unwrap();
    path
}

fn run_corpus(known_bugs: bool) {
    let started = Instant::now();
    let model_dir = tempfile::tempdir().unwrap();
    let model = tiny_model(model_dir.path());
    let all = kinds();
    let mut failures = vec![];
    let (mut ran, mut skipped) = (0, 0);
    for kind in &all {
        if kind.known_bug.is_some() != known_bugs {
            if let Some(why) = kind.known_bug {
                println!("known bug, not run: {}: {why}", kind.name);
            }
            continue;
        }
        let t = Instant::now();
        match check(kind, &model) {
            None => {
                skipped += 1;
                println!("skipped: {}", kind.name);
            }
            Some(problems) => {
                ran += 1;
                println!("{:>6.2} s  {}", t.elapsed().as_secs_f64(), kind.name);
                if !problems.is_empty() {
                    failures.push(format!("{}:\n  {}", kind.name, problems.join("\n  ")));
                }
            }
        }
    }
    println!(
        "{} kinds in the table; {ran} run, {skipped} skipped, {} failed, in {:.1} s",
        all.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn bad_input_corpus() {
    let kinds = kinds();
    assert!(kinds.len() >= 40, "the corpus has {} kinds", kinds.len());
    let mut names: Vec<_> = kinds.iter().map(|k| k.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), kinds.len(), "two kinds share a name");
    run_corpus(false);
}

/// The kinds marked with a known bug: fails until the bugs are fixed.
#[test]
#[ignore]
fn bad_input_corpus_known_bugs() {
    run_corpus(true);
}
