//! Colour tables beside a label map, so ITK-SNAP and 3D Slicer show brainseg's classes in
//! brainseg's colours and names: `<name>.itksnap.txt` (ITK-SNAP label description file) and
//! `<name>.ctbl` (3D Slicer colour table).
use crate::{Error, Result};
use brainseg_core::{Class, LabelNumbering};
use brainseg_visualize::CLASS_COLOURS;
use brainseg_volume::write_atomic;
use std::path::{Path, PathBuf};

/// The classes with their label values in `numbering`, by value.
fn entries(numbering: LabelNumbering) -> Vec<(u8, Class, [u8; 3])> {
    let mut entries: Vec<_> = Class::ALL
        .iter()
        .zip(CLASS_COLOURS)
        .map(|(&class, colour)| (numbering.from_msd(class.msd_label()), class, colour))
        .collect();
    entries.sort_by_key(|e| e.0);
    entries
}

/// ITK-SNAP's label description file (as ITK-SNAP's "Export label descriptions" writes it).
pub fn itksnap_text(numbering: LabelNumbering) -> String {
    let mut text = String::from(
        "################################################\n\
         # ITK-SnAP Label Description File\n\
         # File format: \n\
         # IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL\n\
         # Fields: \n\
         #    IDX:   Zero-based index \n\
         #    -R-:   Red color component (0..255)\n\
         #    -G-:   Green color component (0..255)\n\
         #    -B-:   Blue color component (0..255)\n\
         #    -A-:   Label transparency (0.00 .. 1.00)\n\
         #    VIS:   Label visibility (0 or 1)\n\
         #    IDX:   Label mesh visibility (0 or 1)\n\
         #  LABEL:   Label description \n\
         ################################################\n",
    );
    let line = |value: u8, [r, g, b]: [u8; 3], visible: u8, name: &str| {
        format!("{value:>5} {r:>5} {g:>4} {b:>4} {visible:>8} {visible:>2} {visible:>2}    \"{name}\"\n")
    };
    text += &line(0, [0, 0, 0], 0, "Clear Label");
    for (value, class, colour) in entries(numbering) {
        text += &line(value, colour, 1, class.name());
    }
    text
}

/// A 3D Slicer colour table: `value name R G B A` per line, names without spaces.
pub fn slicer_text(numbering: LabelNumbering, file_name: &str) -> String {
    let classes = entries(numbering);
    let mut text = format!(
        "# Color table file {file_name}\n# {} values\n0 background 0 0 0 0\n",
        classes.len() + 1
    );
    for (value, class, [r, g, b]) in classes {
        text += &format!(
            "{value} {} {r} {g} {b} 255\n",
            class.name().replace(' ', "_")
        );
    }
    text
}

/// Writes `<stem>.itksnap.txt` (ITK-SNAP's label description file) and `<stem>.ctbl` (3D Slicer's
/// colour table) with the label values of `numbering`; returns their paths.
pub fn write_colour_tables(stem: &Path, numbering: LabelNumbering) -> Result<[PathBuf; 2]> {
    let name = stem
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::at(stem, "not a file name for colour tables"))?;
    let itksnap = stem.with_file_name(format!("{name}.itksnap.txt"));
    let slicer = stem.with_file_name(format!("{name}.ctbl"));
    write_atomic(&itksnap, itksnap_text(numbering).as_bytes())?;
    write_atomic(
        &slicer,
        slicer_text(numbering, &format!("{name}.ctbl")).as_bytes(),
    )?;
    Ok([itksnap, slicer])
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITKSNAP_HEADER: &str = "################################################
# ITK-SnAP Label Description File
# File format: 
# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL
# Fields: 
#    IDX:   Zero-based index 
#    -R-:   Red color component (0..255)
#    -G-:   Green color component (0..255)
#    -B-:   Blue color component (0..255)
#    -A-:   Label transparency (0.00 .. 1.00)
#    VIS:   Label visibility (0 or 1)
#    IDX:   Label mesh visibility (0 or 1)
#  LABEL:   Label description 
################################################
";

    #[test]
    fn itksnap_brats_and_msd() {
        let brats = ITKSNAP_HEADER.to_string()
            + r#"    0     0    0    0        0  0  0    "Clear Label"
    1     0  255    0        1  1  1    "non-enhancing tumour"
    2   255    0    0        1  1  1    "edema"
    4     0    0  255        1  1  1    "enhancing tumour"
"#;
        assert_eq!(itksnap_text(LabelNumbering::Brats), brats);
        let msd = ITKSNAP_HEADER.to_string()
            + r#"    0     0    0    0        0  0  0    "Clear Label"
    1   255    0    0        1  1  1    "edema"
    2     0  255    0        1  1  1    "non-enhancing tumour"
    3     0    0  255        1  1  1    "enhancing tumour"
"#;
        assert_eq!(itksnap_text(LabelNumbering::Msd), msd);
    }

    #[test]
    fn slicer_brats() {
        assert_eq!(
            slicer_text(LabelNumbering::Brats, "case.ctbl"),
            "# Color table file case.ctbl
# 4 values
0 background 0 0 0 0
1 non-enhancing_tumour 0 255 0 255
2 edema 255 0 0 255
4 enhancing_tumour 0 0 255 255
"
        );
    }

    #[test]
    fn files_named_after_the_stem() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("BraTS_001");
        let [itksnap, slicer] = write_colour_tables(&stem, LabelNumbering::Msd).unwrap();
        assert_eq!(itksnap, dir.path().join("BraTS_001.itksnap.txt"));
        assert_eq!(slicer, dir.path().join("BraTS_001.ctbl"));
        let text = std::fs::read_to_string(&slicer).unwrap();
        assert!(text.starts_with("# Color table file BraTS_001.ctbl\n# 4 values\n"));
        assert!(text.ends_with("3 enhancing_tumour 0 0 255 255\n"), "{text}");
        let missing = write_colour_tables(&dir.path().join("no/such/labels"), LabelNumbering::Msd);
        assert!(missing.is_err());
    }
}
