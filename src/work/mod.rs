//! Pure mining domain: headers, targets, SHA-256 midstates and the unit a device sweeps.
//! Nothing here does I/O; byte order is decided here, once, and tested against real blocks.

pub mod block;
pub mod ids;
pub mod job;
pub mod sha256;
pub mod target;

use std::fmt;

pub use bitcoin::BlockHash;
pub use bitcoin::block::Header;
use bitcoin::consensus::{deserialize, serialize};

pub use ids::{DeviceId, Extranonce1, Extranonce2, HashRate, JobId, PoolId, VersionMask};
pub use target::{CompactTarget, Difficulty, Target};

/// A header that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("a block header is 80 bytes (160 hex digits), got {0} bytes")]
    Length(usize),
    #[error("header is not valid hex: {0}")]
    Hex(HexError),
    #[error("header does not decode: {0}")]
    Decode(String),
}

/// Parses an 80-byte header from hex in consensus (wire) byte order.
pub fn header_from_hex(hex: &str) -> Result<Header, HeaderError> {
    let bytes = hex_decode(hex.trim()).map_err(HeaderError::Hex)?;
    if bytes.len() != 80 {
        return Err(HeaderError::Length(bytes.len()));
    }
    deserialize(&bytes).map_err(|e| HeaderError::Decode(e.to_string()))
}

/// The 80 consensus bytes of a header.
pub fn header_bytes(header: &Header) -> [u8; 80] {
    serialize(header).try_into().expect("a header serializes to 80 bytes")
}

/// Decodes hex; the error says where it went wrong.
pub fn hex_decode(hex: &str) -> Result<Vec<u8>, HexError> {
    use bitcoin::hex::FromHex;
    Vec::<u8>::from_hex(hex).map_err(|e| HexError::Bytes(e.to_string()))
}

/// Hex that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("{0}")]
    Bytes(String),
    #[error("expected 8 hex digits, got {0:?}")]
    Word(String),
}

/// A 32-bit integer as Stratum writes it: exactly 8 hex digits, big-endian.
pub(crate) fn hex_u32(s: &str) -> Result<u32, HexError> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HexError::Word(s.to_string()));
    }
    u32::from_str_radix(s, 16).map_err(|_| HexError::Word(s.to_string()))
}

/// More nonces than a header has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a nonce range holds at most 2^32 nonces, asked for {0}")]
pub struct NonceRangeError(pub u64);

/// A range of nonces, `count` of them from `start`, wrapping past 0xFFFFFFFF. `count` may be
/// the whole space, 2^32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceRange {
    pub start: u32,
    pub count: u64,
}

impl NonceRange {
    pub(crate) const FULL: u64 = 1 << 32;
    /// Every nonce, from 0.
    pub(crate) const FULL_RANGE: NonceRange = NonceRange { start: 0, count: Self::FULL };

    pub fn new(start: u32, count: u64) -> Result<Self, NonceRangeError> {
        if count > Self::FULL {
            return Err(NonceRangeError(count));
        }
        Ok(NonceRange { start, count })
    }

    pub fn contains(&self, nonce: u32) -> bool {
        u64::from(nonce.wrapping_sub(self.start)) < self.count
    }

    /// The first `n` nonces of the range and the rest.
    pub(crate) fn split_at(&self, n: u64) -> (NonceRange, NonceRange) {
        let n = n.min(self.count);
        let head = NonceRange { start: self.start, count: n };
        let tail = NonceRange { start: self.start.wrapping_add(n as u32), count: self.count - n };
        (head, tail)
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + use<> {
        let start = self.start;
        (0..self.count).map(move |i| start.wrapping_add(i as u32))
    }
}

impl fmt::Display for NonceRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}+{}", self.start, self.count)
    }
}

/// The most versions a device hashes with each nonce (the kernel's `MAX_VERSIONS`).
pub const MAX_VERSIONS: usize = 8;

/// What a device sweeps: a header whose every field but the nonce and the version is fixed, the
/// versions hashed with each nonce (BIP320's rolled bits: headers that differ only there share
/// their second SHA-256 block, which devices exploit), and the target a hash must meet to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// The header, with the first of the versions.
    pub header: Header,
    pub target: Target,
    /// 1 to `MAX_VERSIONS` versions, the header's first.
    versions: Vec<u32>,
}

/// A nonce a device reports, with the index of its version in the work's versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Candidate {
    pub nonce: u32,
    pub version: u32,
}

impl Candidate {
    /// A nonce of the work's first (or only) version.
    pub fn first(nonce: u32) -> Candidate {
        Candidate { nonce, version: 0 }
    }
}

impl Work {
    /// Work of the header's one version.
    pub fn new(header: Header, target: Target) -> Self {
        Work { versions: vec![header.version.to_consensus() as u32], header, target }
    }

    /// Work whose target is the header's own nBits: a hit is a valid block.
    pub fn block(header: Header) -> Result<Self, target::CompactError> {
        Ok(Work::new(header, target::target_from_compact(header.bits)?))
    }

    /// Work of `versions` of the header (the header's own when empty; the first
    /// `MAX_VERSIONS` when more).
    pub fn with_versions(mut header: Header, target: Target, versions: &[u32]) -> Self {
        let Some(&first) = versions.first() else { return Work::new(header, target) };
        header.version = bitcoin::block::Version::from_consensus(first as i32);
        Work { header, target, versions: versions[..versions.len().min(MAX_VERSIONS)].to_vec() }
    }

    pub fn versions(&self) -> &[u32] {
        &self.versions
    }

    /// The headers a sweep of `range` hashes: each nonce in every version.
    pub fn hashes(&self, range: NonceRange) -> u64 {
        range.count * self.versions.len() as u64
    }

    /// The header a candidate stands for; `None` when its version index is not one of the
    /// work's.
    pub(crate) fn header_of(&self, candidate: Candidate) -> Option<Header> {
        let version = *self.versions.get(candidate.version as usize)?;
        Some(Header {
            version: bitcoin::block::Version::from_consensus(version as i32),
            nonce: candidate.nonce,
            ..self.header
        })
    }

    /// The 80 bytes of the header in its version number `index` (the first when out of range).
    pub fn header_bytes(&self, index: usize) -> [u8; 80] {
        let version = Candidate { nonce: self.header.nonce, version: index as u32 };
        header_bytes(&self.header_of(version).unwrap_or(self.header))
    }

    /// A candidate's hash; `None` when its version index is not one of the work's.
    pub fn hash(&self, candidate: Candidate) -> Option<BlockHash> {
        Some(self.header_of(candidate)?.block_hash())
    }
}

/// A candidate whose hash the CPU has checked against the work's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub nonce: u32,
    /// The header's whole version field, as hashed.
    pub version: u32,
    pub hash: BlockHash,
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

    #[test]
    fn genesis_header_fields_and_hash() {
        let header = header_from_hex(GENESIS).unwrap();
        assert_eq!(header.version.to_consensus(), 1);
        assert_eq!(header.time, 1_231_006_505);
        assert_eq!(header.bits.to_consensus(), 0x1d00ffff);
        assert_eq!(header.nonce, 2_083_236_893);
        assert_eq!(header.block_hash().to_string(), "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
        assert_eq!(hex_decode(GENESIS).unwrap(), header_bytes(&header));
    }

    #[test]
    fn bad_headers_are_refused_with_the_reason() {
        assert!(matches!(header_from_hex("00"), Err(HeaderError::Length(1))));
        assert!(matches!(header_from_hex(&"zz".repeat(80)), Err(HeaderError::Hex(_))));
    }

    #[test]
    fn stratum_hex_words_are_exactly_eight_hex_digits() {
        assert_eq!(hex_u32("504e86ed"), Ok(0x504e_86ed));
        for bad in ["504e86e", "504e86ed0", "+504e86e", "504e86eg", ""] {
            assert!(hex_u32(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nonce_ranges_wrap_and_split() {
        let r = NonceRange::new(0xffff_fffe, 4).unwrap();
        assert_eq!(r.iter().collect::<Vec<_>>(), [0xffff_fffe, 0xffff_ffff, 0, 1]);
        assert!(r.contains(1) && r.contains(0xffff_fffe) && !r.contains(2));
        let (a, b) = r.split_at(3);
        assert_eq!((a.count, b.start, b.count), (3, 1, 1));
        assert!(NonceRange::new(0, NonceRange::FULL).unwrap().contains(12345));
        assert!(NonceRange::new(0, NonceRange::FULL + 1).is_err());
    }
}
