//! The decoded-case cache: each case of a dataset decoded once (cropped to the head, standardised
//! as the run asks, raw f32 and u8, memory-mapped), shared by every run on the same files. Entries
//! are named by a hash of the source files' paths, sizes and modification times and of the
//! standardisation, so an edited file is decoded again and two datasets never collide.
use brainseg_transforms::Standardization;
use std::path::{Path, PathBuf};

/// Where runs keep decoded cases: `$BRAINSEG_CACHE`, else `$XDG_CACHE_HOME/brainseg/cases`, else
/// `~/.cache/brainseg/cases`; `None` when none of these can be found (the run folder's `cache/`
/// is used then).
pub fn shared_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("BRAINSEG_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("brainseg").join("cases")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("brainseg").join("cases")))
}

/// The entry name for a case made from `sources` (path, size, modification time) with
/// `standardization`: FNV-1a 64 of both, in hex.
pub fn entry_key(sources: &[(String, u64, u64)], standardization: Standardization) -> String {
    let text = serde_json::to_string(&(sources, standardization)).expect("keys serialise");
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Entries (decoded cases) and bytes in `dir`.
pub fn usage(dir: &Path) -> (usize, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let files: Vec<std::fs::DirEntry> = entries.flatten().collect();
    let cases = files
        .iter()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    let bytes = files
        .iter()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    (cases, bytes)
}

/// Removes every entry in `dir` (the folder itself stays); returns the bytes freed.
pub fn clear(dir: &Path) -> brainseg_volume::Result<u64> {
    let (_, bytes) = usage(dir);
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir)
            .map_err(|e| brainseg_volume::Error::at(dir, format!("cannot list: {e}")))?
            .flatten()
        {
            let path = entry.path();
            let known = path
                .extension()
                // f32: images of caches written before brainseg stored int16.
                .is_some_and(|x| ["json", "i16", "f32", "u8"].iter().any(|k| x == *k));
            if known {
                std::fs::remove_file(&path).map_err(|e| {
                    brainseg_volume::Error::at(&path, format!("cannot remove: {e}"))
                })?;
            }
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_sources_and_settings_apart() {
        let a = vec![("/d/a.nii.gz".to_string(), 10, 5)];
        let b = vec![("/d/a.nii.gz".to_string(), 10, 6)];
        let z = Standardization::ZScoreBrain;
        assert_eq!(entry_key(&a, z), entry_key(&a.clone(), z));
        assert_ne!(
            entry_key(&a, z),
            entry_key(&b, z),
            "a newer file is a new entry"
        );
        assert_ne!(
            entry_key(&a, z),
            entry_key(&a, Standardization::NotebookSlices)
        );
        assert_eq!(entry_key(&a, z).len(), 16);
    }
}
