//! What describes a run: the network, sampling, loss, optimiser and schedule, saved as the run's
//! `config.json`.
use crate::data::SamplingConfig;
use brainseg_model::conv::Precision;
use brainseg_model::UNet3dConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The loss a model is trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LossKind {
    /// The seed's soft Dice loss (squared denominators).
    SoftDice,
    /// Soft Dice + binary cross-entropy on logits, as nnU-Net (Dice + CE).
    DiceBce,
}

/// The optimiser a model is trained with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Optimizer {
    /// burn's Adam with its defaults (beta 0.9/0.999, eps 1e-5, no weight decay): the seed's.
    #[default]
    Adam,
    /// nnU-Net's: SGD, Nesterov momentum [`SGD_MOMENTUM`], no dampening, weight decay
    /// [`SGD_WEIGHT_DECAY`] (L2, added to the gradient as PyTorch's `SGD(weight_decay=...)`).
    SgdNesterov,
}

/// Momentum of [`Optimizer::SgdNesterov`] (nnU-Net's `configure_optimizers`).
pub const SGD_MOMENTUM: f64 = 0.99;
/// Weight decay of [`Optimizer::SgdNesterov`] (nnU-Net's `weight_decay`).
pub const SGD_WEIGHT_DECAY: f32 = 3e-5;
/// nnU-Net's initial learning rate for SGD.
pub const NNUNET_LEARNING_RATE: f64 = 0.01;

impl Optimizer {
    /// A fresh optimiser (no state yet). Its state is saved and restored by
    /// [`ModuleOptimizer::save`] / [`ModuleOptimizer::load`] for every kind (Adam's moments,
    /// SGD's velocities).
    pub fn init(self) -> ModuleOptimizer {
        match self {
            Optimizer::Adam => AdamConfig::new().init(),
            Optimizer::SgdNesterov => SgdConfig::new()
                .with_momentum(Some(MomentumConfig {
                    momentum: SGD_MOMENTUM,
                    dampening: 0.0,
                    nesterov: true,
                }))
                .with_weight_decay(Some(WeightDecayConfig {
                    penalty: SGD_WEIGHT_DECAY,
                }))
                .init(),
        }
    }
}

/// How the learning rate changes over the epochs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Schedule {
    /// `learning_rate` throughout (the seed).
    #[default]
    Constant,
    /// nnU-Net's `PolyLRScheduler`, stepped once per epoch:
    /// `learning_rate * (1 - epoch / epochs)^0.9` for the 0-based epoch.
    Poly,
}

/// Exponent of [`Schedule::Poly`].
pub const POLY_EXPONENT: f64 = 0.9;

impl Schedule {
    /// The learning rate of 0-based epoch `epoch` of `epochs` starting from `initial`.
    /// A run extended with `--resume --epochs N` re-stretches the poly decay over the new total.
    pub fn learning_rate(self, initial: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Constant => initial,
            Schedule::Poly => {
                let progress = (epoch as f64 / epochs.max(1) as f64).min(1.0);
                initial * (1.0 - progress).powf(POLY_EXPONENT)
            }
        }
    }
}

/// Everything that describes a run; saved as `config.json` in the run directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub model: UNet3dConfig,
    pub sampling: SamplingConfig,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    /// Validation patches drawn once from each validation case (seed patches: every validation file).
    pub valid_patches_per_case: usize,
    /// The initial learning rate (the only one with [`Schedule::Constant`]).
    pub learning_rate: f64,
    pub loss: LossKind,
    /// Absent from older config.json files: Adam.
    #[serde(default)]
    pub optimizer: Optimizer,
    /// Absent from older config.json files: constant.
    #[serde(default)]
    pub schedule: Schedule,
    pub seed: u64,
    pub train_fraction: f64,
    /// Cross-validation: this run trains fold `fold` (0-based) of `folds`, instead of the
    /// `train_fraction` split. Absent from older config.json files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_validation: Option<Fold>,
    /// The split this run uses instead of drawing one (another run's `split.json`, or one written
    /// by hand: `{"train": [ids], "valid": [ids]}`). Absent: drawn by `seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_file: Option<PathBuf>,
    /// Weights the run starts from instead of random ones: a model file of the same network (the
    /// bundled model, to fine-tune it; nnU-Net's `-pretrained_weights`). The optimiser starts
    /// fresh. Absent: random weights drawn by `seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_weights: Option<PathBuf>,
    /// Batches prepared ahead of the model by the background sampler.
    pub queue_depth: usize,
    /// What the CPU's convolutions multiply in (forward passes and input gradients; weights,
    /// weight gradients and the optimiser stay f32). A new run records it definite (auto becomes
    /// f32 or bf16 for the CPU it starts on). Absent from older config.json files: f32.
    #[serde(default = "exact_precision")]
    pub precision: Precision,
}

fn exact_precision() -> Precision {
    Precision::F32
}

/// One fold of a cross-validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    pub folds: usize,
    pub fold: usize,
}

/// nnU-Net's `3d_fullres` recipe on `base`: the network of
/// [`UNet3dConfig::with_nnunet_recipe`] (instance norm, leaky ReLU, strided convolutions,
/// transposed convolutions, deep supervision, regions), SGD with Nesterov momentum at
/// [`NNUNET_LEARNING_RATE`], the poly schedule, Dice + BCE on region targets. Data, sizes, epochs,
/// sampling (but its targets) and seed stay `base`'s.
pub fn nnunet_recipe(base: TrainConfig) -> TrainConfig {
    let mut config = TrainConfig {
        model: base.model.clone().with_nnunet_recipe(),
        learning_rate: NNUNET_LEARNING_RATE,
        loss: LossKind::DiceBce,
        optimizer: Optimizer::SgdNesterov,
        schedule: Schedule::Poly,
        ..base
    };
    config.sampling.patch.targets = brainseg_transforms::Targets::Regions;
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainseg_model::UNet3d;
    use brainseg_transforms::{AugmentationConfig, PatchConfig, Standardization};
    use burn::optim::GradientsParams;

    fn config() -> TrainConfig {
        TrainConfig {
            data: PathBuf::from("data"),
            model: UNet3dConfig::default(),
            sampling: SamplingConfig {
                patch: PatchConfig::default(),
                standardization: Standardization::NotebookSlices,
                augmentation: AugmentationConfig::basic(),
                batch_size: 3,
            },
            epochs: 10,
            steps_per_epoch: 20,
            valid_patches_per_case: 4,
            learning_rate: 1e-5,
            loss: LossKind::SoftDice,
            optimizer: Optimizer::Adam,
            schedule: Schedule::Constant,
            seed: 0,
            train_fraction: 0.8,
            cross_validation: None,
            split_file: None,
            init_weights: None,
            queue_depth: 2,
            precision: Precision::F32,
        }
    }

    #[test]
    fn poly_schedule_by_hand() {
        let lr = |epoch| Schedule::Poly.learning_rate(0.01, epoch, 1000);
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} != {b}");
        // (1 - 0)^0.9 = 1.
        close(lr(0), 0.01);
        // 0.999^0.9 = exp(0.9 ln 0.999) = exp(-0.000900450300...) = 0.999099955...
        close(lr(1), 0.01 * 0.999_099_955_0);
        // 0.5^0.9 = 2^-0.9 = 0.535886731268...
        close(lr(500), 0.01 * 0.535_886_731_268);
        // 0.001^0.9 = 10^-2.7 = 0.001995262315...
        close(lr(999), 0.01 * 0.001_995_262_315);
        // Constant ignores the epoch.
        assert_eq!(Schedule::Constant.learning_rate(0.01, 999, 1000), 0.01);
        // A tiny run: 2 epochs, 0-based 0 and 1: lr0 then lr0 * 0.5^0.9.
        close(Schedule::Poly.learning_rate(1.0, 1, 2), 0.535_886_731_268);
    }

    #[test]
    fn an_old_config_json_trains_as_before() {
        let mut bf16 = config();
        bf16.precision = Precision::Bf16;
        let mut json = serde_json::to_value(bf16).unwrap();
        let object = json.as_object_mut().unwrap();
        assert_eq!(object["optimizer"], "adam");
        assert_eq!(object["schedule"], "constant");
        assert_eq!(object["precision"], "bf16");
        assert!(!object.contains_key("split_file") && !object.contains_key("init_weights"));
        object.remove("optimizer");
        object.remove("schedule");
        object.remove("precision");
        let old: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.optimizer, Optimizer::Adam);
        assert_eq!(old.schedule, Schedule::Constant);
        // Older runs trained in f32 (not auto, which could mean bf16 on another CPU).
        assert_eq!(old.precision, Precision::F32);
        assert_eq!(old.model, UNet3dConfig::default());
    }

    #[test]
    fn nnunet_recipe_sets_every_piece() {
        let base = config();
        let recipe = nnunet_recipe(base.clone());
        assert_eq!(recipe.optimizer, Optimizer::SgdNesterov);
        assert_eq!(recipe.schedule, Schedule::Poly);
        assert_eq!(recipe.learning_rate, 0.01);
        assert_eq!(recipe.loss, LossKind::DiceBce);
        assert_eq!(recipe.model, base.model.clone().with_nnunet_recipe());
        assert_eq!(
            recipe.sampling.patch.targets,
            brainseg_transforms::Targets::Regions
        );
        assert_eq!(recipe.epochs, base.epochs);
        let json = serde_json::to_value(&recipe).unwrap();
        assert_eq!(json["optimizer"], "sgd_nesterov");
        assert_eq!(json["schedule"], "poly");
        assert_eq!(json["model"]["deep_supervision"], true);
    }

    #[test]
    fn sgd_nesterov_steps_as_pytorch_by_hand() {
        // Loss = g * sum(head weights): each weight's gradient is g at every step.
        let device = brainseg_model::cpu_autodiff_device();
        let model = UNet3d::new(
            &UNet3dConfig {
                depth: 1,
                base_filters: 1,
                in_channels: 1,
                out_classes: 1,
                ..UNet3dConfig::default()
            },
            0,
            &device,
        )
        .unwrap();
        let mut optim = Optimizer::SgdNesterov.init();
        let lr = 0.1;
        let grad = 2.0;
        // The head's first weight (it has 2: one per channel of the level-0 block).
        let weight =
            |m: &UNet3d| m.head.weight.val().into_data().try_to_vec::<f32>().unwrap()[0] as f64;
        let mut p = weight(&model);
        let mut model = model;
        let mut velocity = 0.0f64;
        for step in 0..3 {
            let loss = model.head.weight.val().sum() * grad;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            // PyTorch SGD: d = g + wd p; v = d (first step) or mu v + d; update d + mu v.
            let d = grad + SGD_WEIGHT_DECAY as f64 * p;
            velocity = if step == 0 {
                d
            } else {
                SGD_MOMENTUM * velocity + d
            };
            p -= lr * (d + SGD_MOMENTUM * velocity);
            assert!((weight(&model) - p).abs() < 1e-5, "step {step}");
        }
    }
}
