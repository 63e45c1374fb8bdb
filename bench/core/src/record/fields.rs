//! The field table (names, order, types) and each field's text as upstream writes it.

use serde_json::{Map, Value};

use super::TestResult;
use super::cfmt::fixed6;

/// How a field is typed in JSON and SQL (upstream's `field_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// JSON string, SQL `TEXT`.
    String,
    /// JSON `true`/`false`, SQL `INTEGER` (`0`/`1`).
    Bool,
    /// JSON number, SQL `INTEGER`.
    Int,
    /// JSON number, SQL `REAL`.
    Float,
}

impl FieldType {
    /// The SQL column type.
    pub fn sql(self) -> &'static str {
        match self {
            FieldType::String => "TEXT",
            FieldType::Bool | FieldType::Int => "INTEGER",
            FieldType::Float => "REAL",
        }
    }
}

/// Every field in upstream's order, with its type. `samples_ns` and
/// `samples_ts` (JSON and JSONL only) come after these.
pub const FIELDS: [(&str, FieldType); 42] = {
    use FieldType::{Bool as B, Float as F, Int as I, String as S};
    [
        ("build_commit", S),
        ("build_number", I),
        ("cpu_info", S),
        ("gpu_info", S),
        ("backends", S),
        ("model_filename", S),
        ("model_type", S),
        ("model_size", I),
        ("model_n_params", I),
        ("n_batch", I),
        ("n_ubatch", I),
        ("n_threads", I),
        ("cpu_mask", S),
        ("cpu_strict", B),
        ("poll", I),
        ("type_k", S),
        ("type_v", S),
        ("n_gpu_layers", I),
        ("n_cpu_moe", I),
        ("split_mode", S),
        ("main_gpu", I),
        ("no_kv_offload", B),
        ("flash_attn", I),
        ("devices", S),
        ("tensor_split", S),
        ("tensor_buft_overrides", S),
        ("load_mode", S),
        ("lazy_mode", S),
        ("embeddings", B),
        ("no_op_offload", I),
        ("no_host", B),
        ("repack", B),
        ("fit_target", I),
        ("fit_min_ctx", I),
        ("n_prompt", I),
        ("n_gen", I),
        ("n_depth", I),
        ("test_time", S),
        ("avg_ns", I),
        ("stddev_ns", I),
        ("avg_ts", F),
        ("stddev_ts", F),
    ]
};

/// The type of field `name`, if it is one of [`FIELDS`].
pub fn field_type(name: &str) -> Option<FieldType> {
    FIELDS.iter().find(|(n, _)| *n == name).map(|&(_, t)| t)
}

/// `0`/`1`, as C++'s `std::to_string(bool)`.
fn flag(b: bool) -> String {
    u8::from(b).to_string()
}

impl TestResult {
    /// The text of each field in [`FIELDS`] order, as upstream's `get_values`
    /// writes it: booleans `0`/`1`, rates with six decimals.
    pub fn field_values(&self) -> Vec<String> {
        vec![
            self.build_commit.clone(),
            self.build_number.to_string(),
            self.cpu_info.clone(),
            self.gpu_info.clone(),
            self.backends.clone(),
            self.model_filename.clone(),
            self.model_type.clone(),
            self.model_size.to_string(),
            self.model_n_params.to_string(),
            self.n_batch.to_string(),
            self.n_ubatch.to_string(),
            self.n_threads.to_string(),
            self.cpu_mask.clone(),
            flag(self.cpu_strict),
            self.poll.to_string(),
            self.type_k.clone(),
            self.type_v.clone(),
            self.n_gpu_layers.to_string(),
            self.n_cpu_moe.to_string(),
            self.split_mode.clone(),
            self.main_gpu.to_string(),
            flag(self.no_kv_offload),
            self.flash_attn.to_string(),
            self.devices.clone(),
            self.tensor_split.clone(),
            self.tensor_buft_overrides.clone(),
            self.load_mode.clone(),
            self.lazy_mode.clone(),
            flag(self.embeddings),
            flag(self.no_op_offload),
            flag(self.no_host),
            flag(self.repack),
            self.fit_target.to_string(),
            self.fit_min_ctx.to_string(),
            self.n_prompt.to_string(),
            self.n_gen.to_string(),
            self.n_depth.to_string(),
            self.test_time.clone(),
            self.avg_ns.to_string(),
            self.stddev_ns.to_string(),
            fixed6(self.avg_ts),
            fixed6(self.stddev_ts),
        ]
    }

    /// The text of one field by name (`None` for a name not in [`FIELDS`]).
    pub fn field_value(&self, name: &str) -> Option<String> {
        let i = FIELDS.iter().position(|(n, _)| *n == name)?;
        self.field_values().into_iter().nth(i)
    }

    /// Builds a result from `(name, text)` pairs, as CSV, SQL and markdown give
    /// them. Unknown names are ignored and missing fields take their default;
    /// a value that does not parse as its field's type is an error naming it.
    pub fn from_text_fields<'a, I>(fields: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let map: Map<String, Value> = fields
            .into_iter()
            .filter(|(name, _)| field_type(name).is_some())
            .map(|(name, text)| (name.to_owned(), Value::String(text.to_owned())))
            .collect();
        serde_json::from_value(Value::Object(map.clone())).map_err(|e| {
            // serde does not say which field failed: find it by trying each alone.
            let bad = map.iter().find(|(name, value)| {
                let one = Map::from_iter([((*name).clone(), (*value).clone())]);
                serde_json::from_value::<TestResult>(Value::Object(one)).is_err()
            });
            match bad {
                Some((name, _)) => format!("field {name}: {e}"),
                None => e.to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_table_matches_the_struct() {
        let r = TestResult::default();
        assert_eq!(r.field_values().len(), FIELDS.len());
        // serde writes the struct fields in declaration order: FIELDS, then samples.
        let json = serde_json::to_string(&r).unwrap();
        let mut want: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
        want.extend(["samples_ns", "samples_ts"]);
        let positions: Vec<usize> = want
            .iter()
            .map(|n| json.find(&format!("\"{n}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
        assert_eq!(json.matches("\":").count(), want.len());
    }

    #[test]
    fn text_fields_parse_and_reject_bad_numbers() {
        let r = TestResult::from_text_fields([
            ("n_prompt", "512"),
            ("load_mode", "mmap"),
            ("avg_ts", "7100.002165"),
            ("flash_attn", "-1"),
            ("unknown_field", "whatever"),
        ])
        .unwrap();
        assert_eq!(r.n_prompt, 512);
        assert_eq!(r.load_mode, "mmap");
        assert_eq!(r.avg_ts, 7100.002165);
        assert_eq!(r.flash_attn, -1);
        let err = TestResult::from_text_fields([("n_gen", "lots")]).unwrap_err();
        assert!(err.contains("lots") && err.contains("n_gen"), "{err}");
    }
}
