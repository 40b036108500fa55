//! Look at a case in 3-D: an interactive NiiVue viewer served on 127.0.0.1 (`brainseg view`), a
//! self-contained viewer page for reports, and colour tables that ITK-SNAP and 3D Slicer read.
//!
//! NiiVue (BSD-2-Clause) is not part of the repository: `npm ci --prefix viewer` fetches the version
//! pinned in viewer/package-lock.json and build.rs embeds its bundle, so the viewer works offline.
mod colour_tables;
mod error;
mod nifti;
mod page;
mod server;

pub use colour_tables::{itksnap_text, slicer_text, write_colour_tables};
pub use error::{Error, Result};
pub use page::{niivue_bundle, NIIVUE_VERSION};
pub use server::{ViewOptions, Viewer};

use brainseg_volume::Case;
use ndarray::Array3;

/// A self-contained HTML viewer of `case` with its label maps (MSD numbering, the case's canonical
/// grid): NiiVue and the volumes (gzipped NIfTI, base64; cropped to the head; modalities as int16)
/// inside the file, so it opens from disk without a server. Without WebGL2 the page shows three
/// static planes through the tumour instead. About 2 MB of viewer plus 1-3 MB per modality.
///
/// Fails when the NiiVue bundle was not built in (see [`niivue_bundle`]) or a label map's shape
/// differs from the image's.
pub fn embedded_viewer_html(
    case: &Case,
    truth: Option<&Array3<u8>>,
    pred: Option<&Array3<u8>>,
) -> Result<String> {
    let mut layers = Vec::new();
    if let Some(labels) = truth {
        layers.push(page::Layer {
            name: "ground truth",
            file: "truth",
            labels,
        });
    }
    if let Some(labels) = pred {
        layers.push(page::Layer {
            name: "prediction",
            file: "prediction",
            labels,
        });
    }
    Ok(page::build(case, &layers, page::Delivery::Embedded)?.html)
}
