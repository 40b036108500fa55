//! The viewer page: one HTML template (viewer/index.html) and script (viewer/viewer.js), with the
//! case's volumes either served beside it (`brainseg view`) or inside it as base64 (reports).
use crate::nifti::{encode_i16, encode_u8, Crop};
use crate::{Error, Result};
use base64::Engine;
use brainseg_core::{Class, MODALITIES};
use brainseg_visualize::{labelled_volume, render_slice, Convention, Overlay, View, CLASS_COLOURS};
use brainseg_volume::Case;
use ndarray::{Array3, Axis};
use serde_json::{json, Value};

const TEMPLATE: &str = include_str!("../../../viewer/index.html");
const SCRIPT: &str = include_str!("../../../viewer/viewer.js");
static BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/niivue.umd.js"));

/// The NiiVue version built into this binary (empty when none is).
pub const NIIVUE_VERSION: &str = env!("BRAINSEG_NIIVUE_VERSION");

/// NiiVue's UMD bundle, or the one-line error saying how to get it.
pub fn niivue_bundle() -> Result<&'static str> {
    std::str::from_utf8(BUNDLE)
        .ok()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            Error::msg(
                "the NiiVue viewer is not built into this binary: run `npm ci --prefix viewer`, then rebuild",
            )
        })
}

/// A label map to overlay, in MSD numbering on the case's canonical grid.
pub(crate) struct Layer<'a> {
    pub name: &'static str,
    pub file: &'static str,
    pub labels: &'a Array3<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Volumes are separate files (`volumes/<file>`), uncompressed, the whole grid.
    Served,
    /// Volumes are base64 inside the page, gzipped, cropped to the head.
    Embedded,
}

/// A page and the files it loads (none when embedded).
pub(crate) struct Page {
    pub html: String,
    pub files: Vec<(String, Vec<u8>)>,
}

pub(crate) fn build(case: &Case, layers: &[Layer], delivery: Delivery) -> Result<Page> {
    let bundle = niivue_bundle()?;
    let (_, nx, ny, nz) = case.image.dim();
    let shape = [nx, ny, nz];
    for layer in layers {
        if layer.labels.shape() != shape {
            return Err(Error::msg(format!(
                "{} of case {}: shape {:?} differs from the image's {shape:?}",
                layer.name,
                case.id,
                layer.labels.shape()
            )));
        }
    }
    let crop = match delivery {
        Delivery::Served => Crop::whole(shape),
        Delivery::Embedded => Crop::around(shape, 2, |[x, y, z]| {
            (0..4).any(|c| case.image[(c, x, y, z)] != 0.0)
        }),
    };
    let whole_affine = case.geometry.canonical_affine();
    let affine = crop.affine(&whole_affine);
    let gzip = delivery == Delivery::Embedded;
    let extension = if gzip { "nii.gz" } else { "nii" };
    let mut files = Vec::new();
    let mut modalities = Vec::new();
    for (c, name) in MODALITIES.iter().enumerate() {
        let file = format!("{}.{extension}", name.to_lowercase());
        let channel = case.image.index_axis(Axis(0), c);
        files.push((file.clone(), encode_i16(crop.view(channel), &affine, gzip)));
        modalities.push(json!({ "name": name, "file": file }));
    }
    let spacing = case.geometry.spacing();
    let voxel_ml = spacing.iter().map(|&s| s as f64).product::<f64>() / 1000.0;
    let mut labels = Vec::new();
    for layer in layers {
        let file = format!("{}.{extension}", layer.file);
        files.push((
            file.clone(),
            encode_u8(crop.view(layer.labels.view()), &affine, gzip),
        ));
        let mut counts = [0usize; 4];
        layer
            .labels
            .iter()
            .for_each(|&v| counts[(v as usize).min(3)] += 1);
        let volumes: Vec<f64> = Class::ALL
            .iter()
            .map(|c| counts[c.msd_label() as usize] as f64 * voxel_ml)
            .collect();
        labels.push(json!({ "name": layer.name, "file": file, "volumes_ml": volumes }));
    }
    for (entry, (_, bytes)) in modalities.iter_mut().chain(labels.iter_mut()).zip(&files) {
        match delivery {
            Delivery::Served => {
                entry["url"] = json!(format!("volumes/{}", entry["file"].as_str().unwrap_or("")))
            }
            Delivery::Embedded => {
                entry["base64"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        }
    }
    let centre = tumour_centre(layers);
    let centre_mm = centre.map(|v| {
        (0..3)
            .map(|r| {
                (0..3)
                    .map(|c| whole_affine[r][c] * v[c] as f64)
                    .sum::<f64>()
                    + whole_affine[r][3]
            })
            .collect::<Vec<_>>()
    });
    let classes: Vec<Value> = Class::ALL
        .iter()
        .zip(CLASS_COLOURS)
        .map(|(c, colour)| json!({ "value": c.msd_label(), "name": c.name(), "colour": colour }))
        .collect();
    let title = format!("brainseg view: {}", case.id);
    let config = json!({
        "title": title,
        "modalities": modalities,
        "labels": labels,
        "classes": classes,
        "opacity": 0.6,
        "centre_mm": centre_mm,
        "world_to_voxel": invert(&case.geometry.source_affine()),
    });
    let config = serde_json::to_string(&config)
        .map_err(|e| Error::msg(format!("viewer settings: {e}")))?
        .replace("</", "<\\/");
    let niivue = match delivery {
        Delivery::Served => "<script src=\"niivue.umd.js\"></script>".to_string(),
        Delivery::Embedded => format!("<script>{bundle}</script>"),
    };
    let pictures = pictures(case, layers, centre.unwrap_or(shape.map(|n| n / 2)))?;
    // The template's markers are replaced once each, in order, so no inserted text is searched.
    let mut html =
        String::with_capacity(TEMPLATE.len() + config.len() + niivue.len() + SCRIPT.len());
    let mut rest = TEMPLATE;
    for (marker, value) in [
        ("__TITLE__", escape(&title)),
        ("__NIIVUE_VERSION__", escape(NIIVUE_VERSION)),
        ("__CONFIG__", config),
        ("__PICTURES__", pictures),
        ("__NIIVUE__", niivue),
        ("__VIEWER_JS__", SCRIPT.to_string()),
    ] {
        let at = rest
            .find(marker)
            .expect("the template holds each marker once, in order");
        html.push_str(&rest[..at]);
        html.push_str(&value);
        rest = &rest[at + marker.len()..];
    }
    html.push_str(rest);
    if delivery == Delivery::Embedded {
        files.clear();
    }
    Ok(Page { html, files })
}

/// The centre (canonical voxel) of the first label map with any tumour.
fn tumour_centre(layers: &[Layer]) -> Option<[usize; 3]> {
    layers.iter().find_map(|layer| {
        let mut sum = [0usize; 3];
        let mut n = 0usize;
        for ((x, y, z), &v) in layer.labels.indexed_iter() {
            if v != 0 {
                sum[0] += x;
                sum[1] += y;
                sum[2] += z;
                n += 1;
            }
        }
        (n > 0).then(|| sum.map(|s| s / n))
    })
}

/// Three planes through `centre`, FLAIR with the first label map blended: the page's fallback.
fn pictures(case: &Case, layers: &[Layer], centre: [usize; 3]) -> Result<String> {
    let flair = case.image.index_axis(Axis(0), 0);
    let none = Array3::zeros(flair.dim());
    let labels = layers.first().map_or(&none, |l| l.labels);
    let volume = labelled_volume(flair, labels.view(), Overlay::Blend { alpha: 0.5 })?;
    let spacing = case.geometry.spacing();
    let mut html = String::new();
    for (view, index) in [
        (View::Axial, centre[2]),
        (View::Coronal, centre[1]),
        (View::Sagittal, centre[0]),
    ] {
        let png = render_slice(volume.view(), view, index, spacing, Convention::default()).to_png();
        html += &format!(
            "<img alt=\"{view:?} slice {index}\" src=\"data:image/png;base64,{}\">",
            base64::engine::general_purpose::STANDARD.encode(png)
        );
    }
    Ok(html)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The inverse of a voxel-to-world affine (world mm -> voxel), as rows.
#[allow(clippy::needless_range_loop)] // 3x3 matrix arithmetic reads best indexed.
fn invert(a: &[[f64; 4]; 4]) -> [[f64; 4]; 3] {
    let m = |r: usize, c: usize| a[r][c];
    let det = m(0, 0) * (m(1, 1) * m(2, 2) - m(1, 2) * m(2, 1))
        - m(0, 1) * (m(1, 0) * m(2, 2) - m(1, 2) * m(2, 0))
        + m(0, 2) * (m(1, 0) * m(2, 1) - m(1, 1) * m(2, 0));
    let det = if det == 0.0 { 1.0 } else { det };
    let mut inv = [[0.0; 4]; 3];
    for r in 0..3 {
        for c in 0..3 {
            // Cofactor of (c, r), divided by the determinant.
            let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
            let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
            inv[r][c] = (m(r1, c1) * m(r2, c2) - m(r1, c2) * m(r2, c1)) / det;
        }
    }
    for r in 0..3 {
        inv[r][3] = -(0..3).map(|c| inv[r][c] * a[c][3]).sum::<f64>();
    }
    inv
}

#[cfg(test)]
mod tests {
    #[test]
    fn inverse_affine() {
        let a = [
            [-1.0, 0.0, 0.0, 10.0],
            [0.0, 0.0, 2.0, -4.0],
            [0.0, 3.0, 0.0, 1.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let inv = super::invert(&a);
        let voxel = [4.0, 5.0, 6.0];
        let world: Vec<f64> = (0..3)
            .map(|r| (0..3).map(|c| a[r][c] * voxel[c]).sum::<f64>() + a[r][3])
            .collect();
        for r in 0..3 {
            let back = (0..3).map(|c| inv[r][c] * world[c]).sum::<f64>() + inv[r][3];
            assert!((back - voxel[r]).abs() < 1e-9, "{r}: {back}");
        }
    }
}
