//! Outputs that are never half-written: files and folders are built under a
//! temporary name beside their destination and renamed into place when complete;
//! an existing destination is replaced only with `force`. Temporary outputs are
//! tracked, so that a front end's interrupt handler can remove them with
//! [`remove_partial_outputs`] before it exits: an interrupted run leaves the
//! previous state as it was.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Fails unless `dest` may be written: absent, an empty folder, or `force`.
pub fn check_writable(dest: &Path, force: bool) -> Result<()> {
    let occupied = match std::fs::metadata(dest) {
        Err(_) => false,
        Ok(m) if m.is_dir() => std::fs::read_dir(dest)
            .map_err(|e| Error::io(dest, e))?
            .next()
            .is_some(),
        Ok(_) => true,
    };
    if occupied && !force {
        return Err(Error::Exists(dest.to_path_buf()));
    }
    Ok(())
}

/// What an output path must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A file (a report, a plot, a GGUF).
    File,
    /// A folder (a checkpoint, a run).
    Folder,
}

/// Checks, before any work is done, that `dest` can be written as `kind`:
/// not a folder where a file is wanted (nor a file where a folder is), an
/// existing one replaced only with `force` (see [`check_writable`]), and a
/// parent folder that exists and takes new entries, or can be created.
/// `setting` names the output in errors (the CLI shows it as its flag).
pub fn check_output(
    setting: &'static str,
    dest: &Path,
    kind: OutputKind,
    force: bool,
) -> Result<()> {
    let shown = dest.display();
    match (std::fs::metadata(dest), kind) {
        (Ok(m), OutputKind::File) if m.is_dir() => {
            return Err(Error::setting(
                setting,
                format!("{shown} is a folder; it takes the path of the file to write"),
            ))
        }
        (Ok(m), OutputKind::Folder) if !m.is_dir() => {
            return Err(Error::setting(
                setting,
                format!("{shown} is a file; it takes the path of the folder to write"),
            ))
        }
        _ => {}
    }
    check_writable(dest, force)?;
    let parent = parent_of(dest);
    // The nearest folder (or file) on the way to `dest` that exists.
    let existing = parent
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && std::fs::metadata(a).is_ok())
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        return Err(Error::setting(
            setting,
            format!(
                "{shown} cannot be written: {} is a file, not a folder",
                existing.display()
            ),
        ));
    }
    probe(existing, existing == parent).map_err(|e| {
        let what = if existing == parent {
            "files"
        } else {
            "a folder"
        };
        Error::setting(
            setting,
            format!(
                "{shown} cannot be written: cannot create {what} in {}: {e}",
                existing.display()
            ),
        )
    })
}

/// Creates and removes an empty file (or, when `!file`, a folder) in `dir`.
fn probe(dir: &Path, file: bool) -> std::io::Result<()> {
    let path = dir.join(format!(".normscope-check-{}", std::process::id()));
    let mut list = track_start();
    let made = if file {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map(drop)
    } else {
        std::fs::create_dir(&path)
    };
    if made.is_ok() {
        list.push(path.clone());
    }
    drop(list);
    made?;
    let removed = if file {
        std::fs::remove_file(&path)
    } else {
        std::fs::remove_dir(&path)
    };
    untrack(&mut pending(), &path);
    removed
}

/// Temporary outputs that an interrupt must remove.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The pending list, locked; renames into place happen under this lock so an
/// interrupt sees either the temporary output or the finished one, never half.
fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// The locked pending list, held while a temporary output is created and
/// registered, so an interrupt sees it or nothing.
fn track_start() -> MutexGuard<'static, Vec<PathBuf>> {
    pending()
}

fn untrack(list: &mut Vec<PathBuf>, tmp: &Path) {
    list.retain(|p| p != tmp);
}

/// Removes every temporary output and returns how many there were. For an
/// interrupt handler that is about to end the process: the list stays locked,
/// so no output is committed or started afterwards.
pub fn remove_partial_outputs() -> usize {
    let list = pending();
    for p in list.iter() {
        // Moved aside first: the work that writes into it goes on until the
        // process exits, and a file it adds to the folder while it is being
        // removed would leave the folder behind.
        let mut aside = p.as_os_str().to_owned();
        aside.push(".removing");
        let aside = PathBuf::from(aside);
        let p = if std::fs::rename(p, &aside).is_ok() {
            &aside
        } else {
            p
        };
        let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
    }
    let n = list.len();
    std::mem::forget(list);
    n
}

/// A folder being written under a temporary name beside its destination.
/// Dropped without [`StagedDir::commit`], it is removed.
pub struct StagedDir {
    tmp: Option<tempfile::TempDir>,
    dest: PathBuf,
}

impl StagedDir {
    /// Starts staging `dest` (checked with [`check_writable`]).
    pub fn new(dest: &Path, force: bool) -> Result<Self> {
        check_writable(dest, force)?;
        let parent = parent_of(dest);
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let mut list = track_start();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.partial-", file_name(dest)))
            .permissions(readable_by_all(0o755, &parent)?)
            .tempdir_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        list.push(tmp.path().to_path_buf());
        drop(list);
        Ok(Self {
            tmp: Some(tmp),
            dest: dest.to_path_buf(),
        })
    }

    /// The temporary folder to write into.
    pub fn path(&self) -> &Path {
        self.tmp.as_ref().map(|t| t.path()).unwrap_or(&self.dest)
    }

    /// Moves the finished folder into place, replacing what was there.
    pub fn commit(mut self) -> Result<PathBuf> {
        let mut list = pending();
        let tmp = self.tmp.take().expect("commit is called once").keep();
        let done = replace(&tmp, &self.dest);
        if done.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        untrack(&mut list, &tmp);
        done.map(|_| self.dest.clone())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let mut list = pending();
            untrack(&mut list, tmp.path());
            drop(tmp);
        }
    }
}

/// A file being written under a temporary name beside its destination.
/// Dropped without [`StagedFile::commit`], it is removed.
pub struct StagedFile {
    tmp: Option<tempfile::NamedTempFile>,
    dest: PathBuf,
}

impl StagedFile {
    /// Starts staging `dest` (checked with [`check_writable`]).
    pub fn new(dest: &Path, force: bool) -> Result<Self> {
        check_writable(dest, force)?;
        let parent = parent_of(dest);
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let mut list = track_start();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.partial-", file_name(dest)))
            .permissions(readable_by_all(0o644, &parent)?)
            .tempfile_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        list.push(tmp.path().to_path_buf());
        drop(list);
        Ok(Self {
            tmp: Some(tmp),
            dest: dest.to_path_buf(),
        })
    }

    /// The open temporary file to write into.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_mut().expect("not committed").as_file_mut()
    }

    /// Moves the finished file into place, replacing what was there.
    pub fn commit(mut self) -> Result<PathBuf> {
        let mut list = pending();
        let tmp = self.tmp.take().expect("commit is called once");
        let path = tmp.path().to_path_buf();
        let done = tmp
            .persist(&self.dest)
            .map_err(|e| Error::io(&self.dest, e.error));
        untrack(&mut list, &path);
        done.map(|_| self.dest.clone())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let mut list = pending();
            untrack(&mut list, tmp.path());
            drop(tmp);
        }
    }
}

/// Writes `bytes` to `dest` through a temporary file and a rename.
pub fn write_atomic(dest: &Path, bytes: &[u8], force: bool) -> Result<()> {
    check_writable(dest, force)?;
    let parent = parent_of(dest);
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let mut list = track_start();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.partial-", file_name(dest)))
        .permissions(readable_by_all(0o644, &parent)?)
        .tempfile_in(&parent)
        .map_err(|e| Error::io(&parent, e))?;
    let path = tmp.path().to_path_buf();
    list.push(path.clone());
    drop(list);
    let written = std::io::Write::write_all(&mut tmp, bytes).map_err(|e| Error::io(dest, e));
    let mut list = pending();
    let done = written.and_then(|_| tmp.persist(dest).map_err(|e| Error::io(dest, e.error)));
    untrack(&mut list, &path);
    done.map(|_| ())
}

/// Writes `tensors` as the safetensors file `path`, readable by all as the
/// other outputs are (the safetensors crate stages it owner-only).
pub fn save_safetensors<K: AsRef<str> + Ord + std::fmt::Display>(
    tensors: &std::collections::HashMap<K, candle_core::Tensor>,
    path: &Path,
) -> Result<()> {
    candle_core::safetensors::save(tensors, path)?;
    let parent = parent_of(path);
    std::fs::set_permissions(path, readable_by_all(0o644, &parent)?).map_err(|e| Error::io(path, e))
}

/// Permissions for finished outputs (temporary files default to owner-only).
#[cfg(unix)]
fn readable_by_all(mode: u32, _parent: &Path) -> Result<std::fs::Permissions> {
    Ok(std::os::unix::fs::PermissionsExt::from_mode(mode))
}

/// Permissions for finished outputs: those of the folder they go into.
#[cfg(not(unix))]
fn readable_by_all(_mode: u32, parent: &Path) -> Result<std::fs::Permissions> {
    let mut p = std::fs::metadata(parent)
        .map_err(|e| Error::io(parent, e))?
        .permissions();
    p.set_readonly(false);
    Ok(p)
}

/// Renames `tmp` to `dest`; an existing `dest` is moved aside first and removed
/// after (and put back when `tmp` cannot take its place).
fn replace(tmp: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        let old = parent_of(dest).join(format!(".{}.old-{}", file_name(dest), std::process::id()));
        std::fs::rename(dest, &old).map_err(|e| Error::io(dest, e))?;
        if let Err(e) = std::fs::rename(tmp, dest) {
            let _ = std::fs::rename(&old, dest);
            return Err(Error::io(dest, e));
        }
        let removed = if old.is_dir() {
            std::fs::remove_dir_all(&old)
        } else {
            std::fs::remove_file(&old)
        };
        removed.map_err(|e| Error::io(&old, e))?;
    } else {
        std::fs::rename(tmp, dest).map_err(|e| Error::io(dest, e))?;
    }
    Ok(())
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_dir_appears_only_on_commit_and_needs_force_to_replace() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        let staged = StagedDir::new(&dest, false).unwrap();
        std::fs::write(staged.path().join("a"), b"1").unwrap();
        assert!(!dest.exists());
        staged.commit().unwrap();
        assert!(dest.join("a").exists());
        assert!(StagedDir::new(&dest, false).is_err());
        let again = StagedDir::new(&dest, true).unwrap();
        std::fs::write(again.path().join("b"), b"2").unwrap();
        drop(again);
        assert!(dest.join("a").exists() && !dest.join("b").exists());
        assert_eq!(
            std::fs::read_dir(root.path()).unwrap().count(),
            1,
            "no leftovers"
        );
    }

    #[test]
    fn outputs_are_checked_before_any_work() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("f.txt");
        std::fs::write(&file, b"x").unwrap();
        let msg = |dest: &Path, kind| {
            check_output("out", dest, kind, true)
                .unwrap_err()
                .to_string()
        };
        assert!(msg(root.path(), OutputKind::File)
            .contains("is a folder; it takes the path of the file"));
        assert!(
            msg(&file, OutputKind::Folder).contains("is a file; it takes the path of the folder")
        );
        assert!(
            msg(&file.join("x.html"), OutputKind::File).contains("f.txt is a file, not a folder")
        );
        assert!(msg(&file.join("a/b/x.html"), OutputKind::File)
            .contains("f.txt is a file, not a folder"));
        #[cfg(target_os = "linux")]
        assert!(msg(Path::new("/proc/nope/x.html"), OutputKind::File)
            .contains("cannot create a folder in /proc"));
        assert!(matches!(
            check_output("out", &file, OutputKind::File, false),
            Err(Error::Exists(_))
        ));
        check_output("out", &file, OutputKind::File, true).unwrap();
        check_output(
            "out",
            &root.path().join("new/deeper/x.html"),
            OutputKind::File,
            false,
        )
        .unwrap();
        check_output("out", &root.path().join("run"), OutputKind::Folder, false).unwrap();
        assert!(
            !root.path().join("new").exists(),
            "checking creates nothing"
        );
        assert_eq!(
            std::fs::read_dir(root.path()).unwrap().count(),
            1,
            "no probe left"
        );
    }

    #[test]
    fn write_atomic_refuses_to_overwrite_without_force() {
        let root = tempfile::tempdir().unwrap();
        let f = root.path().join("x.json");
        write_atomic(&f, b"1", false).unwrap();
        assert!(write_atomic(&f, b"2", false).is_err());
        write_atomic(&f, b"3", true).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"3");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o644,
                "outputs are readable by all, as a plain write makes them"
            );
        }
    }
}
