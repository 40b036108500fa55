//! The training data pipeline: cases decoded once into an on-disk cache that is memory-mapped
//! (so a dataset of any size fits: the OS pages in only what patches touch), and batches sampled in
//! background threads into a bounded queue, in a fixed order so a seed gives the same batches.
//!
//! Memory: the queue holds `queue_depth` batches; a batch of 3 patches of 4x160x160x16 with 3 target
//! channels is 3 x (4 + 3) x 409,600 x 4 B = 34 MB; each worker builds one patch at a time
//! (~12 MB including its crop and target).
use crate::error::{Error, Result};
use brainseg_transforms::{
    augment_patch, sample_scaled_patch, AugmentConfig, AugmentationConfig, PatchConfig,
    Standardization,
};
use brainseg_volume::seed_patches::{read_seed_patch, SeedPatch};
use brainseg_volume::{CaseRef, Dataset};
use memmap2::Mmap;
use ndarray::{s, Array4, Array5, ArrayView3, ArrayView4, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// A batch: `(B, C, X, Y, Z)` standardised images and `(B, K, X, Y, Z)` 0/1 targets.
pub struct Batch {
    pub images: Array5<f32>,
    pub targets: Array5<f32>,
}

/// A case decoded, cropped to its non-zero bounding box and stored compactly for memory mapping:
/// int16 values with a scale per channel (half the bytes of f32; the quantisation step is
/// 1/32767 of the channel's largest magnitude, far below the augmentation's noise, and raw
/// integer intensities are kept exactly), uint8 labels.
pub struct CachedCase {
    pub id: String,
    shape: [usize; 4],
    scales: Vec<f32>,
    image: Mmap,
    label: Mmap,
}

impl CachedCase {
    /// The stored values: channel `c`'s intensities are these times `scales()[c]`.
    pub fn image(&self) -> ArrayView4<'_, i16> {
        ArrayView4::from_shape(self.shape, bytemuck_i16(&self.image))
            .expect("cache file size checked on open")
    }
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }
    pub fn label(&self) -> ArrayView3<'_, u8> {
        let [_, x, y, z] = self.shape;
        ArrayView3::from_shape((x, y, z), &self.label[..]).expect("cache file size checked on open")
    }
}

fn bytemuck_i16(bytes: &[u8]) -> &[i16] {
    assert!(
        (bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<i16>())
            && bytes.len().is_multiple_of(2)
    );
    // SAFETY: aligned (asserted), length even, every bit pattern is a valid i16.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const i16, bytes.len() / 2) }
}

#[derive(Serialize, Deserialize, PartialEq)]
struct CacheMeta {
    id: String,
    shape: [usize; 4],
    /// Channel c's intensities are its int16 values times `scales[c]`.
    scales: Vec<f32>,
    standardization: Standardization,
    /// Sizes and modification times of the source files, so edited data are decoded again.
    sources: Vec<(String, u64, u64)>,
}

fn source_stamp(paths: &[PathBuf]) -> Vec<(String, u64, u64)> {
    paths
        .iter()
        .map(|p| {
            let meta = fs::metadata(p).ok();
            let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            let mtime = meta
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let path = p.canonicalize().unwrap_or_else(|_| p.clone());
            (path.display().to_string(), size, mtime)
        })
        .collect()
}

fn case_files(case: &CaseRef) -> Vec<PathBuf> {
    let mut files = match &case.image {
        brainseg_volume::ImageSource::FourD(p) => vec![p.clone()],
        brainseg_volume::ImageSource::PerModality(ps) => ps.to_vec(),
    };
    files.extend(case.label.clone());
    files
}

/// `(C, X, Y, Z)` intensities as int16 values and a scale per channel: whole numbers within int16
/// (raw scanner intensities) exactly with scale 1, anything else rounded to 1/32767 of the
/// channel's largest magnitude.
fn quantise(image: ArrayView4<f32>) -> (Vec<i16>, Vec<f32>) {
    let scales: Vec<f32> = image
        .axis_iter(Axis(0))
        .map(|channel| {
            // Whole and within int16: the cast saturates outside it and turns NaN into 0.
            let whole = channel.iter().all(|&v| v as i16 as f32 == v);
            let largest = channel.iter().fold(0f32, |m, v| m.max(v.abs()));
            if whole || largest == 0.0 {
                1.0
            } else {
                largest / 32767.0
            }
        })
        .collect();
    let values = image
        .axis_iter(Axis(0))
        .zip(&scales)
        .flat_map(|(channel, &scale)| channel.into_iter().map(move |v| (v / scale).round() as i16))
        .collect();
    (values, scales)
}

/// Bounding box of voxels that are non-zero in any channel (the whole volume if there are none).
fn nonzero_box(image: ArrayView4<f32>) -> [(usize, usize); 3] {
    let (_, x, y, z) = image.dim();
    let mut lo = [x, y, z];
    let mut hi = [0usize; 3];
    for ((_, i, j, k), &v) in image.indexed_iter() {
        if v != 0.0 {
            lo = [lo[0].min(i), lo[1].min(j), lo[2].min(k)];
            hi = [hi[0].max(i + 1), hi[1].max(j + 1), hi[2].max(k + 1)];
        }
    }
    if hi[0] == 0 {
        return [(0, x), (0, y), (0, z)];
    }
    [(lo[0], hi[0]), (lo[1], hi[1]), (lo[2], hi[2])]
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(brainseg_volume::write_atomic(path, bytes)?)
}

/// Decode a case into the cache (or reuse a cache entry made from the same files and settings).
pub fn cache_case(
    case: &CaseRef,
    cache_dir: &Path,
    standardization: Standardization,
) -> Result<CachedCase> {
    fs::create_dir_all(cache_dir)
        .map_err(|e| Error::at(cache_dir, format!("cannot create the cache folder: {e}")))?;
    let stamp = source_stamp(&case_files(case));
    // Named by what they were made from, so runs on the same data share one entry.
    let key = crate::cache::entry_key(&stamp, standardization);
    let meta_path = cache_dir.join(format!("{key}.json"));
    let image_path = cache_dir.join(format!("{key}.i16"));
    let label_path = cache_dir.join(format!("{key}.u8"));
    let existing: Option<CacheMeta> = fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let fresh = match existing {
        Some(meta)
            if meta.sources == stamp
                && meta.standardization == standardization
                && meta.id == case.id =>
        {
            Some(meta)
        }
        _ => None,
    };
    let meta = match fresh {
        Some(meta) => meta,
        None => {
            let loaded = case.load()?;
            let Some(label) = loaded.label else {
                return Err(Error::run(format!(
                    "case {}: no label file, it cannot be used for training",
                    case.id
                )));
            };
            let bbox = nonzero_box(loaded.image.view());
            let mut image = loaded
                .image
                .slice(s![
                    ..,
                    bbox[0].0..bbox[0].1,
                    bbox[1].0..bbox[1].1,
                    bbox[2].0..bbox[2].1
                ])
                .to_owned();
            let label = label
                .slice(s![
                    bbox[0].0..bbox[0].1,
                    bbox[1].0..bbox[1].1,
                    bbox[2].0..bbox[2].1
                ])
                .to_owned();
            if !standardization.per_patch() {
                standardization.apply(&mut image);
            }
            let shape: [usize; 4] = image.shape().try_into().expect("4-D");
            let (values, scales) = quantise(image.view());
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
            write_atomic(&image_path, &bytes)?;
            write_atomic(
                &label_path,
                label
                    .as_standard_layout()
                    .as_slice()
                    .expect("standard layout"),
            )?;
            let meta = CacheMeta {
                id: case.id.clone(),
                shape,
                scales,
                standardization,
                sources: stamp,
            };
            write_atomic(
                &meta_path,
                &serde_json::to_vec(&meta).expect("cache metadata serialises"),
            )?;
            meta
        }
    };
    let open = |p: &Path| -> Result<Mmap> {
        let file =
            fs::File::open(p).map_err(|e| Error::at(p, format!("cannot open cache file: {e}")))?;
        // SAFETY: cache files are written once, atomically, and never modified in place.
        unsafe { Mmap::map(&file) }.map_err(|e| Error::at(p, format!("cannot map cache file: {e}")))
    };
    let image = open(&image_path)?;
    let label = open(&label_path)?;
    let voxels: usize = meta.shape[1..].iter().product();
    if image.len() != voxels * meta.shape[0] * 2
        || label.len() != voxels
        || meta.scales.len() != meta.shape[0]
    {
        return Err(Error::at(
            &image_path,
            "cache file has the wrong size; delete the cache folder",
        ));
    }
    Ok(CachedCase {
        id: meta.id,
        shape: meta.shape,
        scales: meta.scales,
        image,
        label,
    })
}

/// Where training patches come from.
pub enum PatchSource {
    /// Whole cases, sampled with the patch sampler.
    Volumes {
        train: Vec<CachedCase>,
        valid: Vec<CachedCase>,
    },
    /// The seed's ready-made HDF5 patches (VolumeDataGenerator semantics).
    SeedPatches {
        train: Vec<PathBuf>,
        valid: Vec<PathBuf>,
    },
}

/// Open a dataset for training: decode and cache the split's cases in parallel.
pub fn open_volumes(
    dataset: &Dataset,
    split: &brainseg_volume::Split,
    cache_dir: &Path,
    standardization: Standardization,
    mut on_case: impl FnMut(&str) + Send,
) -> Result<PatchSource> {
    let find = |id: &String| -> Result<CaseRef> {
        dataset.case(id).cloned().ok_or_else(|| {
            Error::run(format!(
                "split lists case {id}, which is not in {}",
                dataset.root.display()
            ))
        })
    };
    let train: Vec<CaseRef> = split.train.iter().map(find).collect::<Result<_>>()?;
    let valid: Vec<CaseRef> = split.valid.iter().map(find).collect::<Result<_>>()?;
    let on_case = std::sync::Mutex::new(&mut on_case);
    let load = |refs: &[CaseRef]| -> Result<Vec<CachedCase>> {
        refs.par_iter()
            .map(|c| {
                let cached = cache_case(c, cache_dir, standardization);
                (on_case.lock().expect("progress callback"))(&c.id);
                cached
            })
            .collect()
    };
    let train = load(&train)?;
    let valid = load(&valid)?;
    if train.is_empty() {
        return Err(Error::at(&dataset.root, "no training cases"));
    }
    Ok(PatchSource::Volumes { train, valid })
}

/// How batches are drawn.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "StoredSamplingConfig")]
pub struct SamplingConfig {
    pub patch: PatchConfig,
    pub standardization: Standardization,
    /// Training-patch augmentation: `AugmentationConfig::preset(AugmentationPreset::Nnunet)` for
    /// nnU-Net's recipe, `::Basic` for the seed's flips and intensity jitter. Run configs written
    /// before this field held the seed's `augment` (an `AugmentConfig`) instead; they read back as
    /// `AugmentationConfig::from_legacy` of it, which draws the same patches.
    pub augmentation: AugmentationConfig,
    pub batch_size: usize,
}

/// [`SamplingConfig`] as a run's config.json holds it, old (`augment`) or new (`augmentation`).
#[derive(Deserialize)]
struct StoredSamplingConfig {
    patch: PatchConfig,
    standardization: Standardization,
    #[serde(default)]
    augmentation: Option<AugmentationConfig>,
    #[serde(default)]
    augment: Option<AugmentConfig>,
    batch_size: usize,
}

impl From<StoredSamplingConfig> for SamplingConfig {
    fn from(stored: StoredSamplingConfig) -> Self {
        SamplingConfig {
            patch: stored.patch,
            standardization: stored.standardization,
            augmentation: stored.augmentation.unwrap_or_else(|| {
                AugmentationConfig::from_legacy(&stored.augment.unwrap_or_default())
            }),
            batch_size: stored.batch_size,
        }
    }
}

/// An RNG for one (epoch, step, item): every random choice is reproducible from the run seed alone,
/// whatever the thread that makes it, so resuming at an epoch gives the same batches.
pub fn item_rng(seed: u64, stream: u64, epoch: u64, step: u64, item: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng.set_word_pos(((epoch << 40) | (step << 16) | item) as u128 * 64);
    let mut key = [0u8; 32];
    rng.fill(&mut key);
    ChaCha8Rng::from_seed(key)
}

const TRAIN_STREAM: u64 = 1;
const VALID_STREAM: u64 = 2;

fn volume_item(
    case: &CachedCase,
    config: &SamplingConfig,
    rng: &mut ChaCha8Rng,
    augment_on: bool,
) -> Result<(Array4<f32>, Array4<f32>)> {
    let patch = sample_scaled_patch(
        case.image(),
        case.scales(),
        case.label(),
        &config.patch,
        rng,
    )
    .map_err(|e| Error::run(format!("case {}: {e}", case.id)))?;
    let (mut image, mut target) = (patch.image, patch.target);
    if config.standardization.per_patch() {
        config.standardization.apply(&mut image);
    }
    if augment_on {
        augment_patch(&mut image, &mut target, &config.augmentation, rng);
    }
    Ok((image, target))
}

fn seed_item(
    path: &Path,
    config: &SamplingConfig,
    rng: &mut ChaCha8Rng,
    augment_on: bool,
) -> Result<(Array4<f32>, Array4<f32>)> {
    let SeedPatch { x: mut image, y } = read_seed_patch(path)?;
    let mut target = match config.patch.targets {
        brainseg_transforms::Targets::Classes => y,
        brainseg_transforms::Targets::Regions => {
            // Rebuild the label map from the one-hot classes, then encode regions.
            let label = y.map_axis(Axis(0), |v| {
                v.iter()
                    .enumerate()
                    .filter(|(_, &p)| p > 0.5)
                    .map(|(c, _)| c as u8 + 1)
                    .max()
                    .unwrap_or(0)
            });
            brainseg_transforms::encode_targets(config.patch.targets, label.view())
        }
    };
    config.standardization.apply(&mut image);
    if augment_on {
        augment_patch(&mut image, &mut target, &config.augmentation, rng);
    }
    Ok((image, target))
}

fn stack(items: Vec<(Array4<f32>, Array4<f32>)>) -> Batch {
    let views_x: Vec<_> = items.iter().map(|(x, _)| x.view()).collect();
    let views_y: Vec<_> = items.iter().map(|(_, y)| y.view()).collect();
    Batch {
        images: ndarray::stack(Axis(0), &views_x).expect("patches of one size"),
        targets: ndarray::stack(Axis(0), &views_y).expect("patches of one size"),
    }
}

impl PatchSource {
    /// Number of training batches an epoch can hold (seed patches: partial last batch dropped).
    pub fn batches_per_epoch(&self, batch_size: usize, steps: usize) -> usize {
        match self {
            PatchSource::Volumes { .. } => steps,
            PatchSource::SeedPatches { train, .. } => (train.len() / batch_size).min(steps),
        }
    }

    /// Start producing the batches of one epoch in a background thread; at most `queue_depth` wait.
    pub fn epoch_batches(
        self: &Arc<Self>,
        config: &SamplingConfig,
        seed: u64,
        epoch: u64,
        steps: usize,
        queue_depth: usize,
    ) -> Receiver<Result<Batch>> {
        let (sender, receiver) = sync_channel(queue_depth.max(1));
        let source = Arc::clone(self);
        let config = config.clone();
        let steps = source.batches_per_epoch(config.batch_size, steps);
        std::thread::spawn(move || {
            // Seed patches: shuffled each epoch, as the seed's VolumeDataGenerator.
            let order: Vec<usize> = match &*source {
                PatchSource::SeedPatches { train, .. } => {
                    let mut order: Vec<usize> = (0..train.len()).collect();
                    order.shuffle(&mut item_rng(
                        seed,
                        TRAIN_STREAM,
                        epoch,
                        u64::from(u32::MAX) >> 8,
                        0,
                    ));
                    order
                }
                PatchSource::Volumes { .. } => vec![],
            };
            for step in 0..steps {
                let items: Result<Vec<_>> = (0..config.batch_size)
                    .into_par_iter()
                    .map(|item| {
                        let mut rng = item_rng(seed, TRAIN_STREAM, epoch, step as u64, item as u64);
                        match &*source {
                            PatchSource::Volumes { train, .. } => {
                                let case = &train[rng.random_range(0..train.len())];
                                volume_item(case, &config, &mut rng, true)
                            }
                            PatchSource::SeedPatches { train, .. } => seed_item(
                                &train[order[step * config.batch_size + item]],
                                &config,
                                &mut rng,
                                true,
                            ),
                        }
                    })
                    .collect();
                if sender.send(items.map(stack)).is_err() {
                    return; // the trainer stopped listening
                }
            }
        });
        receiver
    }

    /// The fixed validation batches: `per_case` patches from each validation case (seed patches: all
    /// validation files), no augmentation, the same every epoch.
    pub fn validation_batches(
        &self,
        config: &SamplingConfig,
        seed: u64,
        per_case: usize,
    ) -> Result<Vec<Batch>> {
        let items: Vec<(Array4<f32>, Array4<f32>)> = match self {
            PatchSource::Volumes { valid, .. } => (0..valid.len() * per_case)
                .into_par_iter()
                .map(|i| {
                    let mut rng = item_rng(
                        seed,
                        VALID_STREAM,
                        0,
                        (i / per_case) as u64,
                        (i % per_case) as u64,
                    );
                    volume_item(&valid[i / per_case], config, &mut rng, false)
                })
                .collect::<Result<_>>()?,
            PatchSource::SeedPatches { valid, .. } => valid
                .par_iter()
                .map(|p| seed_item(p, config, &mut ChaCha8Rng::seed_from_u64(0), false))
                .collect::<Result<_>>()?,
        };
        let mut batches = vec![];
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let chunk: Vec<_> = items.by_ref().take(config.batch_size).collect();
            batches.push(stack(chunk));
        }
        Ok(batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainseg_transforms::AugmentationPreset;

    fn stored(augmentation: &str) -> SamplingConfig {
        let json = format!(
            r#"{{"patch": {}, "standardization": {}, {augmentation} "batch_size": 2}}"#,
            serde_json::to_string(&PatchConfig::default()).unwrap(),
            serde_json::to_string(&Standardization::ZScoreBrain).unwrap(),
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn quantised_cache_values_keep_integers_and_round_the_rest() {
        // Channel 0: raw integer intensities; 1: z-scores; 2: all zero.
        let mut image = Array4::<f32>::zeros((3, 2, 2, 1));
        image
            .slice_mut(s![0, .., .., 0])
            .assign(&ndarray::arr2(&[[0.0, 812.0], [-3.0, 32767.0]]));
        image
            .slice_mut(s![1, .., .., 0])
            .assign(&ndarray::arr2(&[[0.0, -1.25], [0.3, 5.0]]));
        let (values, scales) = quantise(image.view());
        assert_eq!(scales[0], 1.0);
        assert_eq!(&values[0..4], &[0, 812, -3, 32767]);
        // Largest magnitude 5.0 -> 32767; -1.25 -> -8191.75 -> -8192; 0.3 -> 1966.02 -> 1966.
        assert_eq!(scales[1], 5.0 / 32767.0);
        assert_eq!(&values[4..8], &[0, -8192, 1966, 32767]);
        assert_eq!((scales[2], &values[8..12]), (1.0, &[0i16, 0, 0, 0][..]));
        for (v, x) in values[4..8].iter().zip([0.0f32, -1.25, 0.3, 5.0]) {
            assert!((f32::from(*v) * scales[1] - x).abs() <= scales[1] / 2.0 + 1e-7);
        }
    }

    #[test]
    fn old_run_configs_keep_their_augmentation() {
        let legacy_on = serde_json::to_string(&AugmentConfig::default()).unwrap();
        let legacy_off = serde_json::to_string(&AugmentConfig::off()).unwrap();
        assert_eq!(
            stored(&format!(r#""augment": {legacy_on},"#)).augmentation,
            AugmentationConfig::preset(AugmentationPreset::Basic)
        );
        assert_eq!(
            stored(&format!(r#""augment": {legacy_off},"#)).augmentation,
            AugmentationConfig::preset(AugmentationPreset::Off)
        );
        assert_eq!(stored("").augmentation, AugmentationConfig::basic());
    }

    #[test]
    fn new_run_configs_round_trip() {
        let config = SamplingConfig {
            augmentation: AugmentationConfig::nnunet(),
            ..stored("")
        };
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("\"augmentation\"") && !json.contains("\"augment\""));
        let back: SamplingConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.augmentation, AugmentationConfig::nnunet());
        // A partial augmentation object keeps nnU-Net's values for what it leaves out.
        let partial = stored(r#""augmentation": {"noise": {"p": 0.5}},"#).augmentation;
        assert_eq!(partial.noise.p, 0.5);
        assert_eq!(partial.noise.std_range, [0.0, 0.1]);
        assert_eq!(partial.spatial, AugmentationConfig::nnunet().spatial);
    }
}
