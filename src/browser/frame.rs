//! The binary frames of `/api/v1/device`, the WebSocket between wgminer and a browser page
//! that sweeps for it. Pure: bytes in, typed frames out, and back.
//!
//! # Format, version 1
//!
//! Every frame is one binary WebSocket message of at most [`MAX_FRAME`] bytes (160 KiB). All integers
//! are little-endian (what `DataView` and WebGPU's buffers use on every browser).
//!
//! ```text
//! offset 0  u8   version (1)
//! offset 1  u8   kind
//! offset 2  ...  the kind's body, exactly (trailing bytes are an error)
//! ```
//!
//! Host → page:
//!
//! | kind | name    | body |
//! |------|---------|------|
//! | 0x01 | Welcome | dispatch_ms u32, budget_ms u32, margin_permille u16, bench u8 (1: the host benchmarks the page, 0: it mines), then three lists, each u8 n and n × u32: workgroup sizes, versions per nonce (K), nonces per invocation — the tuner's order (`gpu::shape`) |
//! | 0x02 | Piece   | id u32, start u32, count u32 (1..=[`MAX_PIECE`]), then the 672 bytes of `gpu::kernel::KernelParams` exactly as the native sweeper writes its uniform buffer (nonce_base = start, nonce_count = count) |
//! | 0x03 | Status  | device u32, hashes u64, accepted u64, rejected u64, hw_errors u64: what the host credited this page with |
//!
//! Page → host:
//!
//! | kind | name   | body |
//! |------|--------|------|
//! | 0x10 | Hello  | workgroup_size u32, nonces_per_invocation u32, versions_per_nonce u32, rate f64 (headers hashed per second, measured), then four texts, each u16 n and n bytes of UTF-8 (at most [`MAX_TEXT`]): vendor, architecture, description (`GPUAdapterInfo`), user agent |
//! | 0x11 | Answer | id u32, start u32, count u32 (the piece's, unchanged), n u32 (at most [`MAX_CANDIDATES`]), then n × (nonce u32, version index u32) |
//!
//! A frame of another version, an unknown kind, a wrong length or a bad field is a
//! [`FrameError`]; the host closes the socket on any.

use bytemuck::Zeroable;

use crate::device::Shape;
use crate::gpu::kernel::KernelParams;
use crate::work::{Candidate, NonceRange};

/// The format's version: the first byte of every frame.
pub const VERSION: u8 = 1;

/// The largest frame either side sends: a full answer fits, with room.
pub const MAX_FRAME: usize = 160 * 1024;

/// Candidates in one answer, at most: 16 times what the scheduler expects a piece to hold
/// (`scheduler::piece_size`, 1,024), and 8 × the fewest nonces it cuts a piece to (256 at
/// K = 8, every hash a candidate). A page whose dispatch overflows the kernel's buffer (4,096)
/// sweeps that part again, as the native host does.
pub const MAX_CANDIDATES: usize = 16 * 1024;

/// Nonces in one piece, at most (a dispatch's bound on the native side).
pub const MAX_PIECE: u32 = 1 << 31;

/// Bytes of one text of a hello.
pub const MAX_TEXT: usize = 256;

const HEADER: usize = 2;
const PARAMS: usize = std::mem::size_of::<KernelParams>();

mod kind {
    pub const WELCOME: u8 = 0x01;
    pub const PIECE: u8 = 0x02;
    pub const STATUS: u8 = 0x03;
    pub const HELLO: u8 = 0x10;
    pub const ANSWER: u8 = 0x11;
}

/// A frame that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame of {0} bytes is too short for its header")]
    Short(usize),
    #[error("a frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("frame version {0}, this wgminer speaks version {VERSION}: reload the page")]
    Version(u8),
    #[error("unknown frame kind {0:#04x}")]
    Kind(u8),
    #[error("frame kind {kind:#04x} ends early or goes on past its body")]
    Length { kind: u8 },
    #[error("a piece of {0} nonces (1 to {MAX_PIECE})")]
    Count(u32),
    #[error("an answer with {0} candidates (at most {MAX_CANDIDATES})")]
    Candidates(u32),
    #[error("a text of {0} bytes (at most {MAX_TEXT}) or not UTF-8")]
    Text(usize),
    #[error("a list of {0} shapes (at most 16)")]
    List(u8),
    #[error("a rate that is not a finite number of hashes a second above zero")]
    Rate,
    #[error("kind {0:#04x} is not sent this way")]
    Direction(u8),
}

/// The tuner's order and bounds, which the page follows when it measures its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub dispatch_ms: u32,
    pub budget_ms: u32,
    pub margin_permille: u16,
    /// The host benchmarks the page (`bench --browser`) instead of mining with it.
    pub bench: bool,
    pub workgroup_sizes: Vec<u32>,
    pub versions_per_nonce: Vec<u32>,
    pub nonces_per_invocation: Vec<u32>,
}

/// A piece handed to a page: its id, its range, and the kernel's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub id: u32,
    pub range: NonceRange,
    pub params: KernelParams,
}

/// What the host credited a page with, for it to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    pub device: u32,
    pub hashes: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub hw_errors: u64,
}

/// A page's adapter, browser and tuned shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    pub shape: Shape,
    /// Headers hashed a second at that shape, as the page measured it.
    pub rate: f64,
    pub vendor: String,
    pub architecture: String,
    pub description: String,
    pub user_agent: String,
}

/// A page's answer to a piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub id: u32,
    pub range: NonceRange,
    pub candidates: Vec<Candidate>,
}

/// Frames the host sends.
#[derive(Debug, Clone, PartialEq)]
pub enum HostFrame {
    Welcome(Welcome),
    Piece(Box<Piece>),
    Status(Status),
}

/// Frames a page sends.
#[derive(Debug, Clone, PartialEq)]
pub enum PageFrame {
    Hello(Hello),
    Answer(Answer),
}

/// Reads a frame's fields in order; every read is checked against the end.
struct Reader<'a> {
    kind: u8,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.rest.len() < n {
            return Err(FrameError::Length { kind: self.kind });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn text(&mut self) -> Result<String, FrameError> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        match std::str::from_utf8(bytes) {
            Ok(text) if n <= MAX_TEXT => Ok(text.to_string()),
            _ => Err(FrameError::Text(n)),
        }
    }
    fn list(&mut self) -> Result<Vec<u32>, FrameError> {
        let n = self.u8()?;
        if n > 16 {
            return Err(FrameError::List(n));
        }
        (0..n).map(|_| self.u32()).collect()
    }
    /// A piece's range: start and a count within bounds.
    fn range(&mut self) -> Result<NonceRange, FrameError> {
        let start = self.u32()?;
        let count = self.u32()?;
        if count == 0 || count > MAX_PIECE {
            return Err(FrameError::Count(count));
        }
        Ok(NonceRange { start, count: u64::from(count) })
    }
    /// The end: nothing may follow the body.
    fn end<T>(self, frame: T) -> Result<T, FrameError> {
        if self.rest.is_empty() { Ok(frame) } else { Err(FrameError::Length { kind: self.kind }) }
    }
}

/// Checks the header; the kind and a reader of the body.
fn open(bytes: &[u8]) -> Result<Reader<'_>, FrameError> {
    if bytes.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    if bytes.len() < HEADER {
        return Err(FrameError::Short(bytes.len()));
    }
    if bytes[0] != VERSION {
        return Err(FrameError::Version(bytes[0]));
    }
    Ok(Reader { kind: bytes[1], rest: &bytes[HEADER..] })
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    // Cut at a character boundary within the limit, so that what is sent always reads back.
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..end]);
}

fn put_list(out: &mut Vec<u8>, list: &[u32]) {
    let list = &list[..list.len().min(16)];
    out.push(list.len() as u8);
    list.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
}

impl HostFrame {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            HostFrame::Welcome(w) => {
                let mut out = vec![VERSION, kind::WELCOME];
                out.extend_from_slice(&w.dispatch_ms.to_le_bytes());
                out.extend_from_slice(&w.budget_ms.to_le_bytes());
                out.extend_from_slice(&w.margin_permille.to_le_bytes());
                out.push(u8::from(w.bench));
                put_list(&mut out, &w.workgroup_sizes);
                put_list(&mut out, &w.versions_per_nonce);
                put_list(&mut out, &w.nonces_per_invocation);
                out
            }
            HostFrame::Piece(p) => {
                let mut out = Vec::with_capacity(HEADER + 12 + PARAMS);
                out.extend_from_slice(&[VERSION, kind::PIECE]);
                out.extend_from_slice(&p.id.to_le_bytes());
                out.extend_from_slice(&p.range.start.to_le_bytes());
                out.extend_from_slice(&(p.range.count as u32).to_le_bytes());
                out.extend_from_slice(bytemuck::bytes_of(&p.params));
                out
            }
            HostFrame::Status(s) => {
                let mut out = vec![VERSION, kind::STATUS];
                out.extend_from_slice(&s.device.to_le_bytes());
                for v in [s.hashes, s.accepted, s.rejected, s.hw_errors] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<HostFrame, FrameError> {
        let mut r = open(bytes)?;
        match r.kind {
            kind::WELCOME => {
                let welcome = Welcome {
                    dispatch_ms: r.u32()?,
                    budget_ms: r.u32()?,
                    margin_permille: r.u16()?,
                    bench: match r.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(FrameError::Length { kind: r.kind }),
                    },
                    workgroup_sizes: r.list()?,
                    versions_per_nonce: r.list()?,
                    nonces_per_invocation: r.list()?,
                };
                r.end(HostFrame::Welcome(welcome))
            }
            kind::PIECE => {
                let id = r.u32()?;
                let range = r.range()?;
                let mut params = KernelParams::zeroed();
                bytemuck::bytes_of_mut(&mut params).copy_from_slice(r.take(PARAMS)?);
                r.end(HostFrame::Piece(Box::new(Piece { id, range, params })))
            }
            kind::STATUS => {
                let device = r.u32()?;
                let (hashes, accepted, rejected, hw_errors) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
                r.end(HostFrame::Status(Status { device, hashes, accepted, rejected, hw_errors }))
            }
            kind::HELLO | kind::ANSWER => Err(FrameError::Direction(r.kind)),
            other => Err(FrameError::Kind(other)),
        }
    }
}

impl PageFrame {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            PageFrame::Hello(h) => {
                let mut out = vec![VERSION, kind::HELLO];
                let s = h.shape;
                for v in [s.workgroup_size, s.nonces_per_invocation, s.versions_per_nonce] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&h.rate.to_le_bytes());
                for text in [&h.vendor, &h.architecture, &h.description, &h.user_agent] {
                    put_text(&mut out, text);
                }
                out
            }
            PageFrame::Answer(a) => {
                let mut out = Vec::with_capacity(HEADER + 16 + 8 * a.candidates.len());
                out.extend_from_slice(&[VERSION, kind::ANSWER]);
                out.extend_from_slice(&a.id.to_le_bytes());
                out.extend_from_slice(&a.range.start.to_le_bytes());
                out.extend_from_slice(&(a.range.count as u32).to_le_bytes());
                out.extend_from_slice(&(a.candidates.len() as u32).to_le_bytes());
                for c in &a.candidates {
                    out.extend_from_slice(&c.nonce.to_le_bytes());
                    out.extend_from_slice(&c.version.to_le_bytes());
                }
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<PageFrame, FrameError> {
        let mut r = open(bytes)?;
        match r.kind {
            kind::HELLO => {
                let (workgroup_size, nonces_per_invocation, versions_per_nonce) = (r.u32()?, r.u32()?, r.u32()?);
                let rate = f64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
                if !rate.is_finite() || rate <= 0.0 {
                    return Err(FrameError::Rate);
                }
                let shape = Shape { workgroup_size, nonces_per_invocation, versions_per_nonce };
                let (vendor, architecture, description, user_agent) = (r.text()?, r.text()?, r.text()?, r.text()?);
                r.end(PageFrame::Hello(Hello { shape, rate, vendor, architecture, description, user_agent }))
            }
            kind::ANSWER => {
                let id = r.u32()?;
                let range = r.range()?;
                let n = r.u32()?;
                if n as usize > MAX_CANDIDATES {
                    return Err(FrameError::Candidates(n));
                }
                let candidates = (0..n).map(|_| Ok(Candidate { nonce: r.u32()?, version: r.u32()? }));
                let candidates = candidates.collect::<Result<_, FrameError>>()?;
                r.end(PageFrame::Answer(Answer { id, range, candidates }))
            }
            kind::WELCOME | kind::PIECE | kind::STATUS => Err(FrameError::Direction(r.kind)),
            other => Err(FrameError::Kind(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::{Target, Work, header_from_hex};

    const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_piece_carries_the_native_uniform_bytes() {
        let work = Work::new(header_from_hex(GENESIS).unwrap(), Target::MAX);
        let params = KernelParams::new(&work).dispatch(0x1000, 0x2000);
        let range = NonceRange { start: 0x1000, count: 0x2000 };
        let frame = HostFrame::Piece(Box::new(Piece { id: 7, range, params }));
        let bytes = frame.encode();
        assert_eq!(bytes.len(), 2 + 12 + 672);
        assert_eq!(hex(&bytes[..14]), "0102 07000000 00100000 00200000".replace(' ', ""));
        assert_eq!(&bytes[14..], bytemuck::bytes_of(&params));
        // nonce_base and nonce_count sit at bytes 16 and 20 of the uniform, little-endian.
        assert_eq!(hex(&bytes[14 + 16..14 + 24]), "0010000000200000");
        assert_eq!(HostFrame::decode(&bytes), Ok(frame));
    }

    #[test]
    fn an_answer_reads_back_byte_for_byte() {
        let answer = Answer {
            id: 0x0102_0304,
            range: NonceRange { start: 0xffff_ff00, count: 512 },
            candidates: vec![Candidate { nonce: 0x2083_a3b5, version: 3 }],
        };
        let bytes = PageFrame::Answer(answer.clone()).encode();
        assert_eq!(hex(&bytes), "011104030201 00ffffff 00020000 01000000 b5a38320 03000000".replace(' ', ""));
        assert_eq!(PageFrame::decode(&bytes), Ok(PageFrame::Answer(answer)));
    }

    #[test]
    fn a_hello_reads_back_byte_for_byte() {
        let hello = Hello {
            shape: Shape { workgroup_size: 64, nonces_per_invocation: 16, versions_per_nonce: 8 },
            rate: 1.5e6,
            vendor: "google".into(),
            architecture: "swiftshader".into(),
            description: String::new(),
            user_agent: "Chrome/141 é".into(),
        };
        let bytes = PageFrame::Hello(hello.clone()).encode();
        let expected = "0110 40000000 10000000 08000000 0000000060e33641 0600676f6f676c65 0b007377696674736861646572 0000 0d004368726f6d652f31343120c3a9";
        assert_eq!(hex(&bytes), expected.replace(' ', ""));
        assert_eq!(PageFrame::decode(&bytes), Ok(PageFrame::Hello(hello)));
    }

    #[test]
    fn welcome_and_status_read_back() {
        let welcome = Welcome {
            dispatch_ms: 50,
            budget_ms: 3000,
            margin_permille: 50,
            bench: true,
            workgroup_sizes: vec![64, 128],
            versions_per_nonce: vec![8],
            nonces_per_invocation: vec![],
        };
        let bytes = HostFrame::Welcome(welcome.clone()).encode();
        assert_eq!(hex(&bytes), "0101 32000000 b80b0000 3200 01 02 40000000 80000000 01 08000000 00".replace(' ', ""));
        assert_eq!(HostFrame::decode(&bytes), Ok(HostFrame::Welcome(welcome)));
        let status = Status { device: 2, hashes: 1 << 40, accepted: 5, rejected: 1, hw_errors: 3 };
        let bytes = HostFrame::Status(status).encode();
        assert_eq!(bytes.len(), 2 + 4 + 32);
        assert_eq!(HostFrame::decode(&bytes), Ok(HostFrame::Status(status)));
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let answer = |n: u32| {
            let mut b = vec![1, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
            b.extend_from_slice(&n.to_le_bytes());
            b
        };
        assert_eq!(PageFrame::decode(&[]), Err(FrameError::Short(0)));
        assert_eq!(PageFrame::decode(&[2, 0x11]), Err(FrameError::Version(2)));
        assert_eq!(PageFrame::decode(&[1, 0x7f]), Err(FrameError::Kind(0x7f)));
        assert_eq!(PageFrame::decode(&[1, 0x02]), Err(FrameError::Direction(0x02)));
        assert_eq!(HostFrame::decode(&[1, 0x11]), Err(FrameError::Direction(0x11)));
        assert_eq!(PageFrame::decode(&vec![1; MAX_FRAME + 1]), Err(FrameError::TooLarge(MAX_FRAME + 1)));
        assert_eq!(PageFrame::decode(&answer(1)), Err(FrameError::Length { kind: 0x11 }));
        assert_eq!(PageFrame::decode(&answer(16385)), Err(FrameError::Candidates(16385)));
        let mut trailing = answer(0);
        trailing.push(0);
        assert_eq!(PageFrame::decode(&trailing), Err(FrameError::Length { kind: 0x11 }));
        let zero_count = [1, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(PageFrame::decode(&zero_count), Err(FrameError::Count(0)));
        let mut hello = PageFrame::Hello(Hello {
            shape: Shape::DEFAULT,
            rate: 1.0,
            vendor: String::new(),
            architecture: String::new(),
            description: String::new(),
            user_agent: String::new(),
        })
        .encode();
        hello[14..22].copy_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(PageFrame::decode(&hello), Err(FrameError::Rate));
        assert_eq!(PageFrame::decode(&[1, 0x12, 0xff]), Err(FrameError::Kind(0x12)));
    }

    #[test]
    fn long_texts_are_cut_at_a_character() {
        let long = "é".repeat(200);
        let mut out = Vec::new();
        put_text(&mut out, &long);
        assert_eq!(u16::from_le_bytes([out[0], out[1]]), 256);
        assert!(std::str::from_utf8(&out[2..]).is_ok());
    }
}
