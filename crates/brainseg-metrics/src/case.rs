//! Whole-case metrics from two label maps in MSD numbering: per-class Dice, sensitivity and specificity, and per
//! BraTS region Dice and HD95 with nnU-Net's BraTS convention for empty regions. HD95 follows a
//! [`HausdorffConvention`], BraTS/MONAI's directed maximum unless chosen otherwise, and each case records which.
use ndarray::{ArrayView3, Zip};
use serde::{Deserialize, Serialize};

use crate::distance::{hd95_with, HausdorffConvention};
use crate::patch::Counts;
use crate::{Error, Result};

/// HD95 (mm) when exactly one of prediction and ground truth is empty: nnU-Net's BraTS value, the diagonal of
/// the 240 x 240 x 155 mm BraTS volume.
pub const HD95_ONE_EMPTY_MM: f64 = 373.12866;

pub use brainseg_core::Region;

/// Metrics of one tumour class; `None` where undefined: Dice when the class is absent from both label maps,
/// sensitivity when it is absent from the ground truth, specificity when the ground truth is that class everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub dice: Option<f64>,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
}

/// Metrics of one BraTS region. Both prediction and ground truth empty: Dice 1, HD95 0; exactly one empty: Dice 0,
/// HD95 [`HD95_ONE_EMPTY_MM`]; the same under either [`HausdorffConvention`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegionMetrics {
    pub dice: f64,
    /// 95th percentile surface distance in millimetres, in the case's [`CaseMetrics::hd95_convention`].
    pub hd95: f64,
}

/// Everything scored on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseMetrics {
    pub edema: ClassMetrics,
    pub non_enhancing: ClassMetrics,
    pub enhancing: ClassMetrics,
    pub whole_tumour: RegionMetrics,
    pub tumour_core: RegionMetrics,
    pub enhancing_tumour: RegionMetrics,
    /// How the three regions' HD95 were computed. Serialised as `"hd95_convention": "directed_max"` or
    /// `"pooled"`; JSON written before this field existed reads back as [`HausdorffConvention::Pooled`], which
    /// is what was computed then.
    #[serde(default = "hd95_convention_before_it_was_recorded")]
    pub hd95_convention: HausdorffConvention,
}

/// The convention of metrics saved before the convention was recorded: they pooled both directed sets.
pub(crate) fn hd95_convention_before_it_was_recorded() -> HausdorffConvention {
    HausdorffConvention::Pooled
}

impl CaseMetrics {
    /// Scores `prediction` against `truth`, both `(X, Y, Z)` MSD label maps (0..=3) of one shape, with voxel
    /// sizes `spacing` in millimetres; HD95 in the default convention, [`HausdorffConvention::DirectedMax`]
    /// (BraTS, MONAI).
    pub fn compute(
        prediction: ArrayView3<u8>,
        truth: ArrayView3<u8>,
        spacing: [f32; 3],
    ) -> Result<Self> {
        Self::compute_with(prediction, truth, spacing, HausdorffConvention::default())
    }

    /// [`CaseMetrics::compute`] with HD95 in the given convention.
    pub fn compute_with(
        prediction: ArrayView3<u8>,
        truth: ArrayView3<u8>,
        spacing: [f32; 3],
        hd95_convention: HausdorffConvention,
    ) -> Result<Self> {
        Error::check_shapes(prediction.shape(), truth.shape())?;
        check_labels("prediction", prediction)?;
        check_labels("ground truth", truth)?;
        if !spacing.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(Error::new(format!(
                "voxel spacing {spacing:?} must be positive millimetres"
            )));
        }
        let confusion = Confusion::of(prediction, truth);
        let [edema, non_enhancing, enhancing] = [1u8, 2, 3].map(|class| {
            let counts = confusion.counts(|label| label == class);
            let sens_spec = counts.sens_spec();
            ClassMetrics {
                dice: counts.dice(),
                sensitivity: sens_spec.sensitivity,
                specificity: sens_spec.specificity,
            }
        });
        let [whole_tumour, tumour_core, enhancing_tumour] = Region::ALL.map(|region| {
            let counts = confusion.counts(|label| region.contains(label));
            RegionMetrics::compute(prediction, truth, region, counts, spacing, hd95_convention)
        });
        Ok(CaseMetrics {
            edema,
            non_enhancing,
            enhancing,
            whole_tumour,
            tumour_core,
            enhancing_tumour,
            hd95_convention,
        })
    }

    /// Edema, non-enhancing and enhancing, in MSD label order.
    pub fn classes(&self) -> [&ClassMetrics; 3] {
        [&self.edema, &self.non_enhancing, &self.enhancing]
    }

    /// WT, TC and ET, in [`Region::ALL`] order.
    pub fn regions(&self) -> [&RegionMetrics; 3] {
        [
            &self.whole_tumour,
            &self.tumour_core,
            &self.enhancing_tumour,
        ]
    }
}

impl RegionMetrics {
    /// Dice from the region's voxel counts, HD95 from its masks when both are non-empty.
    fn compute(
        prediction: ArrayView3<u8>,
        truth: ArrayView3<u8>,
        region: Region,
        counts: Counts,
        spacing: [f32; 3],
        convention: HausdorffConvention,
    ) -> Self {
        let Some(dice) = counts.dice() else {
            return RegionMetrics {
                dice: 1.0,
                hd95: 0.0,
            };
        };
        let predicted = prediction.mapv(|label| region.contains(label));
        let actual = truth.mapv(|label| region.contains(label));
        RegionMetrics {
            dice,
            hd95: hd95_with(predicted.view(), actual.view(), spacing, convention)
                .unwrap_or(HD95_ONE_EMPTY_MM),
        }
    }
}

/// How many voxels have each (predicted, true) label pair: every count-based metric in one pass over the case.
struct Confusion([[u64; 4]; 4]);

impl Confusion {
    /// Labels must be checked to be 0..=3 first.
    fn of(prediction: ArrayView3<u8>, truth: ArrayView3<u8>) -> Self {
        Confusion(
            Zip::from(&prediction)
                .and(&truth)
                .fold([[0u64; 4]; 4], |mut pairs, &p, &t| {
                    pairs[p as usize][t as usize] += 1;
                    pairs
                }),
        )
    }

    /// Confusion counts of the question "is the label in this set?".
    fn counts(&self, member: impl Fn(u8) -> bool) -> Counts {
        let mut counts = Counts::default();
        for (predicted, row) in (0u8..4).zip(&self.0) {
            for (actual, &voxels) in (0u8..4).zip(row) {
                counts.add_many(member(predicted), member(actual), voxels);
            }
        }
        counts
    }
}

fn check_labels(which: &str, labels: ArrayView3<u8>) -> Result<()> {
    match labels.iter().copied().find(|&label| label > 3) {
        None => Ok(()),
        Some(label) => Err(Error::new(format!(
            "{which} has label {label}; expected MSD labels 0..=3 (BraTS labels 1, 2, 4 map to MSD 2, 1, 3)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array3};

    /// Truth: edema on the 2x2x2 corner cube, enhancing at (3,3,3), no non-enhancing.
    /// Prediction: edema on the lower half of that cube (z = 0), non-enhancing at (3,3,3).
    fn fixture() -> (Array3<u8>, Array3<u8>) {
        let mut truth = Array3::<u8>::zeros((4, 4, 4));
        truth.slice_mut(s![0..2, 0..2, 0..2]).fill(1);
        truth[(3, 3, 3)] = 3;
        let mut prediction = Array3::<u8>::zeros((4, 4, 4));
        prediction.slice_mut(s![0..2, 0..2, 0..1]).fill(1);
        prediction[(3, 3, 3)] = 2;
        (prediction, truth)
    }

    #[test]
    fn classes_are_scored_by_hand_counts() {
        let (prediction, truth) = fixture();
        let metrics =
            CaseMetrics::compute(prediction.view(), truth.view(), [1.0, 1.0, 2.0]).unwrap();
        // Edema: TP 4, FN 4, FP 0, TN 56.
        assert_eq!(
            metrics.edema,
            ClassMetrics {
                dice: Some(8.0 / 12.0),
                sensitivity: Some(0.5),
                specificity: Some(1.0)
            }
        );
        // Non-enhancing: absent from the truth, one false positive.
        assert_eq!(
            metrics.non_enhancing,
            ClassMetrics {
                dice: Some(0.0),
                sensitivity: None,
                specificity: Some(63.0 / 64.0)
            }
        );
        // Enhancing: one voxel missed.
        assert_eq!(
            metrics.enhancing,
            ClassMetrics {
                dice: Some(0.0),
                sensitivity: Some(0.0),
                specificity: Some(1.0)
            }
        );
    }

    #[test]
    fn regions_follow_the_brats_conventions() {
        let (prediction, truth) = fixture();
        let metrics =
            CaseMetrics::compute(prediction.view(), truth.view(), [1.0, 1.0, 2.0]).unwrap();
        // WT: 5 predicted voxels all inside the 9 true ones. Every voxel is on a surface; the only non-zero
        // distances are the 4 true voxels at z = 1, 2 mm above the prediction. Directed (the default): prediction
        // -> truth is five 0s; truth -> prediction is five 0s then four 2s, rank 0.95 * 8 = 7.6 among the twos: 2.
        // (Pooled, 10 zeros then 4 twos, rank 12.35, would give 2 as well.)
        assert_eq!(metrics.whole_tumour.dice, 10.0 / 14.0);
        assert!(
            (metrics.whole_tumour.hd95 - 2.0).abs() < 1e-12,
            "{}",
            metrics.whole_tumour.hd95
        );
        // TC: label 2 predicted where label 3 is true: the same single voxel.
        assert_eq!(
            metrics.tumour_core,
            RegionMetrics {
                dice: 1.0,
                hd95: 0.0
            }
        );
        // ET: true but not predicted.
        assert_eq!(
            metrics.enhancing_tumour,
            RegionMetrics {
                dice: 0.0,
                hd95: HD95_ONE_EMPTY_MM
            }
        );
    }

    #[test]
    fn empty_label_maps_score_as_perfect_regions_and_undefined_classes() {
        let empty = Array3::<u8>::zeros((4, 4, 4));
        let metrics = CaseMetrics::compute(empty.view(), empty.view(), [1.0; 3]).unwrap();
        for region in metrics.regions() {
            assert_eq!(
                *region,
                RegionMetrics {
                    dice: 1.0,
                    hd95: 0.0
                }
            );
        }
        for class in metrics.classes() {
            assert_eq!(
                *class,
                ClassMetrics {
                    dice: None,
                    sensitivity: None,
                    specificity: Some(1.0)
                }
            );
        }
        let json = serde_json::to_string(&metrics).unwrap();
        assert!(
            json.contains(r#""edema":{"dice":null,"sensitivity":null,"specificity":1.0}"#),
            "{json}"
        );
        assert!(
            json.ends_with(r#""hd95_convention":"directed_max"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<CaseMetrics>(&json).unwrap(), metrics);
        // Empty regions score the same in the pooled convention.
        let pooled = CaseMetrics::compute_with(
            empty.view(),
            empty.view(),
            [1.0; 3],
            HausdorffConvention::Pooled,
        )
        .unwrap();
        assert_eq!(pooled.regions(), metrics.regions());
        assert_eq!(pooled.hd95_convention, HausdorffConvention::Pooled);
    }

    #[test]
    fn hd95_follows_the_chosen_convention_and_defaults_to_directed_max() {
        // WT truth: label 1 on x = 0..10 of a 20 x 1 x 1 map; the prediction adds label 1 at x = 19. TC and ET are
        // empty in both. Every voxel is surface (y, z of length 1); 1 mm voxels.
        let mut truth = Array3::<u8>::zeros((20, 1, 1));
        truth.slice_mut(s![0..10, .., ..]).fill(1);
        let mut prediction = truth.clone();
        prediction[(19, 0, 0)] = 1;
        // prediction -> truth: ten 0s and 19 - 9 = 10; truth -> prediction: ten 0s.
        // Directed max: the prediction's 11 distances at rank 0.95 * 10 = 9.5, halfway from 0 to 10: 5.
        // Pooled: twenty 0s and one 10 at rank 0.95 * 20 = 19: 0.
        let default = CaseMetrics::compute(prediction.view(), truth.view(), [1.0; 3]).unwrap();
        let directed = CaseMetrics::compute_with(
            prediction.view(),
            truth.view(),
            [1.0; 3],
            HausdorffConvention::DirectedMax,
        )
        .unwrap();
        let pooled = CaseMetrics::compute_with(
            prediction.view(),
            truth.view(),
            [1.0; 3],
            HausdorffConvention::Pooled,
        )
        .unwrap();
        assert_eq!(default, directed);
        assert_eq!(directed.hd95_convention, HausdorffConvention::DirectedMax);
        // Dice 2 * 10 / (11 + 10) either way.
        assert_eq!(
            directed.whole_tumour,
            RegionMetrics {
                dice: 20.0 / 21.0,
                hd95: 5.0
            }
        );
        assert_eq!(
            pooled.whole_tumour,
            RegionMetrics {
                dice: 20.0 / 21.0,
                hd95: 0.0
            }
        );
        assert_eq!(pooled.hd95_convention, HausdorffConvention::Pooled);
        assert_eq!(directed.tumour_core, pooled.tumour_core);
    }

    #[test]
    fn json_saved_before_the_convention_was_recorded_reads_as_pooled() {
        let (prediction, truth) = fixture();
        let metrics = CaseMetrics::compute_with(
            prediction.view(),
            truth.view(),
            [1.0; 3],
            HausdorffConvention::Pooled,
        )
        .unwrap();
        let json = serde_json::to_string(&metrics).unwrap();
        let old = json.replace(r#","hd95_convention":"pooled""#, "");
        assert_ne!(old, json);
        assert_eq!(serde_json::from_str::<CaseMetrics>(&old).unwrap(), metrics);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (prediction, mut truth) = fixture();
        let other_shape = Array3::<u8>::zeros((4, 4, 5));
        assert!(CaseMetrics::compute(prediction.view(), other_shape.view(), [1.0; 3]).is_err());
        assert!(CaseMetrics::compute(prediction.view(), truth.view(), [1.0, 0.0, 1.0]).is_err());
        truth[(0, 0, 0)] = 4;
        let error = CaseMetrics::compute(prediction.view(), truth.view(), [1.0; 3]).unwrap_err();
        assert!(
            error.problem.starts_with("ground truth has label 4"),
            "{error}"
        );
    }
}
