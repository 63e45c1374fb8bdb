//! GGUF key/value metadata, in the order it is written.

/// One GGUF metadata value, typed exactly as llama.cpp's loader expects it
/// (the loader rejects e.g. an `i32` where it reads a `u32`).
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// `GGUF_TYPE_UINT32`.
    U32(u32),
    /// `GGUF_TYPE_INT32`.
    I32(i32),
    /// `GGUF_TYPE_FLOAT32`.
    F32(f32),
    /// `GGUF_TYPE_BOOL`.
    Bool(bool),
    /// `GGUF_TYPE_STRING`.
    Str(String),
    /// Array of `GGUF_TYPE_INT32`.
    ArrI32(Vec<i32>),
    /// Array of `GGUF_TYPE_UINT32` (e.g. aLoRA invocation tokens).
    ArrU32(Vec<u32>),
    /// Array of `GGUF_TYPE_FLOAT32` (e.g. SentencePiece token scores).
    ArrF32(Vec<f32>),
    /// Array of `GGUF_TYPE_STRING`.
    ArrStr(Vec<String>),
}

/// Ordered metadata; setting a key twice replaces the first value in place.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, MetaValue)>,
}

impl Metadata {
    /// Set `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: MetaValue) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Remove `key`, returning its value if it was set.
    pub fn remove(&mut self, key: &str) -> Option<MetaValue> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// The value of `key`, if set.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `key` as a `u32`, if it is one.
    #[must_use]
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        match self.get(key) {
            Some(MetaValue::U32(v)) => Some(*v),
            _ => None,
        }
    }

    /// `key` as a string, if it is one.
    #[must_use]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(MetaValue::Str(v)) => Some(v),
            _ => None,
        }
    }

    /// All entries, in order.
    #[must_use]
    pub fn entries(&self) -> &[(String, MetaValue)] {
        &self.entries
    }

    /// Add every entry of `other` (replacing keys already set).
    pub fn extend(&mut self, other: Metadata) {
        for (k, v) in other.entries {
            self.set(k, v);
        }
    }
}
