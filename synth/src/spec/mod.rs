//! What a model is: metadata and the list of tensors (name, shape, type,
//! distribution), built from [`SynthOptions`] by one module per architecture.
//!
//! Shapes are in ggml order (`ne[0]` first: the input dimension of a weight).
//! The tensor names, shapes and metadata keys follow the pinned llama.cpp's
//! `load_arch_hparams` / `load_arch_tensors` of each architecture
//! (`src/models/<arch>.cpp`) and `src/llama-arch.cpp`.

mod blocks;
pub mod gpt2;
pub mod llama;
mod options;
mod preset;
pub mod qwen35moe;
pub mod qwen3moe;
pub mod qwen3next;

pub use options::{DEFAULT_SEED, LinearLayout, SynthOptions};
pub use preset::Preset;

use crate::error::{Result, SynthError};
use crate::init::Init;
use llamacpp_ggml::TensorType;
use llamacpp_ggml::gguf::{MetaValue, Metadata, TensorInfo};

use crate::types::FileType;
use crate::vocab::{self, BpeVocab, Vocab};

/// One tensor of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// GGUF tensor name (`blk.3.attn_q.weight`).
    pub name: String,
    /// Shape in ggml order (`ne[0]` first), 1 to 4 dimensions.
    pub shape: Vec<u64>,
    /// Storage type.
    pub ty: TensorType,
    /// Value distribution.
    pub init: Init,
}

impl TensorSpec {
    /// The tensor info ggml's GGUF writer takes.
    #[must_use]
    pub fn info(&self) -> TensorInfo<'_> {
        TensorInfo {
            name: &self.name,
            ty: self.ty,
            shape: &self.shape,
        }
    }

    /// Number of elements.
    #[must_use]
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Elements per row (`ne[0]`).
    #[must_use]
    pub fn row_len(&self) -> u64 {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Number of rows (all dimensions but the first).
    #[must_use]
    pub fn n_rows(&self) -> u64 {
        self.shape.iter().skip(1).product()
    }

    /// Bytes of data, unpadded (what `ggml_nbytes` reports).
    #[must_use]
    pub fn n_bytes(&self) -> u64 {
        self.n_rows() * self.ty.row_bytes(self.row_len())
    }
}

/// A complete model description: metadata plus tensors, ready to write.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// `general.architecture`.
    pub arch: String,
    /// Number of (trunk) layers.
    pub n_layer: u32,
    /// Embedding width.
    pub n_embd: u64,
    /// Vocabulary size (rows of `token_embd` and `output`).
    pub n_vocab: u32,
    /// The requested file type.
    pub ftype: FileType,
    /// Seed all tensor values derive from.
    pub seed: u64,
    /// Key/value metadata.
    pub metadata: Metadata,
    /// Tensors, in file order.
    pub tensors: Vec<TensorSpec>,
}

impl ModelSpec {
    /// Every tensor's info, in file order, for ggml's GGUF writer.
    #[must_use]
    pub fn tensor_infos(&self) -> Vec<TensorInfo<'_>> {
        self.tensors.iter().map(TensorSpec::info).collect()
    }

    /// Describe the model `opts` asks for.
    ///
    /// # Errors
    /// [`SynthError::InvalidOptions`] for combinations the architecture does not
    /// have (a legacy layout outside qwen3next, fused experts for qwen3moe or
    /// llama, zero layers, a vocabulary below the minimum, ...).
    pub fn from_options(opts: &SynthOptions) -> Result<Self> {
        opts.validate()?;
        match opts.preset {
            Preset::Qwen3Next80bA3b => {
                qwen3next::build(&qwen3next::Qwen3NextParams::qwen3next_80b_a3b(), opts)
            }
            Preset::Qwen3NextTiny => qwen3next::build(&qwen3next::Qwen3NextParams::tiny(), opts),
            Preset::Qwen35MoeTiny => qwen35moe::build(&qwen35moe::Qwen35MoeParams::tiny(), opts),
            Preset::Qwen3MoeTiny => qwen3moe::build(&qwen3moe::Qwen3MoeParams::tiny(), opts),
            Preset::Qwen3Moe30bA3b => {
                qwen3moe::build(&qwen3moe::Qwen3MoeParams::qwen3moe_30b_a3b(), opts)
            }
            Preset::LlamaTiny => llama::build(&llama::LlamaParams::tiny(), opts),
            Preset::Llama3_8b => llama::build(&llama::LlamaParams::llama3_8b(), opts),
            Preset::Gpt2Tiny => gpt2::build(&gpt2::Gpt2Params::tiny(), opts),
        }
    }

    /// Total number of parameters (what `llama_model_n_params` reports).
    #[must_use]
    pub fn n_params(&self) -> u64 {
        self.tensors.iter().map(TensorSpec::n_elements).sum()
    }

    /// Total tensor bytes, unpadded (what `llama_model_size` reports).
    #[must_use]
    pub fn data_bytes(&self) -> u64 {
        self.tensors.iter().map(TensorSpec::n_bytes).sum()
    }

    /// The tensor called `name`.
    #[must_use]
    pub fn tensor(&self, name: &str) -> Option<&TensorSpec> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// The storage type real conversions give a tensor, for file type `ftype`.
///
/// F32 for what `convert_hf_to_gguf.py` and `llama-quantize` never convert:
/// tensors with fewer than two dimensions, names not ending in `.weight`
/// (biases, `ssm_a`), norms (`*_norm.weight`), the MoE router
/// (`ffn_gate_inp.weight`) and `ssm_conv1d`. Everything else gets
/// [`FileType::resolve`] of its row length, which applies llama-quantize's
/// block-size fallback (Q4_K → Q5_0 → F16). All other matrices, `token_embd`
/// and `output` included, get the requested type, as `llama-quantize --pure` does.
#[must_use]
pub fn storage_type(name: &str, shape: &[u64], ftype: FileType) -> TensorType {
    let keep_f32 = shape.len() < 2
        || !name.ends_with(".weight")
        || name.ends_with("_norm.weight")
        || name.contains("ffn_gate_inp.weight")
        || name.contains("ssm_conv1d");
    if keep_f32 {
        TensorType::F32
    } else {
        ftype.resolve(shape[0])
    }
}

/// `blk.<il>.<suffix>`.
pub(crate) fn blk(il: u32, suffix: &str) -> String {
    format!("blk.{il}.{suffix}")
}

/// Tokenizer choices of an architecture.
pub(crate) struct TokenizerStyle {
    /// `tokenizer.ggml.pre`.
    pub pre: &'static str,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: bool,
}

/// Collects metadata and tensors while an architecture module describes a model.
pub(crate) struct Builder {
    arch: &'static str,
    ftype: FileType,
    seed: u64,
    n_vocab: u32,
    meta: Metadata,
    tensors: Vec<TensorSpec>,
}

/// Standard deviation of the noise on norm weights around 1.
const NORM_NOISE: f32 = 0.02;

impl Builder {
    /// Start a model of `arch`: general keys and the tokenizer.
    /// `default_vocab` is the preset's vocabulary size, used with [`Vocab::Bpe`].
    pub fn new(
        arch: &'static str,
        opts: &SynthOptions,
        default_vocab: u32,
        tok: &TokenizerStyle,
    ) -> Result<Self> {
        let mut meta = Metadata::default();
        meta.set("general.architecture", MetaValue::Str(arch.into()));
        meta.set(
            "general.name",
            MetaValue::Str(format!("{} (synthetic, seed {})", opts.preset, opts.seed)),
        );
        meta.set(
            "general.file_type",
            MetaValue::U32(opts.ftype.llama_ftype()),
        );
        meta.set(
            "general.quantization_version",
            MetaValue::U32(llamacpp_sys::GGML_QNT_VERSION),
        );
        let n_vocab = match opts.vocab {
            Vocab::Bpe => {
                let v = BpeVocab::build_with_controls(default_vocab, &opts.extra_control_tokens)?;
                meta.extend(match &opts.chat_template {
                    Some(t) => v.metadata_with_template(tok.pre, tok.add_bos, t),
                    None => v.metadata(tok.pre, tok.add_bos),
                });
                default_vocab
            }
            Vocab::None { size } => {
                meta.extend(vocab::no_vocab_metadata());
                size
            }
        };
        let mut b = Self {
            arch,
            ftype: opts.ftype,
            seed: opts.seed,
            n_vocab,
            meta,
            tensors: Vec::new(),
        };
        // Read by the no_vocab path (and by llama's model-type guess); a real
        // conversion writes it too.
        b.u32("vocab_size", u64::from(n_vocab))?;
        Ok(b)
    }

    /// The vocabulary size in effect.
    pub fn n_vocab(&self) -> u64 {
        u64::from(self.n_vocab)
    }

    /// Set `<arch>.<suffix>` to a `u32`.
    pub fn u32(&mut self, suffix: &str, v: u64) -> Result<()> {
        let v = u32::try_from(v).map_err(|_| {
            SynthError::InvalidOptions(format!("{}.{suffix} = {v} does not fit a u32", self.arch))
        })?;
        self.meta
            .set(format!("{}.{suffix}", self.arch), MetaValue::U32(v));
        Ok(())
    }

    /// Set `<arch>.<suffix>` to an `f32`.
    pub fn f32(&mut self, suffix: &str, v: f32) {
        self.meta
            .set(format!("{}.{suffix}", self.arch), MetaValue::F32(v));
    }

    /// Set `<arch>.<suffix>` to any value.
    pub fn set(&mut self, suffix: &str, v: MetaValue) {
        self.meta.set(format!("{}.{suffix}", self.arch), v);
    }

    /// Add a tensor with the storage type real conversions give it.
    pub fn tensor(&mut self, name: String, shape: &[u64], init: Init) {
        let ty = storage_type(&name, shape, self.ftype);
        self.tensors.push(TensorSpec {
            name,
            shape: shape.to_vec(),
            ty,
            init,
        });
    }

    /// A weight matrix, `N(0, 1/sqrt(ne0))`.
    pub fn matrix(&mut self, name: String, shape: &[u64]) {
        let init = Init::fan_in(shape[0]);
        self.tensor(name, shape, init);
    }

    /// A norm weight of length `n`, near 1.
    pub fn norm(&mut self, name: String, n: u64) {
        self.tensor(name, &[n], Init::NearOne { noise: NORM_NOISE });
    }

    /// `token_embd`, `output_norm` and an untied `output`.
    pub fn embeddings(&mut self, n_embd: u64) {
        let n_vocab = self.n_vocab();
        // Unit scale keeps the token's identity visible next to the layers' outputs.
        self.tensor(
            "token_embd.weight".into(),
            &[n_embd, n_vocab],
            Init::Normal { std: 1.0 },
        );
        self.norm("output_norm.weight".into(), n_embd);
        self.matrix("output.weight".into(), &[n_embd, n_vocab]);
    }

    /// The finished spec.
    pub fn finish(self, n_layer: u32, n_embd: u64) -> ModelSpec {
        ModelSpec {
            arch: self.arch.to_owned(),
            n_layer,
            n_embd,
            n_vocab: self.n_vocab,
            ftype: self.ftype,
            seed: self.seed,
            metadata: self.meta,
            tensors: self.tensors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys llama.cpp's loader reads for each architecture whose absence would
    /// either abort loading or silently give a wrong default (see each arch
    /// module's documentation).
    fn keys_read(arch: &str) -> Vec<&'static str> {
        let common = vec![
            "context_length",
            "embedding_length",
            "block_count",
            "attention.head_count",
            "attention.head_count_kv",
            "attention.layer_norm_rms_epsilon",
            "rope.freq_base",
            "rope.dimension_count",
            "vocab_size",
        ];
        let moe = [
            "expert_count",
            "expert_used_count",
            "expert_feed_forward_length",
        ];
        let hybrid = [
            "attention.key_length",
            "attention.value_length",
            "expert_shared_feed_forward_length",
            "full_attention_interval",
            "ssm.conv_kernel",
            "ssm.inner_size",
            "ssm.state_size",
            "ssm.time_step_rank",
            "ssm.group_count",
        ];
        if arch == "gpt2" {
            return vec![
                "context_length",
                "embedding_length",
                "block_count",
                "feed_forward_length",
                "attention.head_count",
                "attention.layer_norm_epsilon",
                "vocab_size",
            ];
        }
        let mut keys = common;
        match arch {
            "qwen3next" => keys.extend(moe.iter().chain(&hybrid)),
            "qwen35moe" => keys.extend(
                moe.iter()
                    .chain(&hybrid)
                    .chain(&["rope.dimension_sections"]),
            ),
            "qwen3moe" => keys.extend(
                moe.iter()
                    .chain(&["attention.key_length", "attention.value_length"]),
            ),
            _ => {}
        }
        keys
    }

    #[test]
    fn every_key_the_loader_reads_is_set() {
        for preset in Preset::ALL {
            let spec = ModelSpec::from_options(&SynthOptions::new(preset)).unwrap();
            for key in keys_read(preset.arch()) {
                let full = format!("{}.{key}", preset.arch());
                assert!(
                    spec.metadata.get(&full).is_some(),
                    "{preset}: {full} missing"
                );
            }
            for key in [
                "general.architecture",
                "general.file_type",
                "tokenizer.ggml.model",
                "tokenizer.ggml.pre",
            ] {
                assert!(spec.metadata.get(key).is_some(), "{preset}: {key} missing");
            }
        }
    }

    #[test]
    fn storage_rules_match_conversions() {
        let q = FileType::Q4_0;
        assert_eq!(
            storage_type("blk.0.attn_norm.weight", &[256], q),
            TensorType::F32
        );
        assert_eq!(
            storage_type("blk.0.attn_q_norm.weight", &[64], q),
            TensorType::F32
        );
        assert_eq!(storage_type("blk.0.ssm_a", &[32], q), TensorType::F32);
        assert_eq!(storage_type("blk.0.ssm_dt.bias", &[32], q), TensorType::F32);
        assert_eq!(
            storage_type("blk.0.ssm_conv1d.weight", &[4, 8192], q),
            TensorType::F32
        );
        assert_eq!(
            storage_type("blk.0.ffn_gate_inp.weight", &[2048, 512], q),
            TensorType::F32
        );
        assert_eq!(
            storage_type("blk.0.ffn_gate_inp_shexp.weight", &[2048], q),
            TensorType::F32
        );
        assert_eq!(
            storage_type("blk.0.ffn_down_exps.weight", &[512, 2048, 512], q),
            TensorType::Q4_0
        );
        assert_eq!(
            storage_type("output.weight", &[2048, 151_936], q),
            TensorType::Q4_0
        );
        assert_eq!(
            storage_type("blk.0.ffn_down_exps.weight", &[64, 256, 16], FileType::Q4_K),
            TensorType::Q5_0
        );
    }
}
