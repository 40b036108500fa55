//! Label maps in MSD numbering: the one place where a label file is read, its numbering detected
//! or checked, its values converted to MSD (0 background, 1 edema, 2 non-enhancing tumour,
//! 3 enhancing tumour) and its shape checked.
use crate::nifti_io::{read_label, shape_text};
use crate::{Error, Geometry, LabelNumbering, Result};
use ndarray::Array3;
use std::path::Path;

/// A label map read by [`read_label_msd`].
#[derive(Debug, Clone)]
pub struct MsdLabelMap {
    /// MSD numbering 0..=3, canonical orientation.
    pub labels: Array3<u8>,
    pub geometry: Geometry,
    /// The numbering the file was stored in (given, or detected).
    pub numbering: LabelNumbering,
    /// Whether `numbering` is a guess: none was given and the values fit both numberings (no 3
    /// and no 4: MSD was assumed).
    pub guessed: bool,
}

/// Read a 3-D label file and convert it to MSD numbering, in canonical orientation.
///
/// `numbering`: the file's numbering, or None to take it from the header's description (as
/// [`crate::write_label`] writes it), else to detect it from the values present: a 4 means
/// BraTS (which maps 1 -> 2, 2 -> 1, 4 -> 3, and 3 -> 3 as BraTS 2023 writes it); a 3 without a 4
/// means MSD; neither means MSD, reported as a guess in [`MsdLabelMap::guessed`]. Note that
/// BraTS 2023 files (enhancing tumour 3, no 4) read as MSD when detected: give their numbering.
///
/// `expected_shape`: the canonical shape the map must have (the image's), if known.
pub fn read_label_msd(
    path: &Path,
    numbering: Option<LabelNumbering>,
    expected_shape: Option<[usize; 3]>,
) -> Result<MsdLabelMap> {
    let (raw, geometry) = read_label(path)?;
    if let Some(expected) = expected_shape {
        check_label_shape(path, &geometry, expected)?;
    }
    let mut present = [false; 256];
    raw.iter().for_each(|&v| present[v as usize] = true);
    let described =
        LabelNumbering::from_header_description(&String::from_utf8_lossy(&geometry.header.descrip));
    let (numbering, guessed) = match numbering.or(described) {
        Some(n) => (n, false),
        None => {
            let n = detect_numbering(&present).ok_or_else(|| {
                let bad = (5..256).find(|&v| present[v]).unwrap_or(255);
                Error::at(
                    path,
                    format!(
                        "unknown label value {bad} (neither MSD numbering, {}, nor BraTS, {})",
                        LabelNumbering::Msd.known_values(),
                        LabelNumbering::Brats.known_values()
                    ),
                )
            })?;
            (n, !present[3] && !present[4])
        }
    };
    let mut table = [None; 256];
    for (v, entry) in table.iter_mut().enumerate() {
        *entry = numbering.to_msd(v as u8);
    }
    if let Some(bad) = (0..256).find(|&v| present[v] && table[v].is_none()) {
        return Err(Error::at(
            path,
            format!(
                "unknown label value {bad} ({numbering:?} numbering has {})",
                numbering.known_values()
            ),
        ));
    }
    Ok(MsdLabelMap {
        labels: raw.mapv(|v| table[v as usize].expect("checked above")),
        geometry,
        numbering,
        guessed,
    })
}

/// The numbering a set of present label values (indexed by value) is stored in: BraTS when a 4
/// is present, else MSD when all values are 0..=3; None for values neither numbering has.
pub fn detect_numbering(present: &[bool; 256]) -> Option<LabelNumbering> {
    if present[5..].iter().any(|&p| p) {
        None
    } else if present[4] {
        Some(LabelNumbering::Brats)
    } else {
        Some(LabelNumbering::Msd)
    }
}

/// A label map's canonical shape must be the image's.
pub(crate) fn check_label_shape(
    path: &Path,
    geometry: &Geometry,
    expected: [usize; 3],
) -> Result<()> {
    let shape = geometry.canonical_shape();
    if shape != expected {
        return Err(Error::at(
            path,
            format!(
                "label shape {} differs from the image shape {}",
                shape_text(&shape),
                shape_text(&expected)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(values: &[usize]) -> [bool; 256] {
        let mut p = [false; 256];
        values.iter().for_each(|&v| p[v] = true);
        p
    }

    #[test]
    fn detection_rules() {
        use LabelNumbering::{Brats, Msd};
        assert_eq!(detect_numbering(&present(&[0, 1, 2, 4])), Some(Brats));
        assert_eq!(detect_numbering(&present(&[0, 4])), Some(Brats));
        assert_eq!(detect_numbering(&present(&[0, 3, 4])), Some(Brats));
        assert_eq!(detect_numbering(&present(&[0, 1, 2, 3])), Some(Msd));
        assert_eq!(detect_numbering(&present(&[0, 1])), Some(Msd));
        assert_eq!(detect_numbering(&present(&[0, 5])), None);
        assert_eq!(detect_numbering(&present(&[255])), None);
    }

    #[test]
    fn a_written_numbering_is_read_back_where_the_values_cannot_tell() {
        // Values 1 and 2 only: MSD and BraTS both have them (swapped), so detection would guess.
        let dir = tempfile::tempdir().unwrap();
        let geometry = Geometry::synthetic([4, 3, 2], [1.0, 1.0, 1.0]);
        let mut labels = Array3::<u8>::zeros((4, 3, 2));
        labels[[0, 0, 0]] = 1;
        labels[[3, 2, 1]] = 2;
        let described = dir.path().join("described.nii.gz");
        crate::write_label(&described, &labels, &geometry, Some(LabelNumbering::Brats)).unwrap();
        let map = read_label_msd(&described, None, None).unwrap();
        assert_eq!((map.numbering, map.guessed), (LabelNumbering::Brats, false));
        // BraTS 1 (necrotic core) is MSD 2, BraTS 2 (edema) is MSD 1.
        assert_eq!((map.labels[[0, 0, 0]], map.labels[[3, 2, 1]]), (2, 1));
        // A numbering given by the caller wins over the description.
        let given = read_label_msd(&described, Some(LabelNumbering::Msd), None).unwrap();
        assert_eq!(given.labels[[0, 0, 0]], 1);

        let plain = dir.path().join("plain.nii.gz");
        crate::write_label(&plain, &labels, &geometry, None).unwrap();
        let map = read_label_msd(&plain, None, None).unwrap();
        assert_eq!((map.numbering, map.guessed), (LabelNumbering::Msd, true));
    }
}
