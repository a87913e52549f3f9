//! Consistent feature-flag bucketing (docs/delivery.md, `flags.json`).
//!
//! A user key `k` is in flag `f` at `percent` when
//! `u32::from_be_bytes(sha256("<f>:<k>")[0..4]) % 10000 < percent * 100`.
//! The example router implements the same function and is tested against
//! the same vectors (see the tests below).
//!
//! nginx (the `nginx` target) buckets differently: its `split_clients`
//! hashes `"<f>:<k>"` with MurmurHash2 ([`murmur_hash2`]) and gives each
//! percentage a cumulative range of the 32-bit hash space
//! ([`nginx_bucket`]). A user's bucket therefore differs between the local
//! router and nginx; on each it is the same on every request, and a user
//! in at some percentage is in at every higher one.

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

/// MurmurHash2 (32-bit, seed 0) exactly as nginx computes it for
/// `split_clients` (`ngx_murmur_hash2`, src/core/ngx_murmurhash.c):
/// little-endian 4-byte blocks, the tail folded in, the length as seed.
///
/// ```
/// assert_eq!(sluice_delivery::flags::murmur_hash2(b""), 0);
/// ```
pub fn murmur_hash2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    // nginx seeds with `0 ^ len` in a uint32_t: the length truncated.
    let mut h = data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for b in &mut blocks {
        let mut k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The bucket nginx puts `key` in for `flag`: 0..10000 (hundredths of a
/// percent), with the same contract as [`bucket`] — `key` is in at
/// `percent` when the bucket is below `percent * 100`.
///
/// The generated file has
/// `split_clients "<flag>:$http_x_user" … { <p>% <on>; * <off>; }`: nginx sends a request to `on` when
/// `murmur_hash2("<flag>:<key>") < p_hundredths * 0xffffffff / 10000`
/// (integer division), and always at 100%. The bucket is the smallest
/// rollout (in hundredths) at which that holds, minus one.
///
/// ```
/// use sluice_delivery::flags::{nginx_bucket, nginx_in_rollout};
/// let b = nginx_bucket("release-2.0.0", "user-1");
/// assert!(b < 10_000);
/// assert!(nginx_in_rollout("release-2.0.0", "user-1", f64::from(b + 1) / 100.0));
/// assert!(!nginx_in_rollout("release-2.0.0", "user-1", f64::from(b) / 100.0));
/// ```
pub fn nginx_bucket(flag: &str, key: &str) -> u32 {
    let hash = u64::from(murmur_hash2(format!("{flag}:{key}").as_bytes()));
    let space = u64::from(u32::MAX);
    // Smallest h with floor(h * space / 10000) > hash.
    let first_in = ((hash + 1) * 10_000).div_ceil(space).min(10_000);
    // first_in is 1..=10000: (hash + 1) is at least 1.
    u32::try_from(first_in - 1).unwrap_or(9_999)
}

/// Whether nginx sends `key` to the `on` slot of `flag` rolled out to
/// `percent` (0–100, at most two decimals; see [`nginx_hundredths`]).
pub fn nginx_in_rollout(flag: &str, key: &str, percent: f64) -> bool {
    f64::from(nginx_bucket(flag, key)) < (percent * 100.0).round()
}

/// Errors of [`nginx_hundredths`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PercentError {
    /// Not a number between 0 and 100.
    #[error("{0} is not between 0 and 100")]
    OutOfRange(f64),
    /// More precision than `split_clients` takes.
    #[error(
        "{0} has more than two decimals; nginx's split_clients takes at most two (e.g. {1:.2})"
    )]
    TooPrecise(f64, f64),
}

/// `percent` in hundredths, as nginx's `split_clients` takes it (at most
/// two decimals: `12.5` → 1250; `12.345` is refused rather than rounded
/// silently, so that what is written is what was asked for).
///
/// ```
/// use sluice_delivery::flags::nginx_hundredths;
/// assert_eq!(nginx_hundredths(12.5), Ok(1250));
/// assert!(nginx_hundredths(12.345).is_err());
/// ```
pub fn nginx_hundredths(percent: f64) -> Result<u32, PercentError> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(PercentError::OutOfRange(percent));
    }
    let scaled = percent * 100.0;
    let rounded = scaled.round();
    // Tolerate binary representation error (0.29 * 100 = 28.999…).
    if (scaled - rounded).abs() > 1e-6 {
        return Err(PercentError::TooPrecise(percent, rounded / 100.0));
    }
    // 0..=10000 after the range check.
    Ok(rounded as u32)
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

    const MURMUR: &[(&str, u32)] = &[
        ("", 0),
        ("a", 2456313694),
        ("ab", 446775395),
        ("abc", 324500635),
        ("abcd", 646393889),
        ("abcde", 1594468574),
        ("release-2.0.0:user-1", 2325070128),
        ("release-2.0.0:user-2", 386513619),
        ("x:", 1127401110),
        ("new-checkout:bob", 4231767363),
    ];

    /// Reference values of MurmurHash2 (seed 0) as nginx computes it,
    /// from the C function compiled as is (ngx_murmurhash.c).
    #[test]
    fn murmur_vectors() {
        for (input, want) in MURMUR {
            assert_eq!(murmur_hash2(input.as_bytes()), *want, "{input:?}");
        }
    }

    #[test]
    fn nginx_buckets_follow_split_clients() {
        let space = u64::from(u32::MAX);
        for i in 0..2000 {
            let key = format!("user-{i}");
            let hash = u64::from(murmur_hash2(format!("f:{key}").as_bytes()));
            let b = nginx_bucket("f", &key);
            // split_clients: in at h hundredths iff hash < h * space / 10000
            // (h < 10000), always at 10000.
            for h in [1u32, 500, 2500, 5000, 9999] {
                let nginx = hash < u64::from(h) * space / 10_000;
                assert_eq!(b < h, nginx, "{key} at {h}");
            }
            assert!(nginx_in_rollout("f", &key, 100.0));
            assert!(!nginx_in_rollout("f", &key, 0.0));
        }
        let n = (0..10_000)
            .filter(|i| nginx_in_rollout("release-2.0.0", &format!("user-{i}"), 10.0))
            .count();
        assert!((800..1200).contains(&n), "{n}");
    }

    #[test]
    fn percentages_for_nginx() {
        assert_eq!(nginx_hundredths(0.0), Ok(0));
        assert_eq!(nginx_hundredths(100.0), Ok(10_000));
        assert_eq!(nginx_hundredths(0.29), Ok(29));
        assert_eq!(nginx_hundredths(33.33), Ok(3333));
        assert_eq!(
            nginx_hundredths(12.345),
            Err(PercentError::TooPrecise(12.345, 12.35))
        );
        assert!(nginx_hundredths(-1.0).is_err());
        assert!(nginx_hundredths(100.5).is_err());
        assert!(nginx_hundredths(f64::NAN).is_err());
        let e = nginx_hundredths(5.125)
            .expect_err("too precise")
            .to_string();
        assert!(e.contains("at most two"), "{e}");
    }
}
