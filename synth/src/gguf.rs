//! A small owning wrapper over ggml's `gguf_context`: build metadata and
//! tensor infos, write the metadata, read a file's layout back.

use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char, c_void};
use std::path::Path;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::error::{Result, SynthError};
use crate::meta::{MetaValue, Metadata};
use crate::spec::TensorSpec;

/// Longest tensor name ggml stores (`GGML_MAX_NAME` includes the NUL).
const MAX_NAME: usize = sys::GGML_MAX_NAME as usize - 1;

fn cstring(what: &'static str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| SynthError::BadCString {
        what,
        value: s.to_owned(),
    })
}

/// A path as C sees it.
pub(crate) fn path_cstring(path: &Path) -> Result<CString> {
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
        .ok_or_else(|| SynthError::BadCString {
            what: "path",
            value: path.display().to_string(),
        })
}

/// An owned `gguf_context`.
pub(crate) struct Gguf {
    ptr: NonNull<sys::gguf_context>,
}

/// A `ggml_context` that only holds tensor descriptions (`no_alloc`).
struct MetaOnlyGgml(NonNull<sys::ggml_context>);

impl Drop for MetaOnlyGgml {
    fn drop(&mut self) {
        // SAFETY: the pointer came from ggml_init and is freed exactly once, here.
        unsafe { sys::ggml_free(self.0.as_ptr()) }
    }
}

impl Gguf {
    /// An empty context.
    pub fn empty() -> Result<Self> {
        // SAFETY: gguf_init_empty has no preconditions; a null result is handled.
        let ptr = unsafe { sys::gguf_init_empty() };
        NonNull::new(ptr)
            .map(|ptr| Self { ptr })
            .ok_or_else(|| SynthError::Ggml("gguf_init_empty failed".into()))
    }

    /// The metadata and tensor infos of a GGUF file; tensor data is not read,
    /// so the file may be metadata only.
    pub fn read_meta(path: &Path) -> Result<Self> {
        let c = path_cstring(path)?;
        let params = sys::gguf_init_params {
            no_alloc: true,
            ctx: std::ptr::null_mut(),
        };
        // SAFETY: `c` is a valid NUL-terminated path; with ctx null nothing else is allocated.
        let ptr = unsafe { sys::gguf_init_from_file(c.as_ptr(), params) };
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or_else(|| {
            SynthError::Ggml(format!(
                "gguf_init_from_file could not read {}",
                path.display()
            ))
        })
    }

    pub fn raw(&self) -> *mut sys::gguf_context {
        self.ptr.as_ptr()
    }

    /// Set every key of `meta`.
    pub fn set_all(&mut self, meta: &Metadata) -> Result<()> {
        for (k, v) in meta.entries() {
            self.set(k, v)?;
        }
        Ok(())
    }

    /// Set one key.
    pub fn set(&mut self, key: &str, value: &MetaValue) -> Result<()> {
        let k = cstring("metadata key", key)?;
        let (ctx, kp) = (self.raw(), k.as_ptr());
        match value {
            // SAFETY: ctx is a live context and kp a NUL-terminated key (this holds
            // for every arm); gguf copies keys, strings and array contents.
            MetaValue::U32(v) => unsafe { sys::gguf_set_val_u32(ctx, kp, *v) },
            // SAFETY: as above.
            MetaValue::I32(v) => unsafe { sys::gguf_set_val_i32(ctx, kp, *v) },
            // SAFETY: as above.
            MetaValue::F32(v) => unsafe { sys::gguf_set_val_f32(ctx, kp, *v) },
            // SAFETY: as above.
            MetaValue::Bool(v) => unsafe { sys::gguf_set_val_bool(ctx, kp, *v) },
            MetaValue::Str(s) => {
                let c = cstring("metadata string", s)?;
                // SAFETY: as above; `c` is NUL-terminated and outlives the call.
                unsafe { sys::gguf_set_val_str(ctx, kp, c.as_ptr()) }
            }
            MetaValue::ArrI32(a) => {
                // SAFETY: as above; `a` holds a.len() contiguous i32 values.
                unsafe {
                    sys::gguf_set_arr_data(
                        ctx,
                        kp,
                        sys::GGUF_TYPE_INT32,
                        a.as_ptr().cast::<c_void>(),
                        a.len(),
                    )
                }
            }
            MetaValue::ArrU32(a) => {
                // SAFETY: as above; `a` holds a.len() contiguous u32 values.
                unsafe {
                    sys::gguf_set_arr_data(
                        ctx,
                        kp,
                        sys::GGUF_TYPE_UINT32,
                        a.as_ptr().cast::<c_void>(),
                        a.len(),
                    )
                }
            }
            MetaValue::ArrF32(a) => {
                // SAFETY: as above; `a` holds a.len() contiguous f32 values.
                unsafe {
                    sys::gguf_set_arr_data(
                        ctx,
                        kp,
                        sys::GGUF_TYPE_FLOAT32,
                        a.as_ptr().cast::<c_void>(),
                        a.len(),
                    )
                }
            }
            MetaValue::ArrStr(a) => {
                let owned = a
                    .iter()
                    .map(|s| cstring("metadata string", s))
                    .collect::<Result<Vec<_>>>()?;
                let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
                // SAFETY: as above; `ptrs` holds a.len() pointers to NUL-terminated strings
                // owned by `owned`, which outlives the call (gguf only reads them).
                unsafe { sys::gguf_set_arr_str(ctx, kp, ptrs.as_mut_ptr(), ptrs.len()) }
            }
        }
        Ok(())
    }

    /// Add tensor infos for `tensors`, in order. The descriptions are made in a
    /// `no_alloc` ggml context (no data memory); gguf copies them.
    pub fn add_tensors(&mut self, tensors: &[TensorSpec]) -> Result<()> {
        let mut seen = HashSet::new();
        for t in tensors {
            if t.name.len() > MAX_NAME || !seen.insert(t.name.as_str()) {
                return Err(SynthError::InvalidOptions(format!(
                    "tensor name {:?} is too long or repeated",
                    t.name
                )));
            }
            if t.shape.is_empty()
                || t.shape.len() > 4
                || !t.row_len().is_multiple_of(t.ty.block_size())
            {
                return Err(SynthError::InvalidOptions(format!(
                    "tensor {}: shape {:?} does not fit type {}",
                    t.name, t.shape, t.ty
                )));
            }
        }
        // SAFETY: ggml_tensor_overhead has no preconditions.
        let overhead = unsafe { sys::ggml_tensor_overhead() };
        let params = sys::ggml_init_params {
            mem_size: overhead * (tensors.len() + 1),
            mem_buffer: std::ptr::null_mut(),
            no_alloc: true,
        };
        // SAFETY: valid parameters; a null result is handled.
        let ctx = NonNull::new(unsafe { sys::ggml_init(params) })
            .map(MetaOnlyGgml)
            .ok_or_else(|| SynthError::Ggml("ggml_init failed".into()))?;
        for t in tensors {
            let mut ne = [1i64; 4];
            for (d, &n) in ne.iter_mut().zip(&t.shape) {
                *d = i64::try_from(n).map_err(|_| {
                    SynthError::InvalidOptions(format!("{}: dimension too large", t.name))
                })?;
            }
            let name = cstring("tensor name", &t.name)?;
            // SAFETY: ctx is live with room for every tensor (one overhead each);
            // ne holds t.shape.len() (1..=4) dimensions; the row length fits the
            // type's block size (checked above).
            let tensor = unsafe {
                sys::ggml_new_tensor(
                    ctx.0.as_ptr(),
                    t.ty.ggml(),
                    t.shape.len() as i32,
                    ne.as_ptr(),
                )
            };
            if tensor.is_null() {
                return Err(SynthError::Ggml(format!(
                    "ggml_new_tensor failed for {}",
                    t.name
                )));
            }
            // SAFETY: tensor is live; the name is shorter than GGML_MAX_NAME and
            // unique (checked above), so gguf_add_tensor will not abort. gguf
            // copies the tensor struct, so freeing ctx afterwards is fine.
            unsafe {
                sys::ggml_set_name(tensor, name.as_ptr());
                sys::gguf_add_tensor(self.raw(), tensor);
            }
        }
        Ok(())
    }

    /// Write the header, metadata and tensor infos, padded to the alignment.
    pub fn write_meta(&self, path: &Path) -> Result<()> {
        let c = path_cstring(path)?;
        // SAFETY: live context, NUL-terminated path.
        let ok = unsafe { sys::gguf_write_to_file(self.raw(), c.as_ptr(), true) };
        if ok {
            Ok(())
        } else {
            Err(SynthError::Ggml(format!(
                "gguf_write_to_file failed for {}",
                path.display()
            )))
        }
    }

    /// Size of what [`Self::write_meta`] writes.
    pub fn meta_size(&self) -> u64 {
        // SAFETY: live context.
        unsafe { sys::gguf_get_meta_size(self.raw()) as u64 }
    }

    /// Alignment of tensor data.
    pub fn alignment(&self) -> u64 {
        // SAFETY: live context.
        unsafe { sys::gguf_get_alignment(self.raw()) as u64 }
    }

    /// Offset of the data section (meaningful for a context read from a file).
    pub fn data_offset(&self) -> u64 {
        // SAFETY: live context.
        unsafe { sys::gguf_get_data_offset(self.raw()) as u64 }
    }

    /// Number of tensors.
    pub fn n_tensors(&self) -> usize {
        // SAFETY: live context.
        let n = unsafe { sys::gguf_get_n_tensors(self.raw()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// Name of tensor `i` (< [`Self::n_tensors`]).
    pub fn tensor_name(&self, i: usize) -> String {
        // SAFETY: live context, i in range; the name is NUL-terminated and owned by ctx.
        unsafe { CStr::from_ptr(sys::gguf_get_tensor_name(self.raw(), i as i64)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Offset of tensor `i` within the data section.
    pub fn tensor_offset(&self, i: usize) -> u64 {
        // SAFETY: live context, i in range.
        unsafe { sys::gguf_get_tensor_offset(self.raw(), i as i64) as u64 }
    }

    /// Byte size of tensor `i`.
    pub fn tensor_size(&self, i: usize) -> u64 {
        // SAFETY: live context, i in range.
        unsafe { sys::gguf_get_tensor_size(self.raw(), i as i64) as u64 }
    }

    /// `ggml_type` of tensor `i`.
    pub fn tensor_type(&self, i: usize) -> sys::ggml_type {
        // SAFETY: live context, i in range.
        unsafe { sys::gguf_get_tensor_type(self.raw(), i as i64) }
    }

    /// Index of the key `key`, if present.
    pub fn find_key(&self, key: &str) -> Option<i64> {
        let c = CString::new(key).ok()?;
        // SAFETY: live context, NUL-terminated key.
        let id = unsafe { sys::gguf_find_key(self.raw(), c.as_ptr()) };
        (id >= 0).then_some(id)
    }

    /// The value of `key`, if it is an unsigned 32-bit integer.
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        let id = self.find_key(key)?;
        // SAFETY: live context, id valid; the type is checked before reading.
        unsafe {
            (sys::gguf_get_kv_type(self.raw(), id) == sys::GGUF_TYPE_UINT32)
                .then(|| sys::gguf_get_val_u32(self.raw(), id))
        }
    }

    /// The string value of `key`, if it is a string.
    pub fn get_str(&self, key: &str) -> Option<String> {
        let id = self.find_key(key)?;
        // SAFETY: live context, id valid; the type is checked before reading.
        unsafe {
            if sys::gguf_get_kv_type(self.raw(), id) != sys::GGUF_TYPE_STRING {
                return None;
            }
            Some(
                CStr::from_ptr(sys::gguf_get_val_str(self.raw(), id))
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    }
}

impl Drop for Gguf {
    fn drop(&mut self) {
        // SAFETY: the pointer came from gguf_init_* and is freed exactly once, here.
        unsafe { sys::gguf_free(self.ptr.as_ptr()) }
    }
}

/// Layout of a GGUF file as ggml reads it back: for inspecting written files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufLayout {
    /// Data section offset.
    pub data_offset: u64,
    /// Alignment.
    pub alignment: u64,
    /// (name, ggml type, offset in the data section, size) per tensor, in file order.
    pub tensors: Vec<(String, sys::ggml_type, u64, u64)>,
    /// `general.architecture`.
    pub arch: Option<String>,
    /// `{arch}.expert_count` and `{arch}.expert_used_count`, for MoE models.
    pub experts: Option<(u32, u32)>,
}

/// Read a GGUF file's metadata and tensor layout with ggml's own reader.
///
/// # Errors
/// [`SynthError::Ggml`] if ggml cannot parse the file.
pub fn read_layout(path: &Path) -> Result<GgufLayout> {
    let g = Gguf::read_meta(path)?;
    let tensors = (0..g.n_tensors())
        .map(|i| {
            (
                g.tensor_name(i),
                g.tensor_type(i),
                g.tensor_offset(i),
                g.tensor_size(i),
            )
        })
        .collect();
    let arch = g.get_str("general.architecture");
    let experts = arch.as_ref().and_then(|a| {
        let n = g.get_u32(&format!("{a}.expert_count"))?;
        Some((n, g.get_u32(&format!("{a}.expert_used_count"))?))
    });
    Ok(GgufLayout {
        data_offset: g.data_offset(),
        alignment: g.alignment(),
        tensors,
        arch,
        experts,
    })
}
