//! Whole-case metrics on real MSD label maps (240 x 240 x 155) from `shared/data/msd-labels`.
use std::time::Instant;

use brainseg_metrics::{CaseMetrics, RegionMetrics};
use ndarray::{s, Array3};
use nifti::{IntoNdArray, NiftiObject, ReaderOptions};

fn msd_labels(case: &str) -> Array3<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/msd-labels/"
    )
    .to_string()
        + case;
    let object = ReaderOptions::new()
        .read_file(&path)
        .expect("readable NIfTI");
    let volume = object
        .into_volume()
        .into_ndarray::<u8>()
        .expect("u8 labels");
    let shape: [usize; 3] = volume.shape().try_into().expect("a 3-D label map");
    Array3::from_shape_vec(shape, volume.iter().copied().collect()).expect("matching length")
}

#[test]
fn a_case_against_itself_and_against_a_shifted_copy() {
    let truth = msd_labels("BRATS_001.nii.gz");
    assert_eq!(truth.dim(), (240, 240, 155));
    let perfect = CaseMetrics::compute(truth.view(), truth.view(), [1.0; 3]).unwrap();
    for region in perfect.regions() {
        assert_eq!(
            *region,
            RegionMetrics {
                dice: 1.0,
                hd95: 0.0
            }
        );
    }
    for class in perfect.classes() {
        assert_eq!(
            (class.dice, class.sensitivity, class.specificity),
            (Some(1.0), Some(1.0), Some(1.0))
        );
    }

    // Shifted 2 voxels along x (the tumour is far from the border): each surface voxel of one copy has its twin
    // on the other's surface 2 voxels away, so every surface distance is in (0, 2], times the 1.5 mm spacing.
    let mut shifted = Array3::<u8>::zeros(truth.dim());
    shifted
        .slice_mut(s![2.., .., ..])
        .assign(&truth.slice(s![..-2, .., ..]));
    let started = Instant::now();
    let metrics = CaseMetrics::compute(shifted.view(), truth.view(), [1.5, 1.0, 1.0]).unwrap();
    eprintln!("whole-case metrics in {:?}", started.elapsed());
    for region in metrics.regions() {
        assert!(region.dice > 0.3 && region.dice < 1.0, "{region:?}");
        assert!(region.hd95 > 0.0 && region.hd95 <= 3.0 + 1e-9, "{region:?}");
    }
    // The same voxel count is predicted as is true, so Dice equals sensitivity for each class.
    for class in metrics.classes() {
        assert!(
            (class.dice.unwrap() - class.sensitivity.unwrap()).abs() < 1e-12,
            "{class:?}"
        );
    }
}
