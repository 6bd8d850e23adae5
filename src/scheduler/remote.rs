//! A device driven from another thread: the worker owns the `Sweeper` and makes every call
//! into the driver; the device's loop sends it requests and waits for each answer with a
//! deadline. A driver call that never returns (a hung GPU, a lost device whose wait does not
//! end) then costs the worker, never the loop: the loop gives up on it, and the miner, its
//! shutdown and the journal go on.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::device::{DeviceInfo, Fault, Reopen, SweepError, Sweeper};
use crate::work::{Candidate, NonceRange, Work};

type Answer = Result<Option<(NonceRange, Vec<Candidate>)>, SweepError>;

enum Request {
    Queue(Work, NonceRange),
    Next,
    /// Finish what is queued and hand the device back.
    Finish,
}

enum Reply {
    Opened(Result<Traits, SweepError>),
    Queued(Result<(), SweepError>),
    Answer(Answer),
    Finished(Box<dyn Sweeper>),
}

/// What the loop needs to know of a device, read once when it is opened.
#[derive(Clone)]
pub(super) struct Traits {
    pub(super) info: DeviceInfo,
    pub(super) depth: usize,
    pub(super) preferred_chunk: u64,
    pub(super) granule: u64,
    pub(super) versions_per_nonce: u32,
    pub(super) reopener: Option<Arc<dyn Reopen>>,
}

impl Traits {
    fn of(device: &dyn Sweeper) -> Traits {
        Traits {
            info: device.info().clone(),
            depth: device.depth().max(1),
            preferred_chunk: device.preferred_chunk(),
            granule: device.granule().max(1),
            versions_per_nonce: device.versions_per_nonce(),
            reopener: device.reopener(),
        }
    }
}

/// The loop's side of a device on its worker thread.
pub(super) struct Remote {
    pub(super) traits: Traits,
    requests: Sender<Request>,
    replies: Receiver<Reply>,
    worker: JoinHandle<()>,
}

impl Remote {
    /// Moves an open device onto a worker of its own.
    pub(super) fn start(device: Box<dyn Sweeper>, name: &str) -> Remote {
        let traits = Traits::of(device.as_ref());
        let (requests, replies, worker) = spawn(name, move || Some(device));
        Remote { traits, requests, replies, worker }
    }

    /// Opens the device again on a new worker, waiting until `deadline` for the driver; a
    /// worker stuck in the driver past it is handed back to be watched.
    pub(super) fn open(reopen: Arc<dyn Reopen>, name: &str, deadline: Instant) -> Result<Remote, Failed> {
        let (opened_tx, opened_rx) = mpsc::channel();
        let (requests, replies, worker) = spawn(name, move || {
            let opened = reopen.reopen();
            let (reply, device) = match opened {
                Ok(device) => (Ok(Traits::of(device.as_ref())), Some(device)),
                Err(e) => (Err(e), None),
            };
            let _ = opened_tx.send(Reply::Opened(reply));
            device
        });
        match wait(&opened_rx, deadline, name) {
            Ok(Reply::Opened(Ok(traits))) => Ok(Remote { traits, requests, replies, worker }),
            Ok(Reply::Opened(Err(e))) => Err(Failed { error: e, stuck: None }),
            Ok(_) => unreachable!("a new worker's first reply says whether it opened"),
            Err(e) => Err(Failed { error: e, stuck: Some(worker) }),
        }
    }

    pub(super) fn queue(&self, work: &Work, range: NonceRange, deadline: Instant) -> Result<(), SweepError> {
        match self.ask(Request::Queue(work.clone(), range), deadline)? {
            Reply::Queued(result) => result,
            _ => Err(self.broken()),
        }
    }

    pub(super) fn next_result(&self, deadline: Instant) -> Answer {
        match self.ask(Request::Next, deadline)? {
            Reply::Answer(answer) => answer,
            _ => Err(self.broken()),
        }
    }

    /// Lets the device finish what it has queued (results dropped) and hands it back, or
    /// `None` if it does not by `deadline` (its worker is left behind).
    pub(super) fn finish(self, deadline: Instant) -> Option<Box<dyn Sweeper>> {
        match self.ask(Request::Finish, deadline) {
            Ok(Reply::Finished(device)) => Some(device),
            _ => None,
        }
    }

    /// Gives up on a worker stuck in the driver: its thread, to watch until it returns.
    pub(super) fn abandon(self) -> JoinHandle<()> {
        self.worker
    }

    fn ask(&self, request: Request, deadline: Instant) -> Result<Reply, SweepError> {
        self.requests.send(request).map_err(|_| self.broken())?;
        wait(&self.replies, deadline, &self.traits.info.name)
    }

    fn broken(&self) -> SweepError {
        SweepError::new(self.traits.info.name.clone(), "the device's worker thread ended")
    }
}

/// A reopening that failed, and the worker thread if it is stuck in the driver.
pub(super) struct Failed {
    pub(super) error: SweepError,
    pub(super) stuck: Option<JoinHandle<()>>,
}

fn wait(replies: &Receiver<Reply>, deadline: Instant, name: &str) -> Result<Reply, SweepError> {
    let left = deadline.saturating_duration_since(Instant::now());
    replies.recv_timeout(left).map_err(|e| match e {
        RecvTimeoutError::Timeout => SweepError {
            device: name.to_string(),
            message: format!("no answer from the driver within {:.1} s", left.as_secs_f64()),
            fault: Fault::Hung,
        },
        RecvTimeoutError::Disconnected => SweepError::new(name, "the device's worker thread ended"),
    })
}

/// Starts a worker that gets its device from `open` and then serves requests until the loop
/// hangs up or asks it to finish. A worker whose loop gave up on it ends when its driver call
/// returns, its answer unread.
fn spawn(
    name: &str,
    open: impl FnOnce() -> Option<Box<dyn Sweeper>> + Send + 'static,
) -> (Sender<Request>, Receiver<Reply>, JoinHandle<()>) {
    let (requests, inbox) = mpsc::channel::<Request>();
    let (outbox, replies) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(format!("{name} driver"))
        .spawn(move || {
            let Some(mut device) = open() else { return };
            while let Ok(request) = inbox.recv() {
                let reply = match request {
                    Request::Queue(work, range) => Reply::Queued(device.queue(&work, range)),
                    Request::Next => Reply::Answer(device.next_result()),
                    Request::Finish => {
                        while let Ok(Some(_)) = device.next_result() {}
                        let _ = outbox.send(Reply::Finished(device));
                        return;
                    }
                };
                if outbox.send(reply).is_err() {
                    return;
                }
            }
        })
        .expect("a thread for a device's driver calls");
    (requests, replies, worker)
}

/// The least time the watchdog waits for a piece, whatever the device's pace: a GPU's
/// driver may take seconds to compile a pipeline on the first dispatch of a new K.
pub(super) const MIN_PATIENCE: Duration = Duration::from_secs(5);
