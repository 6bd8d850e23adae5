//! Browser pages as devices: a page that wgminer serves (`/device`) runs the same WGSL kernel in
//! the browser's WebGPU and sweeps pieces handed to it over a WebSocket (`/api/v1/device`).
//!
//! `frame.rs` is the wire format (versioned binary frames), `session.rs` one socket's rules
//! (sans I/O), `sweeper.rs` the page as a `Sweeper` the scheduler feeds like any device. The
//! socket's I/O is `http::device`'s. Nothing a page sends is trusted: frames are bounded and
//! typed, answers must be to the pieces handed, every candidate is verified on the CPU.

pub mod frame;
pub mod session;
pub mod sweeper;

use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::mpsc as tokio_mpsc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::device::Sweeper;
use crate::stats::Stats;
use crate::work::DeviceId;
use frame::{Answer, Hello, Piece, Status, Welcome};

pub use sweeper::BrowserSweeper;

/// Browser devices at once unless `--browser-devices` says otherwise.
pub const DEFAULT_MAX_DEVICES: usize = 4;

/// Adds a device to the running miner: the id its events carry, or `None` while no miner
/// runs yet (solo waiting for its node).
pub type AttachFn = Arc<dyn Fn(Box<dyn Sweeper>) -> Option<DeviceId> + Send + Sync>;

/// What the HTTP server needs to take browser pages as devices.
pub struct BrowserHost {
    attach: Option<AttachFn>,
    stats: Arc<Stats>,
    slots: Arc<Semaphore>,
    max: usize,
    bench: bool,
}

/// A page attached as a device: where its pieces come from and its answers go.
pub struct Link {
    pub device: DeviceId,
    pub pieces: tokio_mpsc::UnboundedReceiver<Piece>,
    pub answers: mpsc::Sender<Answer>,
}

impl BrowserHost {
    /// Takes up to `max` pages as devices of the miner that `attach` adds to.
    pub fn mining(max: usize, stats: Arc<Stats>, attach: AttachFn) -> BrowserHost {
        BrowserHost { attach: Some(attach), stats, slots: Arc::new(Semaphore::new(max)), max, bench: false }
    }

    /// Takes up to `max` pages at once to be benchmarked by `bench` (`bench --browser`).
    pub fn benching(max: usize, bench: AttachFn) -> BrowserHost {
        BrowserHost { bench: true, ..BrowserHost::mining(max, Arc::default(), bench) }
    }

    pub fn takes_devices(&self) -> bool {
        self.attach.is_some()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A page's place, while fewer than `max` are connected.
    pub fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// The tuner's order, for the page to measure its shape as a native device does.
    pub fn welcome(&self) -> Welcome {
        use crate::gpu::shape;
        Welcome {
            dispatch_ms: crate::gpu::tune::DEFAULT_DISPATCH.as_millis() as u32,
            budget_ms: shape::BUDGET.as_millis() as u32,
            margin_permille: (shape::MARGIN * 1000.0) as u16,
            bench: self.bench,
            workgroup_sizes: shape::WORKGROUP_SIZES.to_vec(),
            versions_per_nonce: shape::VERSIONS_PER_NONCE.to_vec(),
            nonces_per_invocation: shape::NONCES_PER_INVOCATION.to_vec(),
        }
    }

    /// Attaches a page that said hello (`Session` checked it) to the miner.
    pub fn attach(&self, hello: &Hello) -> Option<Link> {
        let attach = self.attach.as_ref()?;
        let (pieces_tx, pieces) = tokio_mpsc::unbounded_channel();
        let (answers, answers_rx) = mpsc::channel();
        let sweeper = BrowserSweeper::new(hello, pieces_tx, answers_rx);
        tracing::info!(
            "browser device attached: {} ({}), shape {}",
            sweeper.info().name,
            sweeper.info().driver,
            hello.shape
        );
        let device = attach(Box::new(sweeper))?;
        Some(Link { device, pieces, answers })
    }

    /// What this device was credited with, for its page to show.
    pub fn status(&self, device: DeviceId) -> Status {
        let Some(d) = self.stats.devices().into_iter().find(|d| d.id == device) else { return Status::default() };
        let counts = d.counts();
        Status {
            device: device.0 as u32,
            hashes: d.hashes(),
            accepted: counts.accepted,
            rejected: counts.rejected + counts.stale,
            hw_errors: d.hw_errors(),
        }
    }
}
