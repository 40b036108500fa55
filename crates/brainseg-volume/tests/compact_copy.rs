//! The compact training copy (`brainseg convert --compact`): cropped to the non-zero box with every
//! voxel kept at its world position, uint8 codes per modality with the steps recorded, labels
//! exact, and readable as an MSD dataset.
use brainseg_volume::convert::{
    compact_copy, crop_geometry, nonzero_box, CompactOptions, QUANTISATION_FILE,
};
use brainseg_volume::nifti_io::write_image;
use brainseg_volume::synthetic::{generate_case, write_dataset, SyntheticConfig};
use brainseg_volume::{write_label, Dataset, Geometry, Layout, MsdLayout, Orientation};
use ndarray::{s, Array3, Array4};
use std::path::PathBuf;

fn world(affine: &[[f64; 4]; 4], index: [usize; 3]) -> [f64; 3] {
    let v = [index[0] as f64, index[1] as f64, index[2] as f64, 1.0];
    [0, 1, 2].map(|r| (0..4).map(|c| affine[r][c] * v[c]).sum())
}

fn max_distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|i| (a[i] - b[i]).abs()).fold(0.0, f64::max)
}

/// A geometry whose source axes are permuted and flipped against the canonical (RAS) ones, with
/// an sform and a qform (180° about z: LPS) that disagree only in their offsets.
fn oblique_geometry(source_shape: [usize; 3]) -> Geometry {
    let mut g = Geometry::synthetic(source_shape, [1.0, 1.0, 1.0]);
    let h = &mut g.header;
    // Source axis 0 runs anterior->posterior (-y), axis 1 right->left (-x), axis 2 up (+z, 2 mm).
    h.srow_x = [0.0, -1.0, 0.0, 90.0];
    h.srow_y = [-1.0, 0.0, 0.0, 110.0];
    h.srow_z = [0.0, 0.0, 2.0, -40.0];
    h.pixdim = [1.0, 1.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0];
    h.qform_code = 1;
    (h.quatern_b, h.quatern_c, h.quatern_d) = (0.0, 0.0, 1.0);
    (h.quatern_x, h.quatern_y, h.quatern_z) = (7.0, 8.0, 9.0);
    let affine = g.source_affine();
    g.orientation = Orientation::from_affine(&affine);
    g
}

#[test]
fn a_crop_keeps_every_voxel_at_its_world_position_in_any_orientation() {
    let g = oblique_geometry([20, 30, 10]);
    assert_ne!(g.orientation, Orientation::IDENTITY);
    assert_eq!(g.canonical_shape(), [30, 20, 10]);
    let (start, end) = ([3, 5, 2], [25, 17, 9]);
    let cropped = crop_geometry(&g, start, end);
    assert_eq!(cropped.canonical_shape(), [22, 12, 7]);
    assert_eq!(cropped.orientation, g.orientation);
    let (full, crop) = (g.canonical_affine(), cropped.canonical_affine());
    for index in [[0, 0, 0], [21, 11, 6], [4, 7, 3], [21, 0, 6]] {
        let original = [0, 1, 2].map(|a| start[a] + index[a]);
        let d = max_distance(world(&crop, index), world(&full, original));
        assert!(d < 1e-4, "voxel {index:?} moved {d} mm");
    }
    // The qform moves with the crop too (readers that prefer it see the same world).
    let qform_only = |geometry: &Geometry| {
        let mut q = geometry.clone();
        q.header.sform_code = 0;
        q
    };
    let (q_full, q_crop) = (qform_only(&g), qform_only(&cropped));
    let (fa, ca) = (q_full.canonical_affine(), q_crop.canonical_affine());
    let d = max_distance(world(&ca, [5, 6, 1]), world(&fa, [8, 11, 3]));
    assert!(d < 1e-4, "qform voxel moved {d} mm");
}

#[test]
fn the_nonzero_box_covers_image_and_label_with_its_margin() {
    let mut image = Array4::<f32>::zeros((4, 20, 20, 10));
    let mut label = Array3::<u8>::zeros((20, 20, 10));
    image[[2, 5, 6, 3]] = 7.0;
    label[[12, 9, 4]] = 2;
    assert_eq!(nonzero_box(&image, &label, 0), ([5, 6, 3], [13, 10, 5]));
    assert_eq!(nonzero_box(&image, &label, 4), ([1, 2, 0], [17, 14, 9]));
    assert_eq!(nonzero_box(&image, &label, 9), ([0, 0, 0], [20, 19, 10]));
    let empty = Array4::<f32>::zeros((4, 20, 20, 10));
    assert_eq!(
        nonzero_box(&empty, &Array3::zeros((20, 20, 10)), 2),
        ([0, 0, 0], [20, 20, 10])
    );
}

#[test]
fn a_compact_copy_is_cropped_quantised_and_reads_as_msd() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let config = SyntheticConfig {
        shape: [48, 44, 24],
        ..SyntheticConfig::default()
    };
    // Synthetic heads fill their volume: pad each with 6 zero voxels per side.
    let layout = MsdLayout::new(&src);
    layout.create_folders().unwrap();
    let ids: Vec<String> = (1..=2).map(|i| format!("padded_{i:03}")).collect();
    for (seed, id) in ids.iter().enumerate() {
        let case = generate_case(&config, seed as u64 + 3, id);
        let mut image = Array4::<f32>::zeros((4, 60, 56, 36));
        image
            .slice_mut(s![.., 6..54, 6..50, 6..30])
            .assign(&case.image);
        let mut label = Array3::<u8>::zeros((60, 56, 36));
        label
            .slice_mut(s![6..54, 6..50, 6..30])
            .assign(case.label.as_ref().unwrap());
        let geometry = Geometry::synthetic([60, 56, 36], [1.0, 1.0, 2.0]);
        write_image(&layout.training_image(id), &image, &geometry, "int16").unwrap();
        write_label(&layout.training_label(id), &label, &geometry, None).unwrap();
    }
    layout
        .write_dataset_json("padded", "synthetic heads, padded", &ids, &[])
        .unwrap();
    let out = dir.path().join("copy");
    let written = compact_copy(&src, &out, None, &CompactOptions::compact(), |_, _| {}).unwrap();
    assert_eq!(written.len(), 2);

    let copy = Dataset::open(&out).unwrap();
    assert_eq!(copy.layout, Layout::Msd);
    let original = Dataset::open(&src).unwrap();
    let steps_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(QUANTISATION_FILE)).unwrap())
            .unwrap();
    for (id, info) in ids.iter().zip(&written) {
        let before = original.case(id).unwrap().load().unwrap();
        let after = copy.case(id).unwrap().load().unwrap();
        let (label_before, label_after) = (before.label.unwrap(), after.label.unwrap());
        // Cropped to the non-zero box + 2 voxels, which is smaller than the volume here.
        let (start, end) = nonzero_box(&before.image, &label_before, 2);
        assert_eq!(info.crop_start, start);
        assert_eq!(info.cropped_shape, [0, 1, 2].map(|a| end[a] - start[a]));
        assert_eq!(after.geometry.canonical_shape(), info.cropped_shape);
        // The head fills 6..54 x 6..50 x 6..30: the crop starts at 4 (margin 2) and is at most
        // 2 voxels wider than the head on each side.
        assert!(start.iter().all(|&i| i >= 4), "{id}: crop start {start:?}");
        assert!(
            info.cropped_shape[0] <= 52
                && info.cropped_shape[1] <= 48
                && info.cropped_shape[2] <= 28,
            "{id}: the crop {:?} keeps the padding",
            info.cropped_shape
        );
        // Nothing non-zero was cut away.
        let nonzero = |a: &Array4<f32>| a.iter().filter(|&&v| v != 0.0).count();
        let window = before
            .image
            .slice(s![.., start[0]..end[0], start[1]..end[1], start[2]..end[2]])
            .to_owned();
        assert_eq!(nonzero(&window), nonzero(&before.image));
        // Labels exact, at the same world positions.
        let label_window =
            label_before.slice(s![start[0]..end[0], start[1]..end[1], start[2]..end[2]]);
        assert_eq!(label_after, label_window);
        let d = max_distance(
            world(&after.geometry.canonical_affine(), [1, 2, 3]),
            world(
                &before.geometry.canonical_affine(),
                [start[0] + 1, start[1] + 2, start[2] + 3],
            ),
        );
        assert!(d < 1e-4, "{id}: moved {d} mm");
        // Codes: whole numbers 0..=31 (32 levels), 0 exactly where the source was 0; code * step
        // within half a step of the source below the 99.9th percentile (code 30).
        let steps = info.steps.expect("quantised");
        for (m, step) in steps.iter().enumerate() {
            let recorded = steps_json["steps"][id.as_str()][brainseg_volume::MODALITIES[m]]
                .as_f64()
                .unwrap();
            assert!((recorded - *step as f64).abs() < 1e-6 * recorded.max(1.0));
            let codes = after.image.index_axis(ndarray::Axis(0), m);
            let source = window.index_axis(ndarray::Axis(0), m);
            let mut checked = 0;
            for (&code, &v) in codes.iter().zip(source.iter()) {
                assert_eq!(code.fract(), 0.0);
                assert!((0.0..=31.0).contains(&code), "code {code}");
                assert_eq!(code == 0.0, v <= 0.0, "{id} {m}: code {code} for {v}");
                if v > 0.0 && code < 30.0 && code > 1.0 {
                    assert!(
                        (code * step - v).abs() <= 0.5 * step + 1e-3,
                        "{v} -> {code} x {step}"
                    );
                    checked += 1;
                }
            }
            assert!(checked > 100, "{id} {m}: only {checked} voxels compared");
        }
    }
    // The description says what was done.
    let json = std::fs::read_to_string(out.join("dataset.json")).unwrap();
    assert!(json.contains("cropped") && json.contains("uint8"), "{json}");
    // A second copy into the same folder is refused.
    assert!(compact_copy(&src, &out, None, &CompactOptions::compact(), |_, _| {}).is_err());
}

/// 256 levels is the old `--quantize-u8`: the 99.9th percentile is code 254, codes reach 255.
#[test]
fn levels_set_the_code_range() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let config = SyntheticConfig {
        shape: [40, 40, 20],
        ..SyntheticConfig::default()
    };
    write_dataset(&src, 1, &config, 9).unwrap();
    for (levels, top) in [(256u16, 254.0f32), (32, 30.0), (8, 6.0)] {
        let out = dir.path().join(format!("levels{levels}"));
        let options = CompactOptions {
            levels: Some(levels),
            ..CompactOptions::compact()
        };
        compact_copy(&src, &out, None, &options, |_, _| {}).unwrap();
        let case = Dataset::open(&out).unwrap().cases[0].load().unwrap();
        for channel in case.image.outer_iter() {
            let mut codes: Vec<f32> = channel.iter().copied().filter(|&v| v > 0.0).collect();
            codes.sort_by(f32::total_cmp);
            let max = *codes.last().unwrap();
            let p999 = codes[((codes.len() - 1) as f64 * 0.999) as usize];
            assert_eq!(p999, top, "{levels} levels");
            assert!(
                max <= f32::from(levels - 1) && max >= top,
                "{levels}: max {max}"
            );
        }
    }
    let bad = CompactOptions {
        levels: Some(2),
        ..CompactOptions::compact()
    };
    assert!(compact_copy(&src, &dir.path().join("bad"), None, &bad, |_, _| {}).is_err());
}

#[test]
fn gzip_level_9_is_smaller_than_1_and_0_stores() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let config = SyntheticConfig {
        shape: [48, 44, 24],
        ..SyntheticConfig::default()
    };
    write_dataset(&src, 1, &config, 5).unwrap();
    let size = |level: u32| -> u64 {
        let out = dir.path().join(format!("level{level}"));
        let options = CompactOptions {
            gzip_level: level,
            ..CompactOptions::compact()
        };
        compact_copy(&src, &out, None, &options, |_, _| {}).unwrap();
        let file = out.join("imagesTr/synthetic_001.nii.gz");
        // Every level reads back to the same codes.
        let image = brainseg_volume::read_image(&file).unwrap();
        assert_eq!(image.source_dtype, "uint8");
        std::fs::metadata(file).unwrap().len()
    };
    let (stored, fast, best) = (size(0), size(1), size(9));
    assert!(best < fast, "level 9 {best} >= level 1 {fast}");
    assert!(fast < stored, "level 1 {fast} >= stored {stored}");
    // Stored: the raw bytes (4 uint8 volumes + header) and gzip framing.
    let crop: u64 = {
        let copy = Dataset::open(&dir.path().join("level0")).unwrap();
        let g = copy.cases[0].load().unwrap().geometry;
        g.canonical_shape().iter().map(|&n| n as u64).product()
    };
    assert!(
        stored >= 4 * crop + 352,
        "stored {stored} < raw {}",
        4 * crop + 352
    );
}

fn shared_case(id: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/brats2018"
    ))
    .join(id)
}

/// A real BraTS case (LPS-stored, int16): the copy keeps world positions and labels, and its
/// image is a fraction of the source's four files.
#[test]
fn a_real_case_copy_is_small_and_in_place() {
    let id = "Brats18_2013_2_1";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy");
    let written = compact_copy(
        &shared_case(id),
        &out,
        None,
        &CompactOptions::compact(),
        |_, _| {},
    )
    .unwrap();
    let info = &written[0];
    assert_eq!(info.shape, [240, 240, 155]);
    let before = Dataset::open(&shared_case(id)).unwrap().cases[0]
        .load()
        .unwrap();
    let after = Dataset::open(&out).unwrap().cases[0].load().unwrap();
    assert_ne!(before.geometry.orientation, Orientation::IDENTITY);
    let start = info.crop_start;
    for index in [[0, 0, 0], [10, 20, 30]] {
        let original = [0, 1, 2].map(|a| start[a] + index[a]);
        let d = max_distance(
            world(&after.geometry.canonical_affine(), index),
            world(&before.geometry.canonical_affine(), original),
        );
        assert!(d < 1e-3, "voxel {index:?} moved {d} mm");
    }
    let label = before.label.unwrap();
    let [x, y, z] = info.cropped_shape;
    let window = label.slice(s![
        start[0]..start[0] + x,
        start[1]..start[1] + y,
        start[2]..start[2] + z
    ]);
    assert_eq!(after.label.unwrap(), window);
    assert_eq!(
        window.iter().filter(|&&l| l != 0).count(),
        label.iter().filter(|&&l| l != 0).count()
    );
    let source_bytes: u64 = std::fs::read_dir(shared_case(id))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let copy_bytes = std::fs::metadata(out.join(format!("imagesTr/{id}.nii.gz")))
        .unwrap()
        .len()
        + std::fs::metadata(out.join(format!("labelsTr/{id}.nii.gz")))
            .unwrap()
            .len();
    assert!(
        copy_bytes * 2 < source_bytes,
        "copy {copy_bytes} bytes, source {source_bytes}"
    );
}
