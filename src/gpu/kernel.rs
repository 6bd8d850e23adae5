//! The kernel's inputs: everything about a header that does not depend on the nonce, computed
//! once on the host so that the shader's loop holds nothing but the nonce-dependent rounds.
//! Pure code; the layout matches `Params` in `shaders/sha256d.wgsl`.

use bytemuck::{Pod, Zeroable};

use crate::work::sha256::{K, Midstate, big_sigma0, big_sigma1, ch, maj, round, small_sigma0, small_sigma1};
use crate::work::target::candidate_mask;
use crate::work::{MAX_VERSIONS, Work};

/// The WGSL source of the sweep kernel.
pub const SOURCE: &str = include_str!("../../shaders/sha256d.wgsl");

/// `Params` of the shader: the sweep's words, then each version's (a uniform of 672 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct KernelParams {
    pub sweep: SweepParams,
    pub versions: [VersionParams; MAX_VERSIONS],
}

/// `Sweep` of the shader: what every version shares.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct SweepParams {
    /// W16, W17, W18 less sigma0(W3), W19 less W3. W3 is the nonce read as SHA-256 reads it
    /// (big-endian), so it is the byte swap of the header's little-endian nonce. The second
    /// block holds no version, so these are every version's.
    pub schedule: [u32; 4],
    pub nonce_base: u32,
    pub nonce_count: u32,
    /// `candidate_mask` of the target, byte-swapped to the order of the hash's word 7.
    pub candidate_mask: u32,
    /// Versions hashed with each nonce: the first `versions` of `KernelParams::versions`.
    pub versions: u32,
}

/// `Version` of the shader: one version's midstate and its second block's state after round 3.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct VersionParams {
    pub midstate: [u32; 8],
    /// a3, b3, c3, e3, f3, then a4 and e4 less W3, then e3 ^ f3 (round 4's Ch).
    pub state: [u32; 8],
    /// Round 4's T1 less its nonce terms (g3 + K4 + W4), rounds 5's and 6's h + K (f3 + K5,
    /// e3 + K6), and round 4's b ^ c (a3 ^ b3, for Maj): `tests/sourcegen_shader.rs` names
    /// them in `fold`.
    pub fold: [u32; 4],
}

impl VersionParams {
    /// From a header's first 64 bytes (its midstate) and the second block's W0..W2.
    fn new(header: &[u8; 80], [w0, w1, w2]: [u32; 3]) -> Self {
        let midstate = Midstate::of_header(header);
        let mut v = midstate.0;
        for (i, w) in [w0, w1, w2].into_iter().enumerate() {
            round(&mut v, K[i].wrapping_add(w));
        }
        let [a3, b3, c3, d3, e3, f3, g3, h3] = v;
        // Round 3 is T1 = pre3 + W3, a4 = T1 + T2, e4 = d3 + T1.
        let pre3 = h3.wrapping_add(big_sigma1(e3)).wrapping_add(ch(e3, f3, g3)).wrapping_add(K[3]);
        let t2 = big_sigma0(a3).wrapping_add(maj(a3, b3, c3));
        VersionParams {
            midstate: midstate.0,
            state: [a3, b3, c3, e3, f3, pre3.wrapping_add(t2), d3.wrapping_add(pre3), e3 ^ f3],
            // W4 = 0x80000000, W5 = W6 = 0.
            fold: [
                g3.wrapping_add(K[4]).wrapping_add(0x8000_0000),
                f3.wrapping_add(K[5]),
                e3.wrapping_add(K[6]),
                a3 ^ b3,
            ],
        }
    }
}

impl KernelParams {
    pub fn new(work: &Work) -> Self {
        let header = work.header_bytes(0);
        let word = |i: usize| u32::from_be_bytes(header[64 + 4 * i..68 + 4 * i].try_into().unwrap());
        let (w0, w1, w2) = (word(0), word(1), word(2));
        // W4 = 0x80000000, W5..W14 = 0, W15 = 640 (the padding of an 80-byte message).
        let w16 = small_sigma0(w1).wrapping_add(w0);
        let w17 = small_sigma1(640).wrapping_add(small_sigma0(w2)).wrapping_add(w1);
        let w18_less_nonce = small_sigma1(w16).wrapping_add(w2);
        let w19_less_nonce = small_sigma1(w17).wrapping_add(small_sigma0(0x8000_0000));

        let mut versions = [VersionParams::zeroed(); MAX_VERSIONS];
        for (i, params) in versions.iter_mut().enumerate().take(work.versions().len()) {
            *params = VersionParams::new(&work.header_bytes(i), [w0, w1, w2]);
        }
        KernelParams {
            sweep: SweepParams {
                schedule: [w16, w17, w18_less_nonce, w19_less_nonce],
                nonce_base: 0,
                nonce_count: 0,
                candidate_mask: candidate_mask(&work.target).swap_bytes(),
                versions: work.versions().len() as u32,
            },
            versions,
        }
    }

    pub fn dispatch(&self, nonce_base: u32, nonce_count: u32) -> Self {
        KernelParams { sweep: SweepParams { nonce_base, nonce_count, ..self.sweep }, ..*self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::work::sha256::{IV, header_tail_block};
    use crate::work::{Header, Target};

    #[test]
    fn layout_matches_the_shader_uniform() {
        assert_eq!(std::mem::size_of::<SweepParams>(), 32);
        assert_eq!(std::mem::size_of::<VersionParams>(), 80);
        assert_eq!(std::mem::size_of::<KernelParams>(), 32 + 80 * 8);
    }

    /// Replays what the kernel does with the parameters, in plain Rust, and checks every
    /// precomputed word against a straightforward SHA-256 of the same block, in each version.
    #[test]
    fn precomputed_words_replay_the_plain_compression() {
        let header: [u8; 80] = std::array::from_fn(|i| (i * 37 + 11) as u8);
        let decoded: Header = bitcoin::consensus::deserialize(&header).unwrap();
        let versions = [0x2000_0000, 0x2000_2000, 0x3fff_e000];
        let work = Work::with_versions(decoded, Target::ZERO, &versions);
        let p = KernelParams::new(&work);
        assert_eq!(p.sweep.versions, 3);
        assert_eq!(p.versions[3], VersionParams::zeroed());
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
        assert_eq!(p.sweep.schedule[..2], w[16..18]);
        assert_eq!(w[18], p.sweep.schedule[2].wrapping_add(small_sigma0(w3)));
        assert_eq!(w[19], p.sweep.schedule[3].wrapping_add(w3));
        for (i, version) in versions.into_iter().enumerate() {
            let bytes = work.header_bytes(i);
            assert_eq!(bytes[..4], version.to_le_bytes());
            let v = p.versions[i];
            assert_eq!(v.midstate, Midstate::of_header(&bytes).0);
            assert_ne!(v.midstate, IV);
            let mut state = v.midstate;
            for i in 0..3 {
                round(&mut state, K[i].wrapping_add(w[i]));
            }
            let [a3, b3, c3, _, e3, f3, g3, _] = state;
            round(&mut state, K[3].wrapping_add(w[3]));
            let s = v.state;
            let expected = [s[5].wrapping_add(w3), s[0], s[1], s[2], s[6].wrapping_add(w3), s[3], s[4], g3];
            assert_eq!(state, expected);
            assert_eq!([s[0], s[1], s[2], s[3], s[4], s[7]], [a3, b3, c3, e3, f3, e3 ^ f3]);
            // Round i's h is g3, f3, e3 for i = 4, 5, 6.
            let fold = [0, 1, 2].map(|j| [g3, f3, e3][j].wrapping_add(K[4 + j]).wrapping_add(w[4 + j]));
            assert_eq!(v.fold, [fold[0], fold[1], fold[2], a3 ^ b3]);
        }
    }
}
