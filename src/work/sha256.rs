//! The pieces of SHA-256 that mining takes apart: the compression function (sha2's, hardware
//! accelerated where the CPU has SHA-NI), the midstate of the header's first 64 bytes, and single
//! rounds for the nonce-independent precomputation handed to the kernel.

use sha2::block_api::compress256;

/// SHA-256 initial hash value (FIPS 180-4, 5.3.3).
pub const IV: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// SHA-256 round constants (FIPS 180-4, 4.2.2).
pub const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// The SHA-256 state after the first 64 bytes of a header. Those bytes (version, previous hash,
/// 28 bytes of the merkle root) do not change while the nonce does, so every sweep starts here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Midstate(pub [u32; 8]);

impl Midstate {
    pub fn of_header(header: &[u8; 80]) -> Self {
        let mut state = IV;
        let first: &[u8; 64] = header[..64].try_into().expect("80 > 64");
        compress256(&mut state, std::slice::from_ref(first));
        Midstate(state)
    }
}

/// The padded second block of an 80-byte message: its last 16 bytes, the 0x80 terminator and the
/// length (640 bits).
pub(crate) fn header_tail_block(header: &[u8; 80]) -> [u8; 64] {
    let mut block = [0u8; 64];
    block[..16].copy_from_slice(&header[64..]);
    block[16] = 0x80;
    block[62..].copy_from_slice(&640u16.to_be_bytes());
    block
}

/// Double SHA-256 of a header from its midstate and padded tail block, as the kernel computes it.
/// Returns the digest in byte order (the internal order of a `BlockHash`).
pub(crate) fn sha256d_from_midstate(midstate: &Midstate, tail: &[u8; 64]) -> [u8; 32] {
    let mut first = midstate.0;
    compress256(&mut first, std::slice::from_ref(tail));
    let mut block = [0u8; 64];
    for (chunk, word) in block.chunks_exact_mut(4).zip(first) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    block[32] = 0x80;
    block[62..].copy_from_slice(&256u16.to_be_bytes());
    let mut second = IV;
    compress256(&mut second, std::slice::from_ref(&block));
    let mut digest = [0u8; 32];
    for (chunk, word) in digest.chunks_exact_mut(4).zip(second) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

pub fn big_sigma0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}

pub fn big_sigma1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}

pub fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

pub fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

pub fn ch(e: u32, f: u32, g: u32) -> u32 {
    g ^ (e & (f ^ g))
}

pub(crate) fn maj(a: u32, b: u32, c: u32) -> u32 {
    (a & b) | (c & (a | b))
}

/// One SHA-256 round on the working variables `[a, b, c, d, e, f, g, h]`, with `kw = K[i] + W[i]`.
pub fn round(v: &mut [u32; 8], kw: u32) {
    let [a, b, c, d, e, f, g, h] = *v;
    let t1 = h.wrapping_add(big_sigma1(e)).wrapping_add(ch(e, f, g)).wrapping_add(kw);
    let t2 = big_sigma0(a).wrapping_add(maj(a, b, c));
    *v = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn midstate_path_equals_plain_double_sha256() {
        let header: [u8; 80] = std::array::from_fn(|i| (i * 37 + 11) as u8);
        let expected = Sha256::digest(Sha256::digest(header));
        let got = sha256d_from_midstate(&Midstate::of_header(&header), &header_tail_block(&header));
        assert_eq!(got[..], expected[..]);
    }

    #[test]
    fn sixty_four_rounds_equal_the_compression_function() {
        let block: [u8; 64] = std::array::from_fn(|i| (i * 7 + 3) as u8);
        let mut w = [0u32; 64];
        for (i, chunk) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes(chunk.try_into().unwrap());
        }
        for i in 16..64 {
            w[i] = small_sigma1(w[i - 2])
                .wrapping_add(w[i - 7])
                .wrapping_add(small_sigma0(w[i - 15]))
                .wrapping_add(w[i - 16]);
        }
        let mut v = IV;
        for i in 0..64 {
            round(&mut v, K[i].wrapping_add(w[i]));
        }
        let mut expected = IV;
        compress256(&mut expected, &[block]);
        let got: Vec<u32> = IV.iter().zip(v).map(|(s, x)| s.wrapping_add(x)).collect();
        assert_eq!(got, expected);
    }
}
