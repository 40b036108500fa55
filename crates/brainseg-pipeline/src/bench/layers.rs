//! `--layers`: each convolution of the network alone, on the shapes it sees for one patch: forward,
//! input gradient, weight gradient, and forward + backward through autodiff.
use super::timing::{one_decimal, timed};
use super::{random_tensor, BenchConfig, BenchHeader};
use crate::{Error, Progress, Result};
use brainseg_model::burn::module::Module;
use brainseg_model::burn::nn::conv::Conv3d;
use brainseg_model::burn::tensor::module::{conv3d, conv_transpose3d};
use brainseg_model::burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use brainseg_model::burn::tensor::Tensor;
use brainseg_model::conv::{
    conv3d_layer, is_same_3x3x3, same_conv3d_input_grad, same_conv3d_weight_grad,
};
use brainseg_model::{ModelSummary, UNet3d};
use serde::Serialize;
use std::fmt::Write;

/// One convolution timed alone on its shapes in the network.
#[derive(Debug, Serialize)]
pub struct LayerResult {
    pub name: String,
    /// `[C, X, Y, Z]` in, `[C, X, Y, Z]` out.
    pub input: [usize; 4],
    pub output: [usize; 4],
    pub kernel: usize,
    /// Forward GFLOP (each backward pass costs the same).
    pub gflop: f64,
    pub forward_s: f64,
    pub input_grad_s: f64,
    pub weight_grad_s: f64,
    pub autodiff_forward_backward_s: f64,
}

/// Each convolution of `model` alone, on the shapes `table` gives it for one patch. The 3x3x3
/// layers' backward passes run brainseg-conv's kernels unless `config.burn_conv`; the others run
/// them as burn's autodiff does.
pub(super) fn time_layers(
    model: &UNet3d,
    table: &ModelSummary,
    config: &BenchConfig,
    progress: &mut dyn Progress,
) -> Result<Vec<LayerResult>> {
    let mut convs: Vec<(String, &Conv3d)> = Vec::new();
    for (level, block) in model.encoders.iter().enumerate() {
        convs.push((format!("encoders.{level}.conv1"), &block.conv1));
        convs.push((format!("encoders.{level}.conv2"), &block.conv2));
    }
    for (index, block) in model.decoders.iter().enumerate() {
        convs.push((format!("decoders.{index}.conv1"), &block.conv1));
        convs.push((format!("decoders.{index}.conv2"), &block.conv2));
    }
    convs.push(("head".into(), &model.head));
    let plain_device = brainseg_model::cpu_device();
    let autodiff_device = brainseg_model::cpu_autodiff_device();
    let (warmup, iters) = (config.warmup, config.iters);
    let mut rows = Vec::new();
    for (seed, (name, conv)) in convs.into_iter().enumerate() {
        let row = table
            .layers
            .iter()
            .find(|row| row.name == name)
            .ok_or_else(|| Error::invalid(format!("{name} is not in the layer table")))?;
        let [channels_out, channels_in, kernel, _, _] = conv.weight.dims();
        let [_, x, y, z] = row.output_shape;
        let padding = (kernel - 1) / 2;
        let input = random_tensor([1, channels_in, x, y, z], 2 * seed as u64);
        let output_grad = random_tensor([1, channels_out, x, y, z], 2 * seed as u64 + 1);
        let plain = conv.valid();
        let weight = plain.weight.val();
        let x_plain = Tensor::<5>::from_data(input.clone(), &plain_device);
        let grad_plain = Tensor::<5>::from_data(output_grad.clone(), &plain_device);
        let label = |pass: &str| format!("[bench] {name} {pass}");
        let ours = !config.burn_conv && is_same_3x3x3(conv);
        let forward_s = timed(progress, &label("forward"), warmup, iters, || {
            conv3d_layer(&plain, x_plain.clone())
                .sum()
                .into_scalar::<f32>();
            Ok(String::new())
        })?
        .median();
        let input_grad_s = timed(progress, &label("input grad"), warmup, iters, || {
            let grad = if ours {
                same_conv3d_input_grad(x_plain.clone(), weight.clone(), grad_plain.clone())
            } else {
                conv_input_grad(grad_plain.clone(), weight.clone(), padding)
            };
            grad.sum().into_scalar::<f32>();
            Ok(String::new())
        })?
        .median();
        let weight_grad_s = timed(progress, &label("weight grad"), warmup, iters, || {
            let grad = if ours {
                same_conv3d_weight_grad(x_plain.clone(), weight.clone(), grad_plain.clone())
            } else {
                conv_weight_grad(x_plain.clone(), grad_plain.clone(), padding)
            };
            grad.sum().into_scalar::<f32>();
            Ok(String::new())
        })?
        .median();
        let x_tracked = Tensor::<5>::from_data(input, &autodiff_device).require_grad();
        let grad_tracked = Tensor::<5>::from_data(output_grad, &autodiff_device);
        let autodiff_forward_backward_s =
            timed(progress, &label("autodiff fwd+bwd"), warmup, iters, || {
                let output = conv3d_layer(conv, x_tracked.clone());
                let grads = (output * grad_tracked.clone()).sum().backward();
                let input_grad = x_tracked
                    .grad(&grads)
                    .ok_or_else(|| Error::invalid("no input gradient"))?;
                input_grad.sum().into_scalar::<f32>();
                Ok(String::new())
            })?
            .median();
        rows.push(LayerResult {
            name,
            input: [channels_in, x, y, z],
            output: row.output_shape,
            kernel,
            gflop: row.gflop,
            forward_s,
            input_grad_s,
            weight_grad_s,
            autodiff_forward_backward_s,
        });
    }
    Ok(rows)
}

/// Input gradient of a stride-1 convolution as burn's generic conv3d backward computes it
/// (burn-backend modules/conv.rs `conv3d_x_backward`): a transposed convolution.
fn conv_input_grad(output_grad: Tensor<5>, weight: Tensor<5>, padding: usize) -> Tensor<5> {
    let options = ConvTransposeOptions::new([1; 3], [padding; 3], [0; 3], [1; 3], 1);
    conv_transpose3d(output_grad, weight, None, options)
}

/// Weight gradient of a stride-1 convolution as burn's generic backward computes it
/// (`conv3d_weight_grad_no_groups`): a convolution of the input by the output gradient with batch
/// and channel axes swapped.
fn conv_weight_grad(input: Tensor<5>, output_grad: Tensor<5>, padding: usize) -> Tensor<5> {
    let options = ConvOptions::new([1; 3], [padding; 3], [1; 3], 1);
    conv3d(
        input.swap_dims(0, 1),
        output_grad.swap_dims(0, 1),
        None,
        options,
    )
    .swap_dims(0, 1)
}

/// The layers as a table, seconds with GFLOP/s in brackets, and their totals.
pub(super) fn table(
    header: &BenchHeader,
    layers: &[LayerResult],
    load_at_end: Option<f64>,
) -> String {
    let mut out = String::new();
    let [x, y, z] = header.size;
    let _ = writeln!(out, "CPU: {}", header.cpu.describe());
    let _ = writeln!(
        out,
        "seed U-Net convolutions alone, patch 4x{x}x{y}x{z}, {} thread(s), {} convolution, load {} at start; GFLOP/s in brackets",
        header.threads,
        header.convolution,
        one_decimal(header.load_at_start)
    );
    let _ = writeln!(
        out,
        "{:<20} {:>16} {:>4} {:>8} {:>16} {:>16} {:>16} {:>18}",
        "layer",
        "in -> out C",
        "k",
        "GFLOP",
        "forward s",
        "input grad s",
        "weight grad s",
        "autodiff f+b s"
    );
    let rate = |gflop: f64, s: f64| format!("{s:.3} [{:.0}]", gflop / s);
    for l in layers {
        let _ = writeln!(
            out,
            "{:<20} {:>16} {:>4} {:>8.2} {:>16} {:>16} {:>16} {:>18}",
            l.name,
            format!("{} -> {}", l.input[0], l.output[0]),
            l.kernel,
            l.gflop,
            rate(l.gflop, l.forward_s),
            rate(l.gflop, l.input_grad_s),
            rate(l.gflop, l.weight_grad_s),
            rate(3.0 * l.gflop, l.autodiff_forward_backward_s),
        );
    }
    let total = |f: fn(&LayerResult) -> f64| layers.iter().map(f).sum::<f64>();
    let gflop = total(|l| l.gflop);
    let _ = writeln!(
        out,
        "{:<20} {:>16} {:>4} {:>8.2} {:>16} {:>16} {:>16} {:>18}",
        "total",
        "",
        "",
        gflop,
        rate(gflop, total(|l| l.forward_s)),
        rate(gflop, total(|l| l.input_grad_s)),
        rate(gflop, total(|l| l.weight_grad_s)),
        rate(3.0 * gflop, total(|l| l.autodiff_forward_backward_s)),
    );
    let _ = writeln!(
        out,
        "(the first layer's input gradient is not needed in training; load at end {})",
        one_decimal(load_at_end)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainseg_model::burn::module::Param;
    use brainseg_model::burn::nn::PaddingConfig3d;
    use brainseg_model::burn::tensor::TensorData;

    /// The per-layer backward timings must time what autodiff computes: same gradients, on odd
    /// sizes, for a 3x3x3 and a 1x1x1 kernel.
    #[test]
    fn layer_gradients_match_autodiff() {
        let device = brainseg_model::cpu_autodiff_device();
        for (kernel, [channels_in, channels_out], size) in
            [(3, [3, 4], [5, 4, 3]), (1, [4, 2], [3, 2, 5])]
        {
            let shape = |c: usize| [1, c, size[0], size[1], size[2]];
            let conv = Conv3d {
                weight: Param::from_data(
                    random_tensor([channels_out, channels_in, kernel, kernel, kernel], 1),
                    &device,
                ),
                bias: Some(Param::from_data(
                    TensorData::new(vec![0.5f32; channels_out], [channels_out]),
                    &device,
                )),
                stride: [1; 3],
                kernel_size: [kernel; 3],
                dilation: [1; 3],
                groups: 1,
                padding: PaddingConfig3d::Same,
            };
            let input = Tensor::<5>::from_data(random_tensor(shape(channels_in), 2), &device)
                .require_grad();
            let output_grad =
                Tensor::<5>::from_data(random_tensor(shape(channels_out), 3), &device);
            let grads = (conv.forward(input.clone()) * output_grad.clone())
                .sum()
                .backward();
            let expected_input = input.grad(&grads).unwrap();
            let expected_weight = conv.weight.val().grad(&grads).unwrap();

            let plain = |t: Tensor<5>| t.inner();
            let padding = (kernel - 1) / 2;
            let input_grad = conv_input_grad(
                plain(output_grad.clone()),
                conv.weight.val().inner(),
                padding,
            );
            let weight_grad = conv_weight_grad(plain(input.clone()), plain(output_grad), padding);
            for (got, expected) in [(input_grad, expected_input), (weight_grad, expected_weight)] {
                assert_eq!(got.dims(), expected.dims());
                let got = got.into_data().try_to_vec::<f32>().unwrap();
                let expected = expected.into_data().try_to_vec::<f32>().unwrap();
                let largest = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(largest > 0.1, "a gradient worth comparing");
                for (g, e) in got.iter().zip(&expected) {
                    assert!((g - e).abs() <= 1e-5 * largest, "{g} vs {e}");
                }
            }
        }
    }
}
