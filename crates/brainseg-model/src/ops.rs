//! 3-D max pooling and nearest-neighbour upsampling built from tensor ops (burn has neither in
//! 3-D), so autodiff differentiates them: the pooling gradient flows to the window's maximum
//! (one voxel per window even on ties), the upsampling gradient sums the 8 copies.
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::tensor::{DType, Shape, Tensor};
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::Autodiff;
use burn_flex::FlexTensor;

/// Max pooling, kernel 2, stride 2, over the three spatial axes of `[B, C, X, Y, Z]`.
/// Sides must be even (the caller checks shapes up front).
pub fn max_pool3d_2x(input: Tensor<5>) -> Tensor<5> {
    let [_, _, x, y, z] = input.dims();
    debug_assert!(
        x % 2 == 0 && y % 2 == 0 && z % 2 == 0,
        "odd side {x}x{y}x{z}"
    );
    Tensor::from_dispatch(<Dispatch as PoolOps>::max_pool3d_2x(input.into_dispatch()))
}

/// The pooling as a backend extension: flex without autodiff (inference) takes each 2x2x2
/// block's maximum in one pass, where burn's general 2-D pooling kernel and a max over X pairs
/// cost 8% of a whole-scan prediction; every other backend, autodiff included, keeps the tensor
/// ops (the gradient flows to one voxel of each window).
#[backend_extension(Flex, LibTorch: cfg(feature = "cuda"), Autodiff)]
pub trait PoolOps: Backend {
    fn max_pool3d_2x(x: FloatTensor<Self>) -> FloatTensor<Self> {
        max_pool_by_tensor_ops::<Self>(x)
    }
}

/// burn's 2-D pooling kernel over (Y, Z), then the max of each X pair: forward as fast as a
/// rank-8 reshape with three `max_dim`s, backward about 6x faster.
fn max_pool_by_tensor_ops<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let [batch, channels, nx, ny, nz] = x.shape().dims::<5>();
    let planes = B::float_reshape(x, Shape::new([batch, channels * nx, ny, nz]));
    let pooled_yz = B::max_pool2d(planes, [2, 2], [2, 2], [0, 0], [1, 1], false);
    let pairs = B::float_reshape(
        pooled_yz,
        Shape::new([batch, channels, nx / 2, 2, (ny / 2) * (nz / 2)]),
    );
    B::float_reshape(
        B::float_max_dim(pairs, 3),
        Shape::new([batch, channels, nx / 2, ny / 2, nz / 2]),
    )
}

impl PoolOps for Flex {
    fn max_pool3d_2x(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return max_pool_by_tensor_ops::<Self>(x);
        }
        let [batch, channels, nx, ny, nz] = x.shape().dims::<5>();
        let input = crate::conv::values(&x);
        let (ox, oy, oz) = (nx / 2, ny / 2, nz / 2);
        let mut out = Vec::with_capacity(batch * channels * ox * oy * oz);
        for volume in input.chunks_exact(nx * ny * nz) {
            for i in 0..ox {
                for j in 0..oy {
                    let row = |di: usize, dj: usize| {
                        &volume[((2 * i + di) * ny + 2 * j + dj) * nz..][..nz]
                    };
                    let rows = [row(0, 0), row(0, 1), row(1, 0), row(1, 1)];
                    out.extend((0..oz).map(|k| {
                        rows.iter()
                            .flat_map(|r| [r[2 * k], r[2 * k + 1]])
                            .fold(f32::NEG_INFINITY, f32::max)
                    }));
                }
            }
        }
        crate::conv::flex_tensor(out, vec![batch, channels, ox, oy, oz])
    }
}

#[cfg(feature = "cuda")]
impl PoolOps for burn::backend::LibTorch {}

impl<B: PoolOps, C: CheckpointStrategy> PoolOps for Autodiff<B, C> {}

/// Nearest-neighbour x2 upsampling of the three spatial axes of `[B, C, X, Y, Z]`.
pub fn upsample_nearest3d_2x(input: Tensor<5>) -> Tensor<5> {
    Tensor::from_dispatch(<Dispatch as UpsampleOps>::upsample_nearest3d_2x(
        input.into_dispatch(),
    ))
}

/// The upsampling as a backend extension: flex without autodiff (inference) copies each value
/// into its 2x2x2 block directly, where the tensor ops below walk a rank-8 strided view one
/// element at a time (about a tenth of a whole-scan prediction); every other backend, autodiff
/// included (which differentiates the tensor ops), keeps the tensor ops.
#[backend_extension(Flex, LibTorch: cfg(feature = "cuda"), Autodiff)]
pub trait UpsampleOps: Backend {
    fn upsample_nearest3d_2x(x: FloatTensor<Self>) -> FloatTensor<Self> {
        upsample_by_expansion::<Self>(x)
    }
}

/// Reshape to `[B, C, X, 1, Y, 1, Z, 1]`, expand the unit axes to 2, reshape back.
pub(crate) fn upsample_by_expansion<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let dims = x.shape().dims::<5>();
    let [batch, channels, nx, ny, nz] = dims;
    let unit = B::float_reshape(x, Shape::new([batch, channels, nx, 1, ny, 1, nz, 1]));
    let blocks = B::float_expand(unit, Shape::new([batch, channels, nx, 2, ny, 2, nz, 2]));
    B::float_reshape(
        blocks,
        Shape::new([batch, channels, 2 * nx, 2 * ny, 2 * nz]),
    )
}

impl UpsampleOps for Flex {
    fn upsample_nearest3d_2x(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return upsample_by_expansion::<Self>(x);
        }
        let [batch, channels, nx, ny, nz] = x.shape().dims::<5>();
        let input = crate::conv::values(&x);
        // Written in order, never zeroed first: a zeroed allocation this large comes fresh from
        // the system each time instead of reusing freed memory, and the peak grows by it.
        let mut out = Vec::with_capacity(input.len() * 8);
        for plane in input.chunks_exact(ny * nz) {
            let plane_start = out.len();
            for row in plane.chunks_exact(nz) {
                let row_start = out.len();
                out.extend(row.iter().flat_map(|&v| [v, v]));
                out.extend_from_within(row_start..);
            }
            out.extend_from_within(plane_start..);
        }
        crate::conv::flex_tensor(out, vec![batch, channels, 2 * nx, 2 * ny, 2 * nz])
    }
}

#[cfg(feature = "cuda")]
impl UpsampleOps for burn::backend::LibTorch {}

impl<B: UpsampleOps, C: CheckpointStrategy> UpsampleOps for Autodiff<B, C> {}

/// Target maps (labels, one-hot classes or regions) at `1 / factor` of their size for a
/// deep-supervision output: in each `factor^3` block, the voxel at offset `factor / 2` along
/// every axis. That is what nnU-Net's `DownsampleSegForDSTransform` gets from PyTorch's
/// `interpolate(mode = "nearest-exact")` for these power-of-two scales (source index
/// `floor((i + 0.5) * factor)`), so each downsampled map stays 0/1 and, picking one voxel,
/// commutes with turning labels into regions. `factor` must divide every spatial side.
pub fn downsample_nearest(target: Tensor<5>, factor: usize) -> Tensor<5> {
    if factor == 1 {
        return target;
    }
    let [batch, channels, x, y, z] = target.dims();
    assert!(
        factor > 0 && x % factor == 0 && y % factor == 0 && z % factor == 0,
        "{x}x{y}x{z} is not divisible by {factor}"
    );
    let (nx, ny, nz) = (x / factor, y / factor, z / factor);
    let pick = factor / 2;
    target
        .reshape([batch * channels * nx, factor, ny, factor, nz, factor])
        .narrow(1, pick, 1)
        .narrow(3, pick, 1)
        .narrow(5, pick, 1)
        .reshape([batch, channels, nx, ny, nz])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn values(tensor: Tensor<5>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Input `[1, 1, 2, 2, 4]`: two pooling windows along z; value = 100*x + 10*y + z, with one
    /// window's maximum moved to an inner voxel to show the gradient goes to the argmax.
    fn pool_input() -> Vec<f32> {
        let mut v = Vec::new();
        for x in 0..2 {
            for y in 0..2 {
                for z in 0..4 {
                    v.push((100 * x + 10 * y + z) as f32);
                }
            }
        }
        // Voxel (0, 1, 2) becomes the largest of the second window (z in 2..4).
        v[4 + 2] = 500.0;
        v
    }

    #[test]
    fn max_pool_forward_and_gradient_by_hand() {
        let device = Device::flex().autodiff();
        let input = Tensor::<5>::from_data(TensorData::new(pool_input(), [1, 1, 2, 2, 4]), &device)
            .require_grad();
        let pooled = max_pool3d_2x(input.clone());
        assert_eq!(pooled.dims(), [1, 1, 1, 1, 2]);
        // Window z 0..2: max is voxel (1,1,1) = 111; window z 2..4: voxel (0,1,2) = 500.
        assert_eq!(values(pooled.clone()), vec![111.0, 500.0]);

        // Loss = 2*first + 3*second: gradient 2 at (1,1,1), 3 at (0,1,2), zero elsewhere.
        let weights =
            Tensor::<5>::from_data(TensorData::new(vec![2.0f32, 3.0], [1, 1, 1, 1, 2]), &device);
        let grads = (pooled * weights).sum().backward();
        let grad = values(input.grad(&grads).unwrap());
        let mut expected = vec![0.0f32; 16];
        expected[4 + 2] = 3.0; // (0,1,2)
        expected[8 + 4 + 1] = 2.0; // (1,1,1)
        assert_eq!(grad, expected);
    }

    #[test]
    fn max_pool_tie_sends_the_whole_gradient_to_one_voxel() {
        let device = Device::flex().autodiff();
        let input = Tensor::<5>::ones([1, 1, 2, 2, 2], &device).require_grad();
        let grads = max_pool3d_2x(input.clone()).sum().backward();
        let grad = values(input.grad(&grads).unwrap());
        assert_eq!(grad.iter().sum::<f32>(), 1.0);
        assert_eq!(grad.iter().filter(|&&g| g == 1.0).count(), 1);
    }

    #[test]
    fn max_pool_keeps_batch_and_channels_apart() {
        let device = Device::flex();
        // [2, 3, 2, 2, 2]: each (batch, channel) window holds one constant, 10*b + c.
        let data: Vec<f32> = (0..2)
            .flat_map(|b| (0..3).flat_map(move |c| std::iter::repeat_n((10 * b + c) as f32, 8)))
            .collect();
        let input = Tensor::<5>::from_data(TensorData::new(data, [2, 3, 2, 2, 2]), &device);
        let pooled = max_pool3d_2x(input);
        assert_eq!(pooled.dims(), [2, 3, 1, 1, 1]);
        assert_eq!(values(pooled), vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
    }

    #[test]
    fn max_pool_loop_equals_the_tensor_ops() {
        // flex's loop (no autodiff) against burn's pooling kernel and max_dim, 2 batches, 3
        // channels, uneven sides, values with ties and negatives; then by hand on one window.
        let (shape, n) = ([2, 3, 4, 6, 8], 2 * 3 * 4 * 6 * 8);
        let data: Vec<f32> = (0..n).map(|i| (i * 37 % 101) as f32 - 50.0).collect();
        let input = FlexTensor::from_data(TensorData::new(data.clone(), shape));
        let direct = <Flex as PoolOps>::max_pool3d_2x(input.clone());
        let by_ops = max_pool_by_tensor_ops::<Flex>(input);
        assert_eq!(direct.shape().dims::<5>(), [2, 3, 2, 3, 4]);
        let (direct, by_ops) = (crate::conv::values(&direct), crate::conv::values(&by_ops));
        assert_eq!(direct, by_ops);
        // Output (b 1, c 2, 1, 2, 3) is the max of input x 2..4, y 4..6, z 6..8.
        let at = |x: usize, y: usize, z: usize| data[(((3 + 2) * 4 + x) * 6 + y) * 8 + z];
        let window = [2, 3].iter().flat_map(|&x| {
            [4, 5]
                .iter()
                .flat_map(move |&y| [6, 7].iter().map(move |&z| at(x, y, z)))
        });
        let expected = window.fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(direct[(((3 + 2) * 2 + 1) * 3 + 2) * 4 + 3], expected);
    }

    #[test]
    fn upsample_copy_loop_equals_the_tensor_ops() {
        // flex's copy loop (no autodiff) against the expansion, on odd sides, 2 batches, 3
        // channels: out[b, c, x, y, z] = in[b, c, x / 2, y / 2, z / 2] everywhere.
        let (shape, n) = ([2, 3, 3, 5, 7], 2 * 3 * 3 * 5 * 7);
        let data: Vec<f32> = (0..n).map(|i| (i * 37 % 101) as f32 - 50.0).collect();
        let input = Tensor::<5>::from_data(TensorData::new(data.clone(), shape), &Device::flex());
        let up = upsample_nearest3d_2x(input);
        assert_eq!(up.dims(), [2, 3, 6, 10, 14]);
        let got = values(up);
        let mut at = 0;
        for bc in 0..6 {
            for x in 0..6 {
                for y in 0..10 {
                    for z in 0..14 {
                        let source = ((bc * 3 + x / 2) * 5 + y / 2) * 7 + z / 2;
                        assert_eq!(got[at], data[source], "({bc}, {x}, {y}, {z})");
                        at += 1;
                    }
                }
            }
        }
    }

    #[test]
    fn upsample_forward_and_gradient_by_hand() {
        let device = Device::flex().autodiff();
        // [1, 1, 1, 2, 1] -> [1, 1, 2, 4, 2]: each value fills a 2x2x2 block.
        let input =
            Tensor::<5>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 1, 1, 2, 1]), &device)
                .require_grad();
        let up = upsample_nearest3d_2x(input.clone());
        assert_eq!(up.dims(), [1, 1, 2, 4, 2]);
        // Layout x-major: for x in 0..2, y in 0..4, z in 0..2 the value is input[y / 2].
        let expected: Vec<f32> = (0..2)
            .flat_map(|_| (0..4).flat_map(|y| [1.0 + (y / 2) as f32; 2]))
            .collect();
        assert_eq!(values(up.clone()), expected);

        // Loss = sum(up * w) with w = linear index: the gradient of each input is the sum of w
        // over its 8 copies. Input 0 covers y 0..2: indices x*8 + y*2 + z for x,z in 0..2,
        // y in 0..2 -> {0,1,2,3,8,9,10,11} sum 44; input 1 -> {4..8, 12..16} sum 76.
        let w = Tensor::<5>::from_data(
            TensorData::new(
                (0..16).map(|i| i as f32).collect::<Vec<_>>(),
                [1, 1, 2, 4, 2],
            ),
            &device,
        );
        let grads = (up * w).sum().backward();
        assert_eq!(values(input.grad(&grads).unwrap()), vec![44.0, 76.0]);
    }

    #[test]
    fn upsample_then_pool_is_identity() {
        let device = Device::flex();
        let data: Vec<f32> = (0..2 * 3 * 2 * 3)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let input = Tensor::<5>::from_data(TensorData::new(data.clone(), [2, 3, 2, 1, 3]), &device);
        let round_trip = max_pool3d_2x(upsample_nearest3d_2x(input));
        assert_eq!(values(round_trip), data);
    }

    #[test]
    fn downsample_nearest_picks_the_voxel_nearest_exact_picks() {
        let device = Device::flex();
        // [1, 2, 4, 4, 4], value = 1000*c + 100*x + 10*y + z: every voxel names its position.
        let data: Vec<f32> = (0..2)
            .flat_map(|c| {
                (0..4).flat_map(move |x| {
                    (0..4).flat_map(move |y| {
                        (0..4).map(move |z| (1000 * c + 100 * x + 10 * y + z) as f32)
                    })
                })
            })
            .collect();
        let input = Tensor::<5>::from_data(TensorData::new(data, [1, 2, 4, 4, 4]), &device);
        // Factor 2: floor((i + 0.5) * 2) = 2i + 1, i.e. positions 1 and 3 on each axis.
        let half = downsample_nearest(input.clone(), 2);
        assert_eq!(half.dims(), [1, 2, 2, 2, 2]);
        let expected: Vec<f32> = (0..2)
            .flat_map(|c| {
                [1, 3].into_iter().flat_map(move |x| {
                    [1, 3].into_iter().flat_map(move |y| {
                        [1, 3]
                            .into_iter()
                            .map(move |z| (1000 * c + 100 * x + 10 * y + z) as f32)
                    })
                })
            })
            .collect();
        assert_eq!(values(half), expected);
        // Factor 4: floor(0.5 * 4) = 2 on each axis.
        let quarter = downsample_nearest(input.clone(), 4);
        assert_eq!(values(quarter), vec![222.0, 1222.0]);
        // Factor 1 changes nothing.
        let same = downsample_nearest(input.clone(), 1);
        assert_eq!(values(same), values(input));
    }
}
