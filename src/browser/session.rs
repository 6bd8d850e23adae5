//! One page's socket, sans I/O: the frames it sends, checked in order against what the host
//! handed it, turned into actions for the socket's task. A frame out of turn ends the session.

use std::collections::VecDeque;

use super::frame::{Answer, FrameError, Hello, PageFrame};
use super::sweeper::DEPTH;
use crate::device::{Shape, VERSIONS_PER_NONCE};
use crate::work::NonceRange;

/// What the socket's task does with a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Attach the page as a device.
    Attach(Hello),
    /// Hand the answer to the page's sweeper.
    Answer(Answer),
}

/// Why a page's socket was closed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("a text message: this socket speaks binary frames only")]
    Text,
    #[error("a second hello")]
    HelloTwice,
    #[error("this wgminer takes no browser devices now (start it with -d browser)")]
    NotMining,
    #[error(
        "the kernel shape {0} is not one the kernel runs (K of 1, 2, 4 or 8, workgroups of 1 to 1024, 1 to 4096 nonces each)"
    )]
    Shape(Shape),
    #[error("an answer to piece {id}, which is not out (answered before, never handed, or out of order)")]
    NotHanded { id: u32 },
    #[error("an answer to piece {id} with another range than the one handed")]
    OtherRange { id: u32 },
    #[error("no hello in time")]
    Silent,
}

impl SessionError {
    /// The WebSocket close code (RFC 6455, 7.4.1): 1003 for a message of a kind not taken,
    /// 1008 for one against the protocol.
    pub fn close_code(&self) -> u16 {
        match self {
            SessionError::Text => 1003,
            SessionError::NotMining => 1013,
            _ => 1008,
        }
    }
}

#[derive(Debug)]
pub struct Session {
    /// Whether the host attaches pages at all.
    takes_devices: bool,
    attached: bool,
    /// Pieces sent and not yet answered, oldest first.
    out: VecDeque<(u32, NonceRange)>,
}

impl Session {
    pub fn new(takes_devices: bool) -> Session {
        Session { takes_devices, attached: false, out: VecDeque::with_capacity(DEPTH) }
    }

    pub fn attached(&self) -> bool {
        self.attached
    }

    /// A piece went out to the page.
    pub fn sent(&mut self, id: u32, range: NonceRange) {
        self.out.push_back((id, range));
    }

    /// A binary frame from the page.
    pub fn received(&mut self, bytes: &[u8]) -> Result<Action, SessionError> {
        match PageFrame::decode(bytes)? {
            PageFrame::Hello(hello) => {
                if self.attached {
                    return Err(SessionError::HelloTwice);
                }
                if !self.takes_devices {
                    return Err(SessionError::NotMining);
                }
                let s = hello.shape;
                if !VERSIONS_PER_NONCE.contains(&s.versions_per_nonce)
                    || !(1..=1024).contains(&s.workgroup_size)
                    || !(1..=4096).contains(&s.nonces_per_invocation)
                {
                    return Err(SessionError::Shape(s));
                }
                self.attached = true;
                Ok(Action::Attach(hello))
            }
            PageFrame::Answer(answer) => {
                // Pages answer in the order handed, as the sweeper waits for them.
                match self.out.front() {
                    Some(&(id, range)) if id == answer.id => {
                        if range != answer.range {
                            return Err(SessionError::OtherRange { id });
                        }
                        self.out.pop_front();
                        Ok(Action::Answer(answer))
                    }
                    _ => Err(SessionError::NotHanded { id: answer.id }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::Candidate;

    fn hello(k: u32) -> Vec<u8> {
        PageFrame::Hello(Hello {
            shape: Shape { workgroup_size: 64, nonces_per_invocation: 64, versions_per_nonce: k },
            rate: 1e6,
            vendor: "v".into(),
            architecture: "a".into(),
            description: "d".into(),
            user_agent: "u".into(),
        })
        .encode()
    }

    fn answer(id: u32, start: u32, count: u64) -> Vec<u8> {
        let candidates = vec![Candidate { nonce: start, version: 0 }];
        PageFrame::Answer(Answer { id, range: NonceRange { start, count }, candidates }).encode()
    }

    #[test]
    fn a_page_says_hello_once_then_answers_what_it_was_handed_in_order() {
        let mut s = Session::new(true);
        assert_eq!(s.received(&answer(0, 0, 64)), Err(SessionError::NotHanded { id: 0 }));
        assert!(matches!(s.received(&hello(8)), Ok(Action::Attach(_))));
        assert_eq!(s.received(&hello(8)), Err(SessionError::HelloTwice));
        s.sent(0, NonceRange { start: 0, count: 64 });
        s.sent(1, NonceRange { start: 64, count: 64 });
        assert_eq!(s.received(&answer(1, 64, 64)), Err(SessionError::NotHanded { id: 1 }));
        assert!(matches!(s.received(&answer(0, 0, 64)), Ok(Action::Answer(a)) if a.id == 0));
        assert_eq!(s.received(&answer(0, 0, 64)), Err(SessionError::NotHanded { id: 0 }));
        assert_eq!(s.received(&answer(1, 64, 128)), Err(SessionError::OtherRange { id: 1 }));
    }

    #[test]
    fn bad_hellos_and_frames_end_the_session() {
        assert!(matches!(Session::new(true).received(&hello(3)), Err(SessionError::Shape(_))));
        assert_eq!(Session::new(false).received(&hello(8)), Err(SessionError::NotMining));
        assert_eq!(Session::new(true).received(&[9, 9]), Err(SessionError::Frame(FrameError::Version(9))));
    }
}
