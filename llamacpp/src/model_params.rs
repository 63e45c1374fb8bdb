//! [`ModelParams`]: how to load a model (devices, split, metadata overrides, progress).
//!
//! `llama_model_params` carries three borrowed C arrays (the device list, the
//! tensor split and the metadata overrides). Here the params own them, and
//! [`ModelParams::raw_for_load`] points the C struct at them just before the
//! load, so they cannot dangle or lack their terminators.

use std::ffi::{CString, c_char};

use llamacpp_sys as sys;

use crate::backend;
use crate::error::{Error, Result};
use crate::raw::backend::{RawDevice, cpu_buffer_type};
use crate::raw::model::{default_params, max_tensor_buft_overrides};

/// How a model is split across several GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SplitMode {
    /// Everything on one GPU ([`ModelParams::main_gpu`]).
    None,
    /// Whole layers (and their KV cache) per GPU (llama.cpp's default).
    Layer,
    /// Rows of each matrix across GPUs where the backend supports it.
    Row,
    /// Tensor parallelism through a meta device over the GPUs.
    Tensor,
}

/// How the weights are read from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadMode {
    /// llama.cpp chooses from the device capabilities.
    Auto,
    /// Plain reads into allocated buffers.
    Read,
    /// Memory-map the file.
    Mmap,
    /// Read, and lock the buffers in RAM.
    Mlock,
    /// Memory-map and lock in RAM.
    MmapMlock,
    /// Direct I/O (bypassing the page cache) where the platform has it.
    DirectIo,
}

/// Whether tensors the architecture marks as lazy are read on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LazyMode {
    /// Read every tensor up front.
    Off,
    /// Lazy only for marked tensors above 4 GiB (needs mmap).
    Auto,
    /// Lazy for every marked tensor (needs mmap).
    On,
}

/// The value of a metadata override (see [`ModelParams::kv_override`]).
#[derive(Debug, Clone, PartialEq)]
pub enum KvOverride {
    /// Integer keys (`context_length`, `block_count`, ...).
    Int(i64),
    /// Float keys (`attention.layer_norm_rms_epsilon`, `rope.freq_base`, ...).
    Float(f64),
    /// Boolean keys.
    Bool(bool),
    /// String keys, at most [`KV_OVERRIDE_MAX_LEN`] bytes.
    Str(String),
}

/// Longest key or string value an override can hold (the C arrays are 128
/// bytes including the terminating NUL).
pub const KV_OVERRIDE_MAX_LEN: usize = 127;

type ProgressFn = Box<dyn FnMut(f32) -> bool + Send>;

/// How to load a model.
///
/// ```
/// use llamacpp::{KvOverride, ModelParams, SplitMode};
///
/// let params = ModelParams::default()
///     .n_gpu_layers(0)
///     .mmap(false)
///     .split_mode(SplitMode::Layer)
///     .kv_override("llama.context_length", KvOverride::Int(2048))?;
/// assert!(ModelParams::default().kv_override("", KvOverride::Bool(true)).is_err());
/// # let _ = params;
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub struct ModelParams {
    raw: sys::llama_model_params,
    pub(crate) progress: Option<ProgressFn>,
    /// `Some`: an explicit device list.
    devices: Option<Vec<RawDevice>>,
    /// The C array built from `devices` at load time, NULL-terminated.
    device_array: Vec<sys::ggml_backend_dev_t>,
    /// `Some`: exactly `llama_max_devices()` proportions.
    tensor_split: Option<Vec<f32>>,
    /// Metadata overrides by key, each key and string value checked to fit a C array.
    kv_overrides: Vec<(String, KvOverride)>,
    /// The C array built from `kv_overrides` at load time, ended by an empty key.
    kv_override_array: Vec<sys::llama_model_kv_override>,
    /// Tensor-name patterns and the buffer type their tensors go to (NULL = host CPU).
    buft_overrides: Vec<(CString, sys::ggml_backend_buffer_type_t)>,
    /// The C array built from `buft_overrides` at load time, NULL-pattern terminated.
    buft_override_array: Vec<sys::llama_model_tensor_buft_override>,
}

impl Default for ModelParams {
    fn default() -> Self {
        backend::init();
        Self {
            raw: default_params(),
            progress: None,
            devices: None,
            device_array: Vec::new(),
            tensor_split: None,
            kv_overrides: Vec::new(),
            kv_override_array: Vec::new(),
            buft_overrides: Vec::new(),
            buft_override_array: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ModelParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelParams")
            .field("n_gpu_layers", &self.raw.n_gpu_layers)
            .field("main_gpu", &self.raw.main_gpu)
            .field("split_mode", &self.raw.split_mode)
            .field("load_mode", &self.raw.load_mode)
            .field("lazy_mode", &self.raw.lazy_mode)
            .field("use_extra_bufts", &self.raw.use_extra_bufts)
            .field("no_host", &self.raw.no_host)
            .field("vocab_only", &self.raw.vocab_only)
            .field("check_tensors", &self.raw.check_tensors)
            .field("devices", &self.devices.as_ref().map(Vec::len))
            .field("tensor_split", &self.tensor_split)
            .field("kv_overrides", &self.kv_overrides.len())
            .field("tensor_overrides", &self.buft_overrides.len())
            .finish_non_exhaustive()
    }
}

/// The most devices llama.cpp takes in a device list or tensor split.
pub fn max_devices() -> usize {
    crate::raw::model::max_devices()
}

/// Errors when `s` does not fit a fixed 128-byte C char array with its terminating NUL.
fn check_c_array(s: &str, what: &'static str) -> Result<()> {
    if s.as_bytes().contains(&0) {
        return Err(Error::Nul(s.to_string()));
    }
    if s.len() > KV_OVERRIDE_MAX_LEN {
        return Err(Error::OutOfRange {
            what,
            value: s.len() as i64,
            expected: format!("at most {KV_OVERRIDE_MAX_LEN} bytes"),
        });
    }
    Ok(())
}

/// `s` in a fixed C char array, NUL-terminated (checked by [`check_c_array`] before).
fn c_array(s: &str) -> [c_char; 128] {
    let mut dst = [0 as c_char; 128];
    for (d, &b) in dst[..KV_OVERRIDE_MAX_LEN].iter_mut().zip(s.as_bytes()) {
        *d = b as c_char;
    }
    dst
}

/// One override in C form.
fn c_kv_override(key: &str, value: &KvOverride) -> sys::llama_model_kv_override {
    let mut o = sys::llama_model_kv_override {
        key: c_array(key),
        ..Default::default()
    };
    match value {
        KvOverride::Int(v) => {
            o.tag = sys::LLAMA_KV_OVERRIDE_TYPE_INT;
            o.__bindgen_anon_1.val_i64 = *v;
        }
        KvOverride::Float(v) => {
            o.tag = sys::LLAMA_KV_OVERRIDE_TYPE_FLOAT;
            o.__bindgen_anon_1.val_f64 = *v;
        }
        KvOverride::Bool(v) => {
            o.tag = sys::LLAMA_KV_OVERRIDE_TYPE_BOOL;
            o.__bindgen_anon_1.val_bool = *v;
        }
        KvOverride::Str(s) => {
            o.tag = sys::LLAMA_KV_OVERRIDE_TYPE_STR;
            o.__bindgen_anon_1.val_str = c_array(s);
        }
    }
    o
}

impl ModelParams {
    /// Layers to offload to the GPU; negative means all (llama.cpp's default).
    pub fn n_gpu_layers(mut self, n: i32) -> Self {
        self.raw.n_gpu_layers = n;
        self
    }

    /// The GPU used for the whole model (split mode none) or for intermediate
    /// results. An index past the devices makes the load fail with an error.
    pub fn main_gpu(mut self, i: i32) -> Self {
        self.raw.main_gpu = i;
        self
    }

    /// How the model is split across GPUs. [`SplitMode::Tensor`] uses only the listed
    /// [`devices`](Self::devices) with memory of their own (never the CPU), as llama.cpp's
    /// default selection does; a list without any fails to load.
    pub fn split_mode(mut self, mode: SplitMode) -> Self {
        self.raw.split_mode = match mode {
            SplitMode::None => sys::LLAMA_SPLIT_MODE_NONE,
            SplitMode::Layer => sys::LLAMA_SPLIT_MODE_LAYER,
            SplitMode::Row => sys::LLAMA_SPLIT_MODE_ROW,
            SplitMode::Tensor => sys::LLAMA_SPLIT_MODE_TENSOR,
        };
        self
    }

    /// Proportion of the model for each device, in device-list order (at most
    /// [`max_devices`] entries, each finite and `>= 0`; all zero = by free memory).
    ///
    /// ```
    /// let p = llamacpp::ModelParams::default().tensor_split(&[3.0, 1.0])?;
    /// assert!(llamacpp::ModelParams::default().tensor_split(&[-1.0]).is_err());
    /// # let _ = p;
    /// # Ok::<(), llamacpp::Error>(())
    /// ```
    pub fn tensor_split(mut self, split: &[f32]) -> Result<Self> {
        let max = max_devices();
        if split.len() > max {
            return Err(Error::OutOfRange {
                what: "tensor_split length",
                value: split.len() as i64,
                expected: format!("<= llama_max_devices() = {max}"),
            });
        }
        if let Some(&bad) = split.iter().find(|v| !v.is_finite() || **v < 0.0) {
            return Err(Error::OutOfRange {
                what: "tensor_split entry",
                value: bad as i64,
                expected: "finite and >= 0".into(),
            });
        }
        // llama.cpp reads exactly llama_max_devices() floats from the pointer.
        let mut owned = vec![0.0f32; max];
        owned[..split.len()].copy_from_slice(split);
        self.tensor_split = Some(owned);
        Ok(self)
    }

    /// Offload only to these devices, by name as [`backend::devices`](crate::backend::devices)
    /// reports them (`CUDA0`, `Vulkan1`, ...), in this order. An empty list means no
    /// offload device at all (CPU only). Unknown, repeated or too many names are errors.
    ///
    /// ```
    /// let cpu_only = llamacpp::ModelParams::default().devices(&[])?;
    /// assert!(llamacpp::ModelParams::default().devices(&["NoSuchGPU"]).is_err());
    /// # let _ = cpu_only;
    /// # Ok::<(), llamacpp::Error>(())
    /// ```
    pub fn devices(mut self, names: &[&str]) -> Result<Self> {
        backend::init();
        let max = max_devices();
        if names.len() > max {
            return Err(Error::OutOfRange {
                what: "device count",
                value: names.len() as i64,
                expected: format!("<= llama_max_devices() = {max}"),
            });
        }
        let mut list = Vec::with_capacity(names.len() + 1);
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(Error::Device(format!("{name} is listed twice")));
            }
            let c = crate::error::c_string(name)?;
            let Some(dev) = RawDevice::by_name(&c) else {
                let known: Vec<String> = backend::devices().into_iter().map(|d| d.name).collect();
                return Err(Error::Device(format!(
                    "no device named {name:?} (devices: {})",
                    known.join(", ")
                )));
            };
            list.push(dev);
        }
        self.devices = Some(list);
        Ok(self)
    }

    /// Overrides a metadata value of the file while loading (llama.cpp's
    /// `--override-kv`). The override applies where llama.cpp reads the key with
    /// the same type; a key it reads with another type keeps the file's value
    /// (llama.cpp logs a warning). Setting a key twice keeps the last value.
    ///
    /// Keys and string values hold at most [`KV_OVERRIDE_MAX_LEN`] bytes and no
    /// NUL; the key must not be empty. Overriding shape keys (`block_count`,
    /// `embedding_length`, ...) makes tensor checks fail, which is an error.
    pub fn kv_override(mut self, key: &str, value: KvOverride) -> Result<Self> {
        if key.is_empty() {
            // An empty key is the array's terminator in C.
            return Err(Error::OutOfRange {
                what: "override key length",
                value: 0,
                expected: "at least 1 byte".into(),
            });
        }
        check_c_array(key, "override key length")?;
        if let KvOverride::Str(s) = &value {
            check_c_array(s, "override string length")?;
        }
        // llama.cpp keeps the first of equal keys; replace so the last call wins.
        match self.kv_overrides.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.kv_overrides.push((key.to_string(), value)),
        }
        Ok(self)
    }

    /// Puts the tensors whose names match `pattern` (an ECMAScript regular
    /// expression searched in the name, e.g. `ffn_(up|down|gate)_exps` for MoE
    /// experts) into `device`'s memory by name (`CUDA0`, ...), or into host memory
    /// with `None` (llama.cpp's `--override-tensor PATTERN=CPU`, `--cpu-moe`). The
    /// first matching override wins. An invalid expression makes the load fail.
    ///
    /// ```
    /// let p = llamacpp::ModelParams::default().tensor_buffer_override("_exps", None)?;
    /// assert!(llamacpp::ModelParams::default().tensor_buffer_override("x", Some("NoSuchGPU")).is_err());
    /// # let _ = p;
    /// # Ok::<(), llamacpp::Error>(())
    /// ```
    pub fn tensor_buffer_override(mut self, pattern: &str, device: Option<&str>) -> Result<Self> {
        backend::init();
        let max = max_tensor_buft_overrides();
        if self.buft_overrides.len() >= max {
            return Err(Error::OutOfRange {
                what: "tensor buffer overrides",
                value: self.buft_overrides.len() as i64 + 1,
                expected: format!("<= llama_max_tensor_buft_overrides() = {max}"),
            });
        }
        let pattern = crate::error::c_string(pattern)?;
        let buft = match device {
            None => std::ptr::null_mut(),
            Some(name) => {
                let c = crate::error::c_string(name)?;
                let Some(dev) = RawDevice::by_name(&c) else {
                    return Err(Error::Device(format!("no device named {name:?}")));
                };
                // Its default buffer type lives as long as the process.
                dev.buffer_type()
            }
        };
        self.buft_overrides.push((pattern, buft));
        Ok(self)
    }

    /// How the weights are read.
    pub fn load_mode(mut self, mode: LoadMode) -> Self {
        self.raw.load_mode = match mode {
            LoadMode::Auto => sys::LLAMA_LOAD_MODE_AUTO,
            LoadMode::Read => sys::LLAMA_LOAD_MODE_NONE,
            LoadMode::Mmap => sys::LLAMA_LOAD_MODE_MMAP,
            LoadMode::Mlock => sys::LLAMA_LOAD_MODE_MLOCK,
            LoadMode::MmapMlock => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
            LoadMode::DirectIo => sys::LLAMA_LOAD_MODE_DIRECT_IO,
        };
        self
    }

    /// Memory-map the file (`true`) or read it (`false`).
    pub fn mmap(self, on: bool) -> Self {
        self.load_mode(if on { LoadMode::Mmap } else { LoadMode::Read })
    }

    /// Memory-map and lock the model in RAM.
    pub fn mlock(self) -> Self {
        self.load_mode(LoadMode::MmapMlock)
    }

    /// Read the weights with direct I/O (bypassing the page cache) where supported.
    pub fn direct_io(self) -> Self {
        self.load_mode(LoadMode::DirectIo)
    }

    /// On-demand reading of tensors the architecture marks as lazy.
    pub fn lazy_mode(mut self, mode: LazyMode) -> Self {
        self.raw.lazy_mode = match mode {
            LazyMode::Off => sys::LLAMA_LAZY_MODE_OFF,
            LazyMode::Auto => sys::LLAMA_LAZY_MODE_AUTO,
            LazyMode::On => sys::LLAMA_LAZY_MODE_ON,
        };
        self
    }

    /// Load only the vocabulary (no weights): tokenizer work without the memory.
    pub fn vocab_only(mut self, on: bool) -> Self {
        self.raw.vocab_only = on;
        self
    }

    /// Validate tensor data (NaN/Inf) while loading.
    pub fn check_tensors(mut self, on: bool) -> Self {
        self.raw.check_tensors = on;
        self
    }

    /// Allow weight repacking into extra buffer types (default on).
    pub fn extra_buffer_types(mut self, on: bool) -> Self {
        self.raw.use_extra_bufts = on;
        self
    }

    /// Bypass the host buffer so extra (repacking) buffer types can be used with offload.
    pub fn no_host(mut self, on: bool) -> Self {
        self.raw.no_host = on;
        self
    }

    /// Load multi-token-prediction layers where the model has them.
    pub fn load_mtp(mut self, on: bool) -> Self {
        self.raw.load_mtp = on;
        self
    }

    /// Called with the load progress in `[0, 1]`; returning `false` cancels the load.
    pub fn progress(mut self, f: impl FnMut(f32) -> bool + Send + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// The value of an integer override of `key`, if one is set.
    pub(crate) fn int_override(&self, key: &str) -> Option<i64> {
        match self.override_value(key)? {
            KvOverride::Int(v) => Some(v),
            _ => None,
        }
    }

    /// The override of `key`, of whatever type, if one is set (for the pre-load checks).
    pub(crate) fn override_value(&self, key: &str) -> Option<KvOverride> {
        let (_, value) = self.kv_overrides.iter().find(|(k, _)| k == key)?;
        Some(value.clone())
    }

    /// The C struct with its array pointers aimed at arrays `self` owns (the device list
    /// NULL-terminated, the overrides ended by an empty key, the tensor overrides by a
    /// NULL pattern; the patterns are owned `CString`s). Valid while `self` is neither
    /// moved out of nor changed, which `raw::model::LoadParams` ensures by borrowing it.
    pub(crate) fn raw_for_load(&mut self) -> sys::llama_model_params {
        let mut raw = self.raw;
        if let Some(list) = self.devices.as_ref() {
            // Tensor parallelism over a host-memory device (the CPU) crashes in the
            // first decode; llama.cpp's own device selection leaves such devices out,
            // and so does this list. One left empty makes the load fail cleanly.
            let tensor = raw.split_mode == sys::LLAMA_SPLIT_MODE_TENSOR;
            let host = tensor.then(cpu_buffer_type);
            self.device_array = list
                .iter()
                .filter(|d| host.is_none_or(|h| d.buffer_type() != h))
                .map(|d| d.as_ptr())
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect();
            raw.devices = self.device_array.as_mut_ptr();
        }
        if let Some(split) = self.tensor_split.as_ref() {
            raw.tensor_split = split.as_ptr();
        }
        if !self.kv_overrides.is_empty() {
            // The default (all-zero) entry's empty key ends the list.
            self.kv_override_array = self
                .kv_overrides
                .iter()
                .map(|(k, v)| c_kv_override(k, v))
                .chain(std::iter::once(sys::llama_model_kv_override::default()))
                .collect();
            raw.kv_overrides = self.kv_override_array.as_ptr();
        }
        if !self.buft_overrides.is_empty() {
            let cpu = cpu_buffer_type();
            self.buft_override_array = self
                .buft_overrides
                .iter()
                .map(|(p, b)| sys::llama_model_tensor_buft_override {
                    pattern: p.as_ptr(),
                    buft: if b.is_null() { cpu } else { *b },
                })
                .chain(std::iter::once(sys::llama_model_tensor_buft_override {
                    pattern: std::ptr::null(),
                    buft: std::ptr::null_mut(),
                }))
                .collect();
            raw.tensor_buft_overrides = self.buft_override_array.as_ptr();
        }
        raw
    }
}
