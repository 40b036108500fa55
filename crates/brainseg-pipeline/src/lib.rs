//! brainseg's application layer: what the command line asks for, as library calls over the stage
//! crates, which it never bypasses.
//!
//! Data flows one way:
//! `brainseg-volume` (NIfTI, cases, datasets) -> `brainseg-transforms` (patches, standardisation,
//! augmentation, targets) -> `brainseg-model` (the U-Net, losses, checkpoints; kernels in
//! `brainseg-conv`) -> `brainseg-train` (training runs, model files) -> `brainseg-infer` (tiling,
//! decoding, post-processing) -> `brainseg-metrics` -> `brainseg-visualize`. `brainseg-core` holds
//! the vocabulary all of them share.
//!
//! Here: [`model`] (a model file or the bundled one, run on tiles), [`segment`] (cases and
//! datasets into a prediction folder, [`layout`]), [`evaluate`], [`pictures`], [`report`],
//! [`info`], [`demo`] and the benchmarks ([`bench`]). Nothing here prints: long work reports
//! through [`Progress`], and every failure is an [`Error`] naming the file or case.

pub mod bench;
pub mod cohort;
pub mod demo;
mod device;
mod error;
pub mod evaluate;
pub mod guard;
pub mod info;
pub mod input;
pub mod layout;
pub mod model;
pub mod pictures;
mod progress;
pub mod report;
pub mod segment;

pub use device::{device, training_device, Backend};
pub use error::{Error, Result};
pub use progress::{Progress, Silent};
