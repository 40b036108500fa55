//! The U-Net's hyper-parameters, their channel plan and the input shapes they accept.
use brainseg_volume::Error;
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
        }
    }
}

/// Largest depth accepted: 2^11 filters per base filter is already far beyond any use.
const MAX_DEPTH: usize = 12;

impl UNet3dConfig {
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
