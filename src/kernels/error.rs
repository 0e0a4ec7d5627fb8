//! The kernels' own error type.

use std::fmt;

use super::WeightFormat;

/// A matmul or packing call whose arguments do not fit together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    /// `cols` is not a multiple of the format's block size.
    ColsNotBlockMultiple {
        /// The weight format.
        format: WeightFormat,
        /// The offending column count.
        cols: usize,
    },
    /// A buffer's length does not match the given shape.
    BadLength {
        /// Which argument (`"bytes"`, `"x"`, `"out"`, ...).
        what: &'static str,
        /// Length implied by the shape.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A row index past the last row (e.g. a token id outside the vocabulary).
    RowOutOfRange {
        /// The requested row.
        row: usize,
        /// Rows in the matrix.
        rows: usize,
    },
    /// A ggml tensor type id these kernels do not handle.
    UnsupportedType(u32),
    /// The shape's size overflows `usize`.
    TooLarge,
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ColsNotBlockMultiple { format, cols } => write!(
                f,
                "{format} rows of {cols} values are not a whole number of {}-value blocks",
                format.block_values()
            ),
            Self::BadLength {
                what,
                expected,
                got,
            } => write!(f, "`{what}` has length {got}, expected {expected}"),
            Self::RowOutOfRange { row, rows } => {
                write!(f, "row {row} is outside the matrix of {rows} rows")
            }
            Self::UnsupportedType(t) => write!(f, "ggml tensor type {t} is not supported"),
            Self::TooLarge => write!(f, "matrix shape overflows the address space"),
        }
    }
}

impl std::error::Error for KernelError {}

/// Checks that `len` equals `expected`, naming the argument otherwise.
pub(crate) fn check_len(
    what: &'static str,
    len: usize,
    expected: usize,
) -> Result<(), KernelError> {
    if len == expected {
        Ok(())
    } else {
        Err(KernelError::BadLength {
            what,
            expected,
            got: len,
        })
    }
}
