//! Finding the series of a study folder and describing them without reading pixels.
use crate::geometry::{self, StackGeometry};
use crate::header::{self, ObjectHeader, Slice};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One volume series: the images of one SeriesInstanceUID and SeriesNumber with one echo number
/// and one image kind (magnitude or phase). A dual-echo series gives two `Series`.
#[derive(Debug, Clone)]
pub struct Series {
    pub uid: String,
    pub number: Option<i64>,
    pub description: String,
    pub protocol: String,
    /// SequenceName, PulseSequenceName and ScanningSequence, joined by spaces.
    pub sequence: String,
    pub image_type: Vec<String>,
    /// EchoNumbers when the series holds several echoes or the echo is not the first.
    pub echo: Option<i64>,
    pub phase: bool,
    pub echo_time: Option<f64>,
    pub inversion_time: Option<f64>,
    pub contrast_agent: String,
    /// Transfer syntax UID of the first file.
    pub transfer_syntax: String,
    /// The files, in the order they were found (sorted by path); slices are placed by position.
    pub files: Vec<PathBuf>,
    pub(crate) slices: Vec<Slice>,
}

/// Anatomical plane of a series, from the slice normal's largest component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceOrientation {
    Axial,
    Sagittal,
    Coronal,
    /// The normal is more than [`OBLIQUE_DEGREES`] away from its closest patient axis.
    Oblique,
}

/// A normal further than this from its closest patient axis makes a series oblique.
pub const OBLIQUE_DEGREES: f64 = 10.0;

impl fmt::Display for SliceOrientation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SliceOrientation::Axial => "axial",
            SliceOrientation::Sagittal => "sagittal",
            SliceOrientation::Coronal => "coronal",
            SliceOrientation::Oblique => "oblique",
        })
    }
}

/// brainseg's four input modalities, guessed from a series' names and tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Modality {
    Flair,
    T1w,
    T1Gd,
    T2w,
    Unknown,
}

impl Modality {
    /// The name brainseg uses (brainseg_core::MODALITIES), or "unknown".
    pub fn name(self) -> &'static str {
        match self {
            Modality::Flair => "FLAIR",
            Modality::T1w => "T1w",
            Modality::T1Gd => "T1Gd",
            Modality::T2w => "T2w",
            Modality::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `brainseg info` shows for a series. Geometry fields come from headers alone.
#[derive(Debug, Clone)]
pub struct SeriesInfo {
    pub number: Option<i64>,
    pub description: String,
    /// File stem used when converting, e.g. `5_anat-T1w_acq-tfl` or `3_pd+t2_tse_e2`.
    pub name: String,
    pub orientation: SliceOrientation,
    /// Columns, rows, slices, volumes.
    pub size: [usize; 4],
    /// Column spacing, row spacing, slice step (mm).
    pub spacing: [f64; 3],
    pub modality: Modality,
    pub transfer_syntax: String,
    pub files: usize,
    /// Why the series cannot be assembled into a volume (uneven spacing, a missing slice...).
    pub problem: Option<String>,
}

/// A study folder's series, and the files skipped as non-DICOM or non-image.
#[derive(Debug, Clone)]
pub struct Study {
    pub root: PathBuf,
    pub series: Vec<Series>,
    /// Files that are not DICOM, or DICOM objects without an image (raw data, reports...).
    pub skipped: Vec<PathBuf>,
}

/// Find every series under `root` (any nesting). Files not starting like DICOM Part 10 files and
/// objects without an image are skipped; a DICOM file whose header cannot be read is an error
/// naming it. Series come sorted by series number, then description, echo and phase.
pub fn scan_study(root: &Path) -> Result<Study> {
    let mut files = Vec::new();
    collect_files(root, &mut files)?;
    files.sort();
    let headers = read_headers(&files)?;
    let mut skipped = Vec::new();
    // SeriesInstanceUID, SeriesNumber (some tools copy a UID into series of other numbers),
    // echo number, phase.
    type Key = (String, Option<i64>, Option<i64>, bool);
    let mut groups: BTreeMap<Key, Vec<(PathBuf, ObjectHeader)>> = BTreeMap::new();
    for (path, header) in files.into_iter().zip(headers) {
        match header {
            Some(h) => groups
                .entry((h.series_uid.clone(), h.series_number, h.echo, h.is_phase()))
                .or_default()
                .push((path, h)),
            None => skipped.push(path),
        }
    }
    // Echo numbers are kept only where they tell volumes of one series apart or are not 1.
    let mut echoes: BTreeMap<(String, Option<i64>), usize> = BTreeMap::new();
    for (uid, number, _, _) in groups.keys() {
        *echoes.entry((uid.clone(), *number)).or_default() += 1;
    }
    let mut series: Vec<Series> = groups
        .into_iter()
        .map(|((uid, number, echo, phase), members)| {
            let several = echoes[&(uid.clone(), number)] > 1;
            let first = &members[0].1;
            let mut s = Series {
                uid: uid.clone(),
                number: first.series_number,
                description: first.description.clone(),
                protocol: first.protocol.clone(),
                sequence: first.sequence.clone(),
                image_type: first.image_type.clone(),
                echo: echo.filter(|&e| several || e > 1),
                phase,
                echo_time: first.echo_time,
                inversion_time: first.inversion_time,
                contrast_agent: first.contrast_agent.clone(),
                transfer_syntax: first.transfer_syntax.clone(),
                files: Vec::new(),
                slices: Vec::new(),
            };
            for (i, (path, h)) in members.into_iter().enumerate() {
                s.files.push(path);
                s.slices
                    .extend(h.slices.into_iter().map(|sl| Slice { file: i, ..sl }));
            }
            s
        })
        .collect();
    series.sort_by(|a, b| {
        (a.number, &a.description, a.echo, a.phase).cmp(&(
            b.number,
            &b.description,
            b.echo,
            b.phase,
        ))
    });
    Ok(Study {
        root: root.to_path_buf(),
        series,
        skipped,
    })
}

/// The series of a study folder, described for `brainseg info`.
pub fn list_series(root: &Path) -> Result<Vec<SeriesInfo>> {
    Ok(scan_study(root)?.series.iter().map(Series::info).collect())
}

/// The one series in `folder` (any nesting). Several series (different SeriesInstanceUIDs, or
/// echoes / phase images of one) are an error listing them.
pub fn find_one_series(folder: &Path) -> Result<Series> {
    let study = scan_study(folder)?;
    match study.series.len() {
        0 => Err(Error::at(folder, "no DICOM image series found")),
        1 => Ok(study.series.into_iter().next().expect("one series")),
        n => {
            let names: Vec<String> = study
                .series
                .iter()
                .map(|s| {
                    format!(
                        "{} ({} files, first {})",
                        s.name(),
                        s.files.len(),
                        s.files[0].display()
                    )
                })
                .collect();
            let uids: std::collections::BTreeSet<&str> =
                study.series.iter().map(|s| s.uid.as_str()).collect();
            let what = if uids.len() > 1 {
                format!("{} series (SeriesInstanceUIDs) are mixed", uids.len())
            } else {
                "one series holds several volumes (echoes or phase)".to_string()
            };
            Err(Error::at(
                folder,
                format!(
                    "{what}: {n} volumes {}; give one series' folder, or convert the study",
                    names.join(", ")
                ),
            ))
        }
    }
}

impl Series {
    /// The file stem for this series: `<number>_<description>` with unsafe characters replaced,
    /// then `_e<echo>` and `_ph` as dcm2niix adds them.
    pub fn name(&self) -> String {
        let label = if self.description.is_empty() {
            &self.protocol
        } else {
            &self.description
        };
        let mut name = match self.number {
            Some(n) => format!("{n}_{label}"),
            None => label.clone(),
        };
        name = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-+_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if name.is_empty() {
            name = "series".into();
        }
        if let Some(e) = self.echo {
            name.push_str(&format!("_e{e}"));
        }
        if self.phase {
            name.push_str("_ph");
        }
        name
    }

    /// The geometry of the series from its headers, or why it does not form a volume.
    pub(crate) fn stack(&self) -> Result<StackGeometry> {
        geometry::stack(&self.slices, &self.files)
    }

    /// Describe the series (no pixels read).
    pub fn info(&self) -> SeriesInfo {
        let first = &self.slices[0];
        let normal = header::cross(first.row_dir, first.col_dir);
        let (size, spacing, problem) = match self.stack() {
            Ok(g) => (
                [g.cols, g.rows, g.slices, g.volumes],
                [g.pixel_spacing[1], g.pixel_spacing[0], g.slice_step],
                None,
            ),
            Err(e) => (
                [first.cols, first.rows, self.slices.len(), 1],
                [first.pixel_spacing[1], first.pixel_spacing[0], 0.0],
                Some(e.to_string()),
            ),
        };
        SeriesInfo {
            number: self.number,
            description: self.description.clone(),
            name: self.name(),
            orientation: slice_orientation(normal),
            size,
            spacing,
            modality: guess_modality(self),
            transfer_syntax: crate::volume::syntax_name(&self.transfer_syntax),
            files: self.files.len(),
            problem,
        }
    }
}

/// Axial, sagittal or coronal when the slice normal is within [`OBLIQUE_DEGREES`] of the patient's
/// superior-inferior, left-right or anterior-posterior axis; oblique otherwise.
pub fn slice_orientation(normal: [f64; 3]) -> SliceOrientation {
    let n = header::unit(normal).unwrap_or([0.0, 0.0, 1.0]);
    let (axis, largest) = n
        .iter()
        .map(|v| v.abs())
        .enumerate()
        .fold(
            (0, 0.0),
            |best, (i, v)| if v > best.1 { (i, v) } else { best },
        );
    if largest < OBLIQUE_DEGREES.to_radians().cos() {
        return SliceOrientation::Oblique;
    }
    match axis {
        0 => SliceOrientation::Sagittal,
        1 => SliceOrientation::Coronal,
        _ => SliceOrientation::Axial,
    }
}

/// Guess brainseg's modality from SeriesDescription, ProtocolName and the sequence names, split
/// into lower-case words (letters, digits and `+`), with InversionTime and ContrastBolusAgent.
/// The rules, first match wins:
/// 1. FLAIR: a word `flair`, `tirm`, `darkfluid`/`dark-fluid`, or an inversion time of at least
///    1500 ms with an echo time of at least 60 ms (fluid-suppressed T2).
/// 2. Phase images, diffusion (`dwi`, `dti`, `diff`, `adc`, `trace`, `ep2d_diff`), perfusion,
///    BOLD/fMRI, field maps, localisers and susceptibility (`swi`, `t2*`, `t2star`) are unknown.
/// 3. T1-weighted words: `t1`, `t1w`, `t1c`, `t1ce`, `t1gd`, `t1+c`, `mprage`, `mp-rage`, `tfl`,
///    `spgr`, `fspgr`, `bravo`, `vibe`, `ffe` with a T1 word, `3d t1`. With a contrast
///    marker (a word `gd`, `gad`, `gado`, `post`, `contrast`, `ce`, `+c`, `c+`, `t1c`, `t1ce`,
///    `t1gd`, `t1+c`, `postcontrast`, `mprage_post`; or a non-empty ContrastBolusAgent) it is
///    T1Gd, else T1w.
/// 4. T2-weighted: a word `t2`, `t2w`, `t2_tse`, `t2_fse`, or a TSE/FSE name with echo time ≥ 60 ms.
/// 5. Otherwise unknown. Dual-echo PD+T2 series give T2w for their long echo (echo > 1) only.
pub fn guess_modality(s: &Series) -> Modality {
    let text = format!("{} {} {}", s.description, s.protocol, s.sequence).to_ascii_lowercase();
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '*'))
        .filter(|w| !w.is_empty())
        .collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    let contains = |list: &[&str]| list.iter().any(|p| text.contains(p));
    let te = s.echo_time.unwrap_or(0.0);
    let ti = s.inversion_time.unwrap_or(0.0);
    if has(&["flair", "tirm", "darkfluid"]) || contains(&["dark-fluid", "dark_fluid"]) {
        return Modality::Flair;
    }
    if ti >= 1500.0 && te >= 60.0 {
        return Modality::Flair;
    }
    if s.phase
        || has(&[
            "dwi",
            "dti",
            "diff",
            "adc",
            "trace",
            "perf",
            "pwi",
            "dsc",
            "asl",
            "bold",
            "fmri",
            "swi",
            "t2*",
            "t2star",
            "localizer",
            "localiser",
            "scout",
            "survey",
            "fieldmap",
        ])
        || contains(&["ep2d_diff", "field_map", "field map", "gre_field"])
    {
        return Modality::Unknown;
    }
    let contrast = has(&[
        "gd",
        "gad",
        "gado",
        "post",
        "contrast",
        "ce",
        "+c",
        "c+",
        "t1c",
        "t1ce",
        "t1gd",
        "t1+c",
        "postcontrast",
        "mprage_post",
    ]) || !s.contrast_agent.is_empty();
    let t1 = has(&[
        "t1", "t1w", "t1c", "t1ce", "t1gd", "t1+c", "mprage", "mp-rage", "tfl", "spgr", "fspgr",
        "bravo", "vibe",
    ]) || contains(&["mprage", "mp-rage", "mp_rage", "t1_", "t1w_", "_t1"]);
    if t1 {
        return if contrast {
            Modality::T1Gd
        } else {
            Modality::T1w
        };
    }
    let pd_t2 = contains(&["pd+t2", "pd_t2", "pdt2", "pd-t2"]);
    if pd_t2 {
        return if s.echo.unwrap_or(1) > 1 {
            Modality::T2w
        } else {
            Modality::Unknown
        };
    }
    let fast_spin_echo = has(&["tse", "fse", "frfse", "haste"]) || contains(&["tse", "fse"]);
    if has(&["t2", "t2w"]) || contains(&["t2_", "t2w", "_t2"]) || (fast_spin_echo && te >= 60.0) {
        return Modality::T2w;
    }
    Modality::Unknown
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::at(dir, "no such file or folder"),
        _ => Error::at(dir, format!("cannot read: {e}")),
    })?;
    if meta.is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::at(dir, format!("cannot list: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::at(dir, format!("cannot list: {e}")))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry
            .file_type()
            .map_err(|e| Error::at(&path, format!("cannot read: {e}")))?;
        if kind.is_dir() || (kind.is_symlink() && path.is_dir()) {
            collect_files(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Headers of every file, on parallel threads; `None` for non-DICOM files and non-image objects.
fn read_headers(files: &[PathBuf]) -> Result<Vec<Option<ObjectHeader>>> {
    let read = |path: &PathBuf| -> Result<Option<ObjectHeader>> {
        if !header::looks_like_dicom(path) {
            return Ok(None);
        }
        let obj = header::open_header(path)?;
        header::object_header(path, 0, &obj)
    };
    crate::parallel_map(files, read).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(description: &str) -> Series {
        Series {
            uid: "1".into(),
            number: Some(3),
            description: description.into(),
            protocol: String::new(),
            sequence: String::new(),
            image_type: vec![],
            echo: None,
            phase: false,
            echo_time: None,
            inversion_time: None,
            contrast_agent: String::new(),
            transfer_syntax: String::new(),
            files: vec![],
            slices: vec![],
        }
    }

    #[test]
    fn modality_rules() {
        let guess = |d: &str| guess_modality(&series(d));
        assert_eq!(guess("AX FLAIR"), Modality::Flair);
        assert_eq!(guess("t2_tirm_tra_dark-fluid"), Modality::Flair);
        assert_eq!(guess("T1 MPRAGE"), Modality::T1w);
        assert_eq!(guess("anat-T1w_acq-tfl"), Modality::T1w);
        assert_eq!(guess("3D Ax T1 MP-RAGE_R22"), Modality::T1w);
        assert_eq!(guess("T1W_TSE_Sno"), Modality::T1w);
        assert_eq!(guess("t1_mprage_sag_post"), Modality::T1Gd);
        assert_eq!(guess("AX T1 +C"), Modality::T1Gd);
        assert_eq!(guess("T1 Gd"), Modality::T1Gd);
        assert_eq!(guess("t2_tse_tra"), Modality::T2w);
        assert_eq!(guess("Ax fMRI"), Modality::Unknown);
        assert_eq!(guess("SAG_DTI_PA-ortho"), Modality::Unknown);
        assert_eq!(guess("gre_field_mapping"), Modality::Unknown);
        assert_eq!(guess("localizer"), Modality::Unknown);
        let mut s = series("pd+t2_tse_sag");
        assert_eq!(guess_modality(&s), Modality::Unknown);
        s.echo = Some(2);
        assert_eq!(guess_modality(&s), Modality::T2w);
        let mut s = series("T1 SE");
        s.contrast_agent = "Gadovist".into();
        assert_eq!(guess_modality(&s), Modality::T1Gd);
        let mut s = series("ir_tse");
        s.inversion_time = Some(2500.0);
        s.echo_time = Some(90.0);
        assert_eq!(guess_modality(&s), Modality::Flair);
    }

    #[test]
    fn orientation_from_normal() {
        assert_eq!(slice_orientation([0.0, 0.0, 1.0]), SliceOrientation::Axial);
        assert_eq!(
            slice_orientation([-1.0, 0.0, 0.0]),
            SliceOrientation::Sagittal
        );
        assert_eq!(
            slice_orientation([0.0, 1.0, 0.0]),
            SliceOrientation::Coronal
        );
        // 0.108 rad ≈ 6.2 degrees off axial: still axial.
        assert_eq!(
            slice_orientation([0.0, 0.108, 0.994]),
            SliceOrientation::Axial
        );
        // 45 degrees: oblique.
        assert_eq!(
            slice_orientation([0.0, 1.0, 1.0]),
            SliceOrientation::Oblique
        );
    }

    #[test]
    fn names_follow_dcm2niix_suffixes() {
        let mut s = series("pd+t2_tse sag/ISO");
        s.echo = Some(2);
        assert_eq!(s.name(), "3_pd+t2_tse_sag_ISO_e2");
        s.phase = true;
        assert_eq!(s.name(), "3_pd+t2_tse_sag_ISO_e2_ph");
    }
}
