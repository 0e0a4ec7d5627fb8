//! A 64-byte-aligned byte buffer (so group blocks and dense columns start
//! on cache-line boundaries), viewable as bytes, f32 or f16.

use half::f16;

/// One cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// Zero-initialized, 64-byte-aligned storage of `len` bytes.
#[derive(Clone)]
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

/// Element types the buffer may be viewed as: every bit pattern is valid
/// and their alignment divides 64.
pub(crate) trait Plain: Copy {}
impl Plain for u8 {}
impl Plain for f32 {}
impl Plain for f16 {}

impl AlignedBuf {
    /// `len` zero bytes.
    pub(crate) fn zeroed(len: usize) -> Self {
        AlignedBuf {
            lines: vec![Line([0; 64]); len.div_ceil(64)],
            len,
        }
    }

    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The contents as `T`s (`len / size_of::<T>()` of them).
    pub(crate) fn as_slice<T: Plain>(&self) -> &[T] {
        // SAFETY: the lines own `lines.len() * 64 >= len` initialized bytes,
        // aligned to 64 >= align_of::<T>(), and every bit pattern is a
        // valid `T` (the `Plain` types).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len / size_of::<T>()) }
    }

    /// The contents as mutable `T`s.
    pub(crate) fn as_mut_slice<T: Plain>(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`, with unique access through `&mut self`.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.lines.as_mut_ptr().cast(),
                self.len / size_of::<T>(),
            )
        }
    }
}
