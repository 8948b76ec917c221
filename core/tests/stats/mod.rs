//! Statistics for the entropy tests: Pearson's chi-square statistic and its p-value, and the
//! expected spread of the number of distinct values among uniform draws (the collision test).
//! Written out here (no statistics crate); checked against values computed with mpmath.

/// Pearson's chi-square statistic of observed counts against equal expected counts.
pub fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// ln Γ(a) for a = n/2, n ≥ 1 (all a chi-square test needs): exact products, no approximation.
/// Γ(k) = (k-1)!, Γ(k + 1/2) = √π · (2k)! / (4^k · k!) = √π · Π_{i=1..k} (i - 1/2).
fn ln_gamma_half(a: f64) -> f64 {
    let twice = (2.0 * a).round() as u64;
    assert!(
        twice >= 1 && (2.0 * a - twice as f64).abs() < 1e-9,
        "a = {a}"
    );
    if twice % 2 == 0 {
        (1..twice / 2).map(|i| (i as f64).ln()).sum()
    } else {
        0.5 * std::f64::consts::PI.ln()
            + (1..=twice / 2).map(|i| (i as f64 - 0.5).ln()).sum::<f64>()
    }
}

/// Regularised upper incomplete gamma Q(a, x) for a = n/2: the series for P below a + 1, the
/// continued fraction (modified Lentz) above, as in every numerical-methods text.
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma_half(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..100_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - sum * front
    } else {
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..100_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        front * h
    }
}

/// P(χ²(df) ≥ x): the probability that a correct generator gives a statistic at least this big.
pub fn chi_square_p(x: f64, df: u64) -> f64 {
    gamma_q(df as f64 / 2.0, x / 2.0)
}

/// Mean and standard deviation of the number of values never drawn when `draws` values are
/// drawn uniformly from `cells` (occupancy; Knuth's collision test counts the same thing).
pub fn empty_cells_mean_sd(cells: u64, draws: u64) -> (f64, f64) {
    let n = cells as f64;
    let q1 = (draws as f64 * (1.0 - 1.0 / n).ln()).exp();
    let q2 = (draws as f64 * (1.0 - 2.0 / n).ln()).exp();
    let mean = n * q1;
    let var = n * q1 + n * (n - 1.0) * q2 - n * n * q1 * q1;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn chi_square_p_matches_mpmath() {
        // mpmath.gammainc(df/2, x/2, inf, regularized=True), 30 digits.
        for (df, x, want) in [
            (9, 50.0, 1.07723820225747e-7),
            (63, 80.0, 0.0728954893246227),
            (2646, 2700.0, 0.227692974109093),
            (15, 3.0, 0.999597801447351),
            (63, 200.0, 3.61700186699526e-16),
        ] {
            let got = chi_square_p(x, df);
            assert!(close(got, want, 1e-9), "df {df} x {x}: {got} vs {want}");
        }
        // Critical values (bisection on the same mpmath function): p = 1e-6 and p = 0.05.
        for (df, crit_1e6, crit_05) in [
            (1, 23.9281269769, 3.84145882069),
            (9, 44.8109378707, 16.9189776046),
            (15, 56.4934424998, 24.9957901397),
            (54, 118.45202147, 72.153216167),
            (63, 131.369702052, 82.5287265415),
            (2646, 3006.30008771, 2766.78293623),
        ] {
            assert!(close(chi_square_p(crit_1e6, df), 1e-6, 1e-7), "df {df}");
            assert!(close(chi_square_p(crit_05, df), 0.05, 1e-7), "df {df}");
        }
    }

    #[test]
    fn chi_square_statistic() {
        assert_eq!(chi_square(&[10, 10, 10, 10]), 0.0);
        assert_eq!(chi_square(&[20, 0]), 20.0);
    }

    #[test]
    fn occupancy_formula() {
        // 2 cells, 2 draws: both in one cell with probability 1/2, so empty cells is 0 or 1.
        let (mean, sd) = empty_cells_mean_sd(2, 2);
        assert!(
            close(mean, 0.5, 1e-12) && close(sd, 0.5, 1e-12),
            "{mean} {sd}"
        );
    }
}
