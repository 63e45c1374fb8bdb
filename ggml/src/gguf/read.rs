//! Typed reads of a [`Gguf`]'s keys and tensor infos. Every getter checks the value's type
//! (ggml's getters abort on a mismatch) and every index its range (they abort on that too).

use std::ffi::{CStr, CString};

use llamacpp_sys as sys;

use super::Gguf;

impl Gguf {
    /// The number of key/value pairs.
    pub fn n_kv(&self) -> usize {
        // SAFETY: live context.
        let n = unsafe { sys::gguf_get_n_kv(self.raw()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// The index of `key`, if present (`None` as well for a key with a NUL byte, which no
    /// GGUF file can hold).
    pub fn key_id(&self, key: &str) -> Option<i64> {
        let c = CString::new(key).ok()?;
        // SAFETY: live context, NUL-terminated key.
        let id = unsafe { sys::gguf_find_key(self.raw(), c.as_ptr()) };
        (id >= 0).then_some(id)
    }

    /// The GGUF type (`GGUF_TYPE_*`) of `key`, if present.
    pub fn kv_type(&self, key: &str) -> Option<sys::gguf_type> {
        let id = self.key_id(key)?;
        // SAFETY: live context; `id` came from gguf_find_key.
        Some(unsafe { sys::gguf_get_kv_type(self.raw(), id) })
    }

    /// `key`'s id when its value has type `ty`.
    fn id_of_type(&self, key: &str, ty: sys::gguf_type) -> Option<i64> {
        let id = self.key_id(key)?;
        // SAFETY: live context; `id` came from gguf_find_key.
        (unsafe { sys::gguf_get_kv_type(self.raw(), id) } == ty).then_some(id)
    }

    /// The value of `key`, if it is a `uint32`.
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        let id = self.id_of_type(key, sys::GGUF_TYPE_UINT32)?;
        // SAFETY: live context, id valid, type checked.
        Some(unsafe { sys::gguf_get_val_u32(self.raw(), id) })
    }

    /// The value of `key`, if it is a `uint16`.
    pub fn get_u16(&self, key: &str) -> Option<u16> {
        let id = self.id_of_type(key, sys::GGUF_TYPE_UINT16)?;
        // SAFETY: live context, id valid, type checked.
        Some(unsafe { sys::gguf_get_val_u16(self.raw(), id) })
    }

    /// The value of `key`, if it is a `float32`.
    pub fn get_f32(&self, key: &str) -> Option<f32> {
        let id = self.id_of_type(key, sys::GGUF_TYPE_FLOAT32)?;
        // SAFETY: live context, id valid, type checked.
        Some(unsafe { sys::gguf_get_val_f32(self.raw(), id) })
    }

    /// The value of `key`, if it is a string (invalid UTF-8 replaced).
    pub fn get_str(&self, key: &str) -> Option<String> {
        let id = self.id_of_type(key, sys::GGUF_TYPE_STRING)?;
        // SAFETY: live context, id valid, type checked; gguf keeps the string NUL-terminated
        // and alive as long as the context, which `self` borrows for the copy.
        let c = unsafe { CStr::from_ptr(sys::gguf_get_val_str(self.raw(), id)) };
        Some(c.to_string_lossy().into_owned())
    }

    /// `key`'s array element type and length, when it is an array.
    fn array(&self, key: &str) -> Option<(i64, sys::gguf_type, usize)> {
        let id = self.id_of_type(key, sys::GGUF_TYPE_ARRAY)?;
        // SAFETY: live context, id valid, and an array (checked).
        let (ty, n) = unsafe {
            (
                sys::gguf_get_arr_type(self.raw(), id),
                sys::gguf_get_arr_n(self.raw(), id),
            )
        };
        Some((id, ty, n))
    }

    /// The 4-byte elements of an array of one of the types `want`, in native byte order.
    fn words(&self, key: &str, want: &[sys::gguf_type]) -> Option<Vec<[u8; 4]>> {
        let (id, ty, n) = self.array(key)?;
        if !want.contains(&ty) {
            return None;
        }
        // SAFETY: live context, id valid; a numeric array's data is its n contiguous
        // elements of 4 bytes (checked type).
        let data = unsafe { sys::gguf_get_arr_data(self.raw(), id) };
        if data.is_null() {
            return None;
        }
        // Read as bytes: nothing is assumed of the data's alignment.
        // SAFETY: as above, n * 4 bytes; copied before `self`'s borrow ends.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n * 4) };
        Some(
            bytes
                .chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect(),
        )
    }

    /// A `uint32` scalar, or the elements of a `uint32`/`int32` array (the per-layer form of
    /// llama.cpp's hyperparameters, which it reads into `uint32_t`s either way).
    pub fn u32s(&self, key: &str) -> Option<Vec<u32>> {
        if let Some(v) = self.get_u32(key) {
            return Some(vec![v]);
        }
        let words = self.words(key, &[sys::GGUF_TYPE_UINT32, sys::GGUF_TYPE_INT32])?;
        Some(words.into_iter().map(u32::from_ne_bytes).collect())
    }

    /// The elements of an `int32` array.
    pub fn i32_array(&self, key: &str) -> Option<Vec<i32>> {
        let words = self.words(key, &[sys::GGUF_TYPE_INT32])?;
        Some(words.into_iter().map(i32::from_ne_bytes).collect())
    }

    /// Passes each element of a string array to `f` with its index, as llama.cpp reads them
    /// (from the C string, so each stops at its first NUL byte). `false` when `key` is not
    /// a string array.
    pub fn for_each_str(&self, key: &str, mut f: impl FnMut(usize, &[u8])) -> bool {
        let Some((id, ty, n)) = self.array(key) else {
            return false;
        };
        if ty != sys::GGUF_TYPE_STRING {
            return false;
        }
        for i in 0..n {
            // SAFETY: live context, a string array (checked), index below its length.
            let p = unsafe { sys::gguf_get_arr_str(self.raw(), id, i) };
            if !p.is_null() {
                // SAFETY: gguf keeps each element NUL-terminated, alive with the context.
                f(i, unsafe { CStr::from_ptr(p) }.to_bytes());
            }
        }
        true
    }

    /// The number of tensor infos.
    pub fn n_tensors(&self) -> usize {
        // SAFETY: live context.
        let n = unsafe { sys::gguf_get_n_tensors(self.raw()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// The index of the tensor named `name`, if present.
    pub fn tensor_index(&self, name: &str) -> Option<usize> {
        let c = CString::new(name).ok()?;
        // SAFETY: live context, NUL-terminated name.
        let i = unsafe { sys::gguf_find_tensor(self.raw(), c.as_ptr()) };
        usize::try_from(i).ok()
    }

    /// `i` as ggml's tensor id, when it is one.
    fn tensor_id(&self, i: usize) -> Option<i64> {
        (i < self.n_tensors()).then_some(i as i64)
    }

    /// The name of tensor `i`.
    pub fn tensor_name(&self, i: usize) -> Option<String> {
        let id = self.tensor_id(i)?;
        // SAFETY: live context, id in range; the name is NUL-terminated and owned by it.
        let c = unsafe { CStr::from_ptr(sys::gguf_get_tensor_name(self.raw(), id)) };
        Some(c.to_string_lossy().into_owned())
    }

    /// The `ggml_type` of tensor `i` (a value from the file: not always one ggml knows).
    pub fn tensor_type(&self, i: usize) -> Option<sys::ggml_type> {
        let id = self.tensor_id(i)?;
        // SAFETY: live context, id in range.
        Some(unsafe { sys::gguf_get_tensor_type(self.raw(), id) })
    }

    /// The offset of tensor `i` within the data section.
    pub fn tensor_offset(&self, i: usize) -> Option<u64> {
        let id = self.tensor_id(i)?;
        // SAFETY: live context, id in range.
        Some(unsafe { sys::gguf_get_tensor_offset(self.raw(), id) } as u64)
    }

    /// The byte size of tensor `i`.
    pub fn tensor_size(&self, i: usize) -> Option<u64> {
        let id = self.tensor_id(i)?;
        // SAFETY: live context, id in range.
        Some(unsafe { sys::gguf_get_tensor_size(self.raw(), id) } as u64)
    }

    /// The alignment of tensor data.
    pub fn alignment(&self) -> u64 {
        // SAFETY: live context.
        unsafe { sys::gguf_get_alignment(self.raw()) as u64 }
    }

    /// The offset of the data section (meaningful for a context read from a file).
    pub fn data_offset(&self) -> u64 {
        // SAFETY: live context.
        unsafe { sys::gguf_get_data_offset(self.raw()) as u64 }
    }

    /// The size of the header, metadata and tensor infos as written, padded to the alignment.
    pub fn meta_size(&self) -> u64 {
        // SAFETY: live context.
        unsafe { sys::gguf_get_meta_size(self.raw()) as u64 }
    }
}
