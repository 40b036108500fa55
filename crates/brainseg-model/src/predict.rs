//! Batch inference between `ndarray` and the model, without gradients.
use crate::Error;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{Array5, ArrayView5};

use crate::unet::UNet3d;

/// Runs `model.forward` on a `(B, C, X, Y, Z)` batch on `device` and returns `(B, out, X, Y, Z)`
/// (probabilities with the seed's sigmoid). Runs in inference mode (no autodiff graph, batch norm
/// on running statistics) even if the model was being trained.
pub fn predict_batch(
    model: &UNet3d,
    input: ArrayView5<f32>,
    device: &Device,
) -> Result<Array5<f32>, Error> {
    let shape: [usize; 5] = input.shape().try_into().expect("rank 5");
    model.check_input_shape(shape)?;
    let model = model.valid().to_device(&device.clone().without_autodiff());
    let values: Vec<f32> = input.iter().copied().collect();
    let tensor = Tensor::<5>::from_data(
        TensorData::new(values, shape),
        &device.clone().without_autodiff(),
    );
    let output = model.forward(tensor)?;
    let out_shape = output.dims();
    let values = output
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 after conversion");
    Ok(Array5::from_shape_vec(out_shape, values).expect("shape matches the element count"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UNet3dConfig;
    use ndarray::Array;

    #[test]
    fn matches_the_tensor_forward_and_keeps_layout() {
        let device = Device::flex();
        let config = UNet3dConfig {
            depth: 2,
            base_filters: 2,
            ..UNet3dConfig::default()
        };
        let model = UNet3d::new(&config, 2, &device).unwrap();
        // Non-standard layout on purpose (a transposed view): values must follow logical indices.
        let base = Array::from_shape_fn((2, 2, 4, 4, 4), |(b, x, y, z, c)| {
            (b + 2 * c + x * y + z) as f32 * 0.1
        });
        let input = base.view().permuted_axes([0, 4, 1, 2, 3]);
        let output = predict_batch(&model, input, &device).unwrap();
        assert_eq!(output.shape(), &[2, 3, 2, 4, 4]);

        let standard: Vec<f32> = input.iter().copied().collect();
        let tensor = Tensor::<5>::from_data(TensorData::new(standard, [2, 4, 2, 4, 4]), &device);
        let expected = model
            .forward(tensor)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(output.iter().copied().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn bad_shape_is_an_error() {
        let device = Device::flex();
        let model = UNet3d::new(
            &UNet3dConfig {
                depth: 2,
                base_filters: 2,
                ..UNet3dConfig::default()
            },
            0,
            &device,
        )
        .unwrap();
        let input = Array5::<f32>::zeros((1, 4, 3, 4, 4));
        assert!(predict_batch(&model, input.view(), &device).is_err());
    }
}
