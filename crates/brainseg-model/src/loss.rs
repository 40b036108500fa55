//! Losses and the Dice metric on `[B, C, X, Y, Z]` tensors, differentiable on an autodiff device.
//!
//! Sums run over the spatial axes of each sample and class; the result is the mean over samples
//! and classes. For one sample this is exactly the seed's formula (which sums over axes 1..3 of
//! a `(C, X, Y, Z)` patch).
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::Tensor;

/// The seed's epsilon (its tests use 1 to catch mistakes).
pub const SEED_EPSILON: f64 = 1e-5;

const SPATIAL_AXES: [usize; 3] = [2, 3, 4];

/// Soft Dice loss: `1 - mean (2 sum(p q) + eps) / (sum(p^2) + sum(q^2) + eps)`.
/// With 0/1 inputs it equals `1 - dice_coefficient`.
pub fn soft_dice_loss(prediction: Tensor<5>, target: Tensor<5>, epsilon: f64) -> Tensor<1> {
    let intersection = (prediction.clone() * target.clone()).sum_dims(&SPATIAL_AXES);
    let denominator =
        prediction.square().sum_dims(&SPATIAL_AXES) + target.square().sum_dims(&SPATIAL_AXES);
    let ratio = (intersection * 2.0 + epsilon) / (denominator + epsilon);
    ratio.mean().neg() + 1.0
}

/// Dice coefficient (the seed's metric): `mean (2 sum(p q) + eps) / (sum(p) + sum(q) + eps)`.
pub fn dice_coefficient(prediction: Tensor<5>, target: Tensor<5>, epsilon: f64) -> Tensor<1> {
    let intersection = (prediction.clone() * target.clone()).sum_dims(&SPATIAL_AXES);
    let denominator = prediction.sum_dims(&SPATIAL_AXES) + target.sum_dims(&SPATIAL_AXES);
    ((intersection * 2.0 + epsilon) / (denominator + epsilon)).mean()
}

/// Binary cross-entropy on logits, mean over all elements, as `x (1 - y) - log_sigmoid(x)`:
/// no overflow for large |x|, and a gradient `sigmoid(x) - y` that is exact everywhere (the
/// `max(x, 0)` form gets a wrong subgradient at x = 0).
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    let negative_target = target.neg() + 1.0;
    (logits.clone() * negative_target - log_sigmoid(logits)).mean()
}

/// `soft_dice_loss(sigmoid(logits), epsilon) + bce_weight * bce_with_logits(logits)`.
pub fn dice_bce_loss(
    logits: Tensor<5>,
    target: Tensor<5>,
    epsilon: f64,
    bce_weight: f64,
) -> Tensor<1> {
    let dice = soft_dice_loss(sigmoid(logits.clone()), target.clone(), epsilon);
    dice + bce_with_logits(logits, target) * bce_weight
}

/// Weights of the deep-supervision losses for `outputs` heads, full resolution first:
/// `1, 1/2, 1/4, ...` with the lowest resolution's set to 0 (nnU-Net's `_build_loss`: it leaves
/// out the lowest decoder output), then scaled to sum to 1. One output: `[1]`.
pub fn deep_supervision_weights(outputs: usize) -> Vec<f64> {
    let mut weights: Vec<f64> = (0..outputs).map(|k| 0.5f64.powi(k as i32)).collect();
    if outputs > 1 {
        weights[outputs - 1] = 0.0;
    }
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// `sum_k w_k loss(outputs[k], target at the resolution of outputs[k])` with
/// [`deep_supervision_weights`]; outputs are full resolution first, each half the previous.
/// Targets are downsampled with [`crate::ops::downsample_nearest`]; a weight-0 output costs
/// nothing (its loss is not computed). One output: plain `loss(outputs[0], target)`.
pub fn deep_supervision_loss(
    outputs: Vec<Tensor<5>>,
    target: Tensor<5>,
    loss: impl Fn(Tensor<5>, Tensor<5>) -> Tensor<1>,
) -> Tensor<1> {
    let weights = deep_supervision_weights(outputs.len());
    let mut total: Option<Tensor<1>> = None;
    for (k, (output, weight)) in outputs.into_iter().zip(weights).enumerate() {
        if weight == 0.0 {
            continue;
        }
        let scaled = crate::ops::downsample_nearest(target.clone(), 1 << k);
        let term = loss(output, scaled);
        let term = if weight == 1.0 { term } else { term * weight };
        total = Some(match total {
            Some(sum) => sum + term,
            None => term,
        });
    }
    total.expect("at least one output with a non-zero weight")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// `[1, C, N, 1, 1]` tensor from per-class voxel lists.
    fn classes(device: &Device, per_class: &[&[f32]]) -> Tensor<5> {
        let n = per_class[0].len();
        let flat: Vec<f32> = per_class.iter().flat_map(|c| c.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [1, per_class.len(), n, 1, 1]), device)
    }

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_scalar::<f32>()
    }

    fn close(a: f32, b: f32) {
        assert!((a - b).abs() < 1e-5, "{a} != {b}");
    }

    #[test]
    fn soft_dice_by_hand_with_epsilon_one() {
        let device = Device::flex();
        // Class 0: p = [0.5, 0.5], q = [1, 0]: (2*0.5 + 1) / (0.5 + 1 + 1) = 0.8.
        // Class 1: p = q = [1, 1]: (4 + 1) / (2 + 2 + 1) = 1. Loss = 1 - 0.9.
        let p = classes(&device, &[&[0.5, 0.5], &[1.0, 1.0]]);
        let q = classes(&device, &[&[1.0, 0.0], &[1.0, 1.0]]);
        close(scalar(soft_dice_loss(p.clone(), q.clone(), 1.0)), 0.1);
        // Dice uses plain sums: class 0 (1 + 1) / (1 + 1 + 1) = 2/3; class 1: 1.
        close(scalar(dice_coefficient(p, q, 1.0)), (2.0 / 3.0 + 1.0) / 2.0);
    }

    #[test]
    fn soft_dice_equals_one_minus_dice_for_binary_inputs() {
        let device = Device::flex();
        // p = [1,1,0,0], q = [1,0,1,0]: (2*1 + 1) / (2 + 2 + 1) = 0.6; second class all empty: 1.
        let p = classes(&device, &[&[1.0, 1.0, 0.0, 0.0], &[0.0; 4]]);
        let q = classes(&device, &[&[1.0, 0.0, 1.0, 0.0], &[0.0; 4]]);
        let dice = scalar(dice_coefficient(p.clone(), q.clone(), 1.0));
        close(dice, 0.8);
        close(scalar(soft_dice_loss(p, q, 1.0)), 1.0 - dice);
    }

    #[test]
    fn small_epsilon_and_batch_mean() {
        let device = Device::flex();
        // Two samples of one class, 2 voxels each: perfect (dice 1) and disjoint (dice ~0).
        let p = Tensor::<5>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 1.0, 0.0], [2, 1, 2, 1, 1]),
            &device,
        );
        let q = Tensor::<5>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [2, 1, 2, 1, 1]),
            &device,
        );
        let eps = SEED_EPSILON as f32;
        let disjoint = eps / (2.0 + eps);
        close(
            scalar(dice_coefficient(p.clone(), q.clone(), SEED_EPSILON)),
            (1.0 + disjoint) / 2.0,
        );
        close(
            scalar(soft_dice_loss(p, q, SEED_EPSILON)),
            1.0 - (1.0 + disjoint) / 2.0,
        );
    }

    #[test]
    fn bce_with_logits_by_hand_and_stable() {
        let device = Device::flex();
        // ln 2 + ln(1 + e^2) + ln(1 + e^3), averaged.
        let logits = Tensor::<1>::from_floats([0.0, 2.0, -3.0], &device);
        let target = Tensor::<1>::from_floats([1.0, 0.0, 1.0], &device);
        let expected = (2f64.ln() + (1.0 + 2f64.exp()).ln() + (1.0 + 3f64.exp()).ln()) / 3.0;
        close(scalar(bce_with_logits(logits, target)), expected as f32);
        // Confidently wrong by 100: loss 100, not infinity.
        let logits = Tensor::<1>::from_floats([100.0, -100.0], &device);
        let target = Tensor::<1>::from_floats([0.0, 1.0], &device);
        close(scalar(bce_with_logits(logits, target)), 100.0);
    }

    #[test]
    fn bce_gradient_is_sigmoid_minus_target_over_n() {
        let device = Device::flex().autodiff();
        let logits = Tensor::<1>::from_floats([0.0, 2.0], &device).require_grad();
        let target = Tensor::<1>::from_floats([1.0, 0.0], &device);
        let grads = bce_with_logits(logits.clone(), target).backward();
        let grad = logits
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let sigmoid_2 = 1.0 / (1.0 + (-2.0f32).exp());
        close(grad[0], (0.5 - 1.0) / 2.0);
        close(grad[1], sigmoid_2 / 2.0);
    }

    #[test]
    fn dice_bce_combination_by_hand() {
        let device = Device::flex();
        // Logits 0 -> p = 0.5; q = [1, 0]: soft Dice (eps 1) 1 - 0.8, BCE ln 2.
        let logits = classes(&device, &[&[0.0, 0.0]]);
        let target = classes(&device, &[&[1.0, 0.0]]);
        close(
            scalar(dice_bce_loss(logits, target, 1.0, 0.5)),
            0.2 + 0.5 * 2f32.ln(),
        );
    }

    #[test]
    fn deep_supervision_weights_by_hand() {
        let near = |a: &[f64], b: &[f64]| {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-15, "{a:?} != {b:?}");
            }
        };
        // 3 outputs: 1, 1/2, 0 -> sum 3/2.
        near(&deep_supervision_weights(3), &[2.0 / 3.0, 1.0 / 3.0, 0.0]);
        // 4 outputs: 1, 1/2, 1/4, 0 -> sum 7/4.
        near(
            &deep_supervision_weights(4),
            &[4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0, 0.0],
        );
        // 5 outputs: 1, 1/2, 1/4, 1/8, 0 -> sum 15/8.
        near(
            &deep_supervision_weights(5),
            &[8.0 / 15.0, 4.0 / 15.0, 2.0 / 15.0, 1.0 / 15.0, 0.0],
        );
        near(&deep_supervision_weights(2), &[1.0, 0.0]);
        near(&deep_supervision_weights(1), &[1.0]);
    }

    #[test]
    fn deep_supervision_loss_weights_each_resolution_against_its_target() {
        let device = Device::flex();
        // Target [1, 1, 4, 4, 4]: one voxel set at (1, 1, 1), which nearest-exact keeps at 1/2.
        let mut target = vec![0.0f32; 64];
        target[16 + 4 + 1] = 1.0;
        let target = Tensor::<5>::from_data(TensorData::new(target, [1, 1, 4, 4, 4]), &device);
        // A loss that reads its target: sum(output) + 10 * sum(target).
        let loss = |output: Tensor<5>, target: Tensor<5>| output.sum() + target.sum() * 10.0;
        let outputs = vec![
            Tensor::<5>::ones([1, 1, 4, 4, 4], &device),
            Tensor::<5>::ones([1, 1, 2, 2, 2], &device),
            Tensor::<5>::ones([1, 1, 1, 1, 1], &device) * f32::NAN,
        ];
        // Full: 64 + 10; half: 8 + 10 (the set voxel survives); quarter: weight 0, so never
        // evaluated (its NaN would poison the sum). Weights 2/3, 1/3.
        let expected = (2.0 / 3.0) * 74.0 + (1.0 / 3.0) * 18.0;
        close(
            scalar(deep_supervision_loss(outputs, target, loss)),
            expected as f32,
        );
    }
}
