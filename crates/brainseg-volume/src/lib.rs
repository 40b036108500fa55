//! Volumes and datasets: the first stage of the brainseg pipeline.
//!
//! Everything downstream works on [`Case`]s: four modalities (FLAIR, T1w, T1Gd, T2w) as one
//! `(4, X, Y, Z)` f32 array in the canonical (closest-RAS) voxel orientation, an optional label map in
//! MSD numbering (0 background, 1 edema, 2 non-enhancing tumour, 3 enhancing tumour), and the
//! [`Geometry`] needed to write results back exactly onto the source file.

pub mod atomic;
pub mod case;
pub mod convert;
pub mod dataset;
pub mod error;
pub mod label_map;
pub mod msd_layout;
pub mod nifti_io;
pub mod orientation;
pub mod seed_patches;
pub mod synthetic;

pub use atomic::{remove_temp_files_in_flight, write_atomic, write_atomic_with};
pub use case::{Case, LabelNumbering, MODALITIES};
pub use dataset::{CaseRef, Dataset, ImageSource, Layout, Split};
pub use error::{Error, Result};
pub use label_map::{detect_numbering, read_label_msd, MsdLabelMap};
pub use msd_layout::MsdLayout;
pub use nifti_io::{read_image, read_label, write_label, write_probabilities, Geometry, Image};
pub use orientation::Orientation;
