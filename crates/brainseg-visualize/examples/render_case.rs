//! Renders one example of every picture from a real BraTS 2018 case, for a person to check orientation and
//! colours by eye: `cargo run -p brainseg-visualize --example render_case -- [CASE_FOLDER] [OUT_FOLDER]`
//! (defaults: shared/data/brats2018/Brats18_2013_2_1 and /tmp/evalviz).
//!
//! Reads the NIfTI files directly (not through brainseg-volume) and brings them to RAS+ by flipping the axes
//! whose affine diagonal is negative (BraTS: diag(-1, -1, 1)); maps BraTS labels 1, 2, 4 to MSD 2, 1, 3.
use std::path::{Path, PathBuf};

use brainseg_visualize::{
    labelled_volume, patch_view, prediction_comparison, slice_grid, slices_gif, training_curves,
    Convention, GridOptions, HtmlReport, Overlay, Section, Series, SliceChoice,
};
use ndarray::{s, Array3, Axis};
use nifti::{IntoNdArray, NiftiObject, ReaderOptions};

/// A volume in RAS+ order and its voxel spacing.
fn read_ras(path: &Path) -> (Array3<f32>, [f32; 3]) {
    let object = ReaderOptions::new()
        .read_file(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = object.header().clone();
    let volume = object
        .into_volume()
        .into_ndarray::<f32>()
        .expect("numeric voxels");
    let shape: [usize; 3] = volume.shape().try_into().expect("a 3-D volume");
    let mut array =
        Array3::from_shape_vec(shape, volume.iter().copied().collect()).expect("matching length");
    let diagonal = [header.srow_x[0], header.srow_y[1], header.srow_z[2]];
    for (axis, &direction) in diagonal.iter().enumerate() {
        if direction < 0.0 {
            array.invert_axis(Axis(axis));
        }
    }
    let spacing = [header.pixdim[1], header.pixdim[2], header.pixdim[3]];
    (array.as_standard_layout().to_owned(), spacing)
}

fn main() {
    let mut arguments = std::env::args().skip(1);
    let case_folder = arguments.next().map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/brats2018/Brats18_2013_2_1")
    });
    let out = arguments
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/evalviz"));
    std::fs::create_dir_all(&out).expect("output folder");
    let case = case_folder
        .file_name()
        .expect("a case folder")
        .to_string_lossy()
        .to_string();
    let (flair, spacing) = read_ras(&case_folder.join(format!("{case}_flair.nii.gz")));
    let (brats_labels, _) = read_ras(&case_folder.join(format!("{case}_seg.nii.gz")));
    let labels = brats_labels.mapv(|label| match label as u8 {
        1 => 2,
        2 => 1,
        4 => 3,
        _ => 0,
    });
    println!("{case}: shape {:?}, spacing {spacing:?}", flair.dim());

    let grid = slice_grid(
        flair.view(),
        labels.view(),
        spacing,
        &GridOptions {
            title: format!("{case}: ground truth"),
            ..GridOptions::default()
        },
    )
    .unwrap();
    grid.write_png(out.join("grid.png")).unwrap();
    let blended = GridOptions {
        slices: SliceChoice::Random { seed: 0 },
        convention: Convention::Neurological,
        overlay: Overlay::Blend { alpha: 0.45 },
        title: format!("{case}: ground truth, blended, random slices"),
    };
    let grid_blended = slice_grid(flair.view(), labels.view(), spacing, &blended).unwrap();
    grid_blended
        .write_png(out.join("grid_blended_random_neurological.png"))
        .unwrap();

    let rgb = labelled_volume(flair.view(), labels.view(), Overlay::Replace).unwrap();
    let gif = slices_gif(
        rgb.view(),
        spacing,
        Convention::Radiological,
        &format!("{case}: ground truth"),
    );
    brainseg_visualize::write_atomic(out.join("slices.gif"), &gif).unwrap();

    // The tumour's centre, for the patch and the comparison.
    let tumour: Vec<[usize; 3]> = labels
        .indexed_iter()
        .filter(|(_, &label)| label > 0)
        .map(|((x, y, z), _)| [x, y, z])
        .collect();
    let centre: [usize; 3] =
        std::array::from_fn(|axis| tumour.iter().map(|v| v[axis]).sum::<usize>() / tumour.len());

    // A seed-sized patch (160 x 160 x 16) around the centre, its enhancing-tumour mask, middle slice.
    let corner = [
        centre[0].saturating_sub(80).min(80),
        centre[1].saturating_sub(80).min(80),
        centre[2].saturating_sub(8),
    ];
    let window = s![
        corner[0]..corner[0] + 160,
        corner[1]..corner[1] + 160,
        corner[2]..corner[2] + 16
    ];
    let patch_mask = labels
        .slice(window)
        .mapv(|label| if label == 3 { 1.0f32 } else { 0.0 });
    let patch = patch_view(
        flair.slice(window),
        &[("ground truth", patch_mask.view())],
        "enhancing tumour",
        8,
        spacing,
        Convention::Radiological,
    )
    .unwrap();
    patch.write_png(out.join("patch.png")).unwrap();

    // An illustrative "prediction": the ground truth moved 6 voxels towards the patient's left (lower x).
    let mut prediction = Array3::<u8>::zeros(labels.dim());
    prediction
        .slice_mut(s![..-6, .., ..])
        .assign(&labels.slice(s![6.., .., ..]));
    let comparison = prediction_comparison(
        flair.view(),
        labels.view(),
        prediction.view(),
        spacing,
        centre,
        Convention::Radiological,
        Overlay::Replace,
    )
    .unwrap();
    comparison.write_png(out.join("comparison.png")).unwrap();

    // Example curves shaped like the seed's run (10 epochs), for the plot only.
    let curves = training_curves(
        "training (example values)",
        &[
            Series::from_epochs(
                "train loss",
                &[0.82, 0.74, 0.68, 0.63, 0.59, 0.56, 0.53, 0.51, 0.49, 0.47],
            ),
            Series::from_epochs(
                "valid loss",
                &[0.85, 0.77, 0.70, 0.66, 0.61, 0.58, 0.55, 0.52, 0.50, 0.4742],
            ),
            Series::from_epochs(
                "valid Dice",
                &[0.16, 0.24, 0.30, 0.35, 0.40, 0.43, 0.46, 0.48, 0.50, 0.5152],
            ),
        ],
        720,
        420,
    );
    curves.write_png(out.join("curves.png")).unwrap();

    HtmlReport::new(format!("brainseg pictures: {case}"))
        .section(
            Section::new("Case")
                .text(format!(
                    "Shape {:?}, spacing {spacing:?} mm. Labels in MSD numbering.",
                    flair.dim()
                ))
                .table(
                    vec!["picture".into(), "file".into()],
                    [
                        "grid.png",
                        "slices.gif",
                        "patch.png",
                        "comparison.png",
                        "curves.png",
                    ]
                    .iter()
                    .map(|name| {
                        vec![
                            name.trim_end_matches(".png")
                                .trim_end_matches(".gif")
                                .into(),
                            name.to_string(),
                        ]
                    })
                    .collect(),
                ),
        )
        .section(
            Section::new("Slices")
                .png("slice grid through the tumour", grid.to_png())
                .png(
                    "blended overlay, random slices, neurological",
                    grid_blended.to_png(),
                )
                .gif("all slices", gif),
        )
        .section(Section::new("Patch").png("FLAIR and enhancing-tumour mask", patch.to_png()))
        .section(
            Section::new("Ground truth and prediction")
                .png("shifted copy as prediction", comparison.to_png()),
        )
        .section(
            Section::new("Training")
                .png("curves", curves.to_png())
                .preformatted("epoch  loss\n1      0.82"),
        )
        .write(out.join("report.html"))
        .unwrap();
    println!("wrote {}", out.display());
}
