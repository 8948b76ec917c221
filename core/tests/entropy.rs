//! Entropy of what linktoken hands out, from the real generators: 1,000,000 link tokens
//! (`token::generate`) and 1,000,000 typed codes (`code::generate`).
//!
//! * Tokens: no duplicates; every base64url character that carries only secret bits is uniform
//!   over the 64 letters, pooled and position by position; the one character that carries the
//!   secret's last 4 bits (and 2 checksum bits) is uniform in those 4 bits.
//! * Codes: every digit uniform, pooled and position by position; as many repeated codes as
//!   uniform draws give (a million 6-digit codes cannot all differ: there are only 10^6 of them).
//!
//! Each test fails a correct generator with probability 1e-6 ([`ALPHA`]), so the suite is not
//! flaky; each check is also run on a deliberately biased generator, which it must reject.

mod stats;

use linktoken_core::{code, token};
use stats::{chi_square, chi_square_p, empty_cells_mean_sd};

const SAMPLES: usize = 1_000_000;
/// Significance of every check: the chance that a correct generator fails it.
const ALPHA: f64 = 1e-6;
/// Two-sided standard normal quantile for ALPHA: P(|Z| > 4.8916) = 1e-6 (mpmath:
/// `erfinv(1 - 1e-6) * sqrt(2)`).
const Z_ALPHA: f64 = 4.8916;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// A 256-bit secret is 42 characters of 6 secret bits, then one character whose first 4 bits are
/// the secret's last 4 and whose last 2 are checksum bits; the 5 after that are checksum only.
const SECRET_BYTES: usize = 32;
const FULL_CHARS: usize = SECRET_BYTES * 8 / 6;
const TAIL_BITS: usize = SECRET_BYTES * 8 - FULL_CHARS * 6;

/// Index of each base64url letter in ALPHABET (255: not a letter).
const LETTER_INDEX: [u8; 256] = {
    let mut table = [255u8; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

fn letter_index(c: u8) -> usize {
    let v = LETTER_INDEX[c as usize];
    assert!(v < 64, "not base64url: {c}");
    v as usize
}

/// A check that failed: what, its statistic and p-value.
#[derive(Debug)]
struct Rejected(String);

/// Chi-square of `counts` against uniform; Err if its p-value is below ALPHA.
fn uniform(what: &str, counts: &[u64], df: u64) -> Result<String, Rejected> {
    let x = chi_square(counts);
    let p = chi_square_p(x, df);
    let line = format!("{what}: chi-square {x:.1}, df {df}, p {p:.3e}");
    if p < ALPHA {
        Err(Rejected(line))
    } else {
        Ok(line)
    }
}

/// Counts of the letters of many tokens: what the token checks look at.
struct TokenTally {
    tokens: u64,
    /// per secret-only character position, per letter
    per_position: Vec<[u64; 64]>,
    /// the secret's last TAIL_BITS bits (the first bits of character FULL_CHARS)
    tail: Vec<u64>,
    /// first 21 characters (126 secret bits) of every token, for the duplicate check
    heads: Vec<u128>,
}

impl TokenTally {
    fn new() -> Self {
        TokenTally {
            tokens: 0,
            per_position: vec![[0; 64]; FULL_CHARS],
            tail: vec![0; 1 << TAIL_BITS],
            heads: Vec::with_capacity(SAMPLES),
        }
    }

    fn add(&mut self, t: &str) {
        let body = t
            .strip_prefix(token::PREFIX)
            .expect("ltk_ prefix")
            .as_bytes();
        assert_eq!(
            body.len(),
            48,
            "a 32-byte token has 48 characters after the prefix"
        );
        let mut head = 0u128;
        for (i, &c) in body[..FULL_CHARS].iter().enumerate() {
            let v = letter_index(c);
            self.per_position[i][v] += 1;
            if i < 21 {
                head = head << 6 | v as u128;
            }
        }
        self.tail[letter_index(body[FULL_CHARS]) >> (6 - TAIL_BITS)] += 1;
        self.heads.push(head);
        self.tokens += 1;
    }

    /// Every check; the report lines, or the first check that failed.
    fn check(mut self) -> Result<Vec<String>, Rejected> {
        let mut report = vec![];
        self.heads.sort_unstable();
        let repeats = self.heads.windows(2).filter(|w| w[0] == w[1]).count();
        // Two of a million 256-bit secrets share their first 126 bits with probability ~1e-26:
        // any repeat is a broken generator.
        if repeats > 0 {
            return Err(Rejected(format!(
                "{repeats} repeated tokens among {}",
                self.tokens
            )));
        }
        report.push(format!("{} tokens, no two alike", self.tokens));
        let mut pooled = [0u64; 64];
        for pos in &self.per_position {
            for (p, c) in pooled.iter_mut().zip(pos) {
                *p += c;
            }
        }
        report.push(uniform(
            &format!("{FULL_CHARS} secret characters pooled"),
            &pooled,
            63,
        )?);
        // Independent per-position statistics add up: df 63 per position.
        let x: f64 = self.per_position.iter().map(|c| chi_square(c)).sum();
        let df = 63 * FULL_CHARS as u64;
        let p = chi_square_p(x, df);
        let line = format!(
            "each of the {FULL_CHARS} secret positions: chi-square {x:.1}, df {df}, p {p:.3e}"
        );
        if p < ALPHA {
            return Err(Rejected(line));
        }
        report.push(line);
        report.push(uniform(
            &format!("last {TAIL_BITS} secret bits (character {FULL_CHARS})"),
            &self.tail,
            (1 << TAIL_BITS) - 1,
        )?);
        Ok(report)
    }
}

/// Counts over many codes of one length: what the code checks look at.
struct CodeTally {
    digits: usize,
    codes: u64,
    per_position: Vec<[u64; 10]>,
    /// one flag per possible code value (only for 6 digits: 10^6 cells)
    seen: Vec<bool>,
}

impl CodeTally {
    fn new(digits: usize) -> Self {
        CodeTally {
            digits,
            codes: 0,
            per_position: vec![[0; 10]; digits],
            seen: vec![false; 10usize.pow(digits as u32)],
        }
    }

    fn add(&mut self, c: &str) {
        assert_eq!(c.len(), self.digits, "{c:?}");
        let mut value = 0usize;
        for (i, b) in c.bytes().enumerate() {
            assert!(b.is_ascii_digit(), "{c:?}");
            let d = (b - b'0') as usize;
            self.per_position[i][d] += 1;
            value = value * 10 + d;
        }
        self.seen[value] = true;
        self.codes += 1;
    }

    fn check(self) -> Result<Vec<String>, Rejected> {
        let mut report = vec![];
        let mut pooled = [0u64; 10];
        for pos in &self.per_position {
            for (p, c) in pooled.iter_mut().zip(pos) {
                *p += c;
            }
        }
        report.push(uniform("digits pooled", &pooled, 9)?);
        let x: f64 = self.per_position.iter().map(|c| chi_square(c)).sum();
        let df = 9 * self.digits as u64;
        let p = chi_square_p(x, df);
        let line = format!(
            "each of the {} digit positions: chi-square {x:.1}, df {df}, p {p:.3e}",
            self.digits
        );
        if p < ALPHA {
            return Err(Rejected(line));
        }
        report.push(line);
        // Repeats: the number of code values never drawn must be what uniform draws leave.
        let empty = self.seen.iter().filter(|&&s| !s).count() as f64;
        let (mean, sd) = empty_cells_mean_sd(self.seen.len() as u64, self.codes);
        let z = (empty - mean) / sd;
        let line = format!(
            "{} codes: {} distinct, {empty} of {} values never drawn (uniform: {mean:.0} ± {sd:.0}, z {z:.2})",
            self.codes,
            self.seen.len() as f64 - empty,
            self.seen.len()
        );
        if z.abs() > Z_ALPHA {
            return Err(Rejected(line));
        }
        report.push(line);
        Ok(report)
    }
}

/// xorshift64*: a deterministic source for the biased generators of the negative controls.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn print(report: &[String]) {
    for line in report {
        println!("  {line}");
    }
}

#[test]
fn a_million_tokens_are_distinct_and_uniform() {
    let mut tally = TokenTally::new();
    for _ in 0..SAMPLES {
        tally.add(&token::generate(SECRET_BYTES).expect("OS random number generator"));
    }
    let report = tally
        .check()
        .unwrap_or_else(|r| panic!("token generator rejected: {}", r.0));
    println!("token::generate, {SAMPLES} tokens:");
    print(&report);
}

#[test]
fn a_million_codes_are_uniform_with_chance_repeats() {
    let mut tally = CodeTally::new(code::MIN_DIGITS as usize);
    for _ in 0..SAMPLES {
        tally.add(&code::generate(code::MIN_DIGITS).expect("OS random number generator"));
    }
    let report = tally
        .check()
        .unwrap_or_else(|r| panic!("code generator rejected: {}", r.0));
    println!("code::generate({}), {SAMPLES} codes:", code::MIN_DIGITS);
    print(&report);
}

// Negative controls: the same checks, as many samples, on generators with known flaws.

#[test]
fn the_token_checks_reject_secrets_with_modulo_bias() {
    // Every secret byte is `random % 251`: bytes 251..=255 never occur (a classic bug).
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    let mut tally = TokenTally::new();
    for _ in 0..SAMPLES {
        let secret: Vec<u8> = (0..SECRET_BYTES)
            .map(|_| (rng.next() % 251) as u8)
            .collect();
        tally.add(&token::encode(&secret));
    }
    let rejected = tally.check().expect_err("the biased secrets passed");
    println!("modulo-biased secrets rejected: {}", rejected.0);
}

#[test]
fn the_token_checks_reject_repeats() {
    // Secrets with only 24 bits of entropy: a million of them must repeat.
    let mut rng = Xorshift(42);
    let mut tally = TokenTally::new();
    for _ in 0..SAMPLES {
        let seed = rng.next() & 0xFF_FFFF;
        let mut expand = Xorshift(seed | 1 << 40);
        let secret: Vec<u8> = (0..SECRET_BYTES).map(|_| expand.next() as u8).collect();
        tally.add(&token::encode(&secret));
    }
    let rejected = tally.check().expect_err("the low-entropy secrets passed");
    assert!(rejected.0.contains("repeated"), "{}", rejected.0);
    println!("24-bit secrets rejected: {}", rejected.0);
}

#[test]
fn the_token_checks_reject_a_biased_last_character() {
    // Uniform except the secret's last 4 bits, which are never 1111: only the tail check sees it.
    let mut rng = Xorshift(7);
    let mut tally = TokenTally::new();
    for _ in 0..SAMPLES {
        let mut secret: Vec<u8> = (0..SECRET_BYTES).map(|_| rng.next() as u8).collect();
        if secret[SECRET_BYTES - 1] & 0x0F == 0x0F {
            secret[SECRET_BYTES - 1] &= 0xF0;
        }
        tally.add(&token::encode(&secret));
    }
    let rejected = tally.check().expect_err("the biased tail passed");
    assert!(rejected.0.contains("last 4 secret bits"), "{}", rejected.0);
    println!("biased last character rejected: {}", rejected.0);
}

#[test]
fn the_code_checks_reject_modulo_biased_digits() {
    // Every digit is `random byte % 10`: 0..=5 come up 26 times in 256, 6..=9 only 25.
    let mut rng = Xorshift(0xDEAD_BEEF);
    let mut tally = CodeTally::new(6);
    for _ in 0..SAMPLES {
        let c: String = (0..6)
            .map(|_| char::from(b'0' + (rng.next() as u8) % 10))
            .collect();
        tally.add(&c);
    }
    let rejected = tally.check().expect_err("the modulo-biased digits passed");
    println!("modulo-biased digits rejected: {}", rejected.0);
}

#[test]
fn the_code_checks_reject_codes_without_leading_zero() {
    // 100000..=999999, uniformly: the classic "no leading zero" code, 10% fewer values.
    let mut rng = Xorshift(99);
    let mut tally = CodeTally::new(6);
    for _ in 0..SAMPLES {
        tally.add(&(100_000 + rng.next() % 900_000).to_string());
    }
    let rejected = tally
        .check()
        .expect_err("codes without leading zero passed");
    println!("codes without a leading zero rejected: {}", rejected.0);
}

#[test]
fn the_repeat_check_rejects_a_small_code_space() {
    // Every digit uniform, but the last is the sum of the others mod 10 (a check digit): only
    // 100,000 distinct codes. Digit counts look fine; the repeats give it away.
    let mut rng = Xorshift(1234);
    let mut tally = CodeTally::new(6);
    for _ in 0..SAMPLES {
        let first = format!("{:05}", rng.next() % 100_000);
        let check = first.bytes().map(|b| u32::from(b - b'0')).sum::<u32>() % 10;
        tally.add(&format!("{first}{check}"));
    }
    let rejected = tally.check().expect_err("a code space of 100,000 passed");
    assert!(rejected.0.contains("never drawn"), "{}", rejected.0);
    println!("check-digit codes rejected: {}", rejected.0);
}
