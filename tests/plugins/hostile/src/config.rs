//! Lenient access to the `with:` block: `${{ }}` templates expand to
//! strings, so numbers may arrive as `"20000"`.

use serde_json::Value;

/// The stage's `with:` object.
pub struct With<'a>(pub &'a Value);

impl With<'_> {
    /// A string (numbers and booleans written as text), if the key is set.
    pub fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// A whole number >= 0 (from a number or a numeric string), or `default`.
    pub fn count(&self, key: &str, default: u64) -> u64 {
        match self.0.get(key) {
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .unwrap_or(default),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(default),
            _ => default,
        }
    }

    /// A boolean (`true`, or the string `"true"`), else false.
    pub fn flag(&self, key: &str) -> bool {
        match self.0.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }
}
