//! The 3D U-Net of ellisdg/3DUnetCNN as the seed builds it (`unet_model_3d`), with optional
//! normalisation, leaky ReLU, strided-convolution downsampling, transposed-convolution
//! upsampling and deep-supervision heads (the pieces of nnU-Net's `PlainConvUNet`).
//!
//! Tensors are `[B, C, X, Y, Z]`. Parameter names follow the module fields
//! (`encoders.0.conv1.weight`, `decoders.2.norm2.bias`, `ups.0.weight`, `head.weight`,
//! `ds_heads.0.weight`) and their
//! shapes follow PyTorch (`Conv3d`: `[out, in, k, k, k]`), so checkpoints map one to one.
use crate::Error;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::nn::{BatchNorm, BatchNormConfig, InstanceNorm, InstanceNormConfig, PaddingConfig3d};
use burn::tensor::activation::{leaky_relu, relu, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};
use rand::distr::{Distribution, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{
    Activation, Downsampling, Normalisation, OutputActivation, UNet3dConfig, Upsampling,
    LEAKY_RELU_SLOPE,
};
use crate::conv::{conv3d_layer, conv3d_layer_upsampled_concat};
use crate::ops::max_pool3d_2x;

/// A normalisation layer after a convolution.
#[derive(Module, Debug)]
pub enum Norm {
    Batch(BatchNorm),
    Instance(InstanceNorm),
}

impl Norm {
    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        match self {
            Norm::Batch(norm) => norm.forward(x),
            Norm::Instance(norm) => norm.forward(x),
        }
    }
}

/// Two `conv3x3x3 -> [norm] -> activation` steps; the first convolution has stride 2 in the
/// encoder levels below the top with [`Downsampling::StridedConv`], stride 1 ("same") otherwise.
#[derive(Module, Debug)]
pub struct DoubleConv {
    pub conv1: Conv3d,
    pub norm1: Option<Norm>,
    pub conv2: Conv3d,
    pub norm2: Option<Norm>,
}

impl DoubleConv {
    fn forward(&self, x: Tensor<5>, activation: Activation) -> Tensor<5> {
        let x = norm_act(
            self.norm1.as_ref(),
            activation,
            conv3d_layer(&self.conv1, x),
        );
        norm_act(
            self.norm2.as_ref(),
            activation,
            conv3d_layer(&self.conv2, x),
        )
    }

    /// [`DoubleConv::forward`] of `[upsample_nearest3d_2x(low), skip]`, channels concatenated,
    /// without making that input where the convolution can read its parts.
    fn forward_upsampled_concat(
        &self,
        low: Tensor<5>,
        skip: Tensor<5>,
        activation: Activation,
    ) -> Tensor<5> {
        let x = conv3d_layer_upsampled_concat(&self.conv1, low, skip);
        let x = norm_act(self.norm1.as_ref(), activation, x);
        norm_act(
            self.norm2.as_ref(),
            activation,
            conv3d_layer(&self.conv2, x),
        )
    }
}

/// The non-linearity after each convolution.
pub fn activate(x: Tensor<5>, activation: Activation) -> Tensor<5> {
    match activation {
        Activation::Relu => relu(x),
        Activation::LeakyRelu => leaky_relu(x, LEAKY_RELU_SLOPE),
    }
}

/// A convolution's normalisation and non-linearity.
fn norm_act(norm: Option<&Norm>, activation: Activation, x: Tensor<5>) -> Tensor<5> {
    let x = match norm {
        Some(norm) => norm.forward(x),
        None => x,
    };
    activate(x, activation)
}

/// The network. Build it with [`UNet3d::new`]; the config travels with it (and with checkpoints).
#[derive(Module, Debug)]
pub struct UNet3d {
    /// One block per level, shallowest first.
    pub encoders: Vec<DoubleConv>,
    /// Transposed convolutions, deepest first; empty with nearest-neighbour upsampling.
    pub ups: Vec<ConvTranspose3d>,
    /// One block per decoder level, deepest first (level `depth - 2` down to 0).
    pub decoders: Vec<DoubleConv>,
    /// 1x1x1 convolution to the output channels.
    pub head: Conv3d,
    /// Deep supervision only: 1x1x1 convolutions on the decoder outputs below full resolution,
    /// `ds_heads[k]` at `1 / 2^(k+1)` of the input size; empty without deep supervision.
    pub ds_heads: Vec<Conv3d>,
    #[module(skip)]
    config: UNet3dConfig,
}

/// Draws Keras-default weights (Glorot uniform) from one seeded stream, in construction order,
/// so a seed gives the same model on every backend.
struct Initialiser<'a> {
    rng: ChaCha8Rng,
    device: &'a Device,
    normalisation: Normalisation,
}

impl Initialiser<'_> {
    /// Glorot-uniform values: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).
    fn glorot(&mut self, count: usize, fan_in: usize, fan_out: usize) -> Vec<f32> {
        let bound = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
        let uniform = Uniform::new_inclusive(-bound, bound).expect("finite bound");
        (0..count).map(|_| uniform.sample(&mut self.rng)).collect()
    }

    fn conv(&mut self, channels_in: usize, channels_out: usize, kernel: usize) -> Conv3d {
        self.conv_strided(channels_in, channels_out, kernel, 1)
    }

    /// Stride 1: "same" padding; stride 2 (kernel 3): padding 1, so even sides halve exactly.
    fn conv_strided(
        &mut self,
        channels_in: usize,
        channels_out: usize,
        kernel: usize,
        stride: usize,
    ) -> Conv3d {
        let taps = kernel * kernel * kernel;
        let weight = self.glorot(
            channels_out * channels_in * taps,
            channels_in * taps,
            channels_out * taps,
        );
        Conv3d {
            weight: Param::from_data(
                TensorData::new(weight, [channels_out, channels_in, kernel, kernel, kernel]),
                self.device,
            ),
            bias: Some(Param::from_data(
                TensorData::zeros::<f32, _>([channels_out]),
                self.device,
            )),
            stride: [stride; 3],
            kernel_size: [kernel; 3],
            dilation: [1; 3],
            groups: 1,
            padding: if stride == 1 {
                PaddingConfig3d::Same
            } else {
                let pad = kernel / 2;
                PaddingConfig3d::Explicit(pad, pad, pad)
            },
        }
    }

    /// Kernel 2, stride 2, same channel count; PyTorch's `[in, out, k, k, k]` weight layout.
    fn transposed_conv(&mut self, channels: usize) -> ConvTranspose3d {
        let taps = 8;
        let weight = self.glorot(channels * channels * taps, channels * taps, channels * taps);
        ConvTranspose3d {
            weight: Param::from_data(
                TensorData::new(weight, [channels, channels, 2, 2, 2]),
                self.device,
            ),
            bias: Some(Param::from_data(
                TensorData::zeros::<f32, _>([channels]),
                self.device,
            )),
            stride: [2; 3],
            kernel_size: [2; 3],
            dilation: [1; 3],
            groups: 1,
            padding: [0; 3],
            padding_out: [0; 3],
            channels: [channels, channels],
        }
    }

    fn norm(&self, channels: usize) -> Option<Norm> {
        match self.normalisation {
            Normalisation::None => None,
            Normalisation::Batch => Some(Norm::Batch(
                BatchNormConfig::new(channels).init(self.device),
            )),
            Normalisation::Instance => Some(Norm::Instance(
                InstanceNormConfig::new(channels).init(self.device),
            )),
        }
    }

    fn double_conv(
        &mut self,
        channels_in: usize,
        middle: usize,
        channels_out: usize,
        stride: usize,
    ) -> DoubleConv {
        let conv1 = self.conv_strided(channels_in, middle, 3, stride);
        let norm1 = self.norm(middle);
        let conv2 = self.conv(middle, channels_out, 3);
        let norm2 = self.norm(channels_out);
        DoubleConv {
            conv1,
            norm1,
            conv2,
            norm2,
        }
    }
}

impl UNet3d {
    /// Builds the network with weights drawn from `seed` (same seed, same weights).
    pub fn new(config: &UNet3dConfig, seed: u64, device: &Device) -> Result<Self, Error> {
        config.validate()?;
        let mut init = Initialiser {
            rng: ChaCha8Rng::seed_from_u64(seed),
            device,
            normalisation: config.normalisation,
        };
        let mut encoders = Vec::with_capacity(config.depth);
        let mut channels = config.in_channels;
        for level in 0..config.depth {
            let (middle, out) = config.encoder_channels(level);
            let stride = match config.downsampling {
                Downsampling::StridedConv if level > 0 => 2,
                _ => 1,
            };
            encoders.push(init.double_conv(channels, middle, out, stride));
            channels = out;
        }
        let mut ups = Vec::new();
        let mut decoders = Vec::with_capacity(config.depth - 1);
        for level in (0..config.depth - 1).rev() {
            if config.upsampling == Upsampling::TransposedConv {
                ups.push(init.transposed_conv(channels));
            }
            let skip = config.encoder_channels(level).1;
            decoders.push(init.double_conv(channels + skip, skip, skip, 1));
            channels = skip;
        }
        let head = init.conv(channels, config.out_classes, 1);
        // Drawn after everything else, so the rest of the model is the same with or without them.
        let ds_heads = (1..config.output_count())
            .map(|level| init.conv(config.encoder_channels(level).1, config.out_classes, 1))
            .collect();
        Ok(UNet3d {
            encoders,
            ups,
            decoders,
            head,
            ds_heads,
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &UNet3dConfig {
        &self.config
    }

    /// Checks a `[B, C, X, Y, Z]` input shape before any work is done.
    pub fn check_input_shape(&self, shape: [usize; 5]) -> Result<(), Error> {
        let [batch, channels, x, y, z] = shape;
        if batch == 0 {
            return Err(Error::msg("empty batch: at least one patch is needed"));
        }
        self.config.check_input([channels, x, y, z])
    }

    /// Pre-activation outputs `[B, out_classes, X, Y, Z]`: feed these to a logits loss.
    /// Only the full-resolution head runs, with or without deep supervision.
    pub fn forward_logits(&self, input: Tensor<5>) -> Result<Tensor<5>, Error> {
        let mut outputs = self.run(input, false)?;
        Ok(outputs.remove(0))
    }

    /// Pre-activation outputs of every head, full resolution first: `outputs[k]` is
    /// `[B, out_classes, X / 2^k, Y / 2^k, Z / 2^k]`. Without deep supervision, only the first.
    pub fn forward_deep_supervision(&self, input: Tensor<5>) -> Result<Vec<Tensor<5>>, Error> {
        self.run(input, true)
    }

    fn run(&self, input: Tensor<5>, all_heads: bool) -> Result<Vec<Tensor<5>>, Error> {
        self.check_input_shape(input.dims())?;
        let activation = self.config.activation;
        let last_level = self.encoders.len() - 1;
        let mut skips = Vec::with_capacity(last_level);
        let mut x = input;
        for (level, encoder) in self.encoders.iter().enumerate() {
            if level > 0 && self.config.downsampling == Downsampling::MaxPool {
                x = max_pool3d_2x(x);
            }
            x = encoder.forward(x, activation);
            if level < last_level {
                skips.push(x.clone());
            }
        }
        // Decoder outputs below full resolution, deepest first, for the deep-supervision heads.
        let mut low_resolution = Vec::new();
        for (index, decoder) in self.decoders.iter().enumerate() {
            if index > 0 && all_heads && !self.ds_heads.is_empty() {
                low_resolution.push(x.clone());
            }
            let skip = skips.pop().expect("one skip per decoder level");
            x = match self.ups.get(index) {
                Some(up) => decoder.forward(Tensor::cat(vec![up.forward(x), skip], 1), activation),
                None => decoder.forward_upsampled_concat(x, skip, activation),
            };
        }
        let mut outputs = vec![self.head.forward(x)];
        // low_resolution holds levels depth-2 .. 1; ds_heads[k] belongs to level k + 1.
        for (head, x) in self.ds_heads.iter().zip(low_resolution.into_iter().rev()) {
            outputs.push(head.forward(x));
        }
        Ok(outputs)
    }

    /// Outputs after the configured activation: probabilities with `Sigmoid` (the seed).
    pub fn forward(&self, input: Tensor<5>) -> Result<Tensor<5>, Error> {
        let logits = self.forward_logits(input)?;
        Ok(match self.config.output_activation {
            OutputActivation::Sigmoid => sigmoid(logits),
            OutputActivation::None => logits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Normalisation, Targets};

    fn small(base_filters: usize) -> UNet3dConfig {
        UNet3dConfig {
            base_filters,
            ..UNet3dConfig::default()
        }
    }

    fn values(tensor: Tensor<5>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn seed_model_has_16_318_307_parameters() {
        let model = UNet3d::new(&UNet3dConfig::default(), 0, &Device::flex()).unwrap();
        assert_eq!(model.num_params(), 16_318_307);
    }

    #[test]
    fn parameter_count_follows_the_channel_plan() {
        // depth 2, base 2, 1 input, 1 class, nearest: encoder 1->2->4, 4->4->8 (3x3x3 convs);
        // decoder (8+4)->4->4; head 4->1.
        let conv = |i: usize, o: usize| i * o * 27 + o;
        let expected =
            conv(1, 2) + conv(2, 4) + conv(4, 4) + conv(4, 8) + conv(12, 4) + conv(4, 4) + (4 + 1);
        let config = UNet3dConfig {
            in_channels: 1,
            out_classes: 1,
            depth: 2,
            base_filters: 2,
            ..UNet3dConfig::default()
        };
        let model = UNet3d::new(&config, 0, &Device::flex()).unwrap();
        assert_eq!(model.num_params(), expected);
        // A transposed conv 8->8 (k2) adds 8*8*8 + 8.
        let transposed = UNet3dConfig {
            upsampling: Upsampling::TransposedConv,
            ..config
        };
        let model = UNet3d::new(&transposed, 0, &Device::flex()).unwrap();
        assert_eq!(model.num_params(), expected + 8 * 8 * 8 + 8);
    }

    #[test]
    fn seed_patch_size_gives_per_class_probabilities() {
        let device = Device::flex();
        let model = UNet3d::new(&small(2), 1, &device).unwrap();
        let input = Tensor::<5>::random(
            [1, 4, 160, 160, 16],
            burn::tensor::Distribution::Default,
            &device,
        );
        let output = model.forward(input).unwrap();
        assert_eq!(output.dims(), [1, 3, 160, 160, 16]);
        let probabilities = values(output);
        assert!(probabilities.iter().all(|&p| (0.0..=1.0).contains(&p)));
    }

    #[test]
    fn other_valid_sizes_and_variants_run() {
        let device = Device::flex();
        for (upsampling, normalisation) in [
            (Upsampling::TransposedConv, Normalisation::Batch),
            (Upsampling::Nearest, Normalisation::Instance),
        ] {
            let config = UNet3dConfig {
                depth: 3,
                base_filters: 2,
                upsampling,
                normalisation,
                output_activation: OutputActivation::None,
                targets: Targets::Regions,
                ..UNet3dConfig::default()
            };
            let model = UNet3d::new(&config, 1, &device).unwrap();
            let input = Tensor::<5>::random(
                [2, 4, 8, 12, 4],
                burn::tensor::Distribution::Default,
                &device,
            );
            assert_eq!(model.forward(input).unwrap().dims(), [2, 3, 8, 12, 4]);
        }
    }

    #[test]
    fn invalid_sizes_are_errors_before_running() {
        let device = Device::flex();
        let model = UNet3d::new(&small(2), 1, &device).unwrap();
        let err = model
            .forward(Tensor::zeros([1, 4, 160, 160, 12], &device))
            .unwrap_err();
        assert!(err.to_string().contains("multiple of 8"), "{err}");
        let err = model
            .forward(Tensor::zeros([1, 3, 16, 16, 16], &device))
            .unwrap_err();
        assert!(err.to_string().contains("4 input channels"), "{err}");
    }

    #[test]
    fn invalid_configs_are_errors() {
        let device = Device::flex();
        for config in [
            UNet3dConfig {
                depth: 0,
                ..UNet3dConfig::default()
            },
            UNet3dConfig {
                base_filters: 0,
                ..UNet3dConfig::default()
            },
            UNet3dConfig {
                out_classes: 2,
                targets: Targets::Regions,
                ..UNet3dConfig::default()
            },
        ] {
            assert!(UNet3d::new(&config, 0, &device).is_err());
        }
    }

    #[test]
    fn same_seed_same_model_and_glorot_bounds() {
        let device = Device::flex();
        let a = UNet3d::new(&small(2), 7, &device).unwrap();
        let b = UNet3d::new(&small(2), 7, &device).unwrap();
        let c = UNet3d::new(&small(2), 8, &device).unwrap();
        let weights = |m: &UNet3d| {
            m.encoders[1]
                .conv2
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        assert_eq!(weights(&a), weights(&b));
        assert_ne!(weights(&a), weights(&c));
        // encoders.1.conv2: 4 -> 8 channels, 3x3x3: bound sqrt(6 / (4*27 + 8*27)).
        let bound = (6.0f32 / (12.0 * 27.0)).sqrt();
        let w = weights(&a);
        assert!(w.iter().all(|v| v.abs() <= bound));
        assert!(
            w.iter().any(|v| v.abs() > 0.9 * bound),
            "uses the full range"
        );
        let bias = a.encoders[1]
            .conv2
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(bias, vec![0.0; 8]);
    }

    #[test]
    fn gradients_reach_every_parameter() {
        let device = Device::flex().autodiff();
        let config = UNet3dConfig {
            depth: 2,
            base_filters: 2,
            ..UNet3dConfig::default()
        };
        let model = UNet3d::new(&config, 3, &device).unwrap();
        let input = Tensor::<5>::random(
            [1, 4, 4, 4, 2],
            burn::tensor::Distribution::Default,
            &device,
        );
        let grads = model.forward(input).unwrap().sum().backward();
        assert!(model.encoders[0].conv1.weight.val().grad(&grads).is_some());
        assert!(model
            .head
            .bias
            .as_ref()
            .unwrap()
            .val()
            .grad(&grads)
            .is_some());
    }

    #[test]
    fn leaky_relu_and_relu_by_hand() {
        let device = Device::flex();
        let x = Tensor::<5>::from_data(
            TensorData::new(vec![-2.0f32, -0.5, 0.0, 3.0], [1, 1, 4, 1, 1]),
            &device,
        );
        assert_eq!(
            values(activate(x.clone(), Activation::LeakyRelu)),
            vec![-0.02, -0.005, 0.0, 3.0]
        );
        assert_eq!(
            values(activate(x, Activation::Relu)),
            vec![0.0, 0.0, 0.0, 3.0]
        );
    }

    #[test]
    fn instance_norm_by_hand() {
        let device = Device::flex();
        let config = UNet3dConfig {
            depth: 1,
            base_filters: 2,
            normalisation: Normalisation::Instance,
            ..UNet3dConfig::default()
        };
        let model = UNet3d::new(&config, 0, &device).unwrap();
        // encoders.0.norm1 follows a 2-channel convolution.
        let norm = model.encoders[0].norm1.as_ref().unwrap();
        let Norm::Instance(layer) = norm else {
            panic!("instance norm expected")
        };
        assert!(layer.affine);
        assert_eq!(layer.epsilon, 1e-5);
        // [2 samples, 2 channels, 2 voxels]: each (sample, channel) normalised on its own with
        // the biased variance; gamma 1 and beta 0 at the start.
        // (1, 3): mean 2, var 1. (0, 4): mean 2, var 4. (5, 5): var 0. (-1, -7): mean -4, var 9.
        let x = Tensor::<5>::from_data(
            TensorData::new(
                vec![1.0f32, 3.0, 0.0, 4.0, 5.0, 5.0, -1.0, -7.0],
                [2, 2, 2, 1, 1],
            ),
            &device,
        );
        let eps = 1e-5f64;
        let expected = [
            -1.0 / (1.0 + eps).sqrt(),
            1.0 / (1.0 + eps).sqrt(),
            -2.0 / (4.0 + eps).sqrt(),
            2.0 / (4.0 + eps).sqrt(),
            0.0,
            0.0,
            3.0 / (9.0 + eps).sqrt(),
            -3.0 / (9.0 + eps).sqrt(),
        ];
        let got = values(norm.forward(x));
        for (g, e) in got.iter().zip(expected) {
            assert!((*g as f64 - e).abs() < 1e-6, "{got:?} vs {expected:?}");
        }
        // Per sample and channel: mean 0, variance 1 (up to eps) where the input varies.
        for pair in got.chunks(2).filter(|p| p[0] != 0.0) {
            assert!((pair[0] + pair[1]).abs() < 1e-6);
            let var = (pair[0] * pair[0] + pair[1] * pair[1]) / 2.0;
            assert!((var - 1.0).abs() < 2e-5, "{var}");
        }
    }

    fn nnunet_small(depth: usize) -> UNet3dConfig {
        UNet3dConfig {
            depth,
            base_filters: 2,
            ..UNet3dConfig::nnunet()
        }
    }

    #[test]
    fn strided_convolutions_downsample_and_keep_the_shapes() {
        let device = Device::flex();
        let config = UNet3dConfig {
            depth: 3,
            base_filters: 2,
            downsampling: Downsampling::StridedConv,
            ..UNet3dConfig::default()
        };
        let model = UNet3d::new(&config, 1, &device).unwrap();
        assert_eq!(model.encoders[0].conv1.stride, [1; 3]);
        for level in 1..3 {
            let conv = &model.encoders[level].conv1;
            assert_eq!(conv.stride, [2; 3]);
            assert!(matches!(conv.padding, PaddingConfig3d::Explicit(1, 1, 1)));
            assert_eq!(model.encoders[level].conv2.stride, [1; 3]);
        }
        // Same channel plan as max pooling: the same parameter count.
        let pooled = UNet3d::new(
            &UNet3dConfig {
                downsampling: Downsampling::MaxPool,
                ..config.clone()
            },
            1,
            &device,
        )
        .unwrap();
        assert_eq!(model.num_params(), pooled.num_params());
        let input = Tensor::<5>::random(
            [2, 4, 8, 12, 4],
            burn::tensor::Distribution::Default,
            &device,
        );
        assert_eq!(
            model.forward(input.clone()).unwrap().dims(),
            [2, 3, 8, 12, 4]
        );
        // A different network from the pooled one on the same weights.
        assert_ne!(
            values(model.forward(input.clone()).unwrap()),
            values(pooled.forward(input).unwrap())
        );
        // The strided convolution by hand: a 1-channel 2x2x2 input of ones, all-ones 3x3x3
        // kernel: the one output voxel (centre at 0,0,0, padding 1) sums the 8 real voxels.
        let conv = Conv3d {
            weight: Param::from_data(TensorData::new(vec![1.0f32; 27], [1, 1, 3, 3, 3]), &device),
            bias: None,
            ..model.encoders[1].conv1.clone()
        };
        let out = conv3d_layer(&conv, Tensor::ones([1, 1, 2, 2, 2], &device));
        assert_eq!(values(out), vec![8.0]);
    }

    #[test]
    fn deep_supervision_outputs_one_map_per_decoder_level() {
        let device = Device::flex();
        let input = Tensor::<5>::random(
            [2, 4, 16, 8, 8],
            burn::tensor::Distribution::Default,
            &device,
        );
        for depth in [1, 2, 3, 4] {
            let config = nnunet_small(depth);
            let model = UNet3d::new(&config, 5, &device).unwrap();
            assert_eq!(model.ds_heads.len(), depth.saturating_sub(2));
            let outputs = model.forward_deep_supervision(input.clone()).unwrap();
            assert_eq!(outputs.len(), depth.max(2) - 1, "depth {depth}");
            for (k, output) in outputs.iter().enumerate() {
                assert_eq!(
                    output.dims(),
                    [2, 3, 16 >> k, 8 >> k, 8 >> k],
                    "depth {depth} output {k}"
                );
            }
            // Inference: only the full-resolution head, the same numbers.
            assert_eq!(
                values(model.forward_logits(input.clone()).unwrap()),
                values(outputs[0].clone())
            );
        }
        // The heads read the decoder level of their resolution: ds_heads[k] has
        // encoder_channels(k + 1).1 inputs.
        let model = UNet3d::new(&nnunet_small(4), 5, &device).unwrap();
        assert_eq!(model.ds_heads[0].weight.dims(), [3, 8, 1, 1, 1]);
        assert_eq!(model.ds_heads[1].weight.dims(), [3, 16, 1, 1, 1]);
    }

    #[test]
    fn deep_supervision_heads_do_not_change_the_other_weights() {
        let device = Device::flex();
        let with = UNet3d::new(&nnunet_small(3), 9, &device).unwrap();
        let without = UNet3d::new(
            &UNet3dConfig {
                deep_supervision: false,
                ..nnunet_small(3)
            },
            9,
            &device,
        )
        .unwrap();
        let input = Tensor::<5>::random(
            [1, 4, 8, 8, 4],
            burn::tensor::Distribution::Default,
            &device,
        );
        assert_eq!(
            values(with.forward(input.clone()).unwrap()),
            values(without.forward(input).unwrap())
        );
        assert!(without.ds_heads.is_empty());
        assert_eq!(
            with.num_params(),
            without.num_params() + (8 * 3 + 3),
            "one head on level 1 (8 channels)"
        );
    }

    #[test]
    fn nnunet_network_trains_end_to_end() {
        let device = Device::flex().autodiff();
        let model = UNet3d::new(&nnunet_small(3), 3, &device).unwrap();
        let input = Tensor::<5>::random(
            [1, 4, 8, 8, 4],
            burn::tensor::Distribution::Default,
            &device,
        );
        let outputs = model.forward_deep_supervision(input).unwrap();
        let loss = outputs
            .into_iter()
            .map(|o| o.powi_scalar(2).mean())
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = loss.backward();
        let grad_of = |conv: &Conv3d| conv.weight.val().grad(&grads).is_some();
        assert!(grad_of(&model.encoders[1].conv1), "strided convolution");
        assert!(grad_of(&model.ds_heads[0]));
        assert!(grad_of(&model.head));
        assert!(model.ups[0].weight.val().grad(&grads).is_some());
        let Some(Norm::Instance(norm)) = &model.decoders[1].norm2 else {
            panic!("instance norm expected")
        };
        assert!(norm.gamma.as_ref().unwrap().val().grad(&grads).is_some());
    }
}
