//! Every file brainseg writes goes through here: into a temporary file beside the destination,
//! then renamed over it, so a failure or an interrupt never leaves a partial output behind.
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path.as_ref(), |file| file.write_all(bytes))
}

/// Runs `write` on a temporary file beside `path`, then renames it over `path`. The file is
/// readable by all, like one created the usual way (temporary files are private otherwise).
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".brainseg-").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    if !folder.is_dir() {
        return Err(Error::at(
            path,
            format!(
                "cannot write: the folder {} does not exist",
                folder.display()
            ),
        ));
    }
    // tempfile's message repeats the temporary name; the kind says it all ("permission denied").
    let mut temp = builder
        .tempfile_in(folder)
        .map_err(|e| Error::at(path, format!("cannot write: {}", e.kind())))?;
    write(temp.as_file_mut()).map_err(|e| Error::at(path, format!("cannot write: {e}")))?;
    temp.persist(path)
        .map_err(|e| Error::at(path, format!("cannot write: {}", e.error)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // A failing writer: the old file stays, no temporary file is left.
        let error =
            write_atomic_with(&path, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{}: cannot write: disk full", path.display())
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A folder that does not exist is named in the error.
        let missing = dir.path().join("nope").join("x.txt");
        let error = write_atomic(&missing, b"x").unwrap_err();
        let folder = dir.path().join("nope");
        assert_eq!(
            error.to_string(),
            format!(
                "{}: cannot write: the folder {} does not exist",
                missing.display(),
                folder.display()
            )
        );
    }
}
