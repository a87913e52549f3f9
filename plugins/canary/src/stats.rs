//! Statistics for the judge: the two-sided Mann-Whitney U test (normal
//! approximation with tie and continuity correction, as
//! `scipy.stats.mannwhitneyu(x, y, method="asymptotic")` computes it),
//! medians and means.
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

    #[test]
    fn centers() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
        assert!(mean(&[]).is_nan());
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95), 4.8);
    }
}
