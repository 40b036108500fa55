//! Synthetic head-like cases with tumours, so brainseg runs with no data at all (the demo, tests).
//!
//! A case is drawn from one seed: a head ellipsoid with a skull shell, a CSF layer, a brain (white
//! matter with a grey-matter rim) and two lateral ventricles, plus one or more lumpy tumours inside
//! the brain, each an edema cloud around a core whose enhancing rim encloses a necrotic centre. The
//! four modalities get plausible relative contrasts (FLAIR: bright edema, dark CSF; T1w: dark tumour;
//! T1Gd: bright enhancing rim, dark necrotic core; T2w: bright fluid and edema), a random scale per
//! modality, a smooth bias field and Gaussian noise, rounded to whole numbers like scanner int16 data.
//! Outside the head every channel is exactly 0, as in skull-stripped BraTS images.
//!
//! Shapes are drawn in millimetres, so anisotropic spacing does not distort the anatomy.
use crate::nifti_io::write_image;
use crate::MsdLayout;
use crate::{write_label, Case, Error, Geometry, LabelNumbering, Result};
use ndarray::{Array3, Array4};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// What synthetic cases look like.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SyntheticConfig {
    /// Volume shape in voxels (canonical X, Y, Z). BraTS is 240 x 240 x 155.
    pub shape: [usize; 3],
    /// Voxel spacing in mm.
    pub spacing: [f32; 3],
    /// Smallest and largest number of tumours per case.
    pub tumours: [usize; 2],
    /// Smallest and largest edema radius, as a fraction of the brain's shortest semi-axis.
    pub tumour_radius: [f32; 2],
    /// Gaussian noise standard deviation, relative to each modality's intensity scale.
    pub noise: f32,
}

impl Default for SyntheticConfig {
    /// 96 x 96 x 64 voxels covering the same field of view as BraTS (240 x 240 x 155 mm).
    fn default() -> Self {
        SyntheticConfig {
            shape: [96, 96, 64],
            spacing: [2.5, 2.5, 2.42],
            tumours: [1, 2],
            tumour_radius: [0.25, 0.45],
            noise: 0.04,
        }
    }
}

impl SyntheticConfig {
    /// Check user-given settings. [`generate_case`] copes with anything, but only valid settings give
    /// sensible cases.
    pub fn validate(&self) -> Result<()> {
        if self.shape.iter().any(|&n| !(16..=512).contains(&n)) {
            return Err(Error::msg(format!(
                "synthetic shape {:?}: each side must be 16 to 512 voxels",
                self.shape
            )));
        }
        if self.spacing.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
            return Err(Error::msg(format!(
                "synthetic spacing {:?} must be positive mm",
                self.spacing
            )));
        }
        let [fewest, most] = self.tumours;
        if fewest == 0 || fewest > most || most > 10 {
            return Err(Error::msg(format!(
                "tumour count range {:?} must satisfy 1 <= min <= max <= 10",
                self.tumours
            )));
        }
        let [small, large] = self.tumour_radius;
        if !(0.05..=0.6).contains(&small) || !(small..=0.6).contains(&large) {
            return Err(Error::msg(format!(
                "tumour radius range {:?} must satisfy 0.05 <= min <= max <= 0.6",
                self.tumour_radius
            )));
        }
        if !(0.0..=1.0).contains(&self.noise) {
            return Err(Error::msg(format!(
                "noise {} must be in [0, 1]",
                self.noise
            )));
        }
        Ok(())
    }
}

/// Generate one labelled case. The same config and seed always give the same case; `id` is only its name.
pub fn generate_case(config: &SyntheticConfig, seed: u64, id: &str) -> Case {
    let (image, label, _) = render(config, seed);
    Case {
        id: id.to_string(),
        image,
        label: Some(label),
        geometry: Geometry::synthetic(config.shape, config.spacing),
        sources: Vec::new(),
    }
}

/// Write `n_cases` synthetic cases as an MSD dataset: `dataset.json`, `imagesTr/<id>.nii.gz` (4-D
/// int16) and `labelsTr/<id>.nii.gz` (uint8). Ids are `synthetic_001`, ...; case k uses the k-th seed
/// drawn from `seed`, so a larger dataset starts with the same cases. `dataset.json` is written last,
/// so an interrupted run never looks like a complete dataset. Returns the ids.
pub fn write_dataset(
    out: &Path,
    n_cases: usize,
    config: &SyntheticConfig,
    seed: u64,
) -> Result<Vec<String>> {
    write_named_dataset(out, "synthetic", n_cases, config, seed)
}

/// [`write_dataset`] with case ids `<prefix>_001`, ... (the demo names its held-out case apart
/// from the training cases).
pub fn write_named_dataset(
    out: &Path,
    prefix: &str,
    n_cases: usize,
    config: &SyntheticConfig,
    seed: u64,
) -> Result<Vec<String>> {
    config.validate()?;
    if n_cases == 0 {
        return Err(Error::at(
            out,
            "a synthetic dataset needs at least one case",
        ));
    }
    let layout = MsdLayout::new(out);
    layout.create_folders()?;
    let mut seeds = ChaCha8Rng::seed_from_u64(seed);
    let mut ids = Vec::with_capacity(n_cases);
    for index in 1..=n_cases {
        let id = format!("{prefix}_{index:03}");
        let case = generate_case(config, seeds.random(), &id);
        write_image(
            &layout.training_image(&id),
            &case.image,
            &case.geometry,
            "int16",
        )?;
        write_label(
            &layout.training_label(&id),
            case.label.as_ref().expect("generated cases are labelled"),
            &case.geometry,
            Some(LabelNumbering::Msd),
        )?;
        ids.push(id);
    }
    layout.write_dataset_json(
        "BrainTumourSynthetic",
        &format!("Synthetic head-like cases from brainseg (seed {seed})"),
        &ids,
        &[],
    )?;
    Ok(ids)
}

/// Normal anatomy; tumour labels are painted over white and grey matter only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tissue {
    Outside,
    Skull,
    Csf,
    Ventricle,
    GreyMatter,
    WhiteMatter,
}

/// Relative intensities (FLAIR, T1w, T1Gd, T2w) of each tissue and label, before the random scales.
fn base_intensity(tissue: Tissue, label: u8) -> [f32; 4] {
    match (label, tissue) {
        (1, _) => [0.95, 0.55, 0.55, 0.85], // edema: bright FLAIR and T2
        (2, _) => [0.55, 0.35, 0.35, 0.80], // necrotic / non-enhancing core: dark T1 and T1Gd
        (3, _) => [0.75, 0.55, 1.30, 0.65], // enhancing rim: bright T1Gd
        (_, Tissue::WhiteMatter) => [0.50, 0.80, 0.80, 0.35],
        (_, Tissue::GreyMatter) => [0.60, 0.62, 0.62, 0.50],
        (_, Tissue::Csf | Tissue::Ventricle) => [0.12, 0.25, 0.25, 1.00], // fluid: dark FLAIR, bright T2
        (_, Tissue::Skull) => [0.35, 0.70, 0.70, 0.40],
        (_, Tissue::Outside) => [0.0; 4],
    }
}

/// An axis-aligned ellipsoid in mm around the volume's centre.
#[derive(Debug, Clone, Copy)]
struct Ellipsoid {
    centre: [f32; 3],
    semi_axes: [f32; 3],
}

impl Ellipsoid {
    /// < 1 inside, 1 on the surface.
    fn norm(&self, p: [f32; 3]) -> f32 {
        (0..3)
            .map(|a| ((p[a] - self.centre[a]) / self.semi_axes[a]).powi(2))
            .sum::<f32>()
            .sqrt()
    }
}

/// A lumpy ball: radius `radius * (1 + sum_j a_j max(0, dir . v_j)^3)` in direction `dir`.
#[derive(Debug, Clone)]
struct Blob {
    radius: f32,
    lumps: Vec<([f32; 3], f32)>,
}

impl Blob {
    fn random(rng: &mut ChaCha8Rng, radius: f32) -> Blob {
        let lumps = (0..5)
            .map(|_| (random_direction(rng), rng.random_range(-0.25..0.5)))
            .collect();
        Blob { radius, lumps }
    }

    /// Largest possible radius, for a quick bounding-sphere rejection.
    fn reach(&self) -> f32 {
        self.radius * (1.0 + self.lumps.iter().map(|&(_, a)| a.max(0.0)).sum::<f32>())
    }

    /// Distance from the centre in units of the blob's radius along that direction (< 1 inside).
    fn scaled_distance(&self, offset: [f32; 3], length: f32) -> f32 {
        if length == 0.0 {
            return 0.0;
        }
        let bumps: f32 = self
            .lumps
            .iter()
            .map(|&(v, a)| {
                a * ((offset[0] * v[0] + offset[1] * v[1] + offset[2] * v[2]) / length)
                    .max(0.0)
                    .powi(3)
            })
            .sum();
        length / (self.radius * (1.0 + bumps).max(0.5))
    }
}

/// One tumour: edema blob around a core blob; the inner `necrotic_fraction` of the core is necrotic.
#[derive(Debug, Clone)]
struct Tumour {
    centre: [f32; 3],
    edema: Blob,
    core: Blob,
    necrotic_fraction: f32,
}

impl Tumour {
    /// MSD label of the point (0 outside).
    fn label(&self, p: [f32; 3]) -> u8 {
        let offset = [
            p[0] - self.centre[0],
            p[1] - self.centre[1],
            p[2] - self.centre[2],
        ];
        let length = offset.iter().map(|v| v * v).sum::<f32>().sqrt();
        if length > self.edema.reach().max(self.core.reach()) {
            return 0;
        }
        let core = self.core.scaled_distance(offset, length);
        if core < self.necrotic_fraction {
            2
        } else if core < 1.0 {
            3
        } else if self.edema.scaled_distance(offset, length) < 1.0 {
            1
        } else {
            0
        }
    }
}

/// Everything random about a case except the noise.
struct Anatomy {
    head: Ellipsoid,
    inner_skull: Ellipsoid,
    brain: Ellipsoid,
    ventricles: [Ellipsoid; 2],
    tumours: Vec<Tumour>,
    /// Per-modality intensity scale.
    scale: [f32; 4],
    /// Per tissue-or-label (index as in `contrast_index`), per modality jitter of the base intensity.
    jitter: [[f32; 4]; 9],
    /// Linear bias-field gradient per axis, over the head's semi-axes.
    bias: [f32; 3],
}

impl Anatomy {
    fn random(config: &SyntheticConfig, rng: &mut ChaCha8Rng) -> Anatomy {
        let half: [f32; 3] =
            std::array::from_fn(|a| config.shape[a] as f32 * config.spacing[a] / 2.0);
        let head = Ellipsoid {
            centre: [0.0; 3],
            semi_axes: half.map(|h| h * rng.random_range(0.86..0.94)),
        };
        // Skull 6 mm and CSF 3 mm thick, less in tiny volumes.
        let shrink = |e: &Ellipsoid, mm: f32| Ellipsoid {
            semi_axes: e.semi_axes.map(|s| s - mm.min(0.1 * s)),
            ..*e
        };
        let inner_skull = shrink(&head, 6.0);
        let brain = shrink(&inner_skull, 3.0);
        let b = brain.semi_axes;
        // Lateral ventricles left and right of the midline (never touching it), slightly up.
        let ventricle = |side: f32, rng: &mut ChaCha8Rng| {
            let mut jitter = || rng.random_range(0.9..1.1);
            Ellipsoid {
                centre: [side * 0.13 * b[0] * jitter(), 0.05 * b[1], 0.1 * b[2]],
                semi_axes: [
                    0.09 * b[0] * jitter(),
                    0.3 * b[1] * jitter(),
                    0.2 * b[2] * jitter(),
                ],
            }
        };
        let ventricles = [ventricle(-1.0, rng), ventricle(1.0, rng)];
        let [fewest, most] = config.tumours;
        let count = rng.random_range(fewest.min(most)..=most.max(fewest));
        let [small, large] = config.tumour_radius;
        let (small, large) = (small.min(large).max(0.01), large.max(small).max(0.01));
        let shortest = b.iter().copied().fold(f32::INFINITY, f32::min);
        let tumours = (0..count)
            .map(|_| {
                let radius = shortest
                    * if small < large {
                        rng.random_range(small..large)
                    } else {
                        small
                    };
                let centre = loop {
                    // Uniform in the inner 70% of the brain, so most of the tumour is brain.
                    let p: [f32; 3] = std::array::from_fn(|a| rng.random_range(-0.7..0.7) * b[a]);
                    if brain.norm(p) < 0.7 {
                        break p;
                    }
                };
                let edema = Blob::random(rng, radius);
                let core_radius = radius * rng.random_range(0.45..0.7);
                let core = Blob::random(rng, core_radius);
                Tumour {
                    centre,
                    edema,
                    core,
                    necrotic_fraction: rng.random_range(0.4..0.7),
                }
            })
            .collect();
        let scale = std::array::from_fn(|_| rng.random_range(400.0..1200.0));
        let jitter = std::array::from_fn(|_| std::array::from_fn(|_| rng.random_range(0.92..1.08)));
        let bias = std::array::from_fn(|_| rng.random_range(-0.05..0.05));
        Anatomy {
            head,
            inner_skull,
            brain,
            ventricles,
            tumours,
            scale,
            jitter,
            bias,
        }
    }

    fn tissue(&self, p: [f32; 3]) -> Tissue {
        if self.head.norm(p) > 1.0 {
            Tissue::Outside
        } else if self.inner_skull.norm(p) > 1.0 {
            Tissue::Skull
        } else if self.ventricles.iter().any(|v| v.norm(p) <= 1.0) {
            Tissue::Ventricle
        } else {
            match self.brain.norm(p) {
                d if d > 1.0 => Tissue::Csf,
                d if d > 0.85 => Tissue::GreyMatter,
                _ => Tissue::WhiteMatter,
            }
        }
    }

    /// Highest tumour label at the point (only where there is brain parenchyma).
    fn label(&self, p: [f32; 3], tissue: Tissue) -> u8 {
        if !matches!(tissue, Tissue::GreyMatter | Tissue::WhiteMatter) {
            return 0;
        }
        self.tumours.iter().map(|t| t.label(p)).max().unwrap_or(0)
    }

    /// Noise-free intensities at a point.
    fn intensity(&self, p: [f32; 3], tissue: Tissue, label: u8) -> [f32; 4] {
        let base = base_intensity(tissue, label);
        let jitter = self.jitter[contrast_index(tissue, label)];
        let field = 1.0
            + (0..3)
                .map(|a| self.bias[a] * p[a] / self.head.semi_axes[a])
                .sum::<f32>();
        std::array::from_fn(|m| base[m] * jitter[m] * self.scale[m] * field)
    }
}

/// Index into `Anatomy::jitter`: labels 1..=3 first, then the tissues.
fn contrast_index(tissue: Tissue, label: u8) -> usize {
    match (label, tissue) {
        (1..=3, _) => label as usize - 1,
        (_, tissue) => 3 + tissue as usize,
    }
}

/// Image, label map and tissue map of a case.
fn render(config: &SyntheticConfig, seed: u64) -> (Array4<f32>, Array3<u8>, Array3<Tissue>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let anatomy = Anatomy::random(config, &mut rng);
    let [nx, ny, nz] = config.shape;
    let position = |index: [usize; 3]| -> [f32; 3] {
        std::array::from_fn(|a| {
            (index[a] as f32 + 0.5 - config.shape[a] as f32 / 2.0) * config.spacing[a]
        })
    };
    let tissues = Array3::from_shape_fn((nx, ny, nz), |(i, j, k)| {
        anatomy.tissue(position([i, j, k]))
    });
    let labels = Array3::from_shape_fn((nx, ny, nz), |(i, j, k)| {
        anatomy.label(position([i, j, k]), tissues[[i, j, k]])
    });
    let mut image = Array4::<f32>::zeros((4, nx, ny, nz));
    // Noise is drawn in a fixed order (voxels in row-major order, 4 channels each) for reproducibility.
    for ((i, j, k), &tissue) in tissues.indexed_iter() {
        if tissue == Tissue::Outside {
            continue;
        }
        let clean = anatomy.intensity(position([i, j, k]), tissue, labels[[i, j, k]]);
        let (n0, n1) = normal_pair(&mut rng);
        let (n2, n3) = normal_pair(&mut rng);
        for (m, noise) in [n0, n1, n2, n3].into_iter().enumerate() {
            // Whole numbers, at least 1 inside the head, so the non-zero mask is the head.
            let value = clean[m] + config.noise * anatomy.scale[m] * noise;
            image[[m, i, j, k]] = value.round().max(1.0);
        }
    }
    (image, labels, tissues)
}

/// Two independent standard normal draws (Box-Muller).
fn normal_pair(rng: &mut ChaCha8Rng) -> (f32, f32) {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: the log is finite
    let u2: f64 = rng.random();
    let r = (-2.0 * u1.ln()).sqrt();
    let angle = std::f64::consts::TAU * u2;
    ((r * angle.cos()) as f32, (r * angle.sin()) as f32)
}

/// Uniform on the unit sphere.
fn random_direction(rng: &mut ChaCha8Rng) -> [f32; 3] {
    loop {
        let v: [f32; 3] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
        let length = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if (0.1..=1.0).contains(&length) {
            return v.map(|x| x / length);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Axis;

    const FLAIR: usize = 0;
    const T1GD: usize = 2;
    const T2: usize = 3;

    fn mean_where(image: &Array4<f32>, channel: usize, mask: &Array3<bool>) -> f64 {
        let values: Vec<f64> = image
            .index_axis(Axis(0), channel)
            .iter()
            .zip(mask)
            .filter(|(_, &m)| m)
            .map(|(&v, _)| v as f64)
            .collect();
        assert!(!values.is_empty(), "empty mask");
        values.iter().sum::<f64>() / values.len() as f64
    }

    #[test]
    fn labels_agree_with_the_contrasts() {
        for seed in 0..3 {
            let (image, labels, tissues) = render(&SyntheticConfig::default(), seed);
            let with_label = |l: u8| labels.mapv(|v| v == l);
            let normal_brain = ndarray::Zip::from(&labels)
                .and(&tissues)
                .map_collect(|&l, &t| {
                    l == 0 && matches!(t, Tissue::WhiteMatter | Tissue::GreyMatter)
                });
            let ventricles = tissues.mapv(|t| t == Tissue::Ventricle);
            let t1gd_enhancing = mean_where(&image, T1GD, &with_label(3));
            assert!(
                t1gd_enhancing > mean_where(&image, T1GD, &with_label(2)),
                "seed {seed}"
            );
            assert!(
                t1gd_enhancing > mean_where(&image, T1GD, &normal_brain),
                "seed {seed}"
            );
            assert!(
                mean_where(&image, FLAIR, &with_label(1))
                    > mean_where(&image, FLAIR, &normal_brain),
                "seed {seed}"
            );
            assert!(
                mean_where(&image, T2, &ventricles) > mean_where(&image, T2, &normal_brain),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn tumours_lie_inside_the_brain() {
        for seed in 0..3 {
            let config = SyntheticConfig {
                tumours: [2, 3],
                ..SyntheticConfig::default()
            };
            let (image, labels, tissues) = render(&config, seed);
            for l in 1..=3 {
                assert!(
                    labels.iter().any(|&v| v == l),
                    "seed {seed}: label {l} present"
                );
            }
            let (nx, ny, nz) = labels.dim();
            for ((i, j, k), &l) in labels.indexed_iter() {
                if l == 0 {
                    continue;
                }
                assert!(matches!(
                    tissues[[i, j, k]],
                    Tissue::WhiteMatter | Tissue::GreyMatter
                ));
                // Independently of the tissue map: at least 2 voxels (5 mm) of head around every tumour voxel.
                for (di, dj, dk) in [(2, 0, 0), (0, 2, 0), (0, 0, 2)] {
                    for (a, b, c) in [
                        (i + di, j + dj, k + dk),
                        (i.wrapping_sub(di), j.wrapping_sub(dj), k.wrapping_sub(dk)),
                    ] {
                        assert!(a < nx && b < ny && c < nz, "tumour at the volume's edge");
                        assert!(image[[0, a, b, c]] > 0.0, "tumour next to the background");
                    }
                }
            }
        }
    }

    #[test]
    fn background_is_zero_and_the_head_is_not() {
        let (image, _, tissues) = render(&SyntheticConfig::default(), 5);
        for channel in image.axis_iter(Axis(0)) {
            for (&v, &t) in channel.iter().zip(&tissues) {
                assert_eq!(v == 0.0, t == Tissue::Outside);
                assert_eq!(v, v.round());
            }
        }
        assert_eq!(tissues[[0, 0, 0]], Tissue::Outside);
        assert_eq!(
            tissues[[48, 48, 20]],
            Tissue::WhiteMatter,
            "centre, below the ventricles"
        );
    }

    #[test]
    fn same_seed_same_case_other_seed_other_case() {
        let config = SyntheticConfig {
            shape: [40, 40, 32],
            ..SyntheticConfig::default()
        };
        let a = generate_case(&config, 42, "a");
        let b = generate_case(&config, 42, "b");
        let c = generate_case(&config, 43, "c");
        assert_eq!(a.image, b.image);
        assert_eq!(a.label, b.label);
        assert_ne!(a.image, c.image);
        assert_ne!(a.label, c.label);
        assert_eq!(a.image.dim(), (4, 40, 40, 32));
        assert_eq!(a.geometry.canonical_shape(), [40, 40, 32]);
        assert_eq!(a.geometry.spacing(), config.spacing);
        assert_eq!(b.id, "b");
    }

    #[test]
    fn invalid_settings_are_errors() {
        let bad = [
            SyntheticConfig {
                shape: [8, 96, 64],
                ..SyntheticConfig::default()
            },
            SyntheticConfig {
                spacing: [1.0, 0.0, 1.0],
                ..SyntheticConfig::default()
            },
            SyntheticConfig {
                tumours: [3, 2],
                ..SyntheticConfig::default()
            },
            SyntheticConfig {
                tumour_radius: [0.4, 0.2],
                ..SyntheticConfig::default()
            },
            SyntheticConfig {
                noise: -0.1,
                ..SyntheticConfig::default()
            },
        ];
        assert!(SyntheticConfig::default().validate().is_ok());
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }

    /// Needs nifti_io's writers and Dataset::open (implemented in this crate by another engineer).
    #[test]
    fn written_dataset_reads_back_as_msd() {
        let folder = tempfile::tempdir().unwrap();
        let config = SyntheticConfig {
            shape: [32, 32, 24],
            ..SyntheticConfig::default()
        };
        let ids = write_dataset(folder.path(), 2, &config, 7).unwrap();
        assert_eq!(ids, vec!["synthetic_001", "synthetic_002"]);
        let dataset = crate::Dataset::open(folder.path()).unwrap();
        assert_eq!(dataset.layout, crate::Layout::Msd);
        let listed: Vec<&str> = dataset.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(listed, ids);
        let loaded = dataset.case("synthetic_002").unwrap().load().unwrap();
        let mut seeds = ChaCha8Rng::seed_from_u64(7);
        let _first: u64 = seeds.random();
        let expected = generate_case(&config, seeds.random(), "synthetic_002");
        assert_eq!(loaded.image, expected.image);
        assert_eq!(loaded.label, expected.label);
        assert_eq!(loaded.geometry.spacing(), config.spacing);
        assert!(write_dataset(folder.path(), 0, &config, 7).is_err());
    }
}
