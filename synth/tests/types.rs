//! Tensors keep the types real conversions give them, with llama-quantize's block-size
//! fallback (read back from the file; that every type loads and decodes is tested in
//! `llamacpp/tests/synth_types.rs`, on the safe API).

use llamacpp_synth::{FileType, Preset, SynthOptions, TensorType, cached_model, read_layout};

#[test]
fn small_tensors_stay_f32_and_odd_rows_fall_back() {
    let mut o = SynthOptions::new(Preset::Qwen3NextTiny);
    o.ftype = FileType::Q4_K;
    let layout = read_layout(&cached_model(&o).unwrap()).unwrap();
    let t = |n: &str| layout.tensor_type(n);
    assert_eq!(t("blk.0.attn_norm.weight"), Some(TensorType::F32));
    assert_eq!(t("blk.0.ssm_a"), Some(TensorType::F32));
    assert_eq!(t("blk.0.ssm_dt.bias"), Some(TensorType::F32));
    assert_eq!(t("blk.0.ssm_conv1d.weight"), Some(TensorType::F32));
    assert_eq!(t("blk.0.ssm_norm.weight"), Some(TensorType::F32));
    assert_eq!(t("blk.0.ffn_gate_inp.weight"), Some(TensorType::F32));
    assert_eq!(t("blk.0.ffn_gate_inp_shexp.weight"), Some(TensorType::F32));
    assert_eq!(t("blk.3.attn_q_norm.weight"), Some(TensorType::F32));
    // rows of 256: Q4_K; rows of 64 (expert FFN): Q5_0, as llama-quantize falls back
    assert_eq!(t("blk.0.attn_qkv.weight"), Some(TensorType::Q4_K));
    assert_eq!(t("output.weight"), Some(TensorType::Q4_K));
    assert_eq!(t("blk.0.ffn_down_exps.weight"), Some(TensorType::Q5_0));
    assert_eq!(t("blk.0.ffn_down_shexp.weight"), Some(TensorType::Q5_0));
    assert_eq!(layout.arch.as_deref(), Some("qwen3next"));
    assert_eq!(layout.data_offset % layout.alignment, 0);
}
