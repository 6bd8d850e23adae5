//! The small values that cross module borders, typed so that a pool index is never taken for
//! a device index, a rate is always hashes a second, and a version mask has one definition.

use std::fmt;

/// A pool's place in the configured list, in priority order; a node mined solo is pool 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PoolId(pub usize);

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A device's place in the order the miner opened them (the API's `GPU` number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DeviceId(pub usize);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A job's id as its source names it: Stratum v1's string (and the solo client's), or
/// Stratum V2's number. Shares carry it back unchanged, so no protocol parses another's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobId {
    Text(String),
    Number(u32),
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobId::Text(s) => s.fmt(f),
            JobId::Number(n) => n.fmt(f),
        }
    }
}

impl From<&str> for JobId {
    fn from(s: &str) -> JobId {
        JobId::Text(s.to_string())
    }
}

impl From<String> for JobId {
    fn from(s: String) -> JobId {
        JobId::Text(s)
    }
}

impl From<u32> for JobId {
    fn from(n: u32) -> JobId {
        JobId::Number(n)
    }
}

/// The pool's part of the coinbase's extranonce (its extranonce1, or an SV2 channel's
/// prefix): the same for every share of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Extranonce1(pub Vec<u8>);

/// The miner's part of the extranonce, rolled per work unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Extranonce2(pub Vec<u8>);

impl std::ops::Deref for Extranonce1 {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for Extranonce2 {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Hashes a second.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct HashRate(f64);

impl HashRate {
    pub const ZERO: HashRate = HashRate(0.0);

    /// A measured rate; anything but a finite non-negative number reads as none measured.
    pub fn new(hashes_per_second: f64) -> HashRate {
        HashRate(if hashes_per_second.is_finite() && hashes_per_second > 0.0 { hashes_per_second } else { 0.0 })
    }

    pub(crate) fn from_mhs(mhs: f64) -> HashRate {
        HashRate::new(mhs * 1e6)
    }

    pub fn per_second(self) -> f64 {
        self.0
    }

    pub fn mhs(self) -> f64 {
        self.0 / 1e6
    }
}

/// The block-version bits a miner may roll (BIP310), as a pool grants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VersionMask(pub u32);

impl VersionMask {
    pub const NONE: VersionMask = VersionMask(0);
    /// BIP320's general-purpose bits 13-28: what wgminer asks to roll, and the most it takes.
    pub const BIP320: VersionMask = VersionMask(0x1fff_e000);

    /// The bits both masks allow.
    pub fn and(self, other: VersionMask) -> VersionMask {
        VersionMask(self.0 & other.0)
    }

    pub fn is_none(self) -> bool {
        self.0 == 0
    }

    /// `version` with its bits under the mask replaced by those of `bits`.
    pub fn apply(self, version: u32, bits: u32) -> u32 {
        (version & !self.0) | (bits & self.0)
    }
}

impl fmt::Display for VersionMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_bits_replace_only_the_masked_bits() {
        assert_eq!(VersionMask::BIP320.apply(0x2000_0000, 0x0000_6000), 0x2000_6000);
        assert_eq!(VersionMask::BIP320.apply(0x3fff_e004, 0), 0x2000_0004);
        assert_eq!(VersionMask(0x1800_0000).and(VersionMask::BIP320), VersionMask(0x1800_0000));
        assert_eq!(VersionMask(0xe000_0000).and(VersionMask::BIP320), VersionMask::NONE);
    }

    #[test]
    fn a_rate_that_is_not_a_number_is_none() {
        assert_eq!(HashRate::new(f64::NAN), HashRate::ZERO);
        assert_eq!(HashRate::new(-5.0), HashRate::ZERO);
        assert_eq!(HashRate::from_mhs(2.5).per_second(), 2.5e6);
    }
}
