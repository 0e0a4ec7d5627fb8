//! The library's error type: every failure names what went wrong and, where
//! there is one, the file it concerns.

use std::path::{Path, PathBuf};

/// Errors returned by the normscope library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A file exists but its content is not what was expected.
    #[error("{}: {msg}", path.display())]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A request that cannot be carried out as asked (empty prompt, ...).
    #[error("{0}")]
    Usage(String),
    /// A setting has a value that cannot be used; `name` is the setting's
    /// field name (`top_p`, `seq_len`), which a front end may show as its own
    /// option name (the CLI shows `--top-p`).
    #[error("{name} {msg}")]
    Setting {
        /// The setting's field name.
        name: &'static str,
        /// What is wrong with its value (starts with the value when useful).
        msg: String,
    },
    /// An output exists and replacing it was not asked for.
    #[error("{} already exists and replacing it was not asked for", .0.display())]
    Exists(PathBuf),
    /// Obtaining a model (fetch, hub) failed.
    #[error("{0}")]
    Fetch(String),
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// One of normscope's CPU kernels refused its arguments.
    #[error("kernel error: {0}")]
    Kernel(#[from] crate::kernels::KernelError),
    /// An internal invariant was broken (a bug, not a user's mistake).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias for the library.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A content error in `path`.
    pub fn format(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }

    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// A setting's value that cannot be used (see [`Error::Setting`]).
    pub fn setting(name: &'static str, msg: impl Into<String>) -> Self {
        Error::Setting {
            name,
            msg: msg.into(),
        }
    }

    /// A broken internal invariant.
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
}
