//! Cohorts split over processes or cluster jobs (`predict --part K/N`), and what a cohort's
//! prediction folder says about its progress (`cohort status`).
//!
//! A part is a deterministic share of the cases: sorted by case id, case `i` goes to part
//! `(i mod N) + 1`. Each part keeps its own record, `predictions.part-K-of-N.json` (the same
//! [`Provenance`] as `predictions.json`), so parts running at the same time never overwrite each
//! other's record, and its own manifest, `manifest.part-K-of-N.jsonl` (a line per case of its
//! latest run: ok, failed with why, or skipped). A case is done when a record of the folder lists
//! it and its label map (and probability map, when the record says so) exists: a record is written
//! only after the files are renamed into place, so a part killed at any moment never leaves a case
//! counted as done that is not complete.
use crate::layout::PredictionLayout;
use crate::segment::Provenance;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Part `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Part {
    pub index: usize,
    pub count: usize,
}

impl Part {
    pub fn new(index: usize, count: usize) -> Result<Part> {
        if count == 0 || index == 0 || index > count {
            return Err(Error::invalid(format!(
                "part {index}/{count}: expected K/N with 1 <= K <= N"
            )));
        }
        Ok(Part { index, count })
    }

    /// This part's share of `ids` (any order): their positions in the sorted list.
    pub fn select_ids<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let mut sorted: Vec<&str> = ids.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index - 1)
            .map(|(_, id)| id)
            .collect()
    }

    /// This part's share of `items`, in the order of their ids.
    pub fn select<T>(&self, items: Vec<T>, id: impl Fn(&T) -> &str) -> Vec<T> {
        let mut items = items;
        items.sort_by(|a, b| id(a).cmp(id(b)));
        items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index - 1)
            .map(|(_, item)| item)
            .collect()
    }

    /// `predictions.part-K-of-N.json`: the cases this part completed, with the model and options.
    pub fn record(&self, out: &PredictionLayout) -> PathBuf {
        out.path().join(format!(
            "{RECORD_PREFIX}{}-of-{}{RECORD_SUFFIX}",
            self.index, self.count
        ))
    }

    /// `manifest.part-K-of-N.jsonl`: a line per case of this part's latest run.
    pub fn manifest(&self, out: &PredictionLayout) -> PathBuf {
        out.path().join(format!(
            "{MANIFEST_PREFIX}{}-of-{}{MANIFEST_SUFFIX}",
            self.index, self.count
        ))
    }

    /// The part a file name of a record or manifest names.
    fn from_file_name(name: &str, prefix: &str, suffix: &str) -> Option<Part> {
        let (k, n) = name
            .strip_prefix(prefix)?
            .strip_suffix(suffix)?
            .split_once("-of-")?;
        Part::new(k.parse().ok()?, n.parse().ok()?).ok()
    }
}

const RECORD_PREFIX: &str = "predictions.part-";
const RECORD_SUFFIX: &str = ".json";
const MANIFEST_PREFIX: &str = "manifest.part-";
const MANIFEST_SUFFIX: &str = ".jsonl";

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Part {
    type Err = Error;
    /// `K/N`, 1-based.
    fn from_str(text: &str) -> Result<Part> {
        let bad = || Error::invalid(format!("{text:?}: expected K/N, e.g. 2/8 (1 <= K <= N)"));
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Part::new(k, n).map_err(|_| bad())
    }
}

/// What became of a case in a part's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    Ok,
    Failed,
    /// Done before (by this part or another run), left as it was.
    Skipped,
}

/// One line of a part's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub case: String,
    pub status: CaseStatus,
    pub seconds: f64,
    /// Why it failed, in one line.
    pub error: Option<String>,
}

/// A part's manifest being written: the whole file is rewritten atomically after each case.
#[derive(Debug)]
pub struct Manifest {
    path: PathBuf,
    entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// A new manifest at `path` (what an earlier run wrote there is replaced at the first case).
    pub fn new(path: PathBuf) -> Manifest {
        Manifest {
            path,
            entries: Vec::new(),
        }
    }

    pub fn push(&mut self, entry: ManifestEntry) -> Result<()> {
        self.entries.push(entry);
        let mut text = String::new();
        for entry in &self.entries {
            text += &serde_json::to_string(entry).expect("a manifest line serialises");
            text.push('\n');
        }
        Ok(brainseg_volume::write_atomic(&self.path, text.as_bytes())?)
    }

    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// The lines of a manifest file.
    pub fn read(path: &Path) -> Result<Vec<ManifestEntry>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| brainseg_volume::Error::at(path, format!("cannot read: {e}")))?;
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| {
                    Error::invalid(format!(
                        "{}: line {}: not a brainseg manifest line: {e}",
                        path.display(),
                        i + 1
                    ))
                })
            })
            .collect()
    }
}

/// A prediction record of a folder: `predictions.json` (`part` None) or a part's.
#[derive(Debug, Clone)]
pub struct Record {
    pub path: PathBuf,
    pub part: Option<Part>,
    pub provenance: Provenance,
}

/// Every prediction record in `out`: `predictions.json` first, then the parts' in order.
pub fn records(out: &PredictionLayout) -> Result<Vec<Record>> {
    let mut found = Vec::new();
    if let Some(provenance) = Provenance::read_file(&out.provenance())? {
        found.push(Record {
            path: out.provenance(),
            part: None,
            provenance,
        });
    }
    let mut parts = Vec::new();
    for (part, path) in files_of_parts(out.path(), RECORD_PREFIX, RECORD_SUFFIX)? {
        if let Some(provenance) = Provenance::read_file(&path)? {
            parts.push(Record {
                path,
                part: Some(part),
                provenance,
            });
        }
    }
    parts.sort_by_key(|r| r.part.map(|p| (p.count, p.index)));
    found.extend(parts);
    Ok(found)
}

/// Files `<prefix>K-of-N<suffix>` in `folder`, with their parts.
fn files_of_parts(folder: &Path, prefix: &str, suffix: &str) -> Result<Vec<(Part, PathBuf)>> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(brainseg_volume::Error::at(folder, format!("cannot list: {e}")).into())
        }
    };
    let mut found: Vec<(Part, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let part = Part::from_file_name(name.to_str()?, prefix, suffix)?;
            Some((part, entry.path()))
        })
        .collect();
    found.sort_by_key(|(p, _)| (p.count, p.index));
    Ok(found)
}

/// Whether `case`'s outputs listed in `record` are all in place.
fn complete(out: &PredictionLayout, record: &Provenance, case: &str) -> bool {
    record.cases.contains_key(case)
        && out.label_map(case).is_file()
        && (!record.probabilities || out.probabilities(case).is_file())
}

/// The cases of `out` that are done: listed in a record, outputs in place (and, when
/// `probabilities`, the probability map too).
pub fn done_cases(out: &PredictionLayout, probabilities: bool) -> Result<BTreeSet<String>> {
    let mut done = BTreeSet::new();
    for record in records(out)? {
        for case in record.provenance.cases.keys() {
            if complete(out, &record.provenance, case)
                && (!probabilities || out.probabilities(case).is_file())
            {
                done.insert(case.clone());
            }
        }
    }
    Ok(done)
}

/// A case that failed and is not done, with the part that tried it last.
#[derive(Debug, Clone, Serialize)]
pub struct FailedCase {
    pub case: String,
    pub part: String,
    pub error: String,
}

/// One part's progress.
#[derive(Debug, Clone, Serialize)]
pub struct PartStatus {
    /// `K/N`.
    pub part: String,
    /// Its Slurm array index (K - 1).
    pub array_index: usize,
    /// Cases of the dataset in this part (with `--input`).
    pub cases: Option<usize>,
    /// Cases its record lists as done, outputs in place.
    pub done: usize,
    /// Failed in its latest run, and not done by any part.
    pub failed: usize,
    /// Neither done nor failed (with `--input`): never tried, or interrupted.
    pub missing: Option<usize>,
    /// Whether it has a record, a manifest.
    pub has_record: bool,
    pub has_manifest: bool,
}

/// A cohort's prediction folder, merged over its records and manifests.
#[derive(Debug, Clone, Serialize)]
pub struct CohortStatus {
    pub out: PathBuf,
    /// Cases of the dataset (with `--input`).
    pub total: Option<usize>,
    pub done: Vec<String>,
    pub failed: Vec<FailedCase>,
    /// Cases of the dataset neither done nor failed (with `--input`).
    pub missing: Option<Vec<String>>,
    /// The parts seen (and, with `--input`, every part of each split seen), in order.
    pub parts: Vec<PartStatus>,
    /// Whether `predictions.json` (a run without `--part`) is there.
    pub whole_record: bool,
}

impl CohortStatus {
    /// The parts with failed or missing cases: the ones to run again.
    pub fn incomplete_parts(&self) -> Vec<&PartStatus> {
        self.parts
            .iter()
            .filter(|p| p.failed > 0 || p.missing.unwrap_or(0) > 0)
            .collect()
    }
}

impl CohortStatus {
    /// The status as tables: a row per part, the totals, the failed cases with why, the missing
    /// cases, and the parts to run again (with their Slurm array indices).
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let dash = |n: Option<usize>| n.map_or("-".to_string(), |n| n.to_string());
        let mut text = format!(
            "{:<8} {:>6} {:>6} {:>7} {:>8}  files\n",
            "part", "cases", "done", "failed", "missing"
        );
        for part in &self.parts {
            let files = match (part.has_record, part.has_manifest) {
                (true, true) => "record, manifest",
                (true, false) => "record",
                (false, true) => "manifest",
                (false, false) => "none (never ran)",
            };
            let _ = writeln!(
                text,
                "{:<8} {:>6} {:>6} {:>7} {:>8}  {files}",
                part.part,
                dash(part.cases),
                part.done,
                part.failed,
                dash(part.missing)
            );
        }
        let of = self
            .total
            .map_or(String::new(), |t| format!(" of {t} case(s)"));
        let _ = writeln!(
            text,
            "done {}, failed {}, missing {}{of}{}",
            self.done.len(),
            self.failed.len(),
            dash(self.missing.as_ref().map(Vec::len)),
            if self.whole_record {
                " (predictions.json included)"
            } else {
                ""
            }
        );
        for case in &self.failed {
            let _ = writeln!(
                text,
                "failed  {} (part {}): {}",
                case.case, case.part, case.error
            );
        }
        if let Some(missing) = self.missing.as_ref().filter(|m| !m.is_empty()) {
            let _ = writeln!(text, "missing {}", missing.join(", "));
        }
        let again = self.incomplete_parts();
        if !again.is_empty() {
            let parts: Vec<&str> = again.iter().map(|p| p.part.as_str()).collect();
            let indices: Vec<String> = again.iter().map(|p| p.array_index.to_string()).collect();
            let _ = writeln!(
                text,
                "to run again: part(s) {} (sbatch --array={})",
                parts.join(", "),
                indices.join(",")
            );
        }
        text
    }
}

/// Merges `out`'s records and manifests; `dataset` (the cohort's case ids) adds what is missing.
pub fn status(out: &Path, dataset: Option<&[String]>) -> Result<CohortStatus> {
    let layout = PredictionLayout::new(out);
    if !out.is_dir() {
        return Err(brainseg_volume::Error::at(out, "no such prediction folder").into());
    }
    let records = records(&layout)?;
    let manifests = files_of_parts(out, MANIFEST_PREFIX, MANIFEST_SUFFIX)?;
    let mut done_by_part: BTreeMap<Part, BTreeSet<String>> = BTreeMap::new();
    let mut done = BTreeSet::new();
    let mut whole_record = false;
    for record in &records {
        let cases: BTreeSet<String> = record
            .provenance
            .cases
            .keys()
            .filter(|case| complete(&layout, &record.provenance, case))
            .cloned()
            .collect();
        done.extend(cases.iter().cloned());
        match record.part {
            Some(part) => {
                done_by_part.insert(part, cases);
            }
            None => whole_record = true,
        }
    }
    let mut failed: BTreeMap<String, FailedCase> = BTreeMap::new();
    let mut failed_by_part: BTreeMap<Part, BTreeSet<String>> = BTreeMap::new();
    for (part, path) in &manifests {
        for entry in Manifest::read(path)? {
            if entry.status != CaseStatus::Failed || done.contains(&entry.case) {
                continue;
            }
            failed_by_part
                .entry(*part)
                .or_default()
                .insert(entry.case.clone());
            failed.insert(
                entry.case.clone(),
                FailedCase {
                    case: entry.case,
                    part: part.to_string(),
                    error: entry.error.unwrap_or_else(|| "no reason given".into()),
                },
            );
        }
    }
    let mut parts: BTreeSet<Part> = done_by_part.keys().copied().collect();
    parts.extend(manifests.iter().map(|(p, _)| *p));
    if dataset.is_some() {
        let counts: BTreeSet<usize> = parts.iter().map(|p| p.count).collect();
        for count in counts {
            parts.extend((1..=count).map(|index| Part { index, count }));
        }
    }
    let empty = BTreeSet::new();
    let part_status = parts
        .iter()
        .map(|part| {
            let part_done = done_by_part.get(part).unwrap_or(&empty);
            let part_failed = failed_by_part.get(part).unwrap_or(&empty);
            let (cases, done_count, failed_count, missing) = match dataset {
                Some(ids) => {
                    let mine = part.select_ids(ids.iter().map(String::as_str));
                    let done_here = mine.iter().filter(|c| done.contains(**c)).count();
                    let failed_here = mine
                        .iter()
                        .filter(|c| failed.contains_key(**c) && !done.contains(**c))
                        .count();
                    (
                        Some(mine.len()),
                        done_here,
                        failed_here,
                        Some(mine.len() - done_here - failed_here),
                    )
                }
                None => (None, part_done.len(), part_failed.len(), None),
            };
            PartStatus {
                part: part.to_string(),
                array_index: part.index - 1,
                cases,
                done: done_count,
                failed: failed_count,
                missing,
                has_record: done_by_part.contains_key(part),
                has_manifest: manifests.iter().any(|(p, _)| p == part),
            }
        })
        .collect();
    let missing = dataset.map(|ids| {
        let all: BTreeSet<&String> = ids.iter().collect();
        all.into_iter()
            .filter(|c| !done.contains(*c) && !failed.contains_key(*c))
            .cloned()
            .collect()
    });
    let total = dataset.map(|ids| ids.iter().collect::<BTreeSet<_>>().len());
    Ok(CohortStatus {
        out: out.to_path_buf(),
        total,
        done: done.into_iter().collect(),
        failed: failed.into_values().collect(),
        missing,
        parts: part_status,
        whole_record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_sorted_ids_round_robin() {
        let ids = ["e", "a", "d", "b", "f", "c", "g"];
        let split: Vec<Vec<&str>> = (1..=3)
            .map(|k| Part::new(k, 3).unwrap().select_ids(ids))
            .collect();
        assert_eq!(
            split,
            vec![vec!["a", "d", "g"], vec!["b", "e"], vec!["c", "f"]]
        );
        let items: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let second = Part::new(2, 3).unwrap().select(items, |s| s.as_str());
        assert_eq!(second, vec!["b", "e"]);
        assert_eq!(Part::new(1, 1).unwrap().select_ids(ids).len(), 7);
    }

    #[test]
    fn parts_parse_and_name_their_files() {
        let part: Part = "2/8".parse().unwrap();
        assert_eq!(part, Part { index: 2, count: 8 });
        assert_eq!(part.to_string(), "2/8");
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            let error = bad.parse::<Part>().unwrap_err().to_string();
            assert!(error.contains("expected K/N"), "{bad}: {error}");
        }
        let out = PredictionLayout::new("/x");
        assert_eq!(
            part.record(&out),
            Path::new("/x/predictions.part-2-of-8.json")
        );
        assert_eq!(
            part.manifest(&out),
            Path::new("/x/manifest.part-2-of-8.jsonl")
        );
        assert_eq!(
            Part::from_file_name("predictions.part-2-of-8.json", RECORD_PREFIX, RECORD_SUFFIX),
            Some(part)
        );
        assert_eq!(
            Part::from_file_name("predictions.part-9-of-8.json", RECORD_PREFIX, RECORD_SUFFIX),
            None
        );
    }

    #[test]
    fn manifests_round_trip_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.part-1-of-2.jsonl");
        let mut manifest = Manifest::new(path.clone());
        manifest
            .push(ManifestEntry {
                case: "a".into(),
                status: CaseStatus::Ok,
                seconds: 1.5,
                error: None,
            })
            .unwrap();
        manifest
            .push(ManifestEntry {
                case: "b".into(),
                status: CaseStatus::Failed,
                seconds: 0.25,
                error: Some("b.nii.gz: truncated".into()),
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"case\":\"a\",\"status\":\"ok\",\"seconds\":1.5,\"error\":null}\n\
             {\"case\":\"b\",\"status\":\"failed\",\"seconds\":0.25,\"error\":\"b.nii.gz: truncated\"}\n"
        );
        assert_eq!(Manifest::read(&path).unwrap(), manifest.entries());
    }
}
