//! The typed values of the parameters that are not plain numbers.
//!
//! Each type knows its command-line spelling and the text upstream writes for it
//! in results. None knows a C value: the app's `to_llama` converts them into the
//! safe crate's types, which own the mapping to llama.cpp.

use std::fmt;

use super::lists::split_list;

/// Defines a string-valued enum with a fixed set of spellings.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order upstream lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name upstream prints and accepts.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// Parses one value, with an error that lists the accepted ones.
            pub fn parse(s: &str) -> Result<Self, String> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        concat!("invalid ", $what, " '{}' (expected one of: {})"),
                        other,
                        Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named_enum! {
    /// A KV cache element type (`-ctk`, `-ctv`); the set upstream accepts.
    CacheType, "cache type" {
        /// `f16` (the default).
        F16 = "f16",
        /// `bf16`.
        Bf16 = "bf16",
        /// `q8_0`.
        Q8_0 = "q8_0",
        /// `q4_0`.
        Q4_0 = "q4_0",
        /// `q4_1`.
        Q4_1 = "q4_1",
        /// `q5_0`.
        Q5_0 = "q5_0",
        /// `q5_1`.
        Q5_1 = "q5_1",
        /// `iq4_nl`.
        Iq4Nl = "iq4_nl",
    }
}

named_enum! {
    /// How a model is split across GPUs (`-sm`); `llama_split_mode`.
    SplitMode, "split mode" {
        /// One GPU.
        None = "none",
        /// Layers and KV across GPUs (the default).
        Layer = "layer",
        /// Rows across GPUs.
        Row = "row",
        /// Tensor parallelism.
        Tensor = "tensor",
    }
}

named_enum! {
    /// How the model file is loaded (`-lm`); `llama_load_mode`.
    LoadMode, "load mode" {
        /// Let llama.cpp decide (the default; it memory-maps).
        Auto = "auto",
        /// Read the file into memory.
        None = "none",
        /// Memory-map the file.
        Mmap = "mmap",
        /// Read and lock in RAM.
        Mlock = "mlock",
        /// Memory-map and lock in RAM.
        MmapMlock = "mmap+mlock",
        /// Direct I/O where available.
        Dio = "dio",
    }
}

named_enum! {
    /// On-demand reading of large tensors (`-lzm`); `llama_lazy_mode`.
    LazyMode, "lazy mode" {
        /// Read the rows of marked tensors on demand.
        On = "on",
        /// Lazy only for marked tensors above 4 GiB (the default).
        Auto = "auto",
        /// Read every tensor up front.
        Off = "off",
    }
}

/// Flash attention setting (`-fa`); `llama_flash_attn_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FlashAttn {
    /// Let llama.cpp decide (the default).
    Auto,
    /// Off.
    Disabled,
    /// On.
    Enabled,
}

impl FlashAttn {
    /// Parses `on|off|auto` and the other spellings upstream's `is_truthy`,
    /// `is_falsey` and `is_autoy` accept.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "on" | "enabled" | "true" | "1" => Ok(FlashAttn::Enabled),
            "off" | "disabled" | "false" | "0" => Ok(FlashAttn::Disabled),
            "auto" | "-1" => Ok(FlashAttn::Auto),
            other => Err(format!(
                "invalid flash attention value '{other}' (expected on, off or auto)"
            )),
        }
    }

    /// What results record: `-1` auto, `0` off, `1` on (upstream writes the C value).
    pub fn result_value(self) -> i32 {
        match self {
            FlashAttn::Auto => -1,
            FlashAttn::Disabled => 0,
            FlashAttn::Enabled => 1,
        }
    }
}

/// NUMA strategy (`--numa`); `ggml_numa_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Numa {
    /// Spread execution evenly over all nodes.
    Distribute,
    /// Only spawn threads on CPUs of the node execution started on.
    Isolate,
    /// Use the CPU map numactl provides.
    Numactl,
}

/// Result format for stdout (`-o`) or stderr (`-oe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum OutputFormat {
    /// Print nothing.
    None,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Markdown table (the default on stdout).
    Md,
    /// SQLite statements (`CREATE TABLE` and one `INSERT` per test).
    Sql,
}

impl OutputFormat {
    /// The name upstream uses (`md`, `csv`, ...).
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::None => "none",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Md => "md",
            OutputFormat::Sql => "sql",
        }
    }

    /// The format a file name implies by its extension (`.md` and `.markdown`
    /// for markdown), if any.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(OutputFormat::Csv),
            "json" => Some(OutputFormat::Json),
            "jsonl" | "ndjson" => Some(OutputFormat::Jsonl),
            "md" | "markdown" => Some(OutputFormat::Md),
            "sql" => Some(OutputFormat::Sql),
            _ => None,
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The devices a test offloads to (`-dev`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Devices {
    /// All available devices (the default).
    #[default]
    Auto,
    /// No device: run on the CPU only.
    None,
    /// These devices, by ggml backend device name (checked by the runner).
    List(Vec<String>),
}

impl Devices {
    /// Parses one combination: `auto`, `none` or `dev0/dev1/...`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("no devices specified".into());
        }
        if s == "auto" {
            return Ok(Devices::Auto);
        }
        if s == "none" {
            return Ok(Devices::None);
        }
        let names: Vec<String> = s.split('/').map(|n| n.trim().to_owned()).collect();
        if names.iter().any(|n| n.is_empty()) {
            return Err(format!("invalid device specification '{s}'"));
        }
        Ok(Devices::List(names))
    }
}

impl fmt::Display for Devices {
    /// Upstream's text: `auto`, `none` or the names joined by `/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Devices::Auto => f.write_str("auto"),
            Devices::None => f.write_str("none"),
            Devices::List(names) => f.write_str(&names.join("/")),
        }
    }
}

/// A tensor split (`-ts`): the share of each device, trailing zeros dropped, so
/// `0` and the default compare equal as upstream's fixed-size arrays do.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Default)]
pub struct TensorSplit(pub Vec<f32>);

impl TensorSplit {
    /// Parses one split: numbers separated by `/` or `;`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        for p in s.split(['/', ';']).filter(|p| !p.is_empty()) {
            let v: f32 = p
                .trim()
                .parse()
                .map_err(|_| format!("invalid tensor split value '{p}' in '{s}'"))?;
            if !v.is_finite() || v < 0.0 {
                return Err(format!("invalid tensor split value '{p}' in '{s}'"));
            }
            parts.push(v);
        }
        while parts.last() == Some(&0.0) {
            parts.pop();
        }
        Ok(TensorSplit(parts))
    }
}

impl fmt::Display for TensorSplit {
    /// Upstream's text: each share as `%.2f` up to the last non-zero one, `/`-joined
    /// (`0.00` when all are zero).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("0.00");
        }
        let parts: Vec<String> = self.0.iter().map(|v| format!("{v:.2}")).collect();
        f.write_str(&parts.join("/"))
    }
}

/// One tensor buffer-type override: tensors whose name matches `pattern` go to
/// buffer type `buffer_type`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorOverride {
    /// Regular expression on tensor names (passed to llama.cpp as is).
    pub pattern: String,
    /// Buffer type name, e.g. `CPU` or `CUDA0` (checked by the runner).
    pub buffer_type: String,
}

/// One `-ot` group: the overrides of one test (empty: none).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TensorOverrides(pub Vec<TensorOverride>);

impl TensorOverrides {
    /// Parses one group: `pattern=buffer_type` items separated by `;`. An empty
    /// group means no overrides, as upstream.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.strip_suffix(';').unwrap_or(s);
        if s.is_empty() {
            return Ok(TensorOverrides::default());
        }
        s.split(';')
            .map(|item| match item.split_once('=') {
                Some((p, b)) if !p.is_empty() && !b.is_empty() => Ok(TensorOverride {
                    pattern: p.to_owned(),
                    buffer_type: b.to_owned(),
                }),
                _ => Err(format!(
                    "invalid tensor override '{item}' (expected <tensor name pattern>=<buffer type>)"
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TensorOverrides)
    }
}

impl fmt::Display for TensorOverrides {
    /// Upstream's text: `none`, or `pattern=buft` items joined by `;`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let items: Vec<String> = self
            .0
            .iter()
            .map(|o| format!("{}={}", o.pattern, o.buffer_type))
            .collect();
        f.write_str(&items.join(";"))
    }
}

/// Parses a comma list of values with `parse`.
pub fn parse_list<T>(s: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    split_list(s)?.into_iter().map(parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_and_print() {
        assert_eq!(CacheType::parse("q8_0").unwrap(), CacheType::Q8_0);
        assert_eq!(CacheType::Q8_0.name(), "q8_0");
        let err = CacheType::parse("q9").unwrap_err();
        assert!(err.contains("f16, bf16"), "{err}");
        assert_eq!(SplitMode::parse("row").unwrap(), SplitMode::Row);
        assert_eq!(LoadMode::parse("mmap+mlock").unwrap(), LoadMode::MmapMlock);
        assert_eq!(FlashAttn::parse("on").unwrap(), FlashAttn::Enabled);
        assert_eq!(FlashAttn::parse("-1").unwrap(), FlashAttn::Auto);
        assert!(FlashAttn::parse("maybe").is_err());
    }

    #[test]
    fn devices() {
        assert_eq!(Devices::parse("auto").unwrap(), Devices::Auto);
        assert_eq!(Devices::parse("none").unwrap().to_string(), "none");
        let d = Devices::parse("CUDA0/CUDA1").unwrap();
        assert_eq!(d.to_string(), "CUDA0/CUDA1");
        assert!(Devices::parse("CUDA0//CUDA1").is_err());
        assert!(Devices::parse(" ").is_err());
    }

    #[test]
    fn tensor_split_text() {
        assert_eq!(TensorSplit::parse("0").unwrap(), TensorSplit::default());
        assert_eq!(TensorSplit::default().to_string(), "0.00");
        assert_eq!(TensorSplit::parse("3/1").unwrap().to_string(), "3.00/1.00");
        assert_eq!(
            TensorSplit::parse("0;1;0").unwrap().to_string(),
            "0.00/1.00"
        );
        assert!(TensorSplit::parse("a/b").is_err());
    }

    #[test]
    fn tensor_overrides_text() {
        assert_eq!(TensorOverrides::parse("").unwrap().to_string(), "none");
        let o = TensorOverrides::parse("blk\\.1\\.=CPU;exps=CUDA0").unwrap();
        assert_eq!(o.0.len(), 2);
        assert_eq!(o.to_string(), "blk\\.1\\.=CPU;exps=CUDA0");
        assert!(TensorOverrides::parse("noequals").is_err());
        assert!(TensorOverrides::parse("a=CPU;;b=CPU").is_err());
    }
}
