//! Pictures of MRI cases and results, and a self-contained HTML report.
//!
//! Inputs are plain arrays in canonical RAS+ orientation (x: patient's left -> right, y: posterior -> anterior,
//! z: inferior -> superior): a FLAIR volume `(X, Y, Z)` f32, labels `(X, Y, Z)` u8 in MSD numbering (0 background,
//! 1 edema, 2 non-enhancing tumour, 3 enhancing tumour) and the voxel spacing in millimetres.
//!
//! Slices are shown as radiologists read them: axial with anterior up, coronal and sagittal with superior up,
//! sagittal with anterior on the left, and patient's right on the image's left in the [`Convention::Radiological`]
//! convention (or on the right in [`Convention::Neurological`]); pictures name the convention and letter the sides.
//! Voxels are resampled (nearest neighbour) to square pixels of the finest spacing, so aspect ratios are true;
//! small volumes are enlarged by a whole factor ([`display_scale`]) so their pictures stay readable. Every picture
//! of labels carries a legend of the class colours and names.
//!
//! Pictures are [`RgbImage`]s, written as PNG; the slice stepper is a GIF; [`HtmlReport`] embeds both.

mod animation;
mod compare;
mod error;
mod font;
mod grid;
mod header;
mod image;
mod labelled;
mod patch;
mod plot;
mod report;
mod slice;

pub use animation::slices_gif;
pub use compare::prediction_comparison;
pub use error::{Error, Result};
pub use grid::{slice_grid, GridOptions, SliceChoice};
pub use image::{write_atomic, RgbImage};
pub use labelled::{labelled_volume, Overlay, CLASS_COLOURS};
pub use patch::patch_view;
pub use plot::{training_curves, Series};
pub use report::{HtmlReport, Section};
pub use slice::{display_scale, render_slice, render_slice_scaled, Convention, View};
