//! The Stratum V2 client as a state machine, sans I/O, beside v1's `session`: it takes the
//! pool's messages (decoded by SRI's parsers), the shares devices found and the clock's ticks,
//! and returns the same `Action`s as v1 with SV2 messages to send. Channel and job state are
//! SRI's `channels_sv2::client` channels, which also check every share before it is sent.
//!
//! The exchange (SV2 specification, "Mining Protocol"): `SetupConnection` →
//! `SetupConnection.Success` → `OpenExtendedMiningChannel` (or `OpenStandardMiningChannel` for
//! header-only mining) → `.Success` with the channel's target and extranonce prefix; then
//! jobs (`NewExtendedMiningJob` / `NewMiningJob`, future ones activated by `SetNewPrevHash`),
//! `SetTarget`, and `SubmitShares.Success` (which may answer many shares at once, up to a
//! sequence number) or `SubmitShares.Error` (one share).
//!
//! SV2 has no session resumption: channel and job ids belong to one connection, so shares
//! held when a connection ends are journaled, never sent on the next one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::TxMerkleNode;
use bitcoin::hashes::Hash;
use stratum_apps::stratum_core::binary_sv2::U256Owned;
use stratum_apps::stratum_core::channels_sv2::chain_tip::ChainTip;
use stratum_apps::stratum_core::channels_sv2::client::error::{ExtendedChannelError, StandardChannelError};
use stratum_apps::stratum_core::channels_sv2::client::extended::ExtendedChannel;
use stratum_apps::stratum_core::channels_sv2::client::share_accounting::ShareValidationError;
use stratum_apps::stratum_core::channels_sv2::client::standard::StandardChannel;
use stratum_apps::stratum_core::channels_sv2::extranonce_manager::{ExtranoncePrefix, ExtranoncePrefixError};
use stratum_apps::stratum_core::common_messages_sv2::{Protocol as Sv2Protocol, SetupConnectionOwned};
use stratum_apps::stratum_core::mining_sv2::{
    OpenExtendedMiningChannelOwned, OpenStandardMiningChannelOwned, SetNewPrevHashOwned, SubmitSharesExtendedOwned,
    SubmitSharesStandardOwned, UpdateChannelOwned,
};
use stratum_apps::stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};

use super::Message;
use crate::source::stratum::core::{
    Action, Close, HANDSHAKE, MAX_IN_FLIGHT, MAX_UNSENT, Pending, Protocol, Rejection, SILENCE, ShareOutcome, Then,
    USER_AGENT, fail,
};
pub use crate::source::stratum::pool_url::ChannelKind;
use crate::source::stratum::pool_url::{Endpoint, PoolConfig};
use crate::source::{Share, SourceWork};
use crate::wire::stratum_v2::{str255, target};
use crate::work::job::Job;
use crate::work::{
    BlockHash, CompactTarget, Difficulty, Extranonce1, HashRate, JobId, NonceRange, PoolId, Target, VersionMask,
};

/// `SetupConnection` flags of the mining protocol (SV2 specification, 3.1.1): the pool must
/// let us roll version bits; a header-only client also requires standard jobs.
const REQUIRES_STANDARD_JOBS: u32 = 0b001;
const REQUIRES_VERSION_ROLLING: u32 = 0b100;

/// The smallest rollable extranonce an extended channel asks for: with 16 version bits and
/// 2^32 nonces a unit, four bytes last a 10 TH/s device about 80 years of one job.
const MIN_EXTRANONCE_SIZE: u16 = 4;

/// The hash rate a channel is opened with before the devices have been measured (100 MH/s:
/// a laptop GPU's order); `UpdateChannel` corrects it within seconds.
const NOMINAL_HASH_RATE: f64 = 1e8;

/// How far ntime may be rolled ahead of the job's, once header-only work has used every
/// version (seconds). Consensus allows two hours (`channels_sv2::MAX_FUTURE_BLOCK_TIME`); a
/// pool's new job comes long before this is reached.
pub const MAX_TIME_ROLL: u32 = 600;

/// A pool may answer shares in batches (SRI's pool acknowledges every `share_batch_size`
/// shares), so an unanswered share is not a lost one as soon as in v1; but a pool that
/// answers none for this long is left, and the shares go to the journal.
pub const BATCH_ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// What one connection needs to know of its pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    pub user: String,
    pub channel: ChannelKind,
    /// Hashes a second across the devices, sent when opening the channel so that the pool
    /// can set a target; corrected with `UpdateChannel` once the devices are measured.
    pub nominal_hash_rate: f32,
    /// The easiest target wgminer takes (cgminer's --suggest-diff as a floor), or any.
    pub max_target: Option<Target>,
    /// The pool's host and port as dialled, for `SetupConnection`.
    pub host: String,
    pub port: u16,
}

enum Channel {
    Standard(StandardChannel),
    Extended(ExtendedChannel),
}

/// What a channel refused, as SRI's `channels_sv2` says it (its errors implement `Debug`
/// only, so that is how they are shown).
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{0:?}")]
    Extended(ExtendedChannelError),
    #[error("{0:?}")]
    Standard(StandardChannelError),
    #[error("{0:?}")]
    Prefix(ExtranoncePrefixError),
}

/// What both kinds of channel do alike, dispatched in one place.
impl Channel {
    fn id(&self) -> u32 {
        match self {
            Channel::Extended(c) => c.get_channel_id(),
            Channel::Standard(c) => c.get_channel_id(),
        }
    }

    fn on_set_new_prev_hash(&mut self, m: SetNewPrevHashOwned) -> Result<(), ChannelError> {
        match self {
            Channel::Extended(c) => c.on_set_new_prev_hash(m).map_err(ChannelError::Extended),
            Channel::Standard(c) => c.on_set_new_prev_hash(m).map_err(ChannelError::Standard),
        }
    }

    fn set_target(&mut self, target: Target) -> Result<(), ChannelError> {
        match self {
            Channel::Extended(c) => c.set_target(target).map_err(ChannelError::Extended),
            Channel::Standard(c) => c.set_target(target).map_err(ChannelError::Standard),
        }
    }

    fn set_extranonce_prefix(&mut self, prefix: ExtranoncePrefix) -> Result<(), ChannelError> {
        match self {
            Channel::Extended(c) => c.set_extranonce_prefix(prefix).map_err(ChannelError::Extended),
            Channel::Standard(c) => c.set_extranonce_prefix(prefix).map_err(ChannelError::Standard),
        }
    }

    /// The version of job `job_id` while it is open (active or past).
    fn job_version(&self, job_id: u32) -> Option<u32> {
        match self {
            Channel::Extended(c) => c
                .get_active_job()
                .filter(|j| j.job_message.job_id == job_id)
                .or(c.get_past_job(job_id))
                .map(|j| j.job_message.version),
            Channel::Standard(c) => c
                .get_active_job()
                .filter(|j| j.job_message.job_id == job_id)
                .or(c.get_past_job(job_id))
                .map(|j| j.job_message.version),
        }
    }

    fn on_share_rejection(&mut self, reason: &str) {
        match self {
            Channel::Extended(c) => c.on_share_rejection(reason),
            Channel::Standard(c) => c.on_share_rejection(reason),
        }
    }
}

enum Stage {
    Setup,
    Opening,
    Open(Box<Channel>),
}

struct Connection {
    pool: PoolId,
    login: Login,
    opened: Instant,
    last_message: Instant,
    stage: Stage,
    next_sequence: u32,
}

/// The client's state: the connection in hand and the shares it still owes a pool.
pub struct Session {
    generation: u64,
    /// Verified shares that came before the channel was open.
    unsent: VecDeque<Share>,
    /// Shares sent and not yet answered, by sequence number.
    in_flight: BTreeMap<u32, Pending>,
    conn: Option<Connection>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

type Actions = Vec<Action<Message>>;

fn send(message: MiningOwned) -> Action<Message> {
    Action::Send(AnyMessageOwned::Mining(message))
}

fn u256(bytes: [u8; 32]) -> U256Owned {
    U256Owned::from(bytes)
}

fn text(bytes: &[u8]) -> String {
    crate::logging::printable(&String::from_utf8_lossy(bytes))
}

impl Session {
    pub fn new() -> Session {
        // Generations count apart from v1's session, so that a switch between protocols is
        // always a new job to the scheduler.
        Session { generation: 1 << 62, unsent: VecDeque::new(), in_flight: BTreeMap::new(), conn: None }
    }

    fn conn(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("a connection is open")
    }

    fn open_channel(&mut self) -> Actions {
        let conn = self.conn();
        if !matches!(conn.stage, Stage::Setup) {
            return vec![];
        }
        conn.stage = Stage::Opening;
        let login = &conn.login;
        let user_identity = str255(&login.user);
        let max_target = u256(login.max_target.map_or([0xff; 32], |t| t.to_le_bytes()));
        let message = match login.channel {
            ChannelKind::Extended => MiningOwned::OpenExtendedMiningChannel(OpenExtendedMiningChannelOwned {
                request_id: 1,
                user_identity,
                nominal_hash_rate: login.nominal_hash_rate,
                max_target,
                min_extranonce_size: MIN_EXTRANONCE_SIZE,
            }),
            ChannelKind::Standard => MiningOwned::OpenStandardMiningChannel(OpenStandardMiningChannelOwned {
                request_id: 1,
                user_identity,
                nominal_hash_rate: login.nominal_hash_rate,
                max_target,
            }),
        };
        vec![send(message)]
    }

    fn channel(&mut self) -> Option<&mut Channel> {
        match &mut self.conn.as_mut()?.stage {
            Stage::Open(channel) => Some(channel),
            _ => None,
        }
    }

    fn mining(&mut self, message: MiningOwned, now: Instant) -> Actions {
        match message {
            m @ (MiningOwned::OpenExtendedMiningChannelSuccess(_)
            | MiningOwned::OpenStandardMiningChannelSuccess(_)
            | MiningOwned::OpenMiningChannelError(_)) => self.opening(m, now),
            m @ (MiningOwned::NewExtendedMiningJob(_)
            | MiningOwned::NewMiningJob(_)
            | MiningOwned::SetNewPrevHash(_)) => self.job(m, now),
            m @ (MiningOwned::SetTarget(_) | MiningOwned::SetExtranoncePrefix(_)) => self.update(m),
            MiningOwned::SubmitSharesSuccess(m) => self.accepted(m.last_sequence_number, now),
            MiningOwned::SubmitSharesError(m) => {
                let reason = text(m.error_code.as_bytes());
                if let Some(channel) = self.channel() {
                    channel.on_share_rejection(&reason);
                }
                let Some(pending) = self.in_flight.remove(&m.sequence_number) else { return vec![] };
                let mut out = vec![Action::Answered {
                    share: pending.share,
                    outcome: ShareOutcome::Rejected(Rejection::new(reason.clone(), reason)),
                    latency: Some(now.saturating_duration_since(pending.sent)),
                }];
                out.extend(self.flush(now));
                out
            }
            MiningOwned::CloseChannel(m) => {
                fail(format!("the pool closed the channel: {}", text(m.reason_code.as_bytes())))
            }
            _ => vec![],
        }
    }

    /// The pool's answer to opening the channel.
    fn opening(&mut self, message: MiningOwned, now: Instant) -> Actions {
        let user = self.conn().login.user.clone();
        match message {
            MiningOwned::OpenExtendedMiningChannelSuccess(m) => {
                let prefix = ExtranoncePrefix::from_wire(m.extranonce_prefix.to_owned_bytes());
                let channel = prefix.map_err(ChannelError::Prefix).and_then(|prefix| {
                    ExtendedChannel::new(
                        m.channel_id,
                        user,
                        prefix,
                        target(&m.target),
                        self.conn().login.nominal_hash_rate,
                        true,
                        m.extranonce_size,
                        None,
                    )
                    .map_err(ChannelError::Extended)
                });
                self.opened(channel.map(Channel::Extended), now)
            }
            MiningOwned::OpenStandardMiningChannelSuccess(m) => {
                let prefix = ExtranoncePrefix::from_wire(m.extranonce_prefix.to_owned_bytes());
                let channel = prefix.map_err(ChannelError::Prefix).and_then(|prefix| {
                    StandardChannel::new(
                        m.channel_id,
                        user,
                        prefix,
                        target(&m.target),
                        self.conn().login.nominal_hash_rate,
                        None,
                    )
                    .map_err(ChannelError::Standard)
                });
                self.opened(channel.map(Channel::Standard), now)
            }
            MiningOwned::OpenMiningChannelError(e) => fail(format!(
                "the pool refused to open a mining channel for worker {user}: {}",
                text(e.error_code.as_bytes())
            )),
            _ => vec![],
        }
    }

    /// A job, or the new block that activates one.
    fn job(&mut self, message: MiningOwned, now: Instant) -> Actions {
        match message {
            MiningOwned::NewExtendedMiningJob(job) => {
                let active = job.min_ntime.clone().into_inner().is_some();
                let result = match self.channel() {
                    Some(Channel::Extended(c)) if c.get_channel_id() == job.channel_id || job.channel_id != 0 => {
                        c.on_new_extended_mining_job(job).map_err(ChannelError::Extended)
                    }
                    _ => return vec![],
                };
                self.job_changed(result, active, now)
            }
            MiningOwned::NewMiningJob(job) => {
                let active = job.min_ntime.clone().into_inner().is_some();
                let result = match self.channel() {
                    Some(Channel::Standard(c)) => c.on_new_mining_job(job).map_err(ChannelError::Standard),
                    _ => return vec![],
                };
                self.job_changed(result, active, now)
            }
            MiningOwned::SetNewPrevHash(m) => {
                let Some(channel) = self.channel() else { return vec![] };
                let result = channel.on_set_new_prev_hash(m);
                self.job_changed(result, true, now)
            }
            _ => vec![],
        }
    }

    /// The channel's target or extranonce prefix changes.
    fn update(&mut self, message: MiningOwned) -> Actions {
        match message {
            // The new target applies to jobs that come after it (channels_sv2 keeps each
            // job's own target, and checks that job's shares against it).
            MiningOwned::SetTarget(m) => {
                let target = target(&m.maximum_target);
                let Some(channel) = self.channel() else { return vec![] };
                let result = channel.set_target(target);
                match result {
                    Ok(()) => vec![],
                    Err(e) => fail(format!("the pool sent a target the channel cannot take: {e}")),
                }
            }
            MiningOwned::SetExtranoncePrefix(m) => {
                let prefix = match ExtranoncePrefix::from_wire(m.extranonce_prefix.to_owned_bytes()) {
                    Ok(prefix) => prefix,
                    Err(e) => return fail(format!("the pool sent an extranonce prefix wgminer cannot use: {e:?}")),
                };
                let Some(channel) = self.channel() else { return vec![] };
                let result = channel.set_extranonce_prefix(prefix);
                match result {
                    Ok(()) => vec![],
                    Err(e) => fail(format!("the pool sent an extranonce prefix the channel cannot take: {e}")),
                }
            }
            _ => vec![],
        }
    }

    fn opened(&mut self, channel: Result<Channel, ChannelError>, now: Instant) -> Actions {
        match channel {
            Ok(channel) => {
                self.conn().stage = Stage::Open(Box::new(channel));
                self.flush(now)
            }
            Err(e) => fail(format!("the pool opened a channel wgminer cannot use: {e}")),
        }
    }

    /// A job arrived or was activated: publish the active one.
    fn job_changed(&mut self, result: Result<(), ChannelError>, active: bool, now: Instant) -> Actions {
        if let Err(e) = result {
            return vec![Action::Notice(format!("a job from the pool was not taken: {e}"))];
        }
        if !active {
            return vec![];
        }
        let Some(work) = self.work(now) else { return vec![] };
        let difficulty = Difficulty::from_target(&work.target);
        let mut out = vec![Action::Publish { work: Arc::new(work), difficulty }];
        out.extend(self.flush(now));
        out
    }

    /// The channel's active job as work for the scheduler.
    fn work(&mut self, now: Instant) -> Option<SourceWork> {
        self.generation += 1;
        let generation = self.generation;
        let pool = self.conn.as_ref()?.pool;
        let (job, extranonce1, extranonce2_size, target, version_mask) = match self.channel()? {
            Channel::Extended(c) => {
                let active = c.get_active_job()?;
                let m = &active.job_message;
                let job = Job {
                    coinb1: m.coinbase_tx_prefix.to_owned_bytes(),
                    coinb2: m.coinbase_tx_suffix.to_owned_bytes(),
                    merkle_branch: m.merkle_path.clone().into_inner().iter().map(U256Owned::to_array).collect(),
                    ..header_job(m.job_id, m.version, m.min_ntime.clone().into_inner(), c.get_chain_tip()?)
                };
                let mask = if m.version_rolling_allowed { VersionMask::BIP320 } else { VersionMask::NONE };
                (
                    job,
                    Extranonce1(active.extranonce_prefix.clone()),
                    usize::from(c.get_rollable_extranonce_size()),
                    active.target,
                    mask,
                )
            }
            Channel::Standard(c) => {
                let active = c.get_active_job()?;
                let m = &active.job_message;
                let job = Job {
                    root: Some(TxMerkleNode::from_byte_array(m.merkle_root.to_array())),
                    ..header_job(m.job_id, m.version, m.min_ntime.clone().into_inner(), c.get_chain_tip()?)
                };
                // Standard jobs always allow BIP320's general-purpose bits (NewMiningJob.version).
                (job, Extranonce1::default(), 0, active.target, VersionMask::BIP320)
            }
        };
        Some(SourceWork {
            source: pool,
            generation,
            job,
            extranonce1,
            extranonce2_size,
            target,
            version_mask,
            nonces: NonceRange::FULL_RANGE,
            time_roll: MAX_TIME_ROLL,
            received: now,
        })
    }

    /// `SubmitShares.Success`: every share up to `last` not rejected on its own is accepted.
    fn accepted(&mut self, last: u32, now: Instant) -> Actions {
        let answered: Vec<u32> = self.in_flight.range(..=last).map(|(seq, _)| *seq).collect();
        let mut out: Actions = answered
            .into_iter()
            .filter_map(|seq| self.in_flight.remove(&seq))
            .map(|pending| Action::Answered {
                share: pending.share,
                outcome: ShareOutcome::Accepted,
                latency: Some(now.saturating_duration_since(pending.sent)),
            })
            .collect();
        out.extend(self.flush(now));
        out
    }

    /// Sends what waits, while the channel is open and the pool keeps up.
    fn flush(&mut self, now: Instant) -> Actions {
        let mut out = Vec::new();
        while self.in_flight.len() < MAX_IN_FLIGHT && self.channel().is_some() {
            let Some(share) = self.unsent.pop_front() else { break };
            out.extend(self.submit(share, now));
        }
        out
    }

    fn submit(&mut self, share: Share, now: Instant) -> Actions {
        let JobId::Number(job_id) = share.job_id else {
            return vec![Action::Journal { share, reason: "its job id is not an SV2 job id".into() }];
        };
        let conn = self.conn();
        let sequence_number = conn.next_sequence;
        conn.next_sequence = conn.next_sequence.wrapping_add(1);
        let channel = self.channel().expect("checked by flush");
        let Some(job_version) = channel.job_version(job_id) else {
            return stale(share, "its job is no longer open");
        };
        let version = VersionMask::BIP320.apply(job_version, share.version_bits.unwrap_or(0));
        let (message, checked) = match channel {
            Channel::Extended(c) => {
                let Ok(extranonce) = share.extranonce2.0.clone().try_into() else {
                    return vec![Action::Journal { share, reason: "its extranonce is too long for SV2".into() }];
                };
                let m = SubmitSharesExtendedOwned {
                    channel_id: c.get_channel_id(),
                    sequence_number,
                    job_id,
                    nonce: share.nonce,
                    ntime: share.time,
                    version,
                    extranonce,
                };
                let checked = c.validate_share(m.clone());
                (MiningOwned::SubmitSharesExtended(m), checked)
            }
            Channel::Standard(c) => {
                let m = SubmitSharesStandardOwned {
                    channel_id: c.get_channel_id(),
                    sequence_number,
                    job_id,
                    nonce: share.nonce,
                    ntime: share.time,
                    version,
                };
                let checked = c.validate_share(m.clone());
                (MiningOwned::SubmitSharesStandard(m), checked)
            }
        };
        match checked {
            Ok(_) => {
                self.in_flight.insert(sequence_number, Pending { share, sent: now });
                vec![send(message)]
            }
            Err(ShareValidationError::Stale(_)) | Err(ShareValidationError::InvalidJobId(_)) => {
                stale(share, "its job is no longer open")
            }
            Err(ShareValidationError::DuplicateShare(_)) => vec![Action::Answered {
                share,
                outcome: ShareOutcome::Rejected(Rejection::new("duplicate-share", "duplicate share, not sent")),
                latency: None,
            }],
            // The CPU verified the hash against the work's target: a share the channel refuses
            // for anything else is wgminer's bug or a pool that changed the rules under us.
            Err(e) => vec![Action::Journal { share, reason: format!("the channel refused it: {e:?}") }],
        }
    }

    fn release(&mut self, reason: &str) -> Actions {
        let in_flight = std::mem::take(&mut self.in_flight).into_values().map(|p| p.share);
        in_flight.chain(self.unsent.drain(..)).map(|share| Action::Journal { share, reason: reason.into() }).collect()
    }
}

impl Protocol for Session {
    type Out = Message;
    type In = Message;
    type Login = Login;

    fn login(config: &PoolConfig, endpoint: &Endpoint, hash_rate: HashRate) -> Login {
        Login {
            user: config.user.clone(),
            channel: config.channel,
            nominal_hash_rate: hash_rate.per_second().max(NOMINAL_HASH_RATE) as f32,
            max_target: config.suggest_difficulty.map(|d| d.to_target()),
            host: endpoint.host.clone(),
            port: endpoint.port,
        }
    }

    /// A Noise connection to pool `pool` is open: the first message.
    fn connected(&mut self, pool: PoolId, login: Login, now: Instant) -> Actions {
        let flags = match login.channel {
            ChannelKind::Extended => REQUIRES_VERSION_ROLLING,
            ChannelKind::Standard => REQUIRES_VERSION_ROLLING | REQUIRES_STANDARD_JOBS,
        };
        let setup = SetupConnectionOwned {
            protocol: Sv2Protocol::MiningProtocol,
            min_version: 2,
            max_version: 2,
            flags,
            endpoint_host: str255(&login.host),
            endpoint_port: login.port,
            vendor: str255("wgminer"),
            hardware_version: str255("GPU"),
            firmware: str255(USER_AGENT),
            device_id: str255(""),
        };
        self.conn =
            Some(Connection { pool, login, opened: now, last_message: now, stage: Stage::Setup, next_sequence: 0 });
        vec![Action::Send(AnyMessageOwned::Common(CommonMessagesOwned::SetupConnection(setup)))]
    }

    /// A message from the pool.
    fn received(&mut self, message: Message, now: Instant) -> Actions {
        let Some(conn) = self.conn.as_mut() else { return vec![] };
        conn.last_message = now;
        match message {
            AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionSuccess(_)) => self.open_channel(),
            AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionError(e)) => {
                fail(format!("the pool refused the connection: {}", text(e.error_code.as_bytes())))
            }
            AnyMessageOwned::Common(CommonMessagesOwned::Reconnect(_)) => {
                vec![Action::Close(Close { reason: "the pool asked to reconnect".into(), then: Then::Retry })]
            }
            AnyMessageOwned::Mining(message) => self.mining(message, now),
            _ => vec![],
        }
    }

    /// The transport ended: SV2 has no session to resume, so the pool failed.
    fn closed(&mut self, error: Option<String>, _: Instant) -> Actions {
        match error {
            Some(e) => fail(format!("the pool connection ended: {e}")),
            None => fail("the pool connection ended"),
        }
    }

    /// A share a device found and the CPU verified.
    fn share(&mut self, share: Share, now: Instant) -> Actions {
        match &self.conn {
            Some(conn) if conn.pool == share.source => {}
            _ => return vec![Action::Journal { share, reason: "its pool connection is gone".into() }],
        }
        self.unsent.push_back(share);
        let mut out = Vec::new();
        while self.unsent.len() > MAX_UNSENT {
            let share = self.unsent.pop_front().expect("over the limit");
            out.push(Action::Journal { share, reason: "too many shares waiting for the pool".into() });
        }
        out.extend(self.flush(now));
        out
    }

    /// The clock, with the devices' measured rate (hashes a second, 0 before any): a pool
    /// silent for too long, or slow to open the channel, is left; a rate far from the one the
    /// channel was opened with is sent as `UpdateChannel`, so that the pool's target follows.
    fn tick(&mut self, now: Instant, hash_rate: HashRate) -> Actions {
        let hash_rate = hash_rate.per_second();
        let Some(conn) = &self.conn else { return vec![] };
        let nominal = f64::from(conn.login.nominal_hash_rate);
        if hash_rate > 0.0 && (hash_rate / nominal - 1.0).abs() > 0.5 {
            let max_target = u256(conn.login.max_target.map_or([0xff; 32], |t| t.to_le_bytes()));
            let channel_id = self.channel().map(|c| c.id());
            if let Some(channel_id) = channel_id {
                self.conn().login.nominal_hash_rate = hash_rate as f32;
                return vec![send(MiningOwned::UpdateChannel(UpdateChannelOwned {
                    channel_id,
                    nominal_hash_rate: hash_rate as f32,
                    maximum_target: max_target,
                }))];
            }
        }
        let Some(conn) = &self.conn else { return vec![] };
        if !matches!(conn.stage, Stage::Open(_)) && now.saturating_duration_since(conn.opened) > HANDSHAKE {
            return fail(format!("the pool did not open a channel within {} s", HANDSHAKE.as_secs()));
        }
        if now.saturating_duration_since(conn.last_message) > SILENCE {
            return fail(format!("no message from the pool for {} s", SILENCE.as_secs()));
        }
        // A pool may answer shares in batches (SRI's `share_batch_size`), but not never.
        if let Some(oldest) = self.in_flight.values().next() {
            if now.saturating_duration_since(oldest.sent) > BATCH_ANSWER_TIMEOUT {
                let waited = BATCH_ANSWER_TIMEOUT.as_secs();
                return fail(format!("the pool left a share unanswered for {waited} s"));
            }
        }
        vec![]
    }

    /// The connection ended: what it still held is journaled (its ids mean nothing elsewhere).
    fn disconnected(&mut self) -> Actions {
        self.conn = None;
        self.release("the pool connection closed before it was answered")
    }

    /// The miner stops: whatever was not answered is written down.
    fn stop(&mut self) -> Actions {
        self.conn = None;
        self.release("the miner stopped before the pool answered")
    }

    /// Shares the session still holds: unsent and unanswered.
    fn held(&self) -> usize {
        self.unsent.len() + self.in_flight.len()
    }
}

fn stale(share: Share, reason: &str) -> Actions {
    vec![Action::Answered { share, outcome: ShareOutcome::Stale(reason.into()), latency: None }]
}

/// What jobs of both channel kinds share: the header's fields from the job and the chain tip
/// (a future job takes the tip's time), no coinbase and no merkle root yet.
fn header_job(id: u32, version: u32, min_ntime: Option<u32>, tip: &ChainTip) -> Job {
    Job {
        id: JobId::Number(id),
        prev_hash: BlockHash::from_byte_array(tip.prev_hash().to_array()),
        coinb1: Vec::new(),
        coinb2: Vec::new(),
        merkle_branch: Vec::new(),
        version,
        bits: CompactTarget::from_consensus(tip.nbits()),
        time: min_ntime.unwrap_or(tip.min_ntime()),
        clean: true,
        root: None,
    }
}

#[cfg(test)]
mod tests;
