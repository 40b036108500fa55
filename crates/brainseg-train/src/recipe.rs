//! Named training recipes: the one place training defaults come from. A run starts from a recipe
//! and the command line overrides single settings.
use crate::{LossKind, Optimizer, SamplingConfig, Schedule, TrainConfig};
use brainseg_core::Targets;
use brainseg_model::conv::Precision;
use brainseg_model::{Normalisation, UNet3dConfig, Upsampling};
use brainseg_transforms::{AugmentationConfig, PatchConfig, Standardization};
use std::path::PathBuf;

/// A starting point for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Recipe {
    /// Learns on a CPU in hours: the bundled model's recipe (16 base filters, 128x128x32 patches,
    /// batch 2, BraTS regions, Dice + BCE, z-scored volumes, Adam 1e-3, half the patches on tumour).
    #[default]
    Cpu,
    /// nnU-Net's 3d_fullres recipe for BraTS on the cpu recipe's data settings: instance
    /// normalisation, leaky ReLU, strided-convolution downsampling, transposed-convolution
    /// upsampling, deep supervision, SGD with Nesterov momentum 0.99 at 0.01 with poly decay,
    /// weight decay 3e-5, nnU-Net's augmentation, Dice + BCE on BraTS regions.
    Nnunet,
    /// The notebook's: 32 base filters, 160x160x16 patches, batch 3, per-class outputs, soft Dice,
    /// per-slice standardisation, Adam 1e-5 (barely moves in a CPU's hours).
    Notebook,
}

impl Recipe {
    /// The whole configuration of a run on `data`.
    pub fn config(self, data: PathBuf) -> TrainConfig {
        match self {
            Recipe::Nnunet => {
                let mut config = crate::nnunet_recipe(Recipe::Cpu.config(data));
                config.sampling.augmentation = AugmentationConfig::nnunet();
                config
            }
            Recipe::Notebook => TrainConfig {
                data,
                model: UNet3dConfig::default(),
                sampling: SamplingConfig {
                    patch: PatchConfig {
                        size: [160, 160, 16],
                        foreground_share: 0.33,
                        targets: Targets::Classes,
                        ..PatchConfig::default()
                    },
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
            },
            Recipe::Cpu => TrainConfig {
                data,
                model: UNet3dConfig {
                    base_filters: 16,
                    upsampling: Upsampling::Nearest,
                    normalisation: Normalisation::None,
                    targets: Targets::Regions,
                    ..UNet3dConfig::default()
                },
                sampling: SamplingConfig {
                    patch: PatchConfig {
                        size: [128, 128, 32],
                        foreground_share: 0.5,
                        targets: Targets::Regions,
                        ..PatchConfig::default()
                    },
                    standardization: Standardization::ZScoreBrain,
                    augmentation: AugmentationConfig::basic(),
                    batch_size: 2,
                },
                epochs: 10,
                steps_per_epoch: 20,
                valid_patches_per_case: 4,
                learning_rate: 1e-3,
                loss: LossKind::DiceBce,
                optimizer: Optimizer::Adam,
                schedule: Schedule::Constant,
                seed: 0,
                train_fraction: 0.8,
                cross_validation: None,
                split_file: None,
                init_weights: None,
                queue_depth: 2,
                precision: Precision::F32,
            },
        }
    }
}
