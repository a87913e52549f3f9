//! `large-file`: files above `max-file-size` (default 1 MiB). Such a file
//! is reported and not read, so a stray build artifact or data dump cannot
//! exhaust the stage's memory or time.

use super::Hit;
use crate::rules::Rule;

/// A hit when `size` exceeds `max` bytes.
pub fn check(size: u64, max: u64) -> Option<Hit> {
    (size > max).then(|| {
        Hit::file(
            Rule::LargeFile,
            format!(
                "file is {} ({size} bytes), above max-file-size {} ({max} bytes); its content was not checked",
                human(size),
                human(max)
            ),
        )
    })
}

/// `1.5 MiB`-style size for messages.
fn human(bytes: u64) -> String {
    sluice_sdk::values::ByteSize(bytes).approx().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_above_the_limit_are_reported() {
        assert!(check(1024, 1024).is_none());
        assert!(check(0, 0).is_none());
        let h = check(2 * 1024 * 1024, 1024 * 1024).expect("too large");
        assert_eq!(h.rule, Rule::LargeFile);
        assert_eq!(h.line, None);
        assert!(
            h.message
                .starts_with("file is 2.0 MiB (2097152 bytes), above max-file-size 1.0 MiB"),
            "{}",
            h.message
        );
    }
}
