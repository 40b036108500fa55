//! Loading, orientation, label mapping, round trips and conversion on the shared real data.
//! Expected values come from the `nifti` crate's own reader, independent of brainseg's.
use brainseg_volume::nifti_io::{read_header, write_probabilities};
use brainseg_volume::{read_image, read_label, write_label, Dataset, Layout};
use ndarray::{s, Array3, Array4, Axis};
use nifti::{IntoNdArray, NiftiObject, ReaderOptions};
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
}

const CASE: &str = "Brats18_2013_2_1";

fn case_file(suffix: &str) -> PathBuf {
    data()
        .join("brats2018")
        .join(CASE)
        .join(format!("{CASE}_{suffix}.nii.gz"))
}

/// The voxel array exactly as stored, `[x, y, z]` in file axis order, read by the `nifti` crate.
fn raw_volume(path: &Path) -> Array3<f32> {
    let volume = ReaderOptions::new().read_file(path).unwrap().into_volume();
    volume
        .into_ndarray::<f32>()
        .unwrap()
        .into_dimensionality()
        .unwrap()
}

fn world(affine: &[[f64; 4]; 4], index: [usize; 3]) -> [f64; 3] {
    let v = [index[0] as f64, index[1] as f64, index[2] as f64, 1.0];
    [0, 1, 2].map(|r| (0..4).map(|c| affine[r][c] * v[c]).sum())
}

#[test]
fn brats_label_counts_follow_the_msd_mapping() {
    let raw = raw_volume(&case_file("seg"));
    let raw_count = |v: f32| raw.iter().filter(|&&x| x == v).count();
    let expected = [
        raw_count(0.0),
        raw_count(2.0),
        raw_count(1.0),
        raw_count(4.0),
    ];
    assert_eq!(
        expected.iter().sum::<usize>(),
        240 * 240 * 155,
        "BraTS 2018 uses only 0, 1, 2, 4"
    );
    assert!(
        expected[1..].iter().all(|&n| n > 0),
        "the case has all three tumour classes"
    );

    let dataset = Dataset::open(&data().join("brats2018").join(CASE)).unwrap();
    let case = dataset.cases[0].load().unwrap();
    let label = case.label.unwrap();
    let counts = [0u8, 1, 2, 3].map(|v| label.iter().filter(|&&x| x == v).count());
    assert_eq!(counts, expected);
}

#[test]
fn canonical_brats_arrays_are_the_raw_arrays_flipped_on_x_and_y() {
    let seg = case_file("seg");
    let (label, geometry) = read_label(&seg).unwrap();
    assert_eq!(geometry.source_code(), "LPS");
    assert_eq!(geometry.canonical_shape(), [240, 240, 155]);
    assert_eq!(geometry.spacing(), [1.0, 1.0, 1.0]);
    let raw = raw_volume(&seg);
    let flipped = raw.slice(s![..;-1, ..;-1, ..]).mapv(|v| v as u8);
    assert_eq!(label, flipped);

    let image = read_image(&case_file("t1ce")).unwrap();
    assert_eq!(image.source_dtype, "int16");
    assert_eq!(image.data.shape(), &[1, 240, 240, 155]);
    assert_eq!(
        image.data.index_axis(Axis(0), 0),
        raw_volume(&case_file("t1ce")).slice(s![..;-1, ..;-1, ..])
    );
    // The canonical affine runs along +x, +y, +z (RAS).
    let a = geometry.canonical_affine();
    assert_eq!([a[0][0], a[1][1], a[2][2]], [1.0, 1.0, 1.0]);
    assert_eq!(
        world(&a, [0, 0, 0]),
        world(&geometry.source_affine(), [239, 239, 0])
    );
}

#[test]
fn msd_labels_load_unchanged() {
    for n in 1..=3 {
        let path = data()
            .join("msd-labels")
            .join(format!("BRATS_00{n}.nii.gz"));
        let (label, geometry) = read_label(&path).unwrap();
        assert_eq!(geometry.source_code(), "RAS");
        let raw = raw_volume(&path).mapv(|v| v as u8);
        assert_eq!(label, raw);
        assert!(label.iter().all(|&v| v <= 3) && label.iter().any(|&v| v == 3));
    }
}

#[test]
fn written_labels_and_maps_keep_every_voxel_at_its_world_position() {
    let seg = case_file("seg");
    let (label, geometry) = read_label(&seg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.nii.gz");
    write_label(&out, &label, &geometry, None).unwrap();

    // On disk: the source orientation and header geometry, uint8, so it overlays the input.
    assert_eq!(raw_volume(&out), raw_volume(&seg));
    let header = read_header(&out).unwrap();
    let source = read_header(&seg).unwrap();
    assert_eq!(header.datatype, 2);
    assert_eq!((header.scl_slope, header.scl_inter), (1.0, 0.0));
    assert_eq!(
        (header.srow_x, header.srow_y, header.srow_z),
        (source.srow_x, source.srow_y, source.srow_z)
    );
    assert_eq!(
        (header.qform_code, header.sform_code),
        (source.qform_code, source.sform_code)
    );

    // Read back: every labelled voxel lands at the same world point.
    let (again, g2) = read_label(&out).unwrap();
    assert_eq!(again, label);
    let (a1, a2) = (geometry.canonical_affine(), g2.canonical_affine());
    for index in [[0, 0, 0], [239, 0, 154], [17, 200, 3], [120, 121, 77]] {
        assert_eq!(world(&a1, index), world(&a2, index));
    }
    for ((i, j, k), &v) in label.indexed_iter().filter(|(_, &v)| v > 0).step_by(997) {
        let p = world(&a1, [i, j, k]);
        // Invert the (diagonal) canonical affine of the copy to find the voxel there.
        let q = [0, 1, 2].map(|r| ((p[r] - a2[r][3]) / a2[r][r]).round() as usize);
        assert_eq!(again[q], v);
    }

    // 4-D probability maps: two channels, back in the canonical frame unchanged.
    let maps = Array4::from_shape_fn((2, 240, 240, 155), |(c, i, j, k)| {
        (c * 7 + i + 2 * j + 3 * k) as f32 / 1000.0
    });
    let probs = dir.path().join("probs.nii.gz");
    write_probabilities(&probs, &maps, &geometry).unwrap();
    let h = read_header(&probs).unwrap();
    assert_eq!((h.dim[0], h.dim[4], h.datatype), (4, 2, 16));
    let read = read_image(&probs).unwrap();
    assert_eq!(read.data, maps);
    assert_eq!(
        read.geometry.canonical_affine(),
        geometry.canonical_affine()
    );
}

#[test]
fn convert_round_trip_keeps_voxels_and_world_positions() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("brats");
    std::fs::create_dir(&src).unwrap();
    std::os::unix::fs::symlink(data().join("brats2018").join(CASE), src.join(CASE)).unwrap();
    let out = dir.path().join("msd");
    assert_eq!(brainseg_volume::convert::to_msd(&src, &out).unwrap(), 1);

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dataset.json")).unwrap()).unwrap();
    assert_eq!(json["numTraining"], 1);
    assert_eq!(json["modality"]["0"], "FLAIR");
    assert_eq!(
        json["training"][0]["label"],
        format!("./labelsTr/{CASE}.nii.gz")
    );

    let image_file = out.join("imagesTr").join(format!("{CASE}.nii.gz"));
    let header = read_header(&image_file).unwrap();
    assert_eq!(
        (header.dim[0], header.dim[4], header.datatype),
        (4, 4, 4),
        "4-D int16 like the source"
    );

    let original = Dataset::open(&src).unwrap().cases[0].load().unwrap();
    let converted_set = Dataset::open(&out).unwrap();
    assert_eq!(converted_set.layout, Layout::Msd);
    let converted = converted_set.cases[0].load().unwrap();
    assert_eq!(converted.id, CASE);
    assert_eq!(converted.image, original.image);
    assert_eq!(converted.label, original.label);
    assert_eq!(
        converted.geometry.canonical_affine(),
        original.geometry.canonical_affine()
    );
    assert_eq!(
        converted.geometry.source_affine(),
        original.geometry.source_affine()
    );
    // The label file is in MSD numbering and in the source orientation.
    let raw_label = raw_volume(&out.join("labelsTr").join(format!("{CASE}.nii.gz")));
    let raw_brats = raw_volume(&case_file("seg"));
    let mapped = raw_brats.mapv(|v| match v as u8 {
        1 => 2.0,
        2 => 1.0,
        4 => 3.0,
        _ => 0.0,
    });
    assert_eq!(raw_label, mapped);
}

#[test]
fn open_brats_folder_and_split() {
    let dataset = Dataset::open(&data().join("brats2018")).unwrap();
    assert_eq!(dataset.layout, Layout::Brats);
    assert_eq!(dataset.cases.len(), 16);
    let ids: Vec<&str> = dataset.cases.iter().map(|c| c.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert!(dataset.case(CASE).is_some() && dataset.case("nope").is_none());
    let c = dataset.case(CASE).unwrap();
    assert!(c
        .label
        .as_ref()
        .unwrap()
        .ends_with(format!("{CASE}/{CASE}_seg.nii.gz")));

    let split = dataset.split(7, 0.8);
    assert_eq!((split.train.len(), split.valid.len()), (13, 3)); // round(16 * 0.8) = 13
    assert_eq!(split, dataset.split(7, 0.8));
    assert_ne!(split, dataset.split(8, 0.8));
    let mut all: Vec<String> = split.train.iter().chain(&split.valid).cloned().collect();
    all.sort();
    assert_eq!(all, sorted);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.json");
    split.save(&path).unwrap();
    assert_eq!(brainseg_volume::Split::load(&path).unwrap(), split);
    dataset.check_split(&split, &path).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["split.json"], "no temp file left behind");
}

/// A case folder in `dir` whose modalities link to the real case's and whose label map is the real
/// one written with its source affine moved `shift_mm` along world x.
fn case_with_label_shifted(dir: &Path, shift_mm: f32) -> PathBuf {
    let folder = dir.join(CASE);
    std::fs::create_dir_all(&folder).unwrap();
    for suffix in ["flair", "t1", "t1ce", "t2"] {
        std::os::unix::fs::symlink(
            case_file(suffix),
            folder.join(format!("{CASE}_{suffix}.nii.gz")),
        )
        .unwrap();
    }
    let (label, mut geometry) = read_label(&case_file("seg")).unwrap();
    // Both forms move, so whichever the reader uses is shifted.
    geometry.header.srow_x[3] += shift_mm;
    geometry.header.quatern_x += shift_mm;
    write_label(
        &folder.join(format!("{CASE}_seg.nii.gz")),
        &label,
        &geometry,
        None,
    )
    .unwrap();
    folder
}

#[test]
fn a_label_map_moved_50_mm_is_refused_and_the_unmoved_copy_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let folder = case_with_label_shifted(dir.path(), 0.0);
    let case = Dataset::open(&folder).unwrap().cases[0].load().unwrap();
    assert_eq!(case.label.unwrap().shape(), &[240, 240, 155]);

    let dir = tempfile::tempdir().unwrap();
    let folder = case_with_label_shifted(dir.path(), 50.0);
    let seg = folder.join(format!("{CASE}_seg.nii.gz"));
    let err = Dataset::open(&folder).unwrap().cases[0].load().unwrap_err();
    assert_eq!(err.path.as_deref(), Some(seg.as_path()), "{err}");
    let flair = folder.join(format!("{CASE}_flair.nii.gz"));
    let text = err.to_string();
    assert!(
        text.contains(&format!("not co-registered with {}", flair.display())),
        "{text}"
    );
    // A pure translation moves every voxel by exactly the shift.
    assert!(text.contains("lies up to 50.000 mm apart"), "{text}");
    assert!(!text.contains('\n'));
}

#[test]
fn label_numbering_is_detected_on_real_files() {
    use brainseg_volume::{read_label_msd, LabelNumbering};
    // BraTS 2018 (0, 1, 2, 4): detected as BraTS; counts follow 1 -> 2, 2 -> 1, 4 -> 3.
    let seg = case_file("seg");
    let raw = raw_volume(&seg);
    let map = read_label_msd(&seg, None, Some([240, 240, 155])).unwrap();
    assert_eq!((map.numbering, map.guessed), (LabelNumbering::Brats, false));
    for (msd, brats) in [(0u8, 0.0f32), (1, 2.0), (2, 1.0), (3, 4.0)] {
        assert_eq!(
            map.labels.iter().filter(|&&v| v == msd).count(),
            raw.iter().filter(|&&v| v == brats).count()
        );
    }
    // MSD labelsTr (0..=3 with 3 present): detected as MSD, values unchanged.
    let path = data().join("msd-labels").join("BRATS_001.nii.gz");
    let map = read_label_msd(&path, None, None).unwrap();
    assert_eq!((map.numbering, map.guessed), (LabelNumbering::Msd, false));
    assert_eq!(map.labels, raw_volume(&path).mapv(|v| v as u8));
}
