//! Consistent feature-flag bucketing (docs/delivery.md, `flags.json`).
//!
//! A user key `k` is in flag `f` at `percent` when
//! `u32::from_be_bytes(sha256("<f>:<k>")[0..4]) % 10000 < percent * 100`.
//! The example router implements the same function and is tested against
//! the same vectors (see the tests below).

use sha2::{Digest, Sha256};

/// The bucket of `key` for `flag`: 0..10000 (hundredths of a percent).
///
/// ```
/// assert_eq!(sluice_delivery::flags::bucket("release-2.0.0", "user-1"), 4452);
/// ```
pub fn bucket(flag: &str, key: &str) -> u32 {
    let digest = Sha256::digest(format!("{flag}:{key}").as_bytes());
    let first = [digest[0], digest[1], digest[2], digest[3]];
    u32::from_be_bytes(first) % 10_000
}

/// Whether `key` gets flag `flag` when it is rolled out to `percent`
/// (0–100; fractions allowed) of keys.
///
/// ```
/// use sluice_delivery::flags::in_rollout;
/// assert!(in_rollout("release-2.0.0", "user-1", 50.0));   // bucket 4452
/// assert!(!in_rollout("release-2.0.0", "user-1", 44.5));
/// ```
pub fn in_rollout(flag: &str, key: &str, percent: f64) -> bool {
    f64::from(bucket(flag, key)) < percent * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared with the example router's tests.
    const VECTORS: &[(&str, &str, u32)] = &[
        ("release-2.0.0", "user-1", 4452),
        ("release-2.0.0", "user-2", 8056),
        ("release-2.0.0", "alice", 7182),
        ("new-checkout", "bob", 8140),
        ("x", "", 6652),
    ];

    #[test]
    fn vectors() {
        for (flag, key, b) in VECTORS {
            assert_eq!(bucket(flag, key), *b, "{flag}:{key}");
            let b = f64::from(*b);
            assert!(in_rollout(flag, key, (b + 0.5) / 100.0), "{flag}:{key}");
            assert!(!in_rollout(flag, key, (b - 0.5) / 100.0), "{flag}:{key}");
            assert!(in_rollout(flag, key, 100.0));
            assert!(!in_rollout(flag, key, 0.0));
        }
    }

    #[test]
    fn share_is_close_to_percent() {
        let n = (0..10_000)
            .filter(|i| in_rollout("release-2.0.0", &format!("user-{i}"), 10.0))
            .count();
        assert!((800..1200).contains(&n), "{n}");
    }
}
