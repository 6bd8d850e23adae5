//! Targets in their three spellings: the 256-bit [`Target`], the header's compact nBits
//! ([`CompactTarget`]) and the pool's floating-point [`Difficulty`].
//!
//! rust-bitcoin owns the types and the encoding to nBits. Decoding is ours only because
//! `Target::from_compact` accepts what Bitcoin Core rejects: a negative mantissa or a value past
//! 256 bits. We decode exactly as Core's `arith_uint256::SetCompact` and refuse those two cases.

use std::fmt;

pub use bitcoin::pow::{CompactTarget, Target};

/// An nBits value that no valid header can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    #[error("nBits {0:#010x} encodes a negative target (sign bit 0x00800000 set)")]
    Negative(u32),
    #[error("nBits {0:#010x} encodes a target wider than 256 bits")]
    Overflow(u32),
}

/// Decodes nBits as Bitcoin Core does, rejecting negative and overflowing encodings.
pub fn target_from_compact(bits: CompactTarget) -> Result<Target, CompactError> {
    let raw = bits.to_consensus();
    let size = (raw >> 24) as i32;
    let mut word = raw & 0x007f_ffff;
    if size <= 3 {
        word >>= 8 * (3 - size);
    }
    if word != 0 && raw & 0x0080_0000 != 0 {
        return Err(CompactError::Negative(raw));
    }
    if word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32)) {
        return Err(CompactError::Overflow(raw));
    }
    // The value is word * 256^(size - 3); place the mantissa's three bytes big-endian.
    let shift_bytes = (size - 3).max(0);
    let mut be = [0u8; 32];
    for (k, byte) in word.to_be_bytes()[1..].iter().enumerate() {
        let pos = 32 - 3 - shift_bytes + k as i32;
        if (0..32).contains(&pos) {
            be[pos as usize] = *byte;
        }
    }
    Ok(Target::from_be_bytes(be))
}

/// The most significant 32 bits of a 256-bit little-endian number (a hash, a target).
fn top_word(le: &[u8; 32]) -> u32 {
    u32::from_le_bytes([le[28], le[29], le[30], le[31]])
}

/// The most significant 32 bits of a target.
fn target_top_word(target: &Target) -> u32 {
    top_word(&target.to_le_bytes())
}

/// Whether a hash (its bytes as SHA-256 gives them, the little-endian number Bitcoin
/// compares) passes the devices' filter `mask` (`candidate_mask`): the kernel's rule, which
/// the CPU sweeper applies and the verifier checks.
pub(crate) fn passes_filter(hash: &[u8; 32], mask: u32) -> bool {
    top_word(hash) & mask == 0
}

/// The devices' pre-filter before the CPU checks all 256 bits: a hash is a candidate when its
/// most significant 32 bits have no bit set where this mask has one, that is, when they are
/// below the power of two just above the target's. One AND in the kernel; it passes at most
/// twice the hashes an exact comparison of the top words would, and exactly those when the
/// target's top word is zero (difficulty 1 and above) or one less than a power of two.
pub fn candidate_mask(target: &Target) -> u32 {
    !u32::MAX.checked_shr(target_top_word(target).leading_zeros()).unwrap_or(0)
}

/// A pool difficulty: how many times harder than difficulty 1, whose target is
/// `0x00000000FFFF0000…0000` (the "pdiff" of cgminer and every Stratum pool).
/// Fractional values (0.001) are normal on test pools and for CPU/laptop miners.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Difficulty(f64);

/// A difficulty that is not a positive finite number.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("difficulty must be a positive finite number, got {0}")]
pub struct DifficultyError(pub f64);

impl Difficulty {
    pub(crate) const ONE: Difficulty = Difficulty(1.0);

    pub fn new(value: f64) -> Result<Self, DifficultyError> {
        if value.is_finite() && value > 0.0 { Ok(Difficulty(value)) } else { Err(DifficultyError(value)) }
    }

    pub fn value(self) -> f64 {
        self.0
    }

    /// The share target `floor(diff1 / d)`, computed as cgminer and pools do: the quotient in
    /// double precision, then converted to a 256-bit integer exactly. Integer difficulties whose
    /// quotient is exact in 53 bits (1, 2, 3, 4, 5, 16, …) give the exact target. Difficulties so
    /// small that the target passes 2^256 − 1 saturate at the largest 256-bit value.
    pub fn to_target(self) -> Target {
        let quotient = 65535.0 / self.0; // diff1 = 65535 · 2^208
        let (mantissa, exponent) = decompose(quotient);
        let shift = exponent + 208;
        Target::from_be_bytes(shifted_be_bytes(mantissa, shift).unwrap_or([0xff; 32]))
    }

    /// The difficulty a hash meets: that of the hash read as a target (a share's "best
    /// share" difficulty, as cgminer shows it).
    pub(crate) fn of_hash(hash: &bitcoin::BlockHash) -> Self {
        Difficulty::from_target(&Target::from_le_bytes(*AsRef::<[u8; 32]>::as_ref(hash)))
    }

    /// The difficulty of a target: diff1 / target, in double precision.
    pub fn from_target(target: &Target) -> Self {
        Difficulty(target.difficulty_float())
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Splits a positive finite f64 into an integer mantissa and a power of two: `m · 2^e`.
fn decompose(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    if biased == 0 {
        (fraction, -1074) // subnormal
    } else {
        (fraction | (1 << 52), biased - 1075)
    }
}

/// `m · 2^shift` floored to an integer, as 32 big-endian bytes; `None` when it needs more than
/// 256 bits.
fn shifted_be_bytes(m: u64, shift: i32) -> Option<[u8; 32]> {
    let mut limbs = [0u64; 4]; // little-endian limbs
    if shift < 0 {
        limbs[0] = m.checked_shr(shift.unsigned_abs()).unwrap_or(0);
    } else {
        let width = 64 - m.leading_zeros() as i32;
        if shift + width > 256 {
            return None;
        }
        let (limb, bit) = ((shift / 64) as usize, (shift % 64) as u32);
        limbs[limb] |= m << bit;
        if bit > 0 && limb + 1 < 4 {
            limbs[limb + 1] |= m >> (64 - bit);
        }
    }
    let mut be = [0u8; 32];
    for (i, limb) in limbs.iter().rev().enumerate() {
        be[i * 8..i * 8 + 8].copy_from_slice(&limb.to_be_bytes());
    }
    Some(be)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(raw: u32) -> Result<Target, CompactError> {
        target_from_compact(CompactTarget::from_consensus(raw))
    }

    fn hex_target(s: &str) -> Target {
        Target::from_unprefixed_hex(s).unwrap()
    }

    // Vectors from Bitcoin Core's src/test/arith_uint256_tests.cpp (bignum_SetCompact).
    #[test]
    fn core_set_compact_vectors() {
        for zero in [
            0,
            0x0012_3456,
            0x0100_3456,
            0x0200_0056,
            0x0300_0000,
            0x0400_0000,
            0x0092_3456,
            0x0180_3456,
            0x0280_0056,
            0x0380_0000,
            0x0480_0000,
        ] {
            assert_eq!(compact(zero), Ok(Target::ZERO), "{zero:#010x}");
        }
        assert_eq!(compact(0x0112_3456), Ok(hex_target("12")));
        assert_eq!(compact(0x0212_3456), Ok(hex_target("1234")));
        assert_eq!(compact(0x0312_3456), Ok(hex_target("123456")));
        assert_eq!(compact(0x0412_3456), Ok(hex_target("12345600")));
        assert_eq!(compact(0x0500_9234), Ok(hex_target("92340000")));
        assert_eq!(compact(0x2012_3456), Ok(hex_target(&format!("123456{}", "00".repeat(29)))));
        assert_eq!(compact(0x01fe_dcba), Err(CompactError::Negative(0x01fe_dcba)));
        assert_eq!(compact(0x0492_3456), Err(CompactError::Negative(0x0492_3456)));
        assert_eq!(compact(0xff12_3456), Err(CompactError::Overflow(0xff12_3456)));
        // The widest values that still fit, and one byte past each.
        assert!(compact(0x22_0000ff).is_ok());
        assert_eq!(compact(0x23_0000ff), Err(CompactError::Overflow(0x23_0000ff)));
        assert!(compact(0x21_00ffff).is_ok());
        assert_eq!(compact(0x22_00ffff), Err(CompactError::Overflow(0x22_00ffff)));
        assert!(compact(0x20_7fffff).is_ok());
        assert_eq!(compact(0x21_7fffff), Err(CompactError::Overflow(0x21_7fffff)));
    }

    #[test]
    fn core_get_compact_vectors() {
        for (raw, encoded) in [
            (0x0112_3456, 0x0112_0000),
            (0x0212_3456, 0x0212_3400),
            (0x0312_3456, 0x0312_3456),
            (0x0412_3456, 0x0412_3456),
            (0x0500_9234, 0x0500_9234),
            (0x2012_3456, 0x2012_3456),
            (0x1d00_ffff, 0x1d00_ffff),
        ] {
            let target = compact(raw).unwrap();
            assert_eq!(target.to_compact_lossy().to_consensus(), encoded, "{raw:#010x}");
        }
        // 0x80 must not be encoded with the sign bit set.
        assert_eq!(hex_target("80").to_compact_lossy().to_consensus(), 0x0200_8000);
    }

    #[test]
    fn difficulty_one_is_the_pdiff_target() {
        let diff1 = hex_target(&format!("00000000ffff{}", "0".repeat(52)));
        assert_eq!(Difficulty::ONE.to_target(), diff1);
        assert_eq!(compact(0x1d00_ffff).unwrap(), diff1);
        assert_eq!(Difficulty::from_target(&diff1), Difficulty::ONE);
    }

    #[test]
    fn integer_and_fractional_difficulties() {
        let d = |v: f64| Difficulty::new(v).unwrap().to_target();
        assert_eq!(d(2.0), hex_target(&format!("000000007fff8{}", "0".repeat(51))));
        assert_eq!(d(3.0), hex_target(&format!("000000005555{}", "0".repeat(52))));
        assert_eq!(d(65536.0), hex_target(&format!("000000000000ffff{}", "0".repeat(48))));
        // 0.5 doubles the target; 1/65536 shifts it by 16 bits.
        assert_eq!(d(0.5), hex_target(&format!("00000001fffe{}", "0".repeat(52))));
        assert_eq!(d(1.0 / 65536.0), hex_target(&format!("0000ffff{}", "0".repeat(56))));
        // 0.001: 65535000 · 2^208, as a double, floored: 0x3e7fc18 · 2^208 exactly.
        assert_eq!(d(0.001), hex_target(&format!("000003e7fc18{}", "0".repeat(52))));
        // Round trip within double precision.
        for v in [0.001, 0.013, 1.5, 7.0, 1024.0, 123_456.789, 1e12] {
            let back = Difficulty::from_target(&d(v)).value();
            assert!((back - v).abs() / v < 1e-12, "{v} -> {back}");
        }
    }

    #[test]
    fn tiny_difficulty_saturates_and_bad_values_are_refused() {
        let max = Target::from_be_bytes([0xff; 32]);
        assert_eq!(Difficulty::new(1e-60).unwrap().to_target(), max);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Difficulty::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn top_word_is_the_most_significant_32_bits() {
        assert_eq!(target_top_word(&Difficulty::ONE.to_target()), 0);
        assert_eq!(target_top_word(&hex_target(&format!("0000ffff{}", "0".repeat(56)))), 0xffff);
    }

    #[test]
    fn candidate_mask_keeps_the_bits_below_the_targets_top_bit() {
        let top = |word: &str| hex_target(&format!("{word}{}", "0".repeat(56)));
        assert_eq!(candidate_mask(&Difficulty::ONE.to_target()), 0xffff_ffff);
        assert_eq!(candidate_mask(&top("0000ffff")), 0xffff_0000);
        assert_eq!(candidate_mask(&top("00001000")), 0xffff_e000);
        assert_eq!(candidate_mask(&top("00000001")), 0xffff_fffe);
        assert_eq!(candidate_mask(&top("ffffffff")), 0);
        assert_eq!(candidate_mask(&top("7fffffff")), 0x8000_0000);
    }
}
