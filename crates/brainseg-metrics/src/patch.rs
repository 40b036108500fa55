//! Patch-level metrics on `(C, X, Y, Z)` probability or one-hot arrays (background class dropped), with the
//! seed notebook's formulas. Sums run over the spatial axes of one class and accumulate in `f64`.
use ndarray::{ArrayView4, Axis, Zip};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The smoothing term the seed uses in training and evaluation (its unit tests use 1).
pub const DEFAULT_EPS: f64 = 1e-5;
/// A predicted probability above this counts as the class being present.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// Sensitivity and specificity of one class; `None` where the denominator is zero (class absent from the
/// ground truth, or present everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SensSpec {
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
}

/// `(2 * sum(p*q) + eps) / (sum(p) + sum(q) + eps)` for each class; `None` only when that denominator is 0.
pub fn dice_per_class(
    prediction: ArrayView4<f32>,
    truth: ArrayView4<f32>,
    eps: f64,
) -> Result<Vec<Option<f64>>> {
    per_class_ratio(prediction, truth, eps, |p| p)
}

/// The mean of [`dice_per_class`] over the classes where it is defined (`None` when it is nowhere).
pub fn mean_dice(
    prediction: ArrayView4<f32>,
    truth: ArrayView4<f32>,
    eps: f64,
) -> Result<Option<f64>> {
    Ok(mean_defined(&dice_per_class(prediction, truth, eps)?))
}

/// `1 - mean_c (2 * sum(p*q) + eps) / (sum(p^2) + sum(q^2) + eps)`; `None` when no class has a non-zero
/// denominator. For 0/1 arrays it equals `1 - mean_dice`.
pub fn soft_dice_loss(
    prediction: ArrayView4<f32>,
    truth: ArrayView4<f32>,
    eps: f64,
) -> Result<Option<f64>> {
    let ratios = per_class_ratio(prediction, truth, eps, |p| p * p)?;
    Ok(mean_defined(&ratios).map(|mean| 1.0 - mean))
}

/// Sensitivity TP/(TP+FN) and specificity TN/(TN+FP) per class. A voxel is predicted positive when its
/// probability is above `threshold`, and truly positive when its ground truth is above 0.5 (one-hot).
pub fn sensitivity_specificity(
    prediction: ArrayView4<f32>,
    truth: ArrayView4<f32>,
    threshold: f32,
) -> Result<Vec<SensSpec>> {
    Error::check_shapes(prediction.shape(), truth.shape())?;
    let per_class = prediction.axis_iter(Axis(0)).zip(truth.axis_iter(Axis(0)));
    Ok(per_class
        .map(|(p, q)| {
            let counts = Zip::from(&p)
                .and(&q)
                .fold(Counts::default(), |mut counts, &p, &q| {
                    counts.add(p > threshold, q > 0.5);
                    counts
                });
            counts.sens_spec()
        })
        .collect())
}

/// Confusion counts of one binary question over many voxels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub true_positive: u64,
    pub false_positive: u64,
    pub false_negative: u64,
    pub true_negative: u64,
}

impl Counts {
    pub fn add(&mut self, predicted: bool, actual: bool) {
        self.add_many(predicted, actual, 1);
    }

    pub fn add_many(&mut self, predicted: bool, actual: bool, voxels: u64) {
        match (predicted, actual) {
            (true, true) => self.true_positive += voxels,
            (true, false) => self.false_positive += voxels,
            (false, true) => self.false_negative += voxels,
            (false, false) => self.true_negative += voxels,
        }
    }

    pub fn sens_spec(&self) -> SensSpec {
        SensSpec {
            sensitivity: ratio(self.true_positive, self.true_positive + self.false_negative),
            specificity: ratio(self.true_negative, self.true_negative + self.false_positive),
        }
    }

    /// Hard Dice `2 TP / (2 TP + FP + FN)`; `None` when both prediction and truth are empty.
    pub fn dice(&self) -> Option<f64> {
        ratio(
            2 * self.true_positive,
            2 * self.true_positive + self.false_positive + self.false_negative,
        )
    }
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// `(2 * sum(p*q) + eps) / (sum(power(p)) + sum(power(q)) + eps)` per class.
fn per_class_ratio(
    prediction: ArrayView4<f32>,
    truth: ArrayView4<f32>,
    eps: f64,
    power: fn(f64) -> f64,
) -> Result<Vec<Option<f64>>> {
    Error::check_shapes(prediction.shape(), truth.shape())?;
    let per_class = prediction.axis_iter(Axis(0)).zip(truth.axis_iter(Axis(0)));
    Ok(per_class
        .map(|(p, q)| {
            let (intersection, sum_p, sum_q) =
                Zip::from(&p)
                    .and(&q)
                    .fold((0.0, 0.0, 0.0), |(i, sp, sq), &p, &q| {
                        let (p, q) = (p as f64, q as f64);
                        (i + p * q, sp + power(p), sq + power(q))
                    });
            let denominator = sum_p + sum_q + eps;
            (denominator != 0.0).then(|| (2.0 * intersection + eps) / denominator)
        })
        .collect())
}

fn mean_defined(values: &[Option<f64>]) -> Option<f64> {
    let defined: Vec<f64> = values.iter().flatten().copied().collect();
    (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array4};

    /// Two classes on a 4x4x4 patch: class 0 predicted on 8 voxels, 4 of which are in a truth of 12 voxels;
    /// class 1 absent from the truth and predicted nowhere.
    fn two_class_patch() -> (Array4<f32>, Array4<f32>) {
        let mut prediction = Array4::<f32>::zeros((2, 4, 4, 4));
        let mut truth = Array4::<f32>::zeros((2, 4, 4, 4));
        prediction.slice_mut(s![0, 0..2, 0..2, 0..2]).fill(0.9); // 8 voxels above threshold
        truth.slice_mut(s![0, 1..2, 0..4, 0..3]).fill(1.0); // 12 voxels, overlap x=1, y 0..2, z 0..2 = 4
        (prediction, truth)
    }

    #[test]
    fn dice_follows_the_seed_formula() {
        let (prediction, truth) = two_class_patch();
        let dice = dice_per_class(prediction.view(), truth.view(), DEFAULT_EPS).unwrap();
        // class 0: sum(p*q) = 4 * 0.9 = 3.6, sum(p) = 7.2, sum(q) = 12.
        let expected = (2.0 * 3.6 + 1e-5) / (7.2 + 12.0 + 1e-5);
        assert!((dice[0].unwrap() - expected).abs() < 1e-6, "{dice:?}");
        // Absent everywhere: eps / eps = 1 with the seed's smoothing, undefined without it.
        assert!((dice[1].unwrap() - 1.0).abs() < 1e-12);
        let unsmoothed = dice_per_class(prediction.view(), truth.view(), 0.0).unwrap();
        assert_eq!(unsmoothed[1], None);
        let mean = mean_dice(prediction.view(), truth.view(), 0.0)
            .unwrap()
            .unwrap();
        assert!(
            (mean - 7.2 / 19.2).abs() < 1e-6,
            "only the defined class counts: {mean}"
        );
    }

    #[test]
    fn soft_dice_loss_uses_squares() {
        let (prediction, truth) = two_class_patch();
        let loss = soft_dice_loss(prediction.view(), truth.view(), 1.0)
            .unwrap()
            .unwrap();
        // class 0: sum(p^2) = 8 * 0.81 = 6.48, sum(q^2) = 12; class 1: 1 / 1.
        let class0 = (2.0 * 3.6 + 1.0) / (6.48 + 12.0 + 1.0);
        let expected = 1.0 - (class0 + 1.0) / 2.0;
        assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
    }

    #[test]
    fn soft_dice_loss_is_one_minus_dice_on_binary_arrays() {
        let (mut prediction, truth) = two_class_patch();
        prediction.mapv_inplace(|p| if p > 0.5 { 1.0 } else { 0.0 });
        let loss = soft_dice_loss(prediction.view(), truth.view(), DEFAULT_EPS)
            .unwrap()
            .unwrap();
        let dice = mean_dice(prediction.view(), truth.view(), DEFAULT_EPS)
            .unwrap()
            .unwrap();
        assert!((loss - (1.0 - dice)).abs() < 1e-9);
        // class 0 binary: 2*4 / (8 + 12) = 0.4; class 1: 1.
        assert!((dice - 0.7).abs() < 1e-6, "{dice}");
    }

    #[test]
    fn sensitivity_and_specificity_count_thresholded_voxels() {
        let (prediction, truth) = two_class_patch();
        let result =
            sensitivity_specificity(prediction.view(), truth.view(), DEFAULT_THRESHOLD).unwrap();
        // class 0: TP 4, FN 8, FP 4, TN 64 - 16 = 48.
        assert_eq!(result[0].sensitivity, Some(4.0 / 12.0));
        assert_eq!(result[0].specificity, Some(48.0 / 52.0));
        // class 1 absent from the truth: sensitivity undefined, specificity 64/64.
        assert_eq!(
            result[1],
            SensSpec {
                sensitivity: None,
                specificity: Some(1.0)
            }
        );
        // A threshold above every probability predicts nothing.
        let strict = sensitivity_specificity(prediction.view(), truth.view(), 0.95).unwrap();
        assert_eq!(strict[0].sensitivity, Some(0.0));
        assert_eq!(strict[0].specificity, Some(1.0));
    }

    #[test]
    fn mismatched_shapes_are_an_error() {
        let a = Array4::<f32>::zeros((3, 4, 4, 4));
        let b = Array4::<f32>::zeros((3, 4, 4, 5));
        let error = dice_per_class(a.view(), b.view(), DEFAULT_EPS).unwrap_err();
        assert_eq!(
            error.to_string(),
            "prediction shape [3, 4, 4, 4] differs from ground-truth shape [3, 4, 4, 5]"
        );
        assert!(sensitivity_specificity(a.view(), b.view(), 0.5).is_err());
    }
}
