//! Outputs that are never half-written: files and folders are built under a
//! temporary name beside their destination and renamed into place when complete;
//! an existing destination is replaced only with `force`.

use std::path::{Path, PathBuf};

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
        return Err(Error::usage(format!(
            "{} already exists; pass --force to replace it",
            dest.display()
        )));
    }
    Ok(())
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
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.partial-", file_name(dest)))
            .tempdir_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
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
        let tmp = self.tmp.take().expect("commit is called once").keep();
        replace(&tmp, &self.dest)?;
        Ok(self.dest.clone())
    }
}

/// Writes `bytes` to `dest` through a temporary file and a rename.
pub fn write_atomic(dest: &Path, bytes: &[u8], force: bool) -> Result<()> {
    check_writable(dest, force)?;
    let parent = parent_of(dest);
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.partial-", file_name(dest)))
        .tempfile_in(&parent)
        .map_err(|e| Error::io(&parent, e))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(|e| Error::io(dest, e))?;
    tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    Ok(())
}

/// Renames `tmp` to `dest`; an existing `dest` is moved aside first and removed after.
fn replace(tmp: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        let old = parent_of(dest).join(format!(".{}.old-{}", file_name(dest), std::process::id()));
        std::fs::rename(dest, &old).map_err(|e| Error::io(dest, e))?;
        std::fs::rename(tmp, dest).map_err(|e| Error::io(dest, e))?;
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
    fn write_atomic_refuses_to_overwrite_without_force() {
        let root = tempfile::tempdir().unwrap();
        let f = root.path().join("x.json");
        write_atomic(&f, b"1", false).unwrap();
        assert!(write_atomic(&f, b"2", false).is_err());
        write_atomic(&f, b"3", true).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"3");
    }
}
