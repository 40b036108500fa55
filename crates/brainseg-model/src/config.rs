//! The U-Net's hyper-parameters, their channel plan and the input shapes they accept.
use crate::Error;
use serde::{Deserialize, Serialize};

/// How the decoder doubles the spatial size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Upsampling {
    /// Nearest-neighbour x2 (the seed: `deconvolution = False`), no parameters.
    Nearest,
    /// Transposed convolution, kernel 2, stride 2, keeping the channel count (3DUnetCNN's
    /// `deconvolution = True`).
    #[cfg_attr(feature = "clap", value(name = "transposed"))]
    TransposedConv,
}

/// Normalisation after each 3x3x3 convolution, before its ReLU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Normalisation {
    /// The seed: none.
    None,
    Batch,
    Instance,
}

/// The non-linearity after each 3x3x3 convolution (and its normalisation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`: the seed.
    #[default]
    Relu,
    /// `x` for `x >= 0`, `0.01 x` otherwise: nnU-Net's `LeakyReLU(negative_slope = 1e-2)`.
    LeakyRelu,
}

/// Slope of [`Activation::LeakyRelu`] for negative inputs (nnU-Net's).
pub const LEAKY_RELU_SLOPE: f64 = 0.01;

/// How the encoder halves the spatial size between levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Downsampling {
    /// Max pooling, kernel 2, stride 2, before the level's first convolution (the seed).
    #[default]
    MaxPool,
    /// The level's first 3x3x3 convolution has stride 2 (padding 1), as nnU-Net's
    /// `PlainConvUNet`; no pooling.
    StridedConv,
}

/// What the head's outputs go through in [`crate::UNet3d::forward`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputActivation {
    /// Independent per-channel probabilities (the seed).
    Sigmoid,
    /// Raw logits.
    None,
}

pub use brainseg_core::Targets;

/// Hyper-parameters of [`crate::UNet3d`]. `Default` is the seed's model (16,318,307 parameters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNet3dConfig {
    pub in_channels: usize,
    pub out_classes: usize,
    /// Number of encoder levels; pooling happens between them (`depth - 1` times).
    pub depth: usize,
    /// Filters of the first convolution; level `d` uses `base_filters * 2^d` then twice that.
    pub base_filters: usize,
    pub upsampling: Upsampling,
    pub normalisation: Normalisation,
    pub output_activation: OutputActivation,
    pub targets: Targets,
    /// Absent from configs written before it existed: ReLU. Left out of the JSON when it is the
    /// default, so a seed-style model's config reads the same as before (and in older builds).
    #[serde(default, skip_serializing_if = "is_default")]
    pub activation: Activation,
    /// Absent: max pooling (the seed). Left out of the JSON when default.
    #[serde(default, skip_serializing_if = "is_default")]
    pub downsampling: Downsampling,
    /// Deep supervision: every decoder level below full resolution gets its own 1x1x1 head
    /// (`ds_heads`) for the training loss; inference uses only the full-resolution `head`.
    /// Absent: off. Left out of the JSON when off.
    #[serde(default, skip_serializing_if = "is_default")]
    pub deep_supervision: bool,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Default for UNet3dConfig {
    fn default() -> Self {
        UNet3dConfig {
            in_channels: 4,
            out_classes: 3,
            depth: 4,
            base_filters: 32,
            upsampling: Upsampling::Nearest,
            normalisation: Normalisation::None,
            output_activation: OutputActivation::Sigmoid,
            targets: Targets::Classes,
            activation: Activation::Relu,
            downsampling: Downsampling::MaxPool,
            deep_supervision: false,
        }
    }
}

/// Largest depth accepted: 2^11 filters per base filter is already far beyond any use.
const MAX_DEPTH: usize = 12;

impl UNet3dConfig {
    /// The network of nnU-Net's `3d_fullres` recipe for BraTS (region-based training): instance
    /// normalisation and leaky ReLU after every 3x3x3 convolution, strided-convolution
    /// downsampling, transposed-convolution upsampling, deep supervision, raw logits into a
    /// sigmoid per region (WT, TC, ET). Sizes (input channels, depth, filters) are `self`'s.
    ///
    /// Not nnU-Net's: the channel plan stays the seed's (`base * 2^d`, then twice that, no cap at
    /// 320) and weights start Glorot-uniform (nnU-Net: He normal).
    pub fn with_nnunet_recipe(self) -> Self {
        UNet3dConfig {
            out_classes: 3,
            upsampling: Upsampling::TransposedConv,
            normalisation: Normalisation::Instance,
            output_activation: OutputActivation::Sigmoid,
            targets: Targets::Regions,
            activation: Activation::LeakyRelu,
            downsampling: Downsampling::StridedConv,
            deep_supervision: true,
            ..self
        }
    }

    /// [`UNet3dConfig::with_nnunet_recipe`] on the seed's sizes (4 inputs, depth 4, 32 filters).
    pub fn nnunet() -> Self {
        UNet3dConfig::default().with_nnunet_recipe()
    }

    /// Number of outputs of [`crate::UNet3d::forward_deep_supervision`]: one per decoder level
    /// with deep supervision (full resolution first), else 1.
    pub fn output_count(&self) -> usize {
        if self.deep_supervision {
            self.depth.max(2) - 1
        } else {
            1
        }
    }

    /// Checks the numbers make a buildable network.
    pub fn validate(&self) -> Result<(), Error> {
        let problem = if self.in_channels == 0 {
            "in_channels must be at least 1".to_string()
        } else if self.out_classes == 0 {
            "out_classes must be at least 1".to_string()
        } else if self.depth == 0 || self.depth > MAX_DEPTH {
            format!("depth must be 1..={MAX_DEPTH}, got {}", self.depth)
        } else if self.base_filters == 0 {
            "base_filters must be at least 1".to_string()
        } else if self.targets == Targets::Regions && self.out_classes != 3 {
            format!(
                "targets = regions needs out_classes = 3 (WT, TC, ET), got {}",
                self.out_classes
            )
        } else {
            return Ok(());
        };
        Err(Error::msg(format!("invalid U-Net config: {problem}")))
    }

    /// Channels after encoder level `level`'s first and second convolutions.
    pub fn encoder_channels(&self, level: usize) -> (usize, usize) {
        let filters = self.base_filters << level;
        (filters, 2 * filters)
    }

    /// Spatial sizes must be divisible by this (one halving per pooling).
    pub fn size_multiple(&self) -> usize {
        1 << (self.depth - 1)
    }

    /// Checks an input of shape `(C, X, Y, Z)` (one patch) fits this network.
    pub fn check_input(&self, shape: [usize; 4]) -> Result<(), Error> {
        let [channels, x, y, z] = shape;
        if channels != self.in_channels {
            return Err(Error::msg(format!(
                "the model expects {} input channels, got {channels} (shape {shape:?})",
                self.in_channels
            )));
        }
        let multiple = self.size_multiple();
        if [x, y, z].iter().any(|&s| s == 0 || s % multiple != 0) {
            return Err(Error::msg(format!(
                "spatial size {x}x{y}x{z} is not usable by a depth-{} U-Net: each side must be a \
                 positive multiple of {multiple}",
                self.depth
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config.json model section as builds before these options wrote it.
    const OLD_JSON: &str = r#"{"in_channels":4,"out_classes":3,"depth":3,"base_filters":8,
        "upsampling":"transposed_conv","normalisation":"instance",
        "output_activation":"sigmoid","targets":"regions"}"#;

    #[test]
    fn a_config_without_the_new_fields_keeps_the_old_network() {
        let config: UNet3dConfig = serde_json::from_str(OLD_JSON).unwrap();
        assert_eq!(config.activation, Activation::Relu);
        assert_eq!(config.downsampling, Downsampling::MaxPool);
        assert!(!config.deep_supervision);
        assert_eq!(config.depth, 3);
        assert_eq!(config.normalisation, Normalisation::Instance);
    }

    #[test]
    fn default_options_are_left_out_and_others_are_written() {
        let json = serde_json::to_value(UNet3dConfig::default()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for absent in ["activation", "downsampling", "deep_supervision"] {
            assert!(!keys.contains(&absent), "{keys:?}");
        }
        let nnunet = UNet3dConfig::nnunet();
        let json = serde_json::to_value(&nnunet).unwrap();
        assert_eq!(json["activation"], "leaky_relu");
        assert_eq!(json["downsampling"], "strided_conv");
        assert_eq!(json["deep_supervision"], true);
        assert_eq!(json["upsampling"], "transposed_conv");
        assert_eq!(json["normalisation"], "instance");
        assert_eq!(json["targets"], "regions");
        let back: UNet3dConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, nnunet);
        // Unknown fields are still refused.
        assert!(serde_json::from_str::<UNet3dConfig>(
            &OLD_JSON.replace("\"depth\"", "\"dropout\":0.1,\"depth\"")
        )
        .is_err());
    }

    #[test]
    fn nnunet_recipe_keeps_the_sizes() {
        let small = UNet3dConfig {
            depth: 5,
            base_filters: 16,
            ..UNet3dConfig::default()
        }
        .with_nnunet_recipe();
        assert_eq!(
            (small.depth, small.base_filters, small.in_channels),
            (5, 16, 4)
        );
        assert_eq!(small.output_count(), 4);
        assert_eq!(UNet3dConfig::default().output_count(), 1);
        assert!(small.validate().is_ok());
    }
}
