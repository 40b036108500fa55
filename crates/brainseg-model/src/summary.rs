//! Layer table of a [`UNet3dConfig`] for one input patch, computed from the config alone (no
//! weights, no forward pass): output shapes, parameter counts and forward GFLOP.
//!
//! FLOP counts one multiply-add as 2 and covers convolutions only (norms, ReLU, pooling and
//! upsampling are a fraction of a percent of the total).
use crate::Error;
use serde::Serialize;

use crate::config::{Downsampling, Normalisation, UNet3dConfig, Upsampling};

/// One layer: its parameter-name prefix, output shape `(C, X, Y, Z)`, parameters and GFLOP.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerRow {
    pub name: String,
    pub output_shape: [usize; 4],
    pub params: usize,
    pub gflop: f64,
}

/// The whole table with its totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSummary {
    pub config: UNet3dConfig,
    /// One patch, `(C, X, Y, Z)`.
    pub input_shape: [usize; 4],
    pub layers: Vec<LayerRow>,
    pub total_params: usize,
    /// Forward pass of one patch.
    pub total_gflop: f64,
}

/// Builds the layer table for one patch of `input_shape = (C, X, Y, Z)`.
pub fn summary(config: &UNet3dConfig, input_shape: [usize; 4]) -> Result<ModelSummary, Error> {
    config.validate()?;
    config.check_input(input_shape)?;
    let mut table = Table {
        config,
        layers: Vec::new(),
    };
    let [mut channels, x, y, z] = input_shape;
    let mut size = [x, y, z];
    for level in 0..config.depth {
        let (middle, out) = config.encoder_channels(level);
        if level > 0 {
            size = size.map(|s| s / 2);
            if config.downsampling == Downsampling::MaxPool {
                let previous = level - 1;
                table.push(format!("encoders.{previous}.pool"), channels, size, 0, 0.0);
            }
        }
        // With strided convolutions, conv1 of levels below the top computes only the halved grid.
        table.conv(format!("encoders.{level}.conv1"), channels, middle, 3, size);
        table.conv(format!("encoders.{level}.conv2"), middle, out, 3, size);
        channels = out;
    }
    for (index, level) in (0..config.depth - 1).rev().enumerate() {
        size = size.map(|s| s * 2);
        match config.upsampling {
            Upsampling::Nearest => {
                table.push(format!("decoders.{index}.upsample"), channels, size, 0, 0.0)
            }
            Upsampling::TransposedConv => {
                // Every output voxel receives one tap per (in, out) channel pair.
                let params = channels * channels * 8 + channels;
                table.push(
                    format!("ups.{index}"),
                    channels,
                    size,
                    params,
                    gflop(channels, channels, 1, size),
                );
            }
        }
        let skip = config.encoder_channels(level).1;
        table.push(
            format!("decoders.{index}.concat"),
            channels + skip,
            size,
            0,
            0.0,
        );
        table.conv(
            format!("decoders.{index}.conv1"),
            channels + skip,
            skip,
            3,
            size,
        );
        table.conv(format!("decoders.{index}.conv2"), skip, skip, 3, size);
        channels = skip;
    }
    let params = channels * config.out_classes + config.out_classes;
    table.push(
        "head".into(),
        config.out_classes,
        size,
        params,
        gflop(channels, config.out_classes, 1, size),
    );
    // Deep-supervision heads, used in training only.
    for level in 1..config.output_count() {
        let channels = config.encoder_channels(level).1;
        let size = size.map(|s| s >> level);
        table.push(
            format!("ds_heads.{}", level - 1),
            config.out_classes,
            size,
            channels * config.out_classes + config.out_classes,
            gflop(channels, config.out_classes, 1, size),
        );
    }

    let layers = table.layers;
    Ok(ModelSummary {
        config: config.clone(),
        input_shape,
        total_params: layers.iter().map(|l| l.params).sum(),
        total_gflop: layers.iter().map(|l| l.gflop).sum(),
        layers,
    })
}

fn gflop(channels_in: usize, channels_out: usize, kernel: usize, size: [usize; 3]) -> f64 {
    let voxels: usize = size.iter().product();
    2.0 * (kernel.pow(3) * channels_in * channels_out * voxels) as f64 / 1e9
}

struct Table<'a> {
    config: &'a UNet3dConfig,
    layers: Vec<LayerRow>,
}

impl Table<'_> {
    fn push(&mut self, name: String, channels: usize, size: [usize; 3], params: usize, gflop: f64) {
        let [x, y, z] = size;
        self.layers.push(LayerRow {
            name,
            output_shape: [channels, x, y, z],
            params,
            gflop,
        });
    }

    /// A convolution with its normalisation (counted with it, as stored in checkpoints).
    fn conv(
        &mut self,
        name: String,
        channels_in: usize,
        channels_out: usize,
        kernel: usize,
        size: [usize; 3],
    ) {
        let norm_params = match self.config.normalisation {
            Normalisation::None => 0,
            // gamma, beta, running mean and running variance.
            Normalisation::Batch => 4 * channels_out,
            Normalisation::Instance => 2 * channels_out,
        };
        let params = channels_in * channels_out * kernel.pow(3) + channels_out + norm_params;
        self.push(
            name,
            channels_out,
            size,
            params,
            gflop(channels_in, channels_out, kernel, size),
        );
    }
}

impl ModelSummary {
    /// A plain-text table with a totals line.
    pub fn table(&self) -> String {
        let shape = |s: [usize; 4]| format!("{} x {} x {} x {}", s[0], s[1], s[2], s[3]);
        let name_width = self
            .layers
            .iter()
            .map(|l| l.name.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let shape_width = self
            .layers
            .iter()
            .map(|l| shape(l.output_shape).len())
            .max()
            .unwrap_or(0)
            .max(12);
        let mut out = format!(
            "{:<name_width$}  {:<shape_width$}  {:>12}  {:>9}\n",
            "layer", "output shape", "params", "GFLOP"
        );
        out.push_str(&format!(
            "{:<name_width$}  {:<shape_width$}  {:>12}  {:>9}\n",
            "input",
            shape(self.input_shape),
            "",
            ""
        ));
        for layer in &self.layers {
            out.push_str(&format!(
                "{:<name_width$}  {:<shape_width$}  {:>12}  {:>9.3}\n",
                layer.name,
                shape(layer.output_shape),
                thousands(layer.params),
                layer.gflop
            ));
        }
        out.push_str(&format!(
            "{:<name_width$}  {:<shape_width$}  {:>12}  {:>9.3}\n",
            "total",
            "",
            thousands(self.total_params),
            self.total_gflop
        ));
        out
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Targets;
    use crate::unet::UNet3d;
    use burn::module::Module;
    use burn::tensor::Device;

    #[test]
    fn seed_model_table() {
        let s = summary(&UNet3dConfig::default(), [4, 160, 160, 16]).unwrap();
        assert_eq!(s.total_params, 16_318_307);
        let first = &s.layers[0];
        assert_eq!(first.name, "encoders.0.conv1");
        assert_eq!(first.output_shape, [32, 160, 160, 16]);
        assert_eq!(first.params, 4 * 32 * 27 + 32);
        // 2 * 27 taps * 4 in * 32 out * 409,600 voxels.
        assert!((first.gflop - 2.0 * 27.0 * 4.0 * 32.0 * 409_600.0 / 1e9).abs() < 1e-12);
        let bottom = s
            .layers
            .iter()
            .find(|l| l.name == "encoders.3.conv2")
            .unwrap();
        assert_eq!(bottom.output_shape, [512, 20, 20, 2]);
        let last = s.layers.last().unwrap();
        assert_eq!(
            (last.name.as_str(), last.output_shape, last.params),
            ("head", [3, 160, 160, 16], 64 * 3 + 3)
        );
        let table = s.table();
        assert!(table.contains("16,318,307"), "{table}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["total_params"], 16_318_307);
        assert_eq!(
            json["layers"][0]["output_shape"],
            serde_json::json!([32, 160, 160, 16])
        );
    }

    #[test]
    fn totals_match_the_built_model_for_every_variant() {
        let device = Device::flex();
        for upsampling in [Upsampling::Nearest, Upsampling::TransposedConv] {
            for normalisation in [
                Normalisation::None,
                Normalisation::Batch,
                Normalisation::Instance,
            ] {
                for (downsampling, deep_supervision) in [
                    (Downsampling::MaxPool, false),
                    (Downsampling::StridedConv, true),
                ] {
                    let config = UNet3dConfig {
                        depth: 3,
                        base_filters: 3,
                        upsampling,
                        normalisation,
                        targets: Targets::Regions,
                        downsampling,
                        deep_supervision,
                        ..UNet3dConfig::default()
                    };
                    let s = summary(&config, [4, 8, 8, 4]).unwrap();
                    let model = UNet3d::new(&config, 0, &device).unwrap();
                    assert_eq!(
                        s.total_params,
                        model.num_params(),
                        "{upsampling:?} {normalisation:?} {downsampling:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn invalid_input_shape_is_an_error() {
        assert!(summary(&UNet3dConfig::default(), [4, 160, 160, 15]).is_err());
        assert!(summary(&UNet3dConfig::default(), [3, 160, 160, 16]).is_err());
    }

    #[test]
    fn nnunet_table_has_strided_convolutions_and_deep_supervision_heads() {
        let config = UNet3dConfig::nnunet();
        let s = summary(&config, [4, 128, 128, 32]).unwrap();
        assert!(!s.layers.iter().any(|l| l.name.ends_with(".pool")));
        let row = |name: &str| s.layers.iter().find(|l| l.name == name).unwrap().clone();
        // Level 1's first convolution: 64 -> 64 channels at the halved grid, stride 2.
        let strided = row("encoders.1.conv1");
        assert_eq!(strided.output_shape, [64, 64, 64, 16]);
        let voxels = 64.0 * 64.0 * 16.0;
        assert!((strided.gflop - 2.0 * 27.0 * 64.0 * 64.0 * voxels / 1e9).abs() < 1e-9);
        // Heads on levels 1 and 2 (128 and 256 channels), none on the bottom.
        let ds0 = row("ds_heads.0");
        assert_eq!(
            (ds0.output_shape, ds0.params),
            ([3, 64, 64, 16], 128 * 3 + 3)
        );
        let ds1 = row("ds_heads.1");
        assert_eq!(
            (ds1.output_shape, ds1.params),
            ([3, 32, 32, 8], 256 * 3 + 3)
        );
        assert!(!s.layers.iter().any(|l| l.name == "ds_heads.2"));
        let model = UNet3d::new(&config, 0, &Device::flex()).unwrap();
        assert_eq!(s.total_params, model.num_params());
    }
}
