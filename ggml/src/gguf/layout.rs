//! A GGUF file's layout as ggml reads it back: for checking written files.

use std::path::Path;

use llamacpp_sys as sys;

use super::Gguf;
use crate::error::Result;
use crate::types::TensorType;

/// The layout of a GGUF file as ggml reads it back.
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

impl GgufLayout {
    /// The storage type of the tensor named `name`: `None` when the file has no such
    /// tensor or its type is not one of [`TensorType::ALL`].
    #[must_use]
    pub fn tensor_type(&self, name: &str) -> Option<TensorType> {
        self.tensors
            .iter()
            .find(|(n, ..)| n == name)
            .and_then(|&(_, ty, ..)| TensorType::from_ggml(ty))
    }
}

/// Reads a GGUF file's metadata and tensor layout with ggml's own reader.
///
/// # Errors
/// [`crate::Error::GgufRead`] if ggml cannot parse the file.
pub fn read_layout(path: &Path) -> Result<GgufLayout> {
    let g = Gguf::open(path)?;
    let tensors = (0..g.n_tensors())
        .filter_map(|i| {
            Some((
                g.tensor_name(i)?,
                g.tensor_type(i)?,
                g.tensor_offset(i)?,
                g.tensor_size(i)?,
            ))
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
