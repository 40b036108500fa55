//! Writes a small U-Net checkpoint plus a fixed input and our outputs, for
//! `scripts/compare_torch.py` to check the PyTorch reference gives the same forward pass.
//!
//! Usage: `cargo run -p brainseg-model --example export_for_torch -- OUT_DIR [BASE_FILTERS]`
//! writes `OUT_DIR/model.safetensors` and `OUT_DIR/io.safetensors` (`input`, `logits`, `output`).
use std::borrow::Cow;
use std::path::PathBuf;

use brainseg_model::{cpu_device, save_checkpoint, StorageDtype, UNet3d, UNet3dConfig};
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, View};

struct F32Tensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl F32Tensor {
    fn new(tensor: Tensor<5>) -> Self {
        let shape = tensor.dims().to_vec();
        let values = tensor.into_data().try_to_vec::<f32>().expect("f32 tensor");
        F32Tensor {
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

impl View for F32Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out_dir = PathBuf::from(
        args.next()
            .ok_or("usage: export_for_torch OUT_DIR [BASE_FILTERS]")?,
    );
    let base_filters: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(8);
    std::fs::create_dir_all(&out_dir)?;

    let device = cpu_device();
    let config = UNet3dConfig {
        base_filters,
        ..UNet3dConfig::default()
    };
    let model = UNet3d::new(&config, 42, &device)?;
    save_checkpoint(
        &model,
        &out_dir.join("model.safetensors"),
        StorageDtype::F32,
    )?;

    // A smooth, deterministic input with both signs: one 4 x 32 x 32 x 16 patch.
    let shape = [1, 4, 32, 32, 16];
    let count: usize = shape.iter().product();
    let values: Vec<f32> = (0..count)
        .map(|i| ((i as f32) * 0.0137).sin() * 2.0)
        .collect();
    let input = Tensor::<5>::from_data(TensorData::new(values, shape), &device);
    let logits = model.forward_logits(input.clone())?;
    let output = model.forward(input.clone())?;
    let tensors = [
        ("input", F32Tensor::new(input)),
        ("logits", F32Tensor::new(logits)),
        ("output", F32Tensor::new(output)),
    ];
    std::fs::write(
        out_dir.join("io.safetensors"),
        safetensors::serialize(tensors, None)?,
    )?;
    println!(
        "wrote {} (base_filters {base_filters}, {} parameters)",
        out_dir.display(),
        burn::module::Module::num_params(&model)
    );
    Ok(())
}
