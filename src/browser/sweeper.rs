//! A browser page as a `Sweeper`: `queue` hands a piece to the page's socket task, and
//! `next_result` waits for the page's answer to it. The page is trusted with nothing: an answer
//! must be to the oldest piece handed, with that piece's range unchanged, or the device is
//! dropped; what it claims to have found goes through `cpu::verify` in the scheduler like any
//! device's; and only the range handed is credited.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::mpsc as tokio_mpsc;

use super::frame::{Answer, Hello, MAX_PIECE, Piece};
use crate::device::{DeviceInfo, Origin, Shape, SweepError, Sweeper};
use crate::gpu::kernel::KernelParams;
use crate::work::{Candidate, NonceRange, Work};

/// Pieces in flight on a page: one sweeping, one waiting in the page, one on the wire, so that
/// the round trip to a laptop on Wi-Fi never leaves its GPU idle.
pub const DEPTH: usize = 3;

/// How long a piece should take on the page: several of its dispatches, so that the round
/// trips are few against the sweeping.
pub const PIECE_TIME: Duration = Duration::from_millis(400);

/// The longest wait for an answer, however slow the page said it was: past it the page is
/// taken as gone (a tab in the background, a laptop asleep).
const ANSWER_CEILING: Duration = Duration::from_secs(60);

pub struct BrowserSweeper {
    info: DeviceInfo,
    shape: Shape,
    /// Headers a second, as the page measured its shape.
    rate: f64,
    pieces: tokio_mpsc::UnboundedSender<Piece>,
    answers: mpsc::Receiver<Answer>,
    /// Pieces handed and not yet answered, oldest first.
    handed: VecDeque<(u32, NonceRange)>,
    next_id: u32,
}

impl BrowserSweeper {
    /// A page that said `hello`; pieces go out on `pieces`, its answers come in on `answers`.
    /// Either channel closing means the page left.
    pub fn new(hello: &Hello, pieces: tokio_mpsc::UnboundedSender<Piece>, answers: mpsc::Receiver<Answer>) -> Self {
        BrowserSweeper {
            info: describe(hello),
            shape: hello.shape,
            rate: hello.rate,
            pieces,
            answers,
            handed: VecDeque::new(),
            next_id: 0,
        }
    }

    /// The page left for good (its tab closed, Stop pressed, silent): never reopened.
    fn gone(&self, message: impl ToString) -> SweepError {
        SweepError::gone(self.info.name.clone(), message)
    }

    /// An answer's wait: ten times what the pieces out should take (each is sized to
    /// `PIECE_TIME` at the page's own rate), within the ceiling.
    fn answer_deadline(&self) -> Duration {
        (PIECE_TIME * 10 * DEPTH as u32).min(ANSWER_CEILING)
    }
}

/// The device as the API and `wgminer devices` show it: the adapter as WebGPU describes it,
/// the browser as its driver.
pub fn describe(hello: &Hello) -> DeviceInfo {
    let adapter = [hello.description.as_str(), hello.architecture.as_str()].into_iter().find(|s| !s.is_empty());
    let name = match (adapter, hello.vendor.as_str()) {
        (Some(adapter), "") => adapter.to_string(),
        (Some(adapter), vendor) => format!("{vendor} {adapter}"),
        (None, "") => "unnamed adapter".to_string(),
        (None, vendor) => vendor.to_string(),
    };
    DeviceInfo {
        name: crate::logging::printable(&format!("{name} (browser)")),
        backend: "WebGPU".into(),
        vendor: crate::logging::printable(&hello.vendor),
        device_type: "browser".into(),
        driver: crate::logging::printable(&hello.user_agent),
        pci: None,
    }
}

impl Sweeper for BrowserSweeper {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn kernel_shape(&self) -> Option<(Shape, Origin)> {
        Some((self.shape, Origin::Measured { shapes: 0, seconds: 0.0 }))
    }

    /// What the scheduler cuts into `DEPTH + 1` pieces: each `PIECE_TIME` at the page's rate.
    fn preferred_chunk(&self) -> u64 {
        let nonces_a_second = self.rate / f64::from(self.shape.versions_per_nonce.max(1));
        let piece = (nonces_a_second * PIECE_TIME.as_secs_f64()) as u64;
        piece.clamp(self.granule(), u64::from(MAX_PIECE) / 2) * (DEPTH as u64 + 1)
    }

    fn granule(&self) -> u64 {
        u64::from(self.shape.per_group()).max(1)
    }

    fn versions_per_nonce(&self) -> u32 {
        self.shape.versions_per_nonce
    }

    fn depth(&self) -> usize {
        DEPTH
    }

    fn queue(&mut self, work: &Work, range: NonceRange) -> Result<(), SweepError> {
        if self.handed.len() >= DEPTH {
            return Err(SweepError::new(self.info.name.clone(), "queue called with every piece out"));
        }
        if range.count == 0 || range.count > u64::from(MAX_PIECE) {
            let message = format!("a piece holds 1 to {MAX_PIECE} nonces, asked for {}", range.count);
            return Err(SweepError::new(self.info.name.clone(), message));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let params = KernelParams::new(work).dispatch(range.start, range.count as u32);
        self.pieces.send(Piece { id, range, params }).map_err(|_| self.gone("the page closed its socket"))?;
        self.handed.push_back((id, range));
        Ok(())
    }

    fn next_result(&mut self) -> Result<Option<(NonceRange, Vec<Candidate>)>, SweepError> {
        let Some(&(id, range)) = self.handed.front() else { return Ok(None) };
        let answer = match self.answers.recv_timeout(self.answer_deadline()) {
            Ok(answer) => answer,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.gone("the page closed its socket")),
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(self.gone("the page stopped answering")),
        };
        if answer.id != id || answer.range != range {
            let message = format!(
                "the page answered piece {} ({} nonces from {:#010x}), but was waiting on piece {id} ({} from {:#010x})",
                answer.id, answer.range.count, answer.range.start, range.count, range.start
            );
            return Err(SweepError::new(self.info.name.clone(), message));
        }
        self.handed.pop_front();
        Ok(Some((range, answer.candidates)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::{Target, header_from_hex};

    const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

    fn hello() -> Hello {
        Hello {
            shape: Shape { workgroup_size: 64, nonces_per_invocation: 16, versions_per_nonce: 4 },
            rate: 4e6,
            vendor: "google".into(),
            architecture: "swiftshader".into(),
            description: "SwiftShader Device (Subzero)\x1b[2J".into(),
            user_agent: "HeadlessChrome/141".into(),
        }
    }

    fn page() -> (BrowserSweeper, tokio_mpsc::UnboundedReceiver<Piece>, mpsc::Sender<Answer>) {
        let (pieces, pieces_rx) = tokio_mpsc::unbounded_channel();
        let (answers_tx, answers) = mpsc::channel();
        (BrowserSweeper::new(&hello(), pieces, answers), pieces_rx, answers_tx)
    }

    #[test]
    fn it_describes_the_adapter_and_escapes_what_the_page_sent() {
        let info = describe(&hello());
        assert_eq!(info.name, "google SwiftShader Device (Subzero)\\u{1b}[2J (browser)");
        assert_eq!((info.backend.as_str(), info.driver.as_str()), ("WebGPU", "HeadlessChrome/141"));
    }

    #[test]
    fn pieces_are_sized_to_the_rate() {
        let (sweeper, _, _) = page();
        // 4 MH/s at K = 4: 1e6 nonces a second, 400 ms a piece, four pieces a chunk.
        assert_eq!(sweeper.preferred_chunk(), 400_000 * 4);
        assert_eq!(sweeper.granule(), 1024);
    }

    #[test]
    fn answers_must_match_what_was_handed() {
        let (mut sweeper, mut pieces, answers) = page();
        let work = Work::new(header_from_hex(GENESIS).unwrap(), Target::MAX);
        let range = NonceRange { start: 100, count: 1024 };
        sweeper.queue(&work, range).unwrap();
        let piece = pieces.try_recv().unwrap();
        assert_eq!((piece.id, piece.range), (0, range));
        assert_eq!(piece.params, KernelParams::new(&work).dispatch(100, 1024));
        let candidates = vec![Candidate { nonce: 5, version: 0 }];
        answers.send(Answer { id: 0, range, candidates: candidates.clone() }).unwrap();
        assert_eq!(sweeper.next_result().unwrap(), Some((range, candidates)));
        assert_eq!(sweeper.next_result().unwrap(), None);
        // A claim of more nonces than were handed is refused, not credited.
        sweeper.queue(&work, range).unwrap();
        let wider = NonceRange { start: 100, count: 1 << 20 };
        answers.send(Answer { id: 1, range: wider, candidates: vec![] }).unwrap();
        assert!(sweeper.next_result().unwrap_err().message.contains("waiting on piece 1"));
    }

    #[test]
    fn a_closed_socket_is_a_device_gone() {
        let (mut sweeper, pieces, answers) = page();
        let work = Work::new(header_from_hex(GENESIS).unwrap(), Target::MAX);
        sweeper.queue(&work, NonceRange { start: 0, count: 64 }).unwrap();
        drop(answers);
        assert!(sweeper.next_result().unwrap_err().message.contains("closed"));
        drop(pieces);
        assert!(sweeper.queue(&work, NonceRange { start: 0, count: 64 }).is_err());
    }
}
