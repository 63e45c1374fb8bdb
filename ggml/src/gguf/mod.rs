//! One owning wrapper over ggml's `gguf_context`, for every crate that reads or writes GGUF
//! metadata: the safe crate's checks before a load, the synthetic model writer and its
//! readers. Tensor data is never read: a context holds keys, values and tensor infos.
//!
//! Reading goes through the sys crate's exception boundary (`llama_sys_gguf_init_from_file`),
//! so a file whose sizes make ggml's parser throw is an `Err`, not an abort.

mod layout;
mod meta;
mod read;
mod write;

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::error::{Error, Result};

pub use layout::{GgufLayout, read_layout};
pub use meta::{MetaValue, Metadata};
pub use write::TensorInfo;

/// An owned `gguf_context`: a file's metadata and tensor infos, or one being built.
///
/// ```
/// use llamacpp_ggml::gguf::{Gguf, MetaValue};
/// let mut g = Gguf::empty()?;
/// g.set("general.architecture", &MetaValue::Str("llama".into()))?;
/// assert_eq!(g.get_str("general.architecture").as_deref(), Some("llama"));
/// assert_eq!(g.get_u32("general.architecture"), None); // not a u32
/// # Ok::<(), llamacpp_ggml::Error>(())
/// ```
pub struct Gguf {
    ptr: NonNull<sys::gguf_context>,
}

// SAFETY: a gguf_context is plain heap data with no thread affinity; `&self` methods only
// read it and `&mut self` methods write it, so Rust's borrow rules serialise writers.
unsafe impl Send for Gguf {}
// SAFETY: as above: shared access only reads (gguf's getters write nothing).
unsafe impl Sync for Gguf {}

impl Drop for Gguf {
    fn drop(&mut self) {
        // SAFETY: the pointer came from gguf_init_* and is freed exactly once, here.
        unsafe { sys::gguf_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Gguf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf")
            .field("n_kv", &self.n_kv())
            .field("n_tensors", &self.n_tensors())
            .finish()
    }
}

impl Gguf {
    /// An empty context, to fill and write.
    ///
    /// # Errors
    /// [`Error::Gguf`] when ggml cannot allocate it.
    pub fn empty() -> Result<Self> {
        // SAFETY: gguf_init_empty has no preconditions; a null result is handled.
        let ptr = unsafe { sys::gguf_init_empty() };
        NonNull::new(ptr)
            .map(|ptr| Self { ptr })
            .ok_or_else(|| Error::Gguf("gguf_init_empty failed".into()))
    }

    /// The metadata and tensor infos of the GGUF file at `path` (tensor data is not read,
    /// so the file may hold metadata only).
    ///
    /// # Errors
    /// [`Error::GgufRead`] when ggml's parser refuses the file; the reason is the exception
    /// it threw, if any (its other reasons go to ggml's log).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_c(&path_cstring(path)?)
    }

    /// [`Gguf::open`] for a path already in C form.
    ///
    /// # Errors
    /// As [`Gguf::open`].
    pub fn open_c(path: &CStr) -> Result<Self> {
        let params = sys::gguf_init_params {
            no_alloc: true,
            ctx: std::ptr::null_mut(),
        };
        let mut err = [0u8; 256];
        // SAFETY: `path` is NUL-terminated; with ctx null only the gguf context is
        // allocated; the shim writes at most err.len() bytes (NUL-terminated) and turns an
        // exception into NULL.
        let ptr = unsafe {
            sys::llama_sys_gguf_init_from_file(
                path.as_ptr(),
                params,
                err.as_mut_ptr().cast(),
                err.len(),
            )
        };
        NonNull::new(ptr)
            .map(|ptr| Self { ptr })
            .ok_or_else(|| Error::GgufRead {
                path: path.to_string_lossy().into_owned(),
                reason: CStr::from_bytes_until_nul(&err)
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            })
    }

    /// The context, for C calls that take one (`llama_model_init_from_user`); valid while
    /// `self` lives, and only to be read through.
    pub fn as_ptr(&self) -> *mut sys::gguf_context {
        self.ptr.as_ptr()
    }

    fn raw(&self) -> *mut sys::gguf_context {
        self.ptr.as_ptr()
    }
}

/// `s` as a C string, or [`Error::BadCString`] naming `what` it was.
fn cstring(what: &'static str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::BadCString {
        what,
        value: s.to_owned(),
    })
}

/// A path as C sees it (non-empty, no NUL byte).
fn path_cstring(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default();
    CString::new(bytes)
        .ok()
        .filter(|c| !c.as_bytes().is_empty())
        .ok_or_else(|| Error::BadCString {
            what: "path",
            value: path.display().to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TensorType;

    fn sample() -> Gguf {
        let mut g = Gguf::empty().unwrap();
        g.set("a.u32", &MetaValue::U32(7)).unwrap();
        g.set("a.layers", &MetaValue::ArrI32(vec![1, -2, 3]))
            .unwrap();
        g.set("a.f", &MetaValue::F32(0.5)).unwrap();
        g.set("a.s", &MetaValue::Str("x".into())).unwrap();
        g.set("a.toks", &MetaValue::ArrStr(vec!["p".into(), "q".into()]))
            .unwrap();
        g.add_tensors(&[
            TensorInfo {
                name: "w",
                ty: TensorType::Q8_0,
                shape: &[64, 2],
            },
            TensorInfo {
                name: "b",
                ty: TensorType::F32,
                shape: &[3],
            },
        ])
        .unwrap();
        g
    }

    #[test]
    fn written_metadata_reads_back_typed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        sample().write_meta(&path).unwrap();
        let g = Gguf::open(&path).unwrap();
        assert_eq!(g.n_kv(), 5);
        assert_eq!(g.get_u32("a.u32"), Some(7));
        assert_eq!(
            g.get_f32("a.u32"),
            None,
            "a u32 is not read as another type"
        );
        assert_eq!(g.u32s("a.u32"), Some(vec![7]));
        assert_eq!(g.u32s("a.layers"), Some(vec![1, u32::MAX - 1, 3]));
        assert_eq!(g.i32_array("a.layers"), Some(vec![1, -2, 3]));
        assert_eq!(g.get_f32("a.f"), Some(0.5));
        assert_eq!(g.get_str("a.s").as_deref(), Some("x"));
        let mut seen = Vec::new();
        assert!(g.for_each_str("a.toks", |i, s| seen.push((i, s.to_vec()))));
        assert_eq!(seen, [(0, b"p".to_vec()), (1, b"q".to_vec())]);
        assert!(!g.for_each_str("a.layers", |_, _| {}));
        assert_eq!(g.n_tensors(), 2);
        assert_eq!(g.tensor_index("b"), Some(1));
        assert_eq!(g.tensor_name(0).as_deref(), Some("w"));
        assert_eq!(g.tensor_type(0), Some(TensorType::Q8_0.ggml()));
        assert_eq!(g.tensor_size(0), Some(2 * 68));
        // Out of range is None, where ggml's getters abort.
        assert_eq!(g.tensor_name(2), None);
        assert_eq!(g.tensor_offset(2), None);
        let layout = read_layout(&path).unwrap();
        assert_eq!(layout.tensor_type("w"), Some(TensorType::Q8_0));
        assert_eq!(layout.tensor_type("nope"), None);
    }

    #[test]
    fn what_ggml_aborts_on_is_an_error() {
        let mut g = sample();
        let again = TensorInfo {
            name: "w",
            ty: TensorType::F32,
            shape: &[4],
        };
        assert!(matches!(g.add_tensors(&[again]), Err(Error::TensorInfo(_))));
        let partial = TensorInfo {
            name: "odd",
            ty: TensorType::Q4_0,
            shape: &[48],
        };
        assert!(matches!(
            g.add_tensors(&[partial]),
            Err(Error::TensorInfo(_))
        ));
        let long = "n".repeat(64);
        let named = TensorInfo {
            name: &long,
            ty: TensorType::F32,
            shape: &[4],
        };
        assert!(matches!(g.add_tensors(&[named]), Err(Error::TensorInfo(_))));
        assert!(matches!(
            g.set("k\0", &MetaValue::U32(1)),
            Err(Error::BadCString { .. })
        ));
    }

    #[test]
    fn unreadable_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.gguf");
        std::fs::write(&path, b"GGUF\x03\0\0\0 not really").unwrap();
        assert!(matches!(Gguf::open(&path), Err(Error::GgufRead { .. })));
        assert!(matches!(
            Gguf::open(&dir.path().join("missing.gguf")),
            Err(Error::GgufRead { .. })
        ));
        assert!(matches!(
            Gguf::open(Path::new("")),
            Err(Error::BadCString { what: "path", .. })
        ));
    }
}
