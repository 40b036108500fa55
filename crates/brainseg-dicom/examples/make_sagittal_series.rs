//! A 176-slice classic sagittal series for `bench_read` (the shared corpus has none that long):
//! the T1 of a BraTS case, 176 sagittal slices of 240x155 int16 pixels, one explicit-little-endian
//! file per slice, written with dicom-rs's writer.
//!
//!     cargo run --release -p brainseg-dicom --example make_sagittal_series -- \
//!         ../shared/data/brats/<case folder> /tmp/sag176
use brainseg_volume::Dataset;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use std::path::Path;

#[path = "../tests/support/mr_image.rs"]
mod mr_image;
use mr_image::{mr_image, write_file};

const SLICES: usize = 176;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(case), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: make_sagittal_series <BraTS case folder> <output folder>");
        std::process::exit(2);
    };
    let dataset = Dataset::open(Path::new(case)).expect("a BraTS case folder");
    let case = dataset.cases[0].load().expect("a readable case");
    let out = Path::new(out);
    std::fs::create_dir_all(out).expect("output folder");
    let t1 = case.image.index_axis(ndarray::Axis(0), 1);
    let (nx, ny, nz) = t1.dim();
    let x0 = nx.saturating_sub(SLICES) / 2;
    for s in 0..SLICES.min(nx) {
        let i = x0 + s;
        // Rows run superior to inferior (LPS -z), columns anterior to posterior (LPS +y).
        let pixels: Vec<u16> = (0..nz)
            .flat_map(|r| (0..ny).map(move |c| (r, c)))
            .map(|(r, c)| t1[[i, ny - 1 - c, nz - 1 - r]] as i16 as u16)
            .collect();
        let mut obj = mr_image(nz, ny, pixels);
        let mut put = |tag, vr, value: PrimitiveValue| obj.put(DataElement::new(tag, vr, value));
        let uid = format!("1.2.826.0.1.3680043.10.2.{}", s + 1);
        put(tags::SOP_INSTANCE_UID, VR::UI, uid.into());
        put(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            "1.2.826.0.1.3680043.10.2".into(),
        );
        put(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            "1.2.826.0.1.3680043.10.2.1".into(),
        );
        put(tags::MODALITY, VR::CS, "MR".into());
        put(tags::SERIES_NUMBER, VR::IS, "2".into());
        put(tags::SERIES_DESCRIPTION, VR::LO, "t1_mprage_sag".into());
        put(tags::INSTANCE_NUMBER, VR::IS, (s + 1).to_string().into());
        let position = format!("{}\\0\\{}", -(i as f64), nz as f64 - 1.0);
        put(tags::IMAGE_POSITION_PATIENT, VR::DS, position.into());
        put(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            "0\\1\\0\\0\\0\\-1".into(),
        );
        put(tags::PIXEL_SPACING, VR::DS, "1\\1".into());
        put(tags::SLICE_THICKNESS, VR::DS, "1".into());
        let path = out.join(format!("IM{:04}.dcm", s + 1));
        write_file(obj, &path, uids::EXPLICIT_VR_LITTLE_ENDIAN);
    }
    println!("{} slices written to {}", SLICES.min(nx), out.display());
}
