//! Dataset layouts: Medical Segmentation Decathlon (dataset.json, 4-D imagesTr, labelsTr) and raw BraTS
//! (a folder per case, one file per modality: `_flair/_t1/_t1ce/_t2/_seg` or BraTS 2021+ `-t2f/-t1n/-t1c/-t2w/-seg`).
use crate::label_map::{check_label_shape, read_label_msd};
use crate::nifti_io::{check_same_grid, read_channels, read_header, read_image, Image};
use crate::{Case, Error, LabelNumbering, Result, MODALITIES};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    Msd,
    Brats,
}

/// Where a case's image data lives.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// One 4-D NIfTI, channels FLAIR, T1w, T1Gd, T2w (MSD).
    FourD(PathBuf),
    /// One file per modality in the order FLAIR, T1w, T1Gd, T2w (BraTS).
    PerModality([PathBuf; 4]),
}

#[derive(Debug, Clone)]
pub struct CaseRef {
    pub id: String,
    pub image: ImageSource,
    pub label: Option<PathBuf>,
    /// Numbering of the label file on disk (BraTS files are mapped to MSD on load).
    pub numbering: crate::LabelNumbering,
}

impl CaseRef {
    /// Load, canonicalise and validate (shapes agree, label values known, finite voxels).
    /// Files are read on parallel threads.
    pub fn load(&self) -> Result<Case> {
        let (image, label) = std::thread::scope(|scope| {
            let label = self
                .label
                .as_deref()
                .map(|path| scope.spawn(move || read_label_msd(path, Some(self.numbering), None)));
            let image = self.load_image();
            (
                image,
                label.map(|l| l.join().expect("label reading does not panic")),
            )
        });
        let Image {
            data: image,
            geometry,
            ..
        } = image?;
        let mut sources = self.image_files();
        let label = match label {
            None => None,
            Some(read) => {
                let label = read?;
                let path = self.label.clone().expect("a label path");
                let shape = image.shape();
                check_label_shape(&path, &label.geometry, [shape[1], shape[2], shape[3]])?;
                // The label must lie where the image lies, not only have its shape.
                check_same_grid(&path, &label.geometry, &sources[0], &geometry)?;
                sources.push(path);
                Some(label.labels)
            }
        };
        Ok(Case {
            id: self.id.clone(),
            image,
            label,
            geometry,
            sources,
        })
    }

    /// The image files of this case, in channel order.
    pub fn image_files(&self) -> Vec<PathBuf> {
        match &self.image {
            ImageSource::FourD(path) => vec![path.clone()],
            ImageSource::PerModality(paths) => paths.to_vec(),
        }
    }

    fn load_image(&self) -> Result<Image> {
        match &self.image {
            ImageSource::FourD(path) => {
                let image = read_image(path)?;
                let channels = image.data.shape()[0];
                if channels != 4 {
                    return Err(Error::at(
                        path,
                        format!(
                            "expected 4 channels ({}), found {channels}",
                            MODALITIES.join(", ")
                        ),
                    ));
                }
                Ok(image)
            }
            ImageSource::PerModality(paths) => {
                let files: Vec<(&Path, &str)> =
                    paths.iter().map(PathBuf::as_path).zip(MODALITIES).collect();
                read_channels(&files)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub layout: Layout,
    pub cases: Vec<CaseRef>,
}

/// Train/validation case ids, stored as JSON `{"train": [...], "valid": [...]}` users can edit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    pub train: Vec<String>,
    pub valid: Vec<String>,
}

/// File-name endings of the BraTS modalities (FLAIR, T1w, T1Gd, T2w), old and 2021+ names.
const BRATS_SUFFIXES: [[&str; 2]; 4] = [
    ["_flair", "-t2f"],
    ["_t1", "-t1n"],
    ["_t1ce", "-t1c"],
    ["_t2", "-t2w"],
];
const BRATS_LABEL_SUFFIXES: [&str; 2] = ["_seg", "-seg"];

impl Dataset {
    /// Open a dataset folder, a single BraTS case folder, or a single 4-D NIfTI file; the layout is detected.
    pub fn open(path: &Path) -> Result<Dataset> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::at(path, "no such file or folder"),
            _ => Error::at(path, format!("cannot open: {e}")),
        })?;
        if meta.is_file() {
            let name = file_name(path);
            if name == "dataset.json" {
                let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
                return open_msd(&root, path);
            }
            return open_single_file(path);
        }
        let json = path.join("dataset.json");
        if json.is_file() {
            return open_msd(path, &json);
        }
        if let Some(case) = brats_case(path)? {
            return Ok(Dataset {
                root: path.to_path_buf(),
                layout: Layout::Brats,
                cases: vec![case],
            });
        }
        let mut cases = Vec::new();
        for folder in list_dir(path)? {
            if folder.is_dir() {
                cases.extend(brats_case(&folder)?);
            }
        }
        if cases.is_empty() {
            return Err(Error::at(
                path,
                "no dataset here: no dataset.json (MSD), no BraTS case folders and no modality files \
                 (expected names ending in _flair/_t1/_t1ce/_t2 or -t2f/-t1n/-t1c/-t2w .nii.gz)",
            ));
        }
        cases.sort_by(|a, b| a.id.cmp(&b.id));
        check_unique_ids(&cases, path)?;
        Ok(Dataset {
            root: path.to_path_buf(),
            layout: Layout::Brats,
            cases,
        })
    }

    pub fn case(&self, id: &str) -> Option<&CaseRef> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// Deterministic split from a seed (default fraction 0.8 train), at least one case on each side when n >= 2.
    pub fn split(&self, seed: u64, train_fraction: f64) -> Split {
        let mut ids: Vec<String> = self.cases.iter().map(|c| c.id.clone()).collect();
        ids.sort();
        ids.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let n = ids.len();
        let fraction = if train_fraction.is_finite() {
            train_fraction.clamp(0.0, 1.0)
        } else {
            0.8
        };
        let n_train = if n >= 2 {
            ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
        } else {
            n
        };
        let mut valid = ids.split_off(n_train);
        ids.sort();
        valid.sort();
        Split { train: ids, valid }
    }

    /// Fold `fold` (0-based) of a `folds`-fold cross-validation: the ids, sorted then shuffled by
    /// `seed`, are dealt round-robin into `folds` groups; fold k validates on group k and trains
    /// on the rest. Over k = 0..folds the validation sets are disjoint and cover every case.
    pub fn fold_split(&self, seed: u64, folds: usize, fold: usize) -> Result<Split> {
        let n = self.cases.len();
        if folds < 2 || fold >= folds || folds > n {
            return Err(Error::at(
                &self.root,
                format!("cannot make fold {fold} of {folds} folds from {n} case(s): folds must be 2..={n} and the fold 0..{folds}"),
            ));
        }
        let mut ids: Vec<String> = self.cases.iter().map(|c| c.id.clone()).collect();
        ids.sort();
        ids.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let (mut valid, mut train): (Vec<_>, Vec<_>) = ids
            .into_iter()
            .enumerate()
            .partition(|(i, _)| i % folds == fold);
        let ids = |v: &mut Vec<(usize, String)>| {
            let mut ids: Vec<String> = v.drain(..).map(|(_, id)| id).collect();
            ids.sort();
            ids
        };
        Ok(Split {
            train: ids(&mut train),
            valid: ids(&mut valid),
        })
    }

    /// Check a (possibly hand-edited) split against this dataset: every id known, none on both
    /// sides (it would validate on what it trained on) or twice, some to train on. `split_path` is
    /// the file named in the error.
    pub fn check_split(&self, split: &Split, split_path: &Path) -> Result<()> {
        for id in split.train.iter().chain(&split.valid) {
            if self.case(id).is_none() {
                return Err(Error::at(
                    split_path,
                    format!("case {id:?} is not in the dataset {}", self.root.display()),
                ));
            }
        }
        if let Some(id) = split.train.iter().find(|id| split.valid.contains(id)) {
            return Err(Error::at(
                split_path,
                format!("case {id:?} is in both train and valid"),
            ));
        }
        for list in [&split.train, &split.valid] {
            let mut earlier = list.iter().enumerate();
            if let Some((_, id)) = earlier.find(|(i, id)| list[..*i].contains(id)) {
                return Err(Error::at(
                    split_path,
                    format!("case {id:?} is listed twice"),
                ));
            }
        }
        if split.train.is_empty() {
            return Err(Error::at(split_path, "lists no training cases"));
        }
        Ok(())
    }
}

impl Split {
    pub fn load(path: &Path) -> Result<Split> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::at(path, format!("cannot read: {e}")))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::at(
                path,
                format!("not a split file ({e}); expected {{\"train\": [ids], \"valid\": [ids]}}"),
            )
        })
    }

    /// Atomic write (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a split serialises") + "\n";
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .map_err(|e| Error::at(folder, format!("cannot create: {e}")))?;
        }
        crate::atomic::write_atomic(path, text.as_bytes())
    }
}

#[derive(serde::Deserialize)]
struct MsdJson {
    training: Vec<MsdEntry>,
}

#[derive(serde::Deserialize)]
struct MsdEntry {
    image: String,
    label: Option<String>,
}

fn open_msd(root: &Path, json: &Path) -> Result<Dataset> {
    let text =
        std::fs::read_to_string(json).map_err(|e| Error::at(json, format!("cannot read: {e}")))?;
    let parsed: MsdJson = serde_json::from_str(&text).map_err(|e| {
        Error::at(
            json,
            format!(
                "not an MSD dataset.json ({e}); expected \"training\": [{{\"image\", \"label\"}}]"
            ),
        )
    })?;
    if parsed.training.is_empty() {
        return Err(Error::at(json, "dataset.json lists no training cases"));
    }
    let resolve = |entry: &str| -> Result<PathBuf> {
        let relative = Path::new(entry);
        let inside = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside || entry.is_empty() {
            return Err(Error::at(
                json,
                format!(
                    "the path {entry:?} must stay inside the dataset ({}): no '..', no absolute paths",
                    root.display()
                ),
            ));
        }
        let path = root.join(relative);
        match not_a_file(&path) {
            None => Ok(path),
            Some(NotAFile::Missing) => Err(Error::at(
                &path,
                format!("listed in {} but missing", json.display()),
            )),
            Some(other) => Err(Error::at(
                &path,
                format!(
                    "listed in {} but it is {}, not a NIfTI file",
                    json.display(),
                    other.describe()
                ),
            )),
        }
    };
    let mut cases = Vec::with_capacity(parsed.training.len());
    for entry in &parsed.training {
        let image = resolve(&entry.image)?;
        let label = entry.label.as_deref().map(resolve).transpose()?;
        cases.push(CaseRef {
            id: nifti_stem(&image),
            image: ImageSource::FourD(image),
            label,
            numbering: LabelNumbering::Msd,
        });
    }
    cases.sort_by(|a, b| a.id.cmp(&b.id));
    check_unique_ids(&cases, json)?;
    Ok(Dataset {
        root: root.to_path_buf(),
        layout: Layout::Msd,
        cases,
    })
}

/// One 4-D NIfTI holding the four modalities: a dataset of one unlabelled case.
fn open_single_file(path: &Path) -> Result<Dataset> {
    if !is_nifti_name(&file_name(path)) {
        return Err(Error::at(
            path,
            "not a dataset: expected a folder, a dataset.json or a .nii/.nii.gz file",
        ));
    }
    let header = read_header(path)?;
    let (ndim, channels) = (header.dim[0] as i16, header.dim[4] as i16);
    if ndim != 4 || channels != 4 {
        return Err(Error::at(
            path,
            format!(
                "a single file must be a 4-D image with 4 channels ({}), this one is {ndim}-D{}; \
                 for one file per modality give the case folder",
                MODALITIES.join(", "),
                if ndim == 4 {
                    format!(" with {channels} volumes")
                } else {
                    String::new()
                }
            ),
        ));
    }
    let case = CaseRef {
        id: nifti_stem(path),
        image: ImageSource::FourD(path.to_path_buf()),
        label: None,
        numbering: LabelNumbering::Msd,
    };
    Ok(Dataset {
        root: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        layout: Layout::Msd,
        cases: vec![case],
    })
}

/// A BraTS case folder: `Some` when it holds NIfTI files, an error when a modality is missing or doubled.
fn brats_case(folder: &Path) -> Result<Option<CaseRef>> {
    // Every entry named like a NIfTI file: one that is not a file is reported below if it is
    // named like a modality or label file.
    let files: Vec<PathBuf> = list_dir(folder)?
        .into_iter()
        .filter(|p| is_nifti_name(&file_name(p)))
        .collect();
    let mut modalities: [Option<PathBuf>; 4] = Default::default();
    let mut label: Option<PathBuf> = None;
    let mut recognised = false;
    for file in &files {
        let stem = nifti_stem(file).to_ascii_lowercase();
        let slot = if BRATS_LABEL_SUFFIXES.iter().any(|s| stem.ends_with(s)) {
            Some((&mut label, "label"))
        } else {
            BRATS_SUFFIXES
                .iter()
                .position(|suffixes| suffixes.iter().any(|s| stem.ends_with(s)))
                .map(|m| (&mut modalities[m], MODALITIES[m]))
        };
        if let Some((slot, name)) = slot {
            recognised = true;
            if let Some(kind) = not_a_file(file) {
                return Err(Error::at(
                    file,
                    format!(
                        "named like the {name} file but it is {}, not a NIfTI file",
                        kind.describe()
                    ),
                ));
            }
            if let Some(previous) = slot {
                return Err(Error::at(
                    folder,
                    format!(
                        "two {name} files: {} and {}",
                        file_name(previous),
                        file_name(file)
                    ),
                ));
            }
            *slot = Some(file.clone());
        }
    }
    if !recognised {
        return Ok(None);
    }
    let mut paths = Vec::with_capacity(4);
    for (m, slot) in modalities.into_iter().enumerate() {
        match slot {
            Some(p) => paths.push(p),
            None => {
                return Err(Error::at(
                    folder,
                    format!(
                        "missing the {} file (a name ending in {}.nii.gz or {}.nii.gz)",
                        MODALITIES[m], BRATS_SUFFIXES[m][0], BRATS_SUFFIXES[m][1]
                    ),
                ))
            }
        }
    }
    // The folder's own name, also for "." or a path ending in "..".
    let id = match folder.canonicalize() {
        Ok(real) if real.file_name().is_some() => file_name(&real).into_owned(),
        _ => file_name(folder).into_owned(),
    };
    Ok(Some(CaseRef {
        id,
        image: ImageSource::PerModality(paths.try_into().expect("four modality paths")),
        label,
        numbering: LabelNumbering::Brats,
    }))
}

fn list_dir(folder: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(folder).map_err(|e| Error::at(folder, format!("cannot list: {e}")))?;
    let mut paths = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::at(folder, format!("cannot list: {e}")))?;
    paths.retain(|p| !file_name(p).starts_with('.'));
    paths.sort();
    Ok(paths)
}

/// The last component of a path as text; names that are not UTF-8 are converted lossily (invalid
/// bytes become U+FFFD), so two such names may give one text: case ids are checked to be unique.
fn file_name(path: &Path) -> Cow<'_, str> {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default()
}

fn is_nifti_name(name: &str) -> bool {
    name.ends_with(".nii") || name.ends_with(".nii.gz")
}

/// File name without `.nii` / `.nii.gz`.
fn nifti_stem(path: &Path) -> String {
    let name = file_name(path);
    name.strip_suffix(".nii.gz")
        .or_else(|| name.strip_suffix(".nii"))
        .unwrap_or(&name)
        .to_string()
}

/// Where a case comes from, for messages: its folder (BraTS) or its image file (MSD).
fn case_origin(case: &CaseRef) -> PathBuf {
    match &case.image {
        ImageSource::FourD(path) => path.clone(),
        ImageSource::PerModality(paths) => {
            paths[0].parent().map(Path::to_path_buf).unwrap_or_default()
        }
    }
}

/// Case ids (sorted) must be unique: they name outputs and split entries.
fn check_unique_ids(cases: &[CaseRef], at: &Path) -> Result<()> {
    match cases.windows(2).find(|w| w[0].id == w[1].id) {
        None => Ok(()),
        Some(pair) => Err(Error::at(
            at,
            format!(
                "two cases have the id {:?} ({} and {}): case ids come from file and folder names and must be unique",
                pair[0].id,
                case_origin(&pair[0]).display(),
                case_origin(&pair[1]).display()
            ),
        )),
    }
}

/// Why a path cannot be read as a NIfTI file.
#[derive(Debug)]
enum NotAFile {
    Missing,
    BrokenLink,
    Folder,
    Fifo,
    Socket,
    Device,
    Other,
    Unreadable(String),
}

impl NotAFile {
    fn describe(&self) -> String {
        match self {
            NotAFile::Missing => "missing".into(),
            NotAFile::BrokenLink => "a link to nothing".into(),
            NotAFile::Folder => "a folder".into(),
            NotAFile::Fifo => "a FIFO (named pipe)".into(),
            NotAFile::Socket => "a socket".into(),
            NotAFile::Device => "a device".into(),
            NotAFile::Other => "not a regular file".into(),
            NotAFile::Unreadable(e) => format!("unreadable ({e})"),
        }
    }
}

/// None for a regular file (links followed), else what the path is.
fn not_a_file(path: &Path) -> Option<NotAFile> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(if std::fs::symlink_metadata(path).is_ok() {
                NotAFile::BrokenLink
            } else {
                NotAFile::Missing
            })
        }
        Err(e) => return Some(NotAFile::Unreadable(e.to_string())),
    };
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some(NotAFile::Folder);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some(NotAFile::Fifo);
        }
        if kind.is_socket() {
            return Some(NotAFile::Socket);
        }
        if kind.is_block_device() || kind.is_char_device() {
            return Some(NotAFile::Device);
        }
    }
    Some(NotAFile::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_is_checked_against_the_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::synthetic::SyntheticConfig {
            shape: [16, 16, 16],
            ..crate::synthetic::SyntheticConfig::default()
        };
        crate::synthetic::write_dataset(dir.path(), 3, &config, 3).unwrap();
        let dataset = Dataset::open(dir.path()).unwrap();
        let file = Path::new("my/split.json");
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let check = |train: &[&str], valid: &[&str]| {
            let split = Split {
                train: ids(train),
                valid: ids(valid),
            };
            dataset.check_split(&split, file).map_err(|e| e.to_string())
        };
        let [a, b, c] = ["synthetic_001", "synthetic_002", "synthetic_003"];
        assert!(check(&[a, b], &[c]).is_ok());
        let problems = [
            (check(&[a, "synthetic_009"], &[c]), "not in the dataset"),
            (check(&[a, b], &[b]), "in both train and valid"),
            (check(&[a, b, a], &[c]), "listed twice"),
            (check(&[a], &[c, c]), "listed twice"),
            (check(&[], &[c]), "lists no training cases"),
        ];
        for (result, problem) in problems {
            let error = result.unwrap_err();
            assert!(
                error.contains("my/split.json") && error.contains(problem),
                "{error}"
            );
        }
    }

    #[test]
    fn folds_are_disjoint_and_cover_every_case() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::synthetic::SyntheticConfig {
            shape: [16, 16, 16],
            ..crate::synthetic::SyntheticConfig::default()
        };
        crate::synthetic::write_dataset(dir.path(), 7, &config, 3).unwrap();
        let dataset = Dataset::open(dir.path()).unwrap();
        let folds: Vec<Split> = (0..3)
            .map(|k| dataset.fold_split(5, 3, k).unwrap())
            .collect();
        let mut validated: Vec<String> = folds.iter().flat_map(|f| f.valid.clone()).collect();
        validated.sort();
        let all: Vec<String> = (1..=7).map(|i| format!("synthetic_{i:03}")).collect();
        assert_eq!(validated, all, "every case validated exactly once");
        // 7 cases dealt into 3 folds: 3, 2, 2.
        let sizes: Vec<usize> = folds.iter().map(|f| f.valid.len()).collect();
        assert_eq!(sizes, [3, 2, 2]);
        for fold in &folds {
            assert_eq!(fold.train.len() + fold.valid.len(), 7);
            assert!(fold.train.iter().all(|id| !fold.valid.contains(id)));
        }
        let again = dataset.fold_split(5, 3, 1).unwrap();
        assert_eq!(again, folds[1], "a seed gives the same folds");
        assert!(dataset.fold_split(5, 3, 3).is_err());
        assert!(dataset.fold_split(5, 8, 0).is_err());
    }
}
