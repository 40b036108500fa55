//! Checkpoints: the weights as safetensors (PyTorch-readable names and shapes) with the model's
//! config and a format version in the file's metadata.
//!
//! Names are the module paths with PyTorch's spelling of normalisation parameters
//! (`encoders.0.conv1.weight`, `encoders.0.norm1.weight` for burn's `gamma`, `.bias` for
//! `beta`, `running_mean`, `running_var`). Weights are stored as f32 or, to ship a model small,
//! f16; they are read back as f32 either way.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::Error;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;

use crate::config::UNet3dConfig;
use crate::unet::UNet3d;

/// Version of the metadata and naming scheme; bumped on any incompatible change.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;
/// Value of the `format` metadata key, telling our files from other safetensors.
const FORMAT_NAME: &str = "brainseg-unet3d";
const RESERVED_KEYS: [&str; 3] = ["format", "format_version", "config"];

/// Precision of the stored weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDtype {
    F32,
    /// Half the size; about 3 significant digits, plenty for inference.
    F16,
}

/// Writes `model`'s weights and config to `path` atomically (temp file + rename).
pub fn save_checkpoint(model: &UNet3d, path: &Path, dtype: StorageDtype) -> Result<(), Error> {
    save_checkpoint_with_metadata(model, path, dtype, &[])
}

/// [`save_checkpoint`] plus caller-defined metadata entries (e.g. inference settings as JSON),
/// read back with [`read_metadata`]. The keys `format`, `format_version` and `config` are ours.
pub fn save_checkpoint_with_metadata(
    model: &UNet3d,
    path: &Path,
    dtype: StorageDtype,
    extra: &[(&str, &str)],
) -> Result<(), Error> {
    if let Some((key, _)) = extra.iter().find(|(key, _)| RESERVED_KEYS.contains(key)) {
        return Err(Error::at(
            path,
            format!("metadata key {key:?} is reserved for the checkpoint format"),
        ));
    }
    let mut collector = Collector {
        path: Vec::new(),
        tensors: BTreeMap::new(),
    };
    model.visit(&mut collector);
    let tensors = collector
        .tensors
        .into_iter()
        .map(|(name, (shape, values))| {
            let stored = match dtype {
                StorageDtype::F32 => StoredTensor {
                    dtype: Dtype::F32,
                    shape,
                    bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                },
                StorageDtype::F16 => StoredTensor {
                    dtype: Dtype::F16,
                    shape,
                    bytes: values
                        .iter()
                        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                        .collect(),
                },
            };
            (name, stored)
        });
    let config_json = serde_json::to_string(model.config()).expect("config serialises");
    let mut metadata = HashMap::from([
        ("format".to_string(), FORMAT_NAME.to_string()),
        (
            "format_version".to_string(),
            CHECKPOINT_FORMAT_VERSION.to_string(),
        ),
        ("config".to_string(), config_json),
    ]);
    metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let bytes = safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| Error::at(path, format!("cannot encode the checkpoint: {e}")))?;
    Ok(brainseg_volume::write_atomic(path, &bytes)?)
}

/// Reads only the config of a checkpoint (the header, not the weights).
pub fn read_checkpoint_config(path: &Path) -> Result<UNet3dConfig, Error> {
    config_from_metadata(path, &read_header_metadata(path)?)
}

/// One metadata entry of a checkpoint (header only), `None` when the file has no such key.
/// The file must be one of ours (format and version are checked).
pub fn read_metadata(path: &Path, key: &str) -> Result<Option<String>, Error> {
    let metadata = read_header_metadata(path)?;
    config_from_metadata(path, &metadata)?;
    Ok(metadata.get(key).cloned())
}

fn read_header_metadata(path: &Path) -> Result<HashMap<String, String>, Error> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::at(path, format!("cannot open the checkpoint: {e}")))?;
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|_| corrupt(path, "file too short"))?;
    let length = u64::from_le_bytes(length);
    if length > 100_000_000 {
        return Err(corrupt(path, "header length is implausible"));
    }
    let mut header = vec![0u8; length as usize];
    file.read_exact(&mut header)
        .map_err(|_| corrupt(path, "header is truncated"))?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| corrupt(path, &format!("header is not JSON ({e})")))?;
    match header.get("__metadata__") {
        None => Ok(HashMap::new()),
        Some(metadata) => serde_json::from_value(metadata.clone())
            .map_err(|e| corrupt(path, &format!("metadata is not a string map ({e})"))),
    }
}

/// Loads a checkpoint onto `device`. With `expected`, a file built for another config is refused
/// (a model from a config must not silently get different weights).
pub fn load_checkpoint(
    path: &Path,
    expected: Option<&UNet3dConfig>,
    device: &Device,
) -> Result<UNet3d, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::at(path, format!("cannot read the checkpoint: {e}")))?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(path, &e.to_string()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let config = config_from_metadata(path, &metadata)?;
    if let Some(expected) = expected {
        if *expected != config {
            return Err(Error::at(
                path,
                format!(
                    "checkpoint was made for a different model: file has {}, expected {}",
                    serde_json::to_string(&config).expect("config serialises"),
                    serde_json::to_string(expected).expect("config serialises")
                ),
            ));
        }
    }
    let file = SafeTensors::deserialize(&bytes).map_err(|e| corrupt(path, &e.to_string()))?;

    // A fresh model gives the expected names and shapes; every one is then replaced from the file.
    let model = UNet3d::new(&config, 0, device).map_err(|e| Error::at(path, e.problem()))?;
    let mut loader = Loader {
        path: Vec::new(),
        file: &file,
        device,
        loaded: Vec::new(),
        problems: Vec::new(),
    };
    let model = model.map(&mut loader);
    let mut problems = loader.problems;
    let mut unexpected: Vec<String> = file
        .names()
        .into_iter()
        .filter(|n| !loader.loaded.iter().any(|l| l == n))
        .map(str::to_string)
        .collect();
    unexpected.sort();
    if !unexpected.is_empty() {
        problems.push(format!("unexpected tensors {}", unexpected.join(", ")));
    }
    if problems.is_empty() {
        Ok(model)
    } else {
        Err(Error::at(
            path,
            format!(
                "checkpoint does not match its config: {}",
                problems.join("; ")
            ),
        ))
    }
}

fn corrupt(path: &Path, detail: &str) -> Error {
    Error::at(
        path,
        format!("not a valid safetensors checkpoint: {detail}"),
    )
}

fn config_from_metadata(
    path: &Path,
    metadata: &HashMap<String, String>,
) -> Result<UNet3dConfig, Error> {
    if metadata.get("format").map(String::as_str) != Some(FORMAT_NAME) {
        return Err(Error::at(
            path,
            format!("not a brainseg model checkpoint (no `format: {FORMAT_NAME}` metadata)"),
        ));
    }
    let version = metadata
        .get("format_version")
        .map(String::as_str)
        .unwrap_or("missing");
    if version != CHECKPOINT_FORMAT_VERSION.to_string() {
        return Err(Error::at(
            path,
            format!("checkpoint format version {version} is not supported (this build reads {CHECKPOINT_FORMAT_VERSION})"),
        ));
    }
    let json = metadata
        .get("config")
        .ok_or_else(|| Error::at(path, "checkpoint has no model config"))?;
    let config: UNet3dConfig = serde_json::from_str(json)
        .map_err(|e| Error::at(path, format!("checkpoint model config is invalid: {e}")))?;
    config
        .validate()
        .map_err(|e| Error::at(path, e.problem()))?;
    Ok(config)
}

/// File name of a parameter: module path, minus enum variants, with PyTorch's norm names.
fn tensor_name(path: &[String]) -> String {
    let mut parts: Vec<&str> = path.iter().map(String::as_str).collect();
    if let Some(last) = parts.last_mut() {
        *last = match *last {
            "gamma" => "weight",
            "beta" => "bias",
            other => other,
        };
    }
    parts.join(".")
}

/// Path bookkeeping shared by the visitor and the mapper: enum wrappers add no name.
fn enter(path: &mut Vec<String>, name: &str, container_type: &str) {
    path.push(if container_type.starts_with("Enum:") {
        String::new()
    } else {
        name.to_string()
    });
}

fn joined(path: &[String]) -> Vec<String> {
    path.iter().filter(|p| !p.is_empty()).cloned().collect()
}

struct Collector {
    path: Vec<String>,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        enter(&mut self.path, name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data().convert::<f32>();
        let values = data.try_to_vec::<f32>().expect("f32 after conversion");
        self.tensors.insert(
            tensor_name(&joined(&self.path)),
            (data.shape().to_vec(), values),
        );
    }
}

struct Loader<'a> {
    path: Vec<String>,
    file: &'a SafeTensors<'a>,
    device: &'a Device,
    loaded: Vec<String>,
    problems: Vec<String>,
}

impl Loader<'_> {
    fn read<const D: usize>(&mut self, name: &str, shape: &[usize]) -> Option<Tensor<D>> {
        let Ok(view) = self.file.tensor(name) else {
            self.problems.push(format!("missing tensor {name}"));
            return None;
        };
        self.loaded.push(name.to_string());
        if view.shape() != shape {
            self.problems.push(format!(
                "{name} has shape {:?}, expected {shape:?}",
                view.shape()
            ));
            return None;
        }
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                self.problems.push(format!(
                    "{name} is stored as {other:?}, expected F32 or F16"
                ));
                return None;
            }
        };
        Some(Tensor::from_data(
            TensorData::new(values, shape.to_vec()),
            self.device,
        ))
    }
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        enter(&mut self.path, name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = tensor_name(&joined(&self.path));
        let shape = param.lazy_shape().to_vec();
        match self.read::<D>(&name, &shape) {
            Some(tensor) => {
                let id: ParamId = param.id;
                param.transform_for_load(tensor, id)
            }
            None => param,
        }
    }
}

/// A tensor ready for safetensors: raw little-endian bytes.
struct StoredTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for StoredTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Normalisation, Upsampling};
    use burn::tensor::Distribution;

    fn tiny(normalisation: Normalisation, upsampling: Upsampling) -> UNet3dConfig {
        UNet3dConfig {
            depth: 2,
            base_filters: 2,
            normalisation,
            upsampling,
            ..UNet3dConfig::default()
        }
    }

    fn output(model: &UNet3d, input: &Tensor<5>) -> Vec<f32> {
        model
            .forward(input.clone())
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn save_load_gives_identical_outputs_for_every_variant() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let input = Tensor::<5>::random([1, 4, 4, 4, 2], Distribution::Default, &device);
        for (normalisation, upsampling) in [
            (Normalisation::None, Upsampling::Nearest),
            (Normalisation::Batch, Upsampling::TransposedConv),
            (Normalisation::Instance, Upsampling::Nearest),
        ] {
            let config = tiny(normalisation, upsampling);
            let model = UNet3d::new(&config, 11, &device).unwrap();
            let path = dir.path().join("model.safetensors");
            save_checkpoint(&model, &path, StorageDtype::F32).unwrap();
            assert_eq!(read_checkpoint_config(&path).unwrap(), config);
            let loaded = load_checkpoint(&path, Some(&config), &device).unwrap();
            assert_eq!(
                output(&model, &input),
                output(&loaded, &input),
                "{normalisation:?}"
            );
        }
    }

    #[test]
    fn extra_metadata_round_trips_and_reserved_keys_are_refused() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let model =
            UNet3d::new(&tiny(Normalisation::None, Upsampling::Nearest), 0, &device).unwrap();
        let settings = r#"{"patch":[160,160,16]}"#;
        save_checkpoint_with_metadata(
            &model,
            &path,
            StorageDtype::F16,
            &[("brainseg.inference", settings)],
        )
        .unwrap();
        assert_eq!(
            read_metadata(&path, "brainseg.inference")
                .unwrap()
                .as_deref(),
            Some(settings)
        );
        assert_eq!(read_metadata(&path, "absent").unwrap(), None);
        assert!(load_checkpoint(&path, None, &device).is_ok());
        let err =
            save_checkpoint_with_metadata(&model, &path, StorageDtype::F32, &[("config", "{}")]);
        assert!(err.unwrap_err().problem().contains("reserved"));
    }

    #[test]
    fn file_uses_pytorch_names_and_shapes() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let model = UNet3d::new(
            &tiny(Normalisation::Batch, Upsampling::TransposedConv),
            0,
            &device,
        )
        .unwrap();
        save_checkpoint(&model, &path, StorageDtype::F32).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let shape = |name: &str| file.tensor(name).unwrap().shape().to_vec();
        assert_eq!(shape("encoders.0.conv1.weight"), vec![2, 4, 3, 3, 3]);
        assert_eq!(shape("encoders.0.norm1.weight"), vec![2]);
        assert_eq!(shape("encoders.0.norm1.running_var"), vec![2]);
        assert_eq!(shape("decoders.0.conv1.weight"), vec![4, 12, 3, 3, 3]);
        assert_eq!(shape("ups.0.weight"), vec![8, 8, 2, 2, 2]);
        assert_eq!(shape("head.weight"), vec![3, 4, 1, 1, 1]);
        let count: usize = file
            .tensors()
            .iter()
            .map(|(_, t)| t.shape().iter().product::<usize>())
            .sum();
        assert_eq!(count, model.num_params());
    }

    #[test]
    fn f16_storage_is_half_the_size_and_close() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let config = tiny(Normalisation::None, Upsampling::Nearest);
        let model = UNet3d::new(&config, 5, &device).unwrap();
        let (full, half_path) = (
            dir.path().join("f32.safetensors"),
            dir.path().join("f16.safetensors"),
        );
        save_checkpoint(&model, &full, StorageDtype::F32).unwrap();
        save_checkpoint(&model, &half_path, StorageDtype::F16).unwrap();
        let size = |p: &Path| std::fs::metadata(p).unwrap().len() as f64;
        assert!(size(&half_path) < 0.6 * size(&full));
        let loaded = load_checkpoint(&half_path, None, &device).unwrap();
        let original = model.encoders[0]
            .conv1
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let rounded = loaded.encoders[0]
            .conv1
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (a, b) in original.iter().zip(&rounded) {
            assert!((a - b).abs() <= a.abs() * 1e-3 + 1e-7, "{a} vs {b}");
        }
    }

    #[test]
    fn wrong_config_missing_corrupt_and_foreign_files_are_errors() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let config = tiny(Normalisation::None, Upsampling::Nearest);
        let path = dir.path().join("m.safetensors");
        save_checkpoint(
            &UNet3d::new(&config, 0, &device).unwrap(),
            &path,
            StorageDtype::F32,
        )
        .unwrap();

        let other = UNet3dConfig {
            base_filters: 4,
            ..config.clone()
        };
        let err = load_checkpoint(&path, Some(&other), &device).unwrap_err();
        assert_eq!(err.path(), Some(path.as_path()));
        assert!(err.problem().contains("different model"), "{err}");

        let missing = dir.path().join("absent.safetensors");
        assert!(load_checkpoint(&missing, None, &device)
            .unwrap_err()
            .to_string()
            .contains("absent.safetensors"));

        let truncated = dir.path().join("truncated.safetensors");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
        let err = load_checkpoint(&truncated, None, &device).unwrap_err();
        assert!(err.problem().contains("not a valid safetensors"), "{err}");

        let garbage = dir.path().join("garbage.safetensors");
        std::fs::write(&garbage, b"hello").unwrap();
        assert!(load_checkpoint(&garbage, None, &device).is_err());

        // A plain safetensors file without our metadata, and one from a future version.
        let foreign = dir.path().join("foreign.safetensors");
        let tensor = StoredTensor {
            dtype: Dtype::F32,
            shape: vec![1],
            bytes: 1f32.to_le_bytes().to_vec(),
        };
        std::fs::write(
            &foreign,
            safetensors::serialize([("x", tensor)], None).unwrap(),
        )
        .unwrap();
        assert!(load_checkpoint(&foreign, None, &device)
            .unwrap_err()
            .problem()
            .contains("not a brainseg model"));
        let future = dir.path().join("future.safetensors");
        let tensor = StoredTensor {
            dtype: Dtype::F32,
            shape: vec![1],
            bytes: 1f32.to_le_bytes().to_vec(),
        };
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT_NAME.to_string()),
            ("format_version".to_string(), "99".to_string()),
            (
                "config".to_string(),
                serde_json::to_string(&config).unwrap(),
            ),
        ]);
        std::fs::write(
            &future,
            safetensors::serialize([("x", tensor)], Some(metadata)).unwrap(),
        )
        .unwrap();
        assert!(load_checkpoint(&future, None, &device)
            .unwrap_err()
            .problem()
            .contains("version 99"));
    }

    #[test]
    fn shapes_that_disagree_with_the_config_are_refused() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let small = tiny(Normalisation::None, Upsampling::Nearest);
        let wide = UNet3dConfig {
            base_filters: 4,
            ..small.clone()
        };
        // Weights of the wide model under the small model's config.
        let path = dir.path().join("lying.safetensors");
        save_checkpoint(
            &UNet3d::new(&wide, 0, &device).unwrap(),
            &path,
            StorageDtype::F32,
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let tensors: Vec<(String, StoredTensor)> = file
            .tensors()
            .into_iter()
            .map(|(n, t)| {
                (
                    n,
                    StoredTensor {
                        dtype: t.dtype(),
                        shape: t.shape().to_vec(),
                        bytes: t.data().to_vec(),
                    },
                )
            })
            .collect();
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT_NAME.to_string()),
            (
                "format_version".to_string(),
                CHECKPOINT_FORMAT_VERSION.to_string(),
            ),
            ("config".to_string(), serde_json::to_string(&small).unwrap()),
        ]);
        std::fs::write(
            &path,
            safetensors::serialize(tensors, Some(metadata)).unwrap(),
        )
        .unwrap();
        let err = load_checkpoint(&path, None, &device).unwrap_err();
        assert!(
            err.problem()
                .contains("encoders.0.conv1.weight has shape [4, 4, 3, 3, 3]"),
            "{err}"
        );
    }

    #[test]
    fn a_checkpoint_written_before_the_new_options_loads_as_the_old_network() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let config = tiny(Normalisation::Instance, Upsampling::TransposedConv);
        let model = UNet3d::new(&config, 4, &device).unwrap();
        let path = dir.path().join("old.safetensors");
        save_checkpoint(&model, &path, StorageDtype::F32).unwrap();
        // Rewrite its metadata with the config exactly as older builds wrote it.
        let old_json = r#"{"in_channels":4,"out_classes":3,"depth":2,"base_filters":2,"upsampling":"transposed_conv","normalisation":"instance","output_activation":"sigmoid","targets":"classes"}"#;
        let bytes = std::fs::read(&path).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let tensors: Vec<(String, StoredTensor)> = file
            .tensors()
            .into_iter()
            .map(|(n, t)| {
                let stored = StoredTensor {
                    dtype: t.dtype(),
                    shape: t.shape().to_vec(),
                    bytes: t.data().to_vec(),
                };
                (n, stored)
            })
            .collect();
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT_NAME.to_string()),
            ("format_version".to_string(), "1".to_string()),
            ("config".to_string(), old_json.to_string()),
        ]);
        std::fs::write(
            &path,
            safetensors::serialize(tensors, Some(metadata)).unwrap(),
        )
        .unwrap();
        let read = read_checkpoint_config(&path).unwrap();
        assert_eq!(read, config);
        assert_eq!(read.activation, crate::config::Activation::Relu);
        assert_eq!(read.downsampling, crate::config::Downsampling::MaxPool);
        assert!(!read.deep_supervision);
        let loaded = load_checkpoint(&path, Some(&config), &device).unwrap();
        let input = Tensor::<5>::random([1, 4, 4, 4, 2], Distribution::Default, &device);
        assert_eq!(output(&model, &input), output(&loaded, &input));
        // Re-saving a seed-style model writes the same config text as before.
        let resaved = dir.path().join("resaved.safetensors");
        save_checkpoint(&loaded, &resaved, StorageDtype::F32).unwrap();
        assert_eq!(read_header_metadata(&resaved).unwrap()["config"], old_json);
    }

    #[test]
    fn nnunet_network_round_trips_with_its_deep_supervision_heads() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let config = UNet3dConfig {
            depth: 3,
            base_filters: 2,
            ..UNet3dConfig::nnunet()
        };
        let model = UNet3d::new(&config, 2, &device).unwrap();
        let path = dir.path().join("nnunet.safetensors");
        save_checkpoint(&model, &path, StorageDtype::F32).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            file.tensor("ds_heads.0.weight").unwrap().shape(),
            &[3, 8, 1, 1, 1]
        );
        let loaded = load_checkpoint(&path, Some(&config), &device).unwrap();
        let input = Tensor::<5>::random([1, 4, 8, 8, 4], Distribution::Default, &device);
        let all = |m: &UNet3d| -> Vec<Vec<f32>> {
            m.forward_deep_supervision(input.clone())
                .unwrap()
                .into_iter()
                .map(|t| t.into_data().try_to_vec::<f32>().unwrap())
                .collect()
        };
        assert_eq!(all(&model), all(&loaded));
    }
}
