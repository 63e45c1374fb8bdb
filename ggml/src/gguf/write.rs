//! Building a [`Gguf`]: metadata values, tensor infos, and writing the header.

use std::collections::HashSet;
use std::ffi::{c_char, c_void};
use std::path::Path;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use super::meta::{MetaValue, Metadata};
use super::{Gguf, cstring, path_cstring};
use crate::error::{Error, Result};
use crate::types::TensorType;

/// Longest tensor name ggml stores (`GGML_MAX_NAME` includes the NUL).
const MAX_NAME: usize = sys::GGML_MAX_NAME as usize - 1;

/// The description of one tensor to add: its name, storage type and shape (1 to 4
/// dimensions, innermost first, as ggml's `ne`).
#[derive(Clone, Copy, Debug)]
pub struct TensorInfo<'a> {
    /// The tensor's name (unique, shorter than `GGML_MAX_NAME`).
    pub name: &'a str,
    /// The storage type.
    pub ty: TensorType,
    /// The dimensions, innermost (the row) first.
    pub shape: &'a [u64],
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
    /// Sets every key of `meta`, in order.
    ///
    /// # Errors
    /// As [`Gguf::set`].
    pub fn set_all(&mut self, meta: &Metadata) -> Result<()> {
        for (k, v) in meta.entries() {
            self.set(k, v)?;
        }
        Ok(())
    }

    /// Sets one key (replacing a value it had).
    ///
    /// # Errors
    /// [`Error::BadCString`] for a key or string with a NUL byte.
    pub fn set(&mut self, key: &str, value: &MetaValue) -> Result<()> {
        let k = cstring("metadata key", key)?;
        let (ctx, kp) = (self.raw(), k.as_ptr());
        let arr = |ty: sys::gguf_type, data: *const c_void, n: usize| {
            // SAFETY: ctx is a live context (borrowed mutably) and kp a NUL-terminated key;
            // `data` points to `n` contiguous elements of `ty`; gguf copies them.
            unsafe { sys::gguf_set_arr_data(ctx, kp, ty, data, n) }
        };
        match value {
            // SAFETY: ctx is a live context and kp a NUL-terminated key (this holds for
            // every arm); gguf copies keys and values.
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
            MetaValue::ArrI32(a) => arr(sys::GGUF_TYPE_INT32, a.as_ptr().cast(), a.len()),
            MetaValue::ArrU32(a) => arr(sys::GGUF_TYPE_UINT32, a.as_ptr().cast(), a.len()),
            MetaValue::ArrF32(a) => arr(sys::GGUF_TYPE_FLOAT32, a.as_ptr().cast(), a.len()),
            MetaValue::ArrStr(a) => {
                let owned = a
                    .iter()
                    .map(|s| cstring("metadata string", s))
                    .collect::<Result<Vec<_>>>()?;
                let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
                // SAFETY: as above; `ptrs` holds a.len() pointers to NUL-terminated strings
                // owned by `owned`, which outlives the call (gguf copies them).
                unsafe { sys::gguf_set_arr_str(ctx, kp, ptrs.as_mut_ptr(), ptrs.len()) }
            }
        }
        Ok(())
    }

    /// Adds tensor infos for `tensors`, in order, after checking what ggml would abort on
    /// (a long or repeated name, a shape of no or more than 4 dimensions, rows that are
    /// not whole blocks of the type). The descriptions are made in a `no_alloc` ggml
    /// context (no data memory); gguf copies them.
    ///
    /// # Errors
    /// [`Error::TensorInfo`] naming the tensor, [`Error::BadCString`] for a NUL in a name.
    pub fn add_tensors(&mut self, tensors: &[TensorInfo<'_>]) -> Result<()> {
        let mut seen = HashSet::new();
        for t in tensors {
            if t.name.len() > MAX_NAME
                || !seen.insert(t.name)
                || self.tensor_index(t.name).is_some()
            {
                return Err(Error::TensorInfo(format!(
                    "tensor name {:?} is too long or repeated",
                    t.name
                )));
            }
            let row = t.shape.first().copied().unwrap_or(0);
            if t.shape.is_empty() || t.shape.len() > 4 || !row.is_multiple_of(t.ty.block_size()) {
                return Err(Error::TensorInfo(format!(
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
            .ok_or_else(|| Error::Gguf("ggml_init failed".into()))?;
        for t in tensors {
            let mut ne = [1i64; 4];
            for (d, &n) in ne.iter_mut().zip(t.shape) {
                *d = i64::try_from(n).map_err(|_| {
                    Error::TensorInfo(format!("{}: dimension {n} too large", t.name))
                })?;
            }
            let name = cstring("tensor name", t.name)?;
            // SAFETY: ctx is live with room for every tensor (one overhead each); ne holds
            // t.shape.len() (1..=4) dimensions; the row fits the type's block size (checked).
            let tensor = unsafe {
                sys::ggml_new_tensor(
                    ctx.0.as_ptr(),
                    t.ty.ggml(),
                    t.shape.len() as i32,
                    ne.as_ptr(),
                )
            };
            if tensor.is_null() {
                return Err(Error::Gguf(format!(
                    "ggml_new_tensor failed for {}",
                    t.name
                )));
            }
            // SAFETY: tensor is live; the name is shorter than GGML_MAX_NAME and unique in
            // the context (checked above), so gguf_add_tensor will not abort. gguf copies
            // the tensor struct, so freeing ctx afterwards is fine.
            unsafe {
                sys::ggml_set_name(tensor, name.as_ptr());
                sys::gguf_add_tensor(self.raw(), tensor);
            }
        }
        Ok(())
    }

    /// Writes the header, metadata and tensor infos to `path`, padded to the alignment
    /// (the tensor data, if any, is the caller's to append).
    ///
    /// # Errors
    /// [`Error::Gguf`] when ggml cannot write the file.
    pub fn write_meta(&self, path: &Path) -> Result<()> {
        let c = path_cstring(path)?;
        // SAFETY: live context, NUL-terminated path.
        let ok = unsafe { sys::gguf_write_to_file(self.raw(), c.as_ptr(), true) };
        if ok {
            Ok(())
        } else {
            Err(Error::Gguf(format!(
                "gguf_write_to_file failed for {}",
                path.display()
            )))
        }
    }
}
