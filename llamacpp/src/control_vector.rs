//! Control vectors: a per-layer direction added to the residual stream.
//!
//! llama.cpp takes one `n_embd` vector per layer starting at layer 1 (layer 0
//! never has one) and a layer range. It checks only `n_embd`; a buffer shorter
//! than all layers leaves the uncovered layers with whatever an earlier call
//! stored, so here the data is zero-padded to every layer and the layer range,
//! length and values are checked first.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::raw::adapter;

impl Context<'_> {
    /// Applies a control vector: `data` holds `k * n_embd` floats, the
    /// vectors of layers `1..=k` (`k` at most `n_layer - 1`); layers past `k`
    /// get zero. Only layers `il_start..=il_end` (within `1..n_layer`) are
    /// changed. Replaces any earlier control vector.
    ///
    /// ```no_run
    /// # use llamacpp::{Context, ContextParams, Model, ModelParams};
    /// # fn main() -> llamacpp::Result<()> {
    /// let model = Model::load("model.gguf", ModelParams::default())?;
    /// let mut ctx = Context::new(&model, ContextParams::default())?;
    /// let n_embd = model.n_embd() as usize;
    /// let direction = vec![0.1f32; n_embd * (model.n_layer() as usize - 1)];
    /// ctx.set_control_vector(&direction, model.n_embd(), 1, model.n_layer() - 1)?;
    /// // ... decode steered ...
    /// ctx.clear_control_vector();
    /// # Ok(()) }
    /// ```
    pub fn set_control_vector(
        &mut self,
        data: &[f32],
        n_embd: i32,
        il_start: i32,
        il_end: i32,
    ) -> Result<()> {
        let model = self.model();
        let (model_embd, n_layer) = (model.n_embd(), model.n_layer());
        if n_embd != model_embd {
            return Err(Error::OutOfRange {
                what: "control vector n_embd",
                value: i64::from(n_embd),
                expected: format!("the model's n_embd = {model_embd}"),
            });
        }
        let n_embd = n_embd as usize;
        let layers = (n_layer.max(1) - 1) as usize;
        if layers == 0 {
            return Err(Error::ControlVector(
                "a one-layer model has no layer a control vector applies to",
            ));
        }
        if data.is_empty() || !data.len().is_multiple_of(n_embd) || data.len() / n_embd > layers {
            return Err(Error::OutOfRange {
                what: "control vector length",
                value: data.len() as i64,
                expected: format!("k * {n_embd} for k in 1..={layers}"),
            });
        }
        if il_start < 1 || il_end >= n_layer || il_start > il_end {
            return Err(Error::OutOfRange {
                what: "control vector layer range start",
                value: i64::from(il_start),
                expected: format!("1 <= il_start <= il_end <= {}", n_layer - 1),
            });
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::ControlVector("its values must be finite"));
        }
        let mut full = data.to_vec();
        full.resize(n_embd * layers, 0.0);
        // `full` covers every layer 1..n_layer; n_embd matches the model and the layer
        // range is inside the model.
        let rc = adapter::set_control_vector(self, Some(&full), n_embd as i32, il_start, il_end);
        if rc != 0 {
            return Err(Error::ControlVector("llama.cpp could not allocate it"));
        }
        Ok(())
    }

    /// Removes the control vector (its buffers stay allocated for the next one).
    pub fn clear_control_vector(&mut self) {
        // No data means "clear"; the other arguments are not read then.
        adapter::set_control_vector(self, None, 0, 0, 0);
    }
}
