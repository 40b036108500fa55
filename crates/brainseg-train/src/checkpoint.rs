//! The last epoch's state (weights, optimiser, progress) as one unit: written to
//! `checkpoint.tmp/`, marked complete, then swapped in; on resume, the newest complete one wins.
use crate::error::{Error, Result};
use crate::run_layout::RunLayout;
use crate::trainer::RunProgress;
use brainseg_model::{Device, UNet3d, UNet3dConfig};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use std::fs;
use std::path::{Path, PathBuf};

/// Written last into a checkpoint folder: the folder is whole.
const COMPLETE: &str = "complete";

fn io<'a>(path: &'a Path, what: &'a str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::at(path, format!("{what}: {e}"))
}

/// Saves the state and swaps it in for the previous checkpoint.
pub fn save(
    run: &RunLayout,
    model: &UNet3d,
    optimizer: &ModuleOptimizer,
    progress: &RunProgress,
) -> Result<()> {
    let tmp = run.checkpoint_tmp();
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(io(&tmp, "cannot create"))?;
    // burn's own record keeps the parameter ids the optimiser state is keyed by: resume is exact.
    model
        .clone()
        .into_record()
        .save(tmp.join("model.bpk"))
        .map_err(|e| Error::at(&tmp, format!("cannot save the model: {e:?}")))?;
    optimizer
        .save(tmp.join("optimizer.bpk"))
        .map_err(|e| Error::at(&tmp, format!("cannot save optimiser state: {e:?}")))?;
    let json = serde_json::to_vec_pretty(progress).expect("progress serialises");
    fs::write(tmp.join("progress.json"), json).map_err(io(&tmp, "cannot write progress"))?;
    fs::write(tmp.join(COMPLETE), b"").map_err(io(&tmp, "cannot write"))?;
    let (current, old) = (run.checkpoint(), run.checkpoint_old());
    let _ = fs::remove_dir_all(&old);
    if current.exists() {
        fs::rename(&current, &old).map_err(io(&current, "cannot move aside"))?;
    }
    fs::rename(&tmp, &current).map_err(io(&tmp, "cannot move into place"))?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// A checkpoint folder read back.
pub struct Restored {
    pub model: UNet3d,
    pub optimizer: ModuleOptimizer,
    pub progress: RunProgress,
}

/// The newest complete checkpoint of the run (a kill can leave it as `checkpoint`,
/// `checkpoint.tmp` or `checkpoint.old`), or None when the run has none.
pub fn restore(
    run: &RunLayout,
    config: &UNet3dConfig,
    seed: u64,
    fresh_optimizer: impl Fn() -> ModuleOptimizer,
    device: &Device,
) -> Result<Option<Restored>> {
    let mut candidates: Vec<(usize, PathBuf)> =
        [run.checkpoint(), run.checkpoint_tmp(), run.checkpoint_old()]
            .into_iter()
            .filter_map(|dir| {
                let progress: RunProgress =
                    serde_json::from_slice(&fs::read(dir.join("progress.json")).ok()?).ok()?;
                // Checkpoints from before the marker existed count when their files are there.
                let whole = dir.join(COMPLETE).is_file()
                    || (dir.join("model.bpk").is_file() && dir.join("optimizer.bpk").is_file());
                whole.then_some((progress.epochs_done, dir))
            })
            .collect();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut failures = vec![];
    for (_, dir) in candidates {
        match read(&dir, config, seed, fresh_optimizer(), device) {
            Ok(restored) => return Ok(Some(restored)),
            Err(e) => failures.push(e.to_string()),
        }
    }
    match failures.is_empty() {
        true => Ok(None),
        false => Err(Error::run(format!(
            "no checkpoint of {} can be read: {}",
            run.path().display(),
            failures.join("; ")
        ))),
    }
}

fn read(
    dir: &Path,
    config: &UNet3dConfig,
    seed: u64,
    optimizer: ModuleOptimizer,
    device: &Device,
) -> Result<Restored> {
    let record = ModuleRecord::load(dir.join("model.bpk"))
        .map_err(|e| Error::at(dir, format!("cannot read the model: {e:?}")))?;
    let model = UNet3d::new(config, seed, device)?
        .try_load_record(record)
        .map_err(|e| {
            Error::at(
                dir,
                format!("the checkpoint does not fit the run's model: {e:?}"),
            )
        })?;
    let optimizer = optimizer
        .load(dir.join("optimizer.bpk"))
        .map_err(|e| Error::at(dir, format!("cannot read optimiser state: {e:?}")))?;
    let bytes = fs::read(dir.join("progress.json")).map_err(io(dir, "cannot read progress"))?;
    let progress = serde_json::from_slice(&bytes)
        .map_err(|e| Error::at(dir, format!("unreadable progress.json: {e}")))?;
    Ok(Restored {
        model,
        optimizer,
        progress,
    })
}
