//! The U-Net's 3x3x3 "same" convolutions as a burn backend extension.
//!
//! On the CPU (flex) they run brainseg-conv's shifted-GEMM kernels, forward and both gradients,
//! which flex's generic convolution trails 2-8x on these shapes (its weight gradient most). Other
//! backends keep burn's own convolution (cuDNN on libtorch). Autodiff gets a handwritten
//! backward pass calling the same kernels.
/// Direct 27-tap sums instead of Winograd in the CPU kernels, process-wide.
pub use brainseg_conv::{
    bf16_in_use, bf16_supported, direct_convolution, use_bf16, use_direct_convolution, CacheSizes,
};
use brainseg_conv::{Conv3x3x3, InputPart};

/// What the CPU's convolutions multiply in: forward passes and input gradients (the weight
/// gradient and everything outside the convolutions' products stay f32, and so do the weights).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Precision {
    /// bf16 where the CPU has AVX512_BF16, else f32.
    #[default]
    Auto,
    /// bf16 products with f32 sums (needs AVX512_BF16).
    Bf16,
    /// f32 throughout: the exact path.
    F32,
}

impl Precision {
    /// Sets the precision process-wide; returns the one in effect ("bf16" or "f32"), or an error
    /// for bf16 on a CPU without it.
    pub fn apply(self) -> Result<&'static str, String> {
        if self == Precision::Bf16 && !bf16_supported() {
            return Err("--precision bf16: this CPU has no AVX512_BF16; use f32 or auto".into());
        }
        let bf16 = brainseg_conv::use_bf16(self != Precision::F32);
        Ok(if bf16 { "bf16" } else { "f32" })
    }

    /// `Auto` made definite for this CPU (what a training run records, so that it means the same
    /// on another machine).
    pub fn resolved(self) -> Precision {
        match self {
            Precision::Auto if bf16_supported() => Precision::Bf16,
            Precision::Auto => Precision::F32,
            definite => definite,
        }
    }
}
use burn::backend::ops::{ConvOptions, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::nn::conv::Conv3d;
use burn::nn::PaddingConfig3d;
use burn::tensor::{DType, Tensor, TensorData};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::{Autodiff, NodeId};
use burn_flex::FlexTensor;
use std::sync::atomic::{AtomicBool, Ordering};

/// Kernel 3, stride 1, padding 1: the output has the input's spatial size.
fn same_options() -> ConvOptions<3> {
    ConvOptions::new([1; 3], [1; 3], [1; 3], 1)
}

/// Set: every layer takes burn's own convolution (so benchmarks can time the two side by side).
static BURN_CONVOLUTION: AtomicBool = AtomicBool::new(false);

/// Routes every U-Net convolution through burn's own `conv3d` (`true`) or our kernels (`false`,
/// the default), process-wide.
pub fn use_burn_convolution(on: bool) {
    BURN_CONVOLUTION.store(on, Ordering::Relaxed);
}

/// A convolution layer of the U-Net: [`same_conv3d`] for the 3x3x3, stride-1, "same" layers
/// with a bias (all but the head), burn's `Conv3d::forward` otherwise.
pub fn conv3d_layer(conv: &Conv3d, x: Tensor<5>) -> Tensor<5> {
    match &conv.bias {
        Some(bias) if is_same_3x3x3(conv) && !BURN_CONVOLUTION.load(Ordering::Relaxed) => {
            same_conv3d(x, conv.weight.val(), bias.val())
        }
        _ => conv.forward(x),
    }
}

/// Kernel 3, stride 1, no dilation, one group, padding "same".
pub fn is_same_3x3x3(conv: &Conv3d) -> bool {
    conv.kernel_size == [3; 3]
        && conv.stride == [1; 3]
        && conv.dilation == [1; 3]
        && conv.groups == 1
        && matches!(conv.padding, PaddingConfig3d::Same)
}

/// A decoder level's first convolution layer on `[upsample_nearest3d_2x(low), skip]` (channels
/// concatenated): on the CPU our kernels read the two parts directly.
pub fn conv3d_layer_upsampled_concat(conv: &Conv3d, low: Tensor<5>, skip: Tensor<5>) -> Tensor<5> {
    match &conv.bias {
        Some(bias) if is_same_3x3x3(conv) && !BURN_CONVOLUTION.load(Ordering::Relaxed) => {
            Tensor::from_dispatch(<Dispatch as SameConv3dOps>::same_conv3d_upsampled_concat(
                low.into_dispatch(),
                skip.into_dispatch(),
                conv.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
            ))
        }
        _ => conv.forward(Tensor::cat(
            vec![crate::ops::upsample_nearest3d_2x(low), skip],
            1,
        )),
    }
}

/// The input gradient of [`same_conv3d`] for the output gradient `output_grad` (benchmarks time
/// the passes one by one; training gets it through autodiff).
pub fn same_conv3d_input_grad(
    x: Tensor<5>,
    weight: Tensor<5>,
    output_grad: Tensor<5>,
) -> Tensor<5> {
    Tensor::from_dispatch(<Dispatch as SameConv3dOps>::same_conv3d_x_backward(
        x.into_dispatch(),
        weight.into_dispatch(),
        output_grad.into_dispatch(),
    ))
}

/// The weight gradient of [`same_conv3d`], `[Cout, Cin, 3, 3, 3]`.
pub fn same_conv3d_weight_grad(
    x: Tensor<5>,
    weight: Tensor<5>,
    output_grad: Tensor<5>,
) -> Tensor<5> {
    Tensor::from_dispatch(<Dispatch as SameConv3dOps>::same_conv3d_weight_backward(
        x.into_dispatch(),
        weight.into_dispatch(),
        output_grad.into_dispatch(),
    ))
}

/// `y = conv3d(x, weight) + bias` with a 3x3x3 kernel, stride 1 and padding 1; `x` is
/// `[B, Cin, X, Y, Z]`, `weight` `[Cout, Cin, 3, 3, 3]`, `bias` `[Cout]`.
pub fn same_conv3d(x: Tensor<5>, weight: Tensor<5>, bias: Tensor<1>) -> Tensor<5> {
    Tensor::from_dispatch(<Dispatch as SameConv3dOps>::same_conv3d(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}

/// The extension: the forward pass and the gradients the autodiff backward pass needs. The
/// default bodies are burn's own convolution, for the backends without a kernel of ours.
#[backend_extension(Flex, LibTorch: cfg(feature = "cuda"), Autodiff)]
pub trait SameConv3dOps: Backend {
    fn same_conv3d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv3d(x, weight, Some(bias), same_options())
    }

    fn same_conv3d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv3d_x_backward(x, weight, output_grad, same_options())
    }

    fn same_conv3d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv3d_weight_backward(x, weight, output_grad, same_options())
    }

    fn same_conv3d_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv3d_bias_backward(x, bias, output_grad)
    }

    /// [`SameConv3dOps::same_conv3d`] of a decoder's input, the lower level `low` upsampled x2
    /// (nearest) and then the skip connection `skip` along the channels. By default (and under
    /// autodiff, which differentiates it) the input is made with tensor ops first.
    fn same_conv3d_upsampled_concat(
        low: FloatTensor<Self>,
        skip: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let upsampled = crate::ops::upsample_by_expansion::<Self>(low);
        Self::same_conv3d(Self::float_cat(vec![upsampled, skip], 1), weight, bias)
    }

    /// Input and weight gradients together (a backend can share work between them).
    fn same_conv3d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        (
            Self::same_conv3d_x_backward(x.clone(), weight.clone(), output_grad.clone()),
            Self::same_conv3d_weight_backward(x, weight, output_grad),
        )
    }
}

/// libtorch: burn's generic weight gradient (a convolution with the whole volume as kernel) is
/// what cuDNN does worst, so both gradients come from libtorch's own autograd, i.e. cuDNN's
/// backward kernels, at the price of recomputing the forward convolution.
#[cfg(feature = "cuda")]
impl SameConv3dOps for burn::backend::LibTorch {
    fn same_conv3d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        tch::with_grad(|| {
            let x_leaf = x.tensor.detach().set_requires_grad(true);
            let weight_leaf = weight.tensor.detach().set_requires_grad(true);
            let output =
                x_leaf.conv3d::<tch::Tensor>(&weight_leaf, None, [1; 3], [1; 3], [1; 3], 1);
            // The gradients of sum(y * g) are the vector-Jacobian products with g.
            let objective = (output * &output_grad.tensor).sum(None);
            let mut grads =
                tch::Tensor::run_backward(&[objective], &[&x_leaf, &weight_leaf], false, false);
            let weight_grad = grads.pop().expect("two gradients");
            let input_grad = grads.pop().expect("two gradients");
            (
                burn_tch::TchTensor::new(input_grad),
                burn_tch::TchTensor::new(weight_grad),
            )
        })
    }

    fn same_conv3d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::same_conv3d_backward(x, weight, output_grad).0
    }

    fn same_conv3d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::same_conv3d_backward(x, weight, output_grad).1
    }
}

/// The kernel's sizes from `x` (`[B, Cin, X, Y, Z]`) and the output channels.
fn conv_shape(x: &FlexTensor, channels_out: usize) -> Conv3x3x3 {
    let dims = x.shape();
    Conv3x3x3 {
        batch: dims[0],
        channels_in: dims[1],
        channels_out,
        size: [dims[2], dims[3], dims[4]],
    }
}

/// The f32 values in memory order (a copy only when the tensor is a strided view).
pub(crate) fn values(tensor: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(
            tensor
                .to_contiguous()
                .as_slice::<f32>()
                .expect("contiguous")
                .to_vec(),
        ),
    }
}

pub(crate) fn flex_tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn all_f32(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

impl SameConv3dOps for Flex {
    fn same_conv3d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        if !all_f32(&[&x, &weight, &bias]) {
            return Self::conv3d(x, weight, Some(bias), same_options());
        }
        let channels_out = weight.shape()[0];
        let conv = conv_shape(&x, channels_out);
        let out = conv.forward(&values(&x), &values(&weight), &values(&bias));
        let [nx, ny, nz] = conv.size;
        flex_tensor(out, vec![conv.batch, channels_out, nx, ny, nz])
    }

    fn same_conv3d_upsampled_concat(
        low: FlexTensor,
        skip: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
    ) -> FlexTensor {
        if !all_f32(&[&low, &skip, &weight, &bias]) {
            let upsampled = <Self as crate::ops::UpsampleOps>::upsample_nearest3d_2x(low);
            return Self::same_conv3d(Self::float_cat(vec![upsampled, skip], 1), weight, bias);
        }
        let low_channels = low.shape()[1];
        let channels_out = weight.shape()[0];
        let mut conv = conv_shape(&skip, channels_out);
        let skip_channels = conv.channels_in;
        conv.channels_in += low_channels;
        let (low, skip) = (values(&low), values(&skip));
        let parts = [
            InputPart::Upsampled {
                values: &low,
                channels: low_channels,
            },
            InputPart::Full {
                values: &skip,
                channels: skip_channels,
            },
        ];
        let out = conv.forward_parts(&parts, &values(&weight), &values(&bias));
        let [nx, ny, nz] = conv.size;
        flex_tensor(out, vec![conv.batch, channels_out, nx, ny, nz])
    }

    fn same_conv3d_x_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
    ) -> FlexTensor {
        if !all_f32(&[&x, &weight, &output_grad]) {
            return Self::conv3d_x_backward(x, weight, output_grad, same_options());
        }
        let conv = conv_shape(&x, weight.shape()[0]);
        let grad = conv.input_grad(&values(&output_grad), &values(&weight));
        flex_tensor(grad, x.shape().to_vec())
    }

    fn same_conv3d_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
    ) -> FlexTensor {
        if !all_f32(&[&x, &weight, &output_grad]) {
            return Self::conv3d_weight_backward(x, weight, output_grad, same_options());
        }
        let conv = conv_shape(&x, weight.shape()[0]);
        let grad = conv.weight_grad(&values(&x), &values(&output_grad));
        flex_tensor(grad, weight.shape().to_vec())
    }

    fn same_conv3d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        if !all_f32(&[&x, &weight, &output_grad]) {
            // The one-gradient methods fall back to burn's convolution for other dtypes.
            return (
                Self::same_conv3d_x_backward(x.clone(), weight.clone(), output_grad.clone()),
                Self::same_conv3d_weight_backward(x, weight, output_grad),
            );
        }
        let conv = conv_shape(&x, weight.shape()[0]);
        let (input_grad, weight_grad) =
            conv.backward(&values(&x), &values(&output_grad), &values(&weight));
        (
            flex_tensor(input_grad, x.shape().to_vec()),
            flex_tensor(weight_grad, weight.shape().to_vec()),
        )
    }

    fn same_conv3d_bias_backward(
        x: FlexTensor,
        bias: FlexTensor,
        output_grad: FlexTensor,
    ) -> FlexTensor {
        if !all_f32(&[&output_grad]) {
            return Self::conv3d_bias_backward(x, bias, output_grad);
        }
        let conv = conv_shape(&x, bias.shape()[0]);
        flex_tensor(conv.bias_grad(&values(&output_grad)), bias.shape().to_vec())
    }
}

impl<B: SameConv3dOps, C: CheckpointStrategy> SameConv3dOps for Autodiff<B, C> {
    fn same_conv3d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SameConv3dBackward;

        impl<B: SameConv3dOps> Backward<B, 3> for SameConv3dBackward {
            type State = (NodeId, NodeId, NodeId);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_weight, node_bias] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, weight_state, bias_state) = ops.state;
                let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
                let weight: FloatTensor<B> = checkpointer.retrieve_node_output(weight_state);
                let bias: FloatTensor<B> = checkpointer.retrieve_node_output(bias_state);
                match (node_x, node_weight) {
                    (Some(node_x), Some(node_weight)) => {
                        let (dx, dw) = B::same_conv3d_backward(x.clone(), weight, grad.clone());
                        grads.register::<B>(node_x.id, dx);
                        grads.register::<B>(node_weight.id, dw);
                    }
                    (Some(node), None) => {
                        let dx = B::same_conv3d_x_backward(x.clone(), weight, grad.clone());
                        grads.register::<B>(node.id, dx);
                    }
                    (None, Some(node)) => {
                        let dw = B::same_conv3d_weight_backward(x.clone(), weight, grad.clone());
                        grads.register::<B>(node.id, dw);
                    }
                    (None, None) => {}
                }
                if let Some(node) = node_bias {
                    grads.register::<B>(node.id, B::same_conv3d_bias_backward(x, bias, grad));
                }
            }
        }

        match SameConv3dBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    prep.checkpoint(&bias),
                );
                let output = B::same_conv3d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::same_conv3d(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::conv3d;
    use burn::tensor::{Device, Distribution};

    fn values_of<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().unwrap()
    }

    fn relative_error(got: &[f32], want: &[f32]) -> f32 {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        got.iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
            / scale
    }

    /// Forward and the three gradients of `sum(y * r)` (a random output gradient `r`), ours
    /// against burn's own conv3d on the same autodiff device.
    #[test]
    fn matches_burns_convolution_and_its_gradients() {
        let device = Device::flex().autodiff();
        let shapes = [
            (1, 3, 5, [7, 4, 5]),
            (2, 4, 2, [2, 9, 3]),
            (1, 1, 1, [1, 1, 1]),
            (2, 6, 8, [10, 3, 12]),
            (1, 16, 9, [4, 4, 2]),
            // 16+ channels both ways: Winograd forward and input gradient.
            (2, 16, 20, [6, 5, 9]),
            (1, 24, 16, [3, 8, 10]),
        ];
        for (seed, (batch, cin, cout, [nx, ny, nz])) in shapes.into_iter().enumerate() {
            device.seed(seed as u64);
            let uniform = Distribution::Uniform(-1.0, 1.0);
            let x = Tensor::<5>::random([batch, cin, nx, ny, nz], uniform, &device);
            let weight = Tensor::<5>::random([cout, cin, 3, 3, 3], uniform, &device);
            let bias = Tensor::<1>::random([cout], uniform, &device);
            let r = Tensor::<5>::random([batch, cout, nx, ny, nz], uniform, &device);

            let run = |ours: bool| {
                let (x, w, b) = (
                    x.clone().require_grad(),
                    weight.clone().require_grad(),
                    bias.clone().require_grad(),
                );
                let y = if ours {
                    same_conv3d(x.clone(), w.clone(), b.clone())
                } else {
                    conv3d(x.clone(), w.clone(), Some(b.clone()), same_options())
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                [
                    values_of(y),
                    values_of(x.grad(&grads).unwrap()),
                    values_of(w.grad(&grads).unwrap()),
                    values_of(b.grad(&grads).unwrap()),
                ]
            };
            let (ours, reference) = (run(true), run(false));
            for (name, (a, b)) in ["output", "input grad", "weight grad", "bias grad"]
                .iter()
                .zip(ours.iter().zip(&reference))
            {
                let error = relative_error(a, b);
                assert!(
                    error < 1e-4,
                    "{name} of {batch}x{cin}->{cout} {nx}x{ny}x{nz}: relative error {error:e}"
                );
            }
        }
    }

    /// A decoder's first layer reading its two parts gives the bits of the layer on the
    /// upsampled, concatenated input: without autodiff (our kernel reads the parts while
    /// padding) and with it (tensor ops), gradients to both parts included.
    #[test]
    fn upsampled_concat_layer_equals_the_layer_on_the_made_input() {
        use burn::nn::conv::Conv3dConfig;
        for device in [Device::flex(), Device::flex().autodiff()] {
            device.seed(3);
            let uniform = Distribution::Uniform(-1.0, 1.0);
            // 12 + 8 = 20 channels in, 16 out: the Winograd path.
            let conv = Conv3dConfig::new([20, 16], [3, 3, 3])
                .with_padding(PaddingConfig3d::Same)
                .init(&device);
            let low = Tensor::<5>::random([2, 12, 2, 3, 4], uniform, &device);
            let skip = Tensor::<5>::random([2, 8, 4, 6, 8], uniform, &device);
            let r = Tensor::<5>::random([2, 16, 4, 6, 8], uniform, &device);
            let run = |fused: bool| {
                let (low, skip) = if device.is_autodiff() {
                    (low.clone().require_grad(), skip.clone().require_grad())
                } else {
                    (low.clone(), skip.clone())
                };
                let y = if fused {
                    conv3d_layer_upsampled_concat(&conv, low.clone(), skip.clone())
                } else {
                    let up = crate::ops::upsample_nearest3d_2x(low.clone());
                    conv3d_layer(&conv, Tensor::cat(vec![up, skip.clone()], 1))
                };
                let mut out = vec![values_of(y.clone())];
                if device.is_autodiff() {
                    let grads = (y * r.clone()).sum().backward();
                    out.push(values_of(low.grad(&grads).unwrap()));
                    out.push(values_of(skip.grad(&grads).unwrap()));
                }
                out.into_iter()
                    .map(|v| v.into_iter().map(f32::to_bits).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            };
            let fused = run(true);
            assert!(fused == run(false), "autodiff {}", device.is_autodiff());
            assert_eq!(fused[0].len(), 2 * 16 * 4 * 6 * 8);
        }
    }

    /// libtorch, on its CPU here (the same calls run cuDNN on a GPU): forward and the three
    /// gradients against flex's, both through our extension.
    #[cfg(feature = "cuda")]
    #[test]
    #[allow(deprecated)] // burn-tch is deprecated upstream but is the road to cuDNN
    fn libtorch_path_matches_flex() {
        let flex = Device::flex().autodiff();
        let torch = Device::libtorch().autodiff();
        let uniform = Distribution::Uniform(-1.0, 1.0);
        flex.seed(3);
        let (batch, cin, cout, [nx, ny, nz]) = (2, 3, 4, [5, 6, 7]);
        let data = [
            Tensor::<5>::random([batch, cin, nx, ny, nz], uniform, &flex).into_data(),
            Tensor::<5>::random([cout, cin, 3, 3, 3], uniform, &flex).into_data(),
            Tensor::<1>::random([cout], uniform, &flex).into_data(),
            Tensor::<5>::random([batch, cout, nx, ny, nz], uniform, &flex).into_data(),
        ];
        let run = |device: &Device| {
            let x = Tensor::<5>::from_data(data[0].clone(), device).require_grad();
            let w = Tensor::<5>::from_data(data[1].clone(), device).require_grad();
            let b = Tensor::<1>::from_data(data[2].clone(), device).require_grad();
            let r = Tensor::<5>::from_data(data[3].clone(), device);
            let y = same_conv3d(x.clone(), w.clone(), b.clone());
            let grads = (y.clone() * r).sum().backward();
            [
                values_of(y),
                values_of(x.grad(&grads).unwrap()),
                values_of(w.grad(&grads).unwrap()),
                values_of(b.grad(&grads).unwrap()),
            ]
        };
        let (ours, libtorch) = (run(&flex), run(&torch));
        for (name, (a, b)) in ["output", "input grad", "weight grad", "bias grad"]
            .iter()
            .zip(libtorch.iter().zip(&ours))
        {
            let error = relative_error(a, b);
            assert!(error < 1e-4, "libtorch {name}: relative error {error:e}");
        }
    }
}
