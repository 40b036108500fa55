//! The seed notebook's own patch files: HDF5 with `x` (4, X, Y, Z) float64 and `y` (X, Y, Z, 4) one-hot,
//! listed in a `config.json` {"train": [...], "valid": [...]}.
//!
//! Read with `hdf5-pure` (pure Rust, no libhdf5), which handles the chunked, deflate-compressed
//! datasets h5py wrote.
use crate::{Error, Result};
use ndarray::{s, Array4, Axis};
use std::path::{Path, PathBuf};

/// One seed patch: `x` is `(4, X, Y, Z)` raw intensities; `y` is `(3, X, Y, Z)` one-hot without background.
#[derive(Debug, Clone)]
pub struct SeedPatch {
    pub x: Array4<f32>,
    pub y: Array4<f32>,
}

pub fn read_seed_patch(path: &Path) -> Result<SeedPatch> {
    let file = hdf5_pure::File::open(path)
        .map_err(|e| Error::at(path, format!("not a readable HDF5 file ({e})")))?;
    let x = read_4d(path, &file, "x")?;
    let y = read_4d(path, &file, "y")?;
    let (xs, ys) = (x.shape(), y.shape());
    if xs[0] != 4 || ys[3] != 4 || xs[1..] != ys[..3] {
        return Err(Error::at(
            path,
            format!("expected x (4, X, Y, Z) and y (X, Y, Z, 4), found x {xs:?} and y {ys:?}"),
        ));
    }
    // Channels first, background (class 0) dropped, as the seed's generator does.
    let y = y
        .permuted_axes([3, 0, 1, 2])
        .slice_move(s![1.., .., .., ..])
        .as_standard_layout()
        .into_owned();
    if let Some(v) = x.iter().find(|v| !v.is_finite()) {
        return Err(Error::at(
            path,
            format!("x holds {v}: patches must hold finite numbers"),
        ));
    }
    if let Some(v) = y.iter().find(|&&v| v != 0.0 && v != 1.0) {
        return Err(Error::at(
            path,
            format!("y holds {v}: it must be one-hot (0 or 1)"),
        ));
    }
    if y.sum_axis(Axis(0)).iter().any(|&n| n > 1.0) {
        return Err(Error::at(
            path,
            "y marks more than one class at a voxel: it must be one-hot",
        ));
    }
    Ok(SeedPatch { x, y })
}

fn read_4d(path: &Path, file: &hdf5_pure::File, name: &str) -> Result<Array4<f32>> {
    let fail = |e: hdf5_pure::Error| Error::at(path, format!("cannot read dataset {name:?} ({e})"));
    let dataset = file.dataset(name).map_err(fail)?;
    let shape = dataset.shape().map_err(fail)?;
    let values = dataset.read_f64().map_err(fail)?;
    let shape: [usize; 4] = shape
        .iter()
        .map(|&d| d as usize)
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| {
            Error::at(
                path,
                format!("dataset {name:?} has shape {shape:?}, expected 4 dimensions"),
            )
        })?;
    let values: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
    Array4::from_shape_vec(shape, values).map_err(|_| {
        Error::at(
            path,
            format!("dataset {name:?} holds fewer values than its shape {shape:?}"),
        )
    })
}

#[derive(serde::Deserialize)]
struct SeedConfig {
    train: Vec<String>,
    valid: Vec<String>,
}

/// File lists of a seed `config.json`, resolved against `<dir>/train` and `<dir>/valid`.
pub fn read_seed_config(config: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| Error::at(config, format!("cannot read: {e}")))?;
    let parsed: SeedConfig = serde_json::from_str(&text).map_err(|e| {
        Error::at(
            config,
            format!("not a seed config ({e}); expected {{\"train\": [files], \"valid\": [files]}}"),
        )
    })?;
    let dir = config.parent().unwrap_or(Path::new(""));
    let resolve = |names: &[String], sub: &str| -> Result<Vec<PathBuf>> {
        names
            .iter()
            .map(|name| {
                let path = dir.join(sub).join(name);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(Error::at(
                        &path,
                        format!("listed in {} but missing", config.display()),
                    ))
                }
            })
            .collect()
    };
    Ok((
        resolve(&parsed.train, "train")?,
        resolve(&parsed.valid, "valid")?,
    ))
}
