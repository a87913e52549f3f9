//! Statistics for the judge: the two-sided Mann-Whitney U test (normal
//! approximation with tie and continuity correction, as
//! `scipy.stats.mannwhitneyu(x, y, method="asymptotic")` computes it),
//! Fisher's exact test of two proportions ([`fisher_exact`]), medians,
//! means and quantiles.
//!
//! Fisher's test is exact at every count: the hypergeometric tail is summed
//! term by term from log-factorials (no normal approximation at any size).
//! Log-factorials are sums of logs below 256 and the Stirling series above
//! (truncation error below 1e-20 there), so p-values are exact up to
//! floating-point rounding (relative error ~1e-8 at a million requests).
//! The tail sum starts at the observed count, walks away from the mode and
//! stops once a term adds less than 1e-17 of the sum, so its cost is a few
//! standard deviations of terms (O(sqrt(n)), at most O(min(errors, n)));
//! a million requests per side take well under a millisecond.
//!
//! The exact distribution of U is not computed: with the sample sizes the
//! judge works with (tens to hundreds per side) the normal approximation is
//! what Kayenta and scipy's `asymptotic` method use. For very small samples
//! (fewer than ~8 per side) its p-values are only approximate.

/// The result of a Mann-Whitney U test of `x` (baseline) against `y` (canary).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U statistic of the first sample: `R_x - n_x (n_x + 1) / 2`.
    pub u_x: f64,
    /// U statistic of the second sample: `n_x n_y - u_x`.
    pub u_y: f64,
    /// Standard score of `max(u_x, u_y)` after the continuity correction.
    pub z: f64,
    /// Two-sided p-value (1.0 when every value is tied or a sample is empty).
    pub p_value: f64,
}

/// Ranks of `values` (1-based, ties get their mid-rank) and the tie
/// correction term `Σ (t³ - t)` over groups of equal values.
fn ranks(values: &[f64]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut ties = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share ranks i+1..=j: their mean.
        let rank = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = rank;
        }
        let t = (j - i) as f64;
        ties += t * t * t - t;
        i = j;
    }
    (ranks, ties)
}

/// Two-sided Mann-Whitney U test with the normal approximation, tie
/// correction and continuity correction. NaN values must be filtered out by
/// the caller.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> MannWhitney {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    if x.is_empty() || y.is_empty() {
        return MannWhitney {
            u_x: 0.0,
            u_y: 0.0,
            z: 0.0,
            p_value: 1.0,
        };
    }
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let (r, ties) = ranks(&all);
    let r1: f64 = r[..x.len()].iter().sum();
    let u_x = r1 - n1 * (n1 + 1.0) / 2.0;
    let u_y = n1 * n2 - u_x;
    let n = n1 + n2;
    let mu = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        return MannWhitney {
            u_x,
            u_y,
            z: 0.0,
            p_value: 1.0,
        };
    }
    let u = u_x.max(u_y);
    let z = (u - mu - 0.5) / variance.sqrt();
    let p_value = (2.0 * normal_sf(z)).clamp(0.0, 1.0);
    MannWhitney {
        u_x,
        u_y,
        z,
        p_value,
    }
}

/// Survival function of the standard normal distribution, `1 - Φ(z)`.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Chebyshev fit from Numerical Recipes,
/// fractional error below 1.2e-7 everywhere).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ans = t * poly.exp();
    if x >= 0.0 {
        ans
    } else {
        2.0 - ans
    }
}

/// `ln(n!)`: the sum of logs below 256, the Stirling series from there on
/// (its first omitted term is below `1 / (1188 n^9)`, under 1e-24 at 256).
pub fn ln_factorial(n: u64) -> f64 {
    if n < 256 {
        return (2..=n).map(|k| (k as f64).ln()).sum();
    }
    let x = n as f64;
    let x2 = x * x;
    x * x.ln() - x
        + 0.5 * (2.0 * std::f64::consts::PI * x).ln()
        + (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - 1.0 / (1680.0 * x2)) / x2) / x2) / x
}

/// `ln C(n, k)`.
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// `P(X >= x0)` for `X` hypergeometric: `draws` draws without replacement
/// from `total` items of which `marked` are marked. Exact (see the module
/// documentation for how it is summed).
pub fn hypergeometric_sf(x0: u64, total: u64, marked: u64, draws: u64) -> f64 {
    let (n, k, d) = (total, marked.min(total), draws.min(total));
    let lo = (d + k).saturating_sub(n);
    let hi = k.min(d);
    if x0 <= lo {
        return 1.0;
    }
    if x0 > hi {
        return 0.0;
    }
    let pmf = |x: u64| (ln_choose(k, x) + ln_choose(n - k, d - x) - ln_choose(n, d)).exp();
    // The terms decrease on both sides of the mode.
    let mode = ((d + 1) as f64 * (k + 1) as f64 / (n + 2) as f64).floor() as u64;
    let other = (n - k - d) as f64; // N - K - n (+ x keeps it >= 0 in the support)
    if x0 > mode {
        // Upper tail from x0 up: pmf(x+1) / pmf(x) = (K-x)(n-x) / ((x+1)(N-K-n+x+1)).
        let (mut x, mut t, mut sum) = (x0, pmf(x0), 0.0);
        loop {
            sum += t;
            if x == hi {
                break;
            }
            let xf = x as f64;
            t *= (k as f64 - xf) * (d as f64 - xf) / ((xf + 1.0) * (other + xf + 1.0));
            x += 1;
            if t <= sum * 1e-17 {
                break;
            }
        }
        sum.min(1.0)
    } else {
        // 1 - P(X <= x0 - 1), summed from x0 - 1 down:
        // pmf(x-1) / pmf(x) = x(N-K-n+x) / ((K-x+1)(n-x+1)).
        let (mut x, mut t, mut sum) = (x0 - 1, pmf(x0 - 1), 0.0);
        loop {
            sum += t;
            if x == lo {
                break;
            }
            let xf = x as f64;
            t *= xf * (other + xf) / ((k as f64 - xf + 1.0) * (d as f64 - xf + 1.0));
            x -= 1;
            if t <= sum * 1e-17 {
                break;
            }
        }
        (1.0 - sum).clamp(0.0, 1.0)
    }
}

/// Which difference of proportions [`fisher_exact`] tests for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// The canary's proportion is greater than the baseline's.
    Greater,
    /// The canary's proportion is less than the baseline's.
    Less,
    /// Either: twice the smaller one-sided p-value, at most 1.
    TwoSided,
}

/// Fisher's exact test of `canary_hits` of `canary_n` against
/// `baseline_hits` of `baseline_n` (e.g. failed requests): the p-value of
/// the 2×2 table under fixed margins, computed exactly at every count.
/// One-sided `Greater` is `scipy.stats.fisher_exact([[c, n_c - c],
/// [b, n_b - b]], alternative="greater")`; `TwoSided` doubles the smaller
/// tail (a little more conservative than scipy's "as likely or less").
pub fn fisher_exact(
    baseline_hits: u64,
    baseline_n: u64,
    canary_hits: u64,
    canary_n: u64,
    alternative: Alternative,
) -> f64 {
    let total = baseline_n + canary_n;
    let marked = baseline_hits + canary_hits;
    // Canary hits ~ hypergeometric(total, marked, canary_n); "less" for the
    // canary is "greater" for the baseline, which keeps small tails exact.
    let greater = || hypergeometric_sf(canary_hits, total, marked, canary_n);
    let less = || hypergeometric_sf(baseline_hits, total, marked, baseline_n);
    match alternative {
        Alternative::Greater => greater(),
        Alternative::Less => less(),
        Alternative::TwoSided => (2.0 * greater().min(less())).min(1.0),
    }
}

/// Arithmetic mean (NaN for an empty sample).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Median (NaN for an empty sample).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The `q` quantile (0..=1) by linear interpolation between closest ranks
/// (numpy's default); NaN for an empty sample.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    // Reference values from scipy 1.17.1:
    // scipy.stats.mannwhitneyu(x, y, alternative="two-sided",
    //                          method="asymptotic", use_continuity=True)
    #[test]
    fn u_and_p_match_scipy_without_ties() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [6.0, 7.0, 8.0, 9.0, 10.0];
        let r = mann_whitney_u(&x, &y);
        assert_eq!(r.u_x, 0.0);
        assert_eq!(r.u_y, 25.0);
        // scipy: statistic=0.0, pvalue=0.012185780355344813
        assert!(close(r.p_value, 0.012_185_780_355_344_813, 1e-6), "{r:?}");
    }

    #[test]
    fn u_and_p_match_scipy_with_ties() {
        let x = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 7.0];
        let y = [2.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 8.0, 9.0];
        let r = mann_whitney_u(&x, &y);
        // scipy: statistic=15.5, pvalue=0.05149814867154551
        assert_eq!(r.u_x, 15.5);
        assert!(close(r.p_value, 0.051_498_148_671_545_51, 1e-6), "{r:?}");
    }

    #[test]
    fn u_and_p_match_scipy_on_binary_samples() {
        // 0/1 error samples: 0 of 20 vs 6 of 20 failing.
        let x = [0.0; 20];
        let mut y = [0.0; 20];
        for v in y.iter_mut().take(6) {
            *v = 1.0;
        }
        let r = mann_whitney_u(&x, &y);
        // scipy: statistic=140.0, pvalue=0.009280028084278164
        assert_eq!(r.u_x, 140.0);
        assert!(close(r.p_value, 0.009_280_028_084_278_164, 1e-6), "{r:?}");
    }

    #[test]
    fn identical_samples_have_p_one() {
        let x = [5.0; 30];
        let r = mann_whitney_u(&x, &x);
        assert_eq!(r.p_value, 1.0);
        let y = [1.0, 2.0, 3.0];
        assert!(close(mann_whitney_u(&y, &y).p_value, 1.0, 1e-9));
        assert_eq!(mann_whitney_u(&[], &y).p_value, 1.0);
    }

    #[test]
    fn erfc_is_accurate() {
        assert!(close(erfc(0.0), 1.0, 1e-7));
        assert!(close(erfc(1.0), 0.157_299_207_050_285_16, 1.2e-7));
        assert!(close(erfc(3.0), 2.209_049_699_858_544_5e-5, 1.2e-7));
        assert!(close(erfc(-1.0), 1.842_700_792_949_714_8, 1e-7));
    }

    // Reference values are exact rationals from Python's integers:
    // sum(comb(K, x) * comb(N - K, n - x) for x in range(a, min(K, n) + 1))
    // / comb(N, n), with N = n_c + n_b, K = a + b, n = n_c (the canary).
    #[test]
    fn fisher_matches_exact_values() {
        let g = |a, nc, b, nb| fisher_exact(b, nb, a, nc, Alternative::Greater);
        // Issue 17: 1 failure of 6 canary requests vs 0 of 113 = 6/119.
        // The normal approximation (U test) said 1.7e-5.
        assert!(close(g(1, 6, 0, 113), 0.050_420_168_067_226_89, 1e-9));
        assert_eq!(g(0, 10, 0, 10), 1.0);
        assert_eq!(fisher_exact(0, 10, 0, 10, Alternative::TwoSided), 1.0);
        assert_eq!(fisher_exact(0, 10, 0, 10, Alternative::Less), 1.0);
        // 6/20 vs 0/20 = C(20,6)/C(40,6).
        assert!(close(g(6, 20, 0, 20), 0.010_098_010_098_010_098, 1e-9));
        assert!(close(g(9, 30, 0, 30), 0.000_967_801_659_569_454_5, 1e-9));
        assert!(close(g(12, 40, 0, 40), 9.273_302_528_813_459e-5, 1e-9));
        assert!(close(g(1, 3, 1, 3), 0.8, 1e-12));
        assert!(close(g(5, 20, 1, 30), 0.031_709_112_877_343_35, 1e-9));
        // The canary better than the baseline: not significant upwards,
        // significant downwards (the same table seen from the other side).
        assert!(close(g(0, 20, 6, 20), 1.0, 1e-12));
        assert!(close(
            fisher_exact(6, 20, 0, 20, Alternative::Less),
            0.010_098_010_098_010_098,
            1e-9
        ));
        assert!(close(
            fisher_exact(0, 20, 6, 20, Alternative::TwoSided),
            0.020_196_020_196_020_196,
            1e-9
        ));
    }

    #[test]
    fn fisher_agrees_with_the_normal_approximation_at_large_counts() {
        // 550/10000 vs 500/10000: exact (Python integers) 0.0601329515932753;
        // pooled two-proportion z with continuity correction 0.0601516.
        let p = fisher_exact(500, 10_000, 550, 10_000, Alternative::Greater);
        assert!(close(p, 0.060_132_951_593_275_3, 1e-7), "{p}");
        // A million requests per side, compared with the normal
        // approximation computed here; fast and within 1e-3.
        let (nb, nc, b, c) = (1_000_000u64, 1_000_000u64, 10_000u64, 10_250u64);
        let start = std::time::Instant::now();
        let p = fisher_exact(b, nb, c, nc, Alternative::Greater);
        assert!(start.elapsed().as_millis() < 500, "{:?}", start.elapsed());
        let (pb, pc) = (b as f64 / nb as f64, c as f64 / nc as f64);
        let pool = (b + c) as f64 / (nb + nc) as f64;
        let se = (pool * (1.0 - pool) * (1.0 / nb as f64 + 1.0 / nc as f64)).sqrt();
        let z = (pc - pb - 0.5 * (1.0 / nb as f64 + 1.0 / nc as f64)) / se;
        let approx = normal_sf(z);
        assert!((p - approx).abs() < 1e-3, "{p} vs {approx}");
        assert!(p > 0.01 && p < 0.1, "{p}");
        // Extreme tails do not overflow or go negative.
        assert_eq!(
            fisher_exact(0, 1_000_000, 1_000_000, 1_000_000, Alternative::Greater),
            0.0
        );
        let p = fisher_exact(5, 1_000_000, 5, 1_000_000, Alternative::Greater);
        assert!(p > 0.5 && p < 1.0, "{p}");
    }

    #[test]
    fn ln_factorial_is_continuous_at_the_switch() {
        let sum: f64 = (2..=300u64).map(|k| (k as f64).ln()).sum();
        assert!(close(ln_factorial(300), sum, 1e-13));
        let sum: f64 = (2..=256u64).map(|k| (k as f64).ln()).sum();
        assert!(close(ln_factorial(256), sum, 1e-13));
        assert_eq!(ln_factorial(0), 0.0);
        assert_eq!(ln_factorial(1), 0.0);
    }

    #[test]
    fn centers() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
        assert!(mean(&[]).is_nan());
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95), 4.8);
    }
}
