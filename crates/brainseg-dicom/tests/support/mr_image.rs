//! An MR image object as a scanner writes one, for the tests and examples that make DICOM with
//! dicom-rs's writer (included by `#[path]`): the image-pixel attributes of one signed 16-bit
//! frame; callers add geometry, names and numbers.
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use std::path::Path;

/// MR image storage holding one `rows` x `cols` frame of signed 16-bit `pixels`, row-major (the
/// bits of each i16 as u16).
pub fn mr_image(rows: usize, cols: usize, pixels: Vec<u16>) -> InMemDicomObject {
    assert_eq!(pixels.len(), rows * cols, "one frame of pixels");
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag, vr, value: PrimitiveValue| obj.put(DataElement::new(tag, vr, value));
    put(tags::SOP_CLASS_UID, VR::UI, uids::MR_IMAGE_STORAGE.into());
    put(tags::ROWS, VR::US, PrimitiveValue::from(rows as u16));
    put(tags::COLUMNS, VR::US, PrimitiveValue::from(cols as u16));
    put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
    put(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2".into(),
    );
    put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16));
    put(tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16));
    put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16));
    put(
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(1u16),
    );
    put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into()));
    obj
}

/// Writes `obj` as a DICOM file at `path` in transfer syntax `syntax`.
pub fn write_file(obj: InMemDicomObject, path: &Path, syntax: &str) {
    obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(syntax))
        .expect("file meta")
        .write_to_file(path)
        .expect("a writable folder");
}
