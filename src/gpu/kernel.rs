//! The kernel's inputs: everything about a header that does not depend on the nonce, computed
//! once on the host so that the shader's loop holds nothing but the nonce-dependent rounds.
//! Pure code; the layout matches `Params` in `shaders/sha256d.wgsl`.

use bytemuck::{Pod, Zeroable};

use crate::work::Work;
use crate::work::sha256::{K, Midstate, big_sigma0, big_sigma1, ch, maj, round, small_sigma0, small_sigma1};
use crate::work::target::candidate_mask;

/// The WGSL source of the sweep kernel.
pub const SOURCE: &str = include_str!("../../shaders/sha256d.wgsl");

/// `Params` of the shader (a uniform: 5 × vec4 then four u32).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct KernelParams {
    pub midstate: [u32; 8],
    /// a3, b3, c3, e3, f3, g3, then a4 and e4 less W3.
    pub state: [u32; 8],
    /// W16, W17, W18 less sigma0(W3), W19 less W3. W3 is the nonce read as SHA-256 reads it
    /// (big-endian), so it is the byte swap of the header's little-endian nonce.
    pub schedule: [u32; 4],
    pub nonce_base: u32,
    pub nonce_count: u32,
    /// `candidate_mask` of the target, byte-swapped to the order of the hash's word 7.
    pub candidate_mask: u32,
    pub _pad: u32,
}

impl KernelParams {
    pub fn new(work: &Work) -> Self {
        let header = work.header_bytes();
        let midstate = Midstate::of_header(&header);
        let word = |i: usize| u32::from_be_bytes(header[64 + 4 * i..68 + 4 * i].try_into().unwrap());
        let (w0, w1, w2) = (word(0), word(1), word(2));

        let mut v = midstate.0;
        for (i, w) in [w0, w1, w2].into_iter().enumerate() {
            round(&mut v, K[i].wrapping_add(w));
        }
        let [a3, b3, c3, d3, e3, f3, g3, h3] = v;
        // Round 3 is T1 = pre3 + W3, a4 = T1 + T2, e4 = d3 + T1.
        let pre3 = h3.wrapping_add(big_sigma1(e3)).wrapping_add(ch(e3, f3, g3)).wrapping_add(K[3]);
        let t2 = big_sigma0(a3).wrapping_add(maj(a3, b3, c3));

        // W4 = 0x80000000, W5..W14 = 0, W15 = 640 (the padding of an 80-byte message).
        let w16 = small_sigma0(w1).wrapping_add(w0);
        let w17 = small_sigma1(640).wrapping_add(small_sigma0(w2)).wrapping_add(w1);
        let w18_less_nonce = small_sigma1(w16).wrapping_add(w2);
        let w19_less_nonce = small_sigma1(w17).wrapping_add(small_sigma0(0x8000_0000));

        KernelParams {
            midstate: midstate.0,
            state: [a3, b3, c3, e3, f3, g3, pre3.wrapping_add(t2), d3.wrapping_add(pre3)],
            schedule: [w16, w17, w18_less_nonce, w19_less_nonce],
            nonce_base: 0,
            nonce_count: 0,
            candidate_mask: candidate_mask(&work.target).swap_bytes(),
            _pad: 0,
        }
    }

    pub fn dispatch(&self, nonce_base: u32, nonce_count: u32) -> Self {
        KernelParams { nonce_base, nonce_count, ..*self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::work::sha256::{IV, header_tail_block};
    use crate::work::{Header, Target};

    #[test]
    fn layout_matches_the_shader_uniform() {
        assert_eq!(std::mem::size_of::<KernelParams>(), 96);
    }

    /// Replays what the kernel does with the parameters, in plain Rust, and checks every
    /// precomputed word against a straightforward SHA-256 of the same block.
    #[test]
    fn precomputed_words_replay_the_plain_compression() {
        let header: [u8; 80] = std::array::from_fn(|i| (i * 37 + 11) as u8);
        let decoded: Header = bitcoin::consensus::deserialize(&header).unwrap();
        let p = KernelParams::new(&Work::new(decoded, Target::ZERO));
        let tail = header_tail_block(&header);
        let mut w = [0u32; 64];
        for (i, chunk) in tail.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes(chunk.try_into().unwrap());
        }
        for i in 16..64 {
            w[i] = small_sigma1(w[i - 2])
                .wrapping_add(w[i - 7])
                .wrapping_add(small_sigma0(w[i - 15]))
                .wrapping_add(w[i - 16]);
        }
        let w3 = w[3];
        assert_eq!(w3, decoded.nonce.swap_bytes());
        assert_eq!(p.schedule[..2], w[16..18]);
        assert_eq!(w[18], p.schedule[2].wrapping_add(small_sigma0(w3)));
        assert_eq!(w[19], p.schedule[3].wrapping_add(w3));
        let mut v = p.midstate;
        for i in 0..4 {
            round(&mut v, K[i].wrapping_add(w[i]));
        }
        let s = p.state;
        let expected = [s[6].wrapping_add(w3), s[0], s[1], s[2], s[7].wrapping_add(w3), s[3], s[4], s[5]];
        assert_eq!(v, expected);
        assert_eq!(p.midstate, Midstate::of_header(&header).0);
        assert_ne!(p.midstate, IV);
    }
}
