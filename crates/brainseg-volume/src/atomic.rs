//! Every file brainseg writes goes through here: into a temporary file beside the destination,
//! then renamed over it, so a failure or an interrupt never leaves a partial output behind.
use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
    remove_stale_temp_files(folder);
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX);
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
    let _in_flight = InFlight::register(temp.path());
    write(temp.as_file_mut()).map_err(|e| Error::at(path, format!("cannot write: {e}")))?;
    temp.persist(path)
        .map_err(|e| Error::at(path, format!("cannot write: {}", e.error)))?;
    Ok(())
}

/// Temporary files are `.brainseg-<pid>-<random>.tmp`: the pid tells a dead writer's leftovers
/// from a live one's.
const TEMP_PREFIX: &str = ".brainseg-";
const TEMP_SUFFIX: &str = ".tmp";

/// Temporary files this process is writing now, for [`remove_temp_files_in_flight`].
static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A temporary file listed in [`IN_FLIGHT`] while it lives.
struct InFlight(PathBuf);

impl InFlight {
    fn register(path: &Path) -> InFlight {
        lock_in_flight().push(path.to_path_buf());
        InFlight(path.to_path_buf())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock_in_flight().retain(|p| p != &self.0);
    }
}

fn lock_in_flight() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while the lock was held leaves a usable list.
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the temporary files this process is writing: for a signal handler, right before the
/// process exits, so an interrupt leaves no partial output behind.
pub fn remove_temp_files_in_flight() {
    for path in lock_in_flight().iter() {
        let _ = std::fs::remove_file(path);
    }
}

/// Removes, once per folder and process, temporary files that a process no longer running left in
/// `folder` (killed with SIGKILL, or on power loss).
pub fn remove_stale_temp_files(folder: &Path) {
    static CLEANED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    {
        let mut cleaned = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
        if cleaned.iter().any(|f| f == folder) {
            return;
        }
        cleaned.push(folder.to_path_buf());
    }
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX)?.strip_suffix(TEMP_SUFFIX))
            .and_then(|rest| rest.split('-').next()?.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_is_running(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this id runs (Linux: `/proc/<pid>`; elsewhere assumed, so nothing is
/// removed that might be in use).
fn process_is_running(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
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

    #[test]
    fn stale_temp_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // Process ids are below 2^22 on Linux: this one cannot be running.
        let dead = dir.path().join(".brainseg-4294967-abc.tmp");
        let mine = dir
            .path()
            .join(format!(".brainseg-{}-abc.tmp", std::process::id()));
        let other = dir.path().join("keep.tmp");
        for path in [&dead, &mine, &other] {
            std::fs::write(path, b"x").unwrap();
        }
        remove_stale_temp_files(dir.path());
        assert!(!dead.exists(), "a dead process's temporary file is removed");
        assert!(mine.exists(), "this process's own file stays");
        assert!(other.exists(), "files not named as brainseg's stay");
    }
}
