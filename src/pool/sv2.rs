//! The embedded pool's Stratum V2 side (`wgminer pool --sv2-listen`, `demo --sv2`): the Noise
//! responder signs with the pool's authority key, and each channel is SRI's
//! `channels_sv2::server` channel fed the synthetic chain's templates (`template`), which
//! builds the jobs and checks the shares. One share a batch: every share is answered.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::Target;
use stratum_apps::network_helpers::noise_stream::NoiseTcpStream;
use stratum_apps::stratum_core::binary_sv2::{B032Owned, Str0255Owned, Sv2OptionOwned, U256Owned};
use stratum_apps::stratum_core::channels_sv2::extranonce_manager::ExtranonceAllocator;
use stratum_apps::stratum_core::channels_sv2::server::extended::ExtendedChannel;
use stratum_apps::stratum_core::channels_sv2::server::share_accounting::ShareValidationError;
use stratum_apps::stratum_core::channels_sv2::server::standard::StandardChannel;
use stratum_apps::stratum_core::common_messages_sv2::SetupConnectionSuccessOwned;
use stratum_apps::stratum_core::mining_sv2::{
    OpenExtendedMiningChannelSuccessOwned, OpenMiningChannelErrorOwned, OpenStandardMiningChannelSuccessOwned,
    SetNewPrevHashOwned, SetTargetOwned, SubmitSharesErrorOwned, SubmitSharesSuccessOwned,
};
use stratum_apps::stratum_core::noise_sv2::Responder;
use stratum_apps::stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};
use stratum_apps::stratum_core::template_distribution_sv2::{NewTemplateOwned, SetNewPrevHashOwned as TemplateTip};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use super::{PoolOptions, PoolStats, template};
use crate::source::stratum::v2::key::AuthorityPair;
use crate::source::stratum::v2::transport::{self, Writer};

/// How long the pool's Noise certificate is valid, from each handshake.
const CERT_VALIDITY: Duration = Duration::from_secs(3600);

/// The rollable extranonce each extended channel gets: eight bytes, as v1's extranonce2 of
/// a large pool.
const ROLLABLE: u8 = 8;

/// Shares a minute the channels' targets aim at, from the miner's nominal rate.
const SHARES_PER_MINUTE: f32 = 30.0;

pub struct Sv2Pool {
    pub addr: SocketAddr,
    pub authority: crate::source::stratum::v2::AuthorityKey,
    pub stats: Arc<PoolStats>,
    stop: watch::Sender<bool>,
}

impl Sv2Pool {
    /// `stratum2+tcp://ADDR/KEY`, the URL a miner needs.
    pub fn url(&self) -> String {
        format!("stratum2+tcp://{}/{}", self.addr, self.authority)
    }

    pub async fn start(listen: &str, keys: AuthorityPair, options: PoolOptions) -> std::io::Result<Sv2Pool> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(PoolStats::default());
        let (stop, stop_rx) = watch::channel(false);
        let (tips, _) = broadcast::channel::<u32>(16);
        let height = Arc::new(Mutex::new(1u32));
        tokio::spawn(tip_clock(tips.clone(), height.clone(), options.job_interval, stop_rx.clone()));
        let allocator = allocator();
        let accept_stats = stats.clone();
        tokio::spawn(async move {
            let mut stop_rx = stop_rx;
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => return,
                    conn = listener.accept() => {
                        let Ok((tcp, _)) = conn else { continue };
                        accept_stats.connections.fetch_add(1, Relaxed);
                        let Ok(responder) = Responder::from_authority_kp(&keys.public.bytes(), &keys.secret.into_bytes(), CERT_VALIDITY) else { continue };
                        let height = *height.lock().unwrap_or_else(|p| p.into_inner());
                        let connection = Connection::new(accept_stats.clone(), allocator.clone(), height);
                        let (tips, stop) = (tips.subscribe(), stop_rx.clone());
                        tokio::spawn(async move {
                            let _ = tcp.set_nodelay(true);
                            let Ok(stream) = NoiseTcpStream::accept(tcp, responder, Duration::from_secs(10)).await else { return };
                            connection.run(stream, tips, stop).await;
                        });
                    }
                }
            }
        });
        Ok(Sv2Pool { addr, authority: keys.public, stats, stop })
    }

    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Sv2Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn tip_clock(
    tips: broadcast::Sender<u32>,
    height: Arc<Mutex<u32>>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let next = {
            let mut h = height.lock().unwrap_or_else(|p| p.into_inner());
            *h += 1;
            *h
        };
        let _ = tips.send(next);
    }
}

enum Channel {
    Extended(ExtendedChannel),
    Standard(StandardChannel),
}

/// One allocator for the pool: each channel gets its own extranonce prefix.
pub(crate) fn allocator() -> Arc<Mutex<ExtranonceAllocator>> {
    Arc::new(Mutex::new(ExtranonceAllocator::new(b"wg".to_vec(), 2 + 4 + ROLLABLE, 1 << 16).expect("fits")))
}

/// One miner's connection, sans I/O: messages in, messages out (`run` does the socket).
pub(crate) struct Connection {
    stats: Arc<PoolStats>,
    allocator: Arc<Mutex<ExtranonceAllocator>>,
    height: u32,
    channel: Option<Channel>,
}

fn str255(s: &str) -> Str0255Owned {
    Str0255Owned::new(s.as_bytes().to_vec()).expect("short")
}

fn mining(m: MiningOwned) -> AnyMessageOwned {
    AnyMessageOwned::Mining(m)
}

impl Connection {
    pub(crate) fn new(stats: Arc<PoolStats>, allocator: Arc<Mutex<ExtranonceAllocator>>, height: u32) -> Connection {
        Connection { stats, allocator, height, channel: None }
    }

    async fn run(
        mut self,
        stream: NoiseTcpStream,
        mut tips: broadcast::Receiver<u32>,
        mut stop: watch::Receiver<bool>,
    ) {
        let (read, write) = stream.into_split();
        let mut write = Writer::from(write);
        let mut messages = transport::spawn_reader(read);
        loop {
            let out = tokio::select! {
                _ = stop.changed() => return,
                tip = tips.recv() => match tip {
                    Ok(height) => self.tip(height),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
                message = messages.recv() => match message {
                    Some(Ok(message)) => self.handle(message),
                    _ => return,
                },
            };
            for message in out {
                if !matches!(tokio::time::timeout(Duration::from_secs(10), write.send(message)).await, Ok(Ok(()))) {
                    return;
                }
            }
        }
    }

    /// A new tip: the channel's job for it.
    pub(crate) fn tip(&mut self, height: u32) -> Vec<AnyMessageOwned> {
        self.height = height;
        self.jobs()
    }

    /// A message from the miner: the answers.
    pub(crate) fn handle(&mut self, message: AnyMessageOwned) -> Vec<AnyMessageOwned> {
        match message {
            AnyMessageOwned::Common(CommonMessagesOwned::SetupConnection(_)) => {
                vec![
                    CommonMessagesOwned::SetupConnectionSuccess(SetupConnectionSuccessOwned {
                        used_version: 2,
                        flags: 0,
                    })
                    .into(),
                ]
            }
            AnyMessageOwned::Mining(MiningOwned::OpenExtendedMiningChannel(m)) => {
                let refuse = |code: &str| {
                    vec![mining(MiningOwned::OpenMiningChannelError(OpenMiningChannelErrorOwned {
                        request_id: m.request_id,
                        error_code: str255(code),
                    }))]
                };
                if self.channel.is_some() {
                    return refuse("one-channel-per-connection");
                }
                let allocated = self
                    .allocator
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .allocate_extended(usize::from(m.min_extranonce_size));
                let Ok(prefix) = allocated else { return refuse("min-extranonce-size-too-large") };
                let user = String::from_utf8_lossy(m.user_identity.as_bytes()).into_owned();
                let max_target = Target::from_le_bytes(m.max_target.to_array());
                let channel = ExtendedChannel::new_for_pool(
                    1,
                    user,
                    prefix,
                    max_target,
                    m.nominal_hash_rate,
                    true,
                    u16::from(ROLLABLE),
                    1,
                    SHARES_PER_MINUTE,
                    "wgminer".into(),
                    None,
                );
                let Ok(channel) = channel else { return refuse("max-target-out-of-range") };
                let success = OpenExtendedMiningChannelSuccessOwned {
                    request_id: m.request_id,
                    channel_id: 1,
                    target: U256Owned::from(channel.get_target().to_le_bytes()),
                    extranonce_size: channel.get_rollable_extranonce_size(),
                    extranonce_prefix: B032Owned::new(channel.get_extranonce_prefix().to_vec())
                        .expect("32 bytes at most"),
                    group_channel_id: 0,
                };
                self.channel = Some(Channel::Extended(channel));
                let mut out = vec![mining(MiningOwned::OpenExtendedMiningChannelSuccess(success))];
                out.extend(self.jobs());
                out
            }
            AnyMessageOwned::Mining(MiningOwned::OpenStandardMiningChannel(m)) => {
                let refuse = |code: &str| {
                    vec![mining(MiningOwned::OpenMiningChannelError(OpenMiningChannelErrorOwned {
                        request_id: m.request_id,
                        error_code: str255(code),
                    }))]
                };
                if self.channel.is_some() {
                    return refuse("one-channel-per-connection");
                }
                let allocated = self.allocator.lock().unwrap_or_else(|p| p.into_inner()).allocate_standard();
                let Ok(prefix) = allocated else { return refuse("no-extranonce-left") };
                let user = String::from_utf8_lossy(m.user_identity.as_bytes()).into_owned();
                let max_target = Target::from_le_bytes(m.max_target.to_array());
                let channel = StandardChannel::new_for_pool(
                    1,
                    user,
                    prefix,
                    max_target,
                    m.nominal_hash_rate,
                    1,
                    SHARES_PER_MINUTE,
                    "wgminer".into(),
                    None,
                );
                let Ok(channel) = channel else { return refuse("max-target-out-of-range") };
                let success = OpenStandardMiningChannelSuccessOwned {
                    request_id: m.request_id,
                    channel_id: 1,
                    target: U256Owned::from(channel.get_target().to_le_bytes()),
                    extranonce_prefix: B032Owned::new(channel.get_extranonce_prefix().to_vec())
                        .expect("32 bytes at most"),
                    group_channel_id: 0,
                };
                self.channel = Some(Channel::Standard(channel));
                let mut out = vec![mining(MiningOwned::OpenStandardMiningChannelSuccess(success))];
                out.extend(self.jobs());
                out
            }
            AnyMessageOwned::Mining(MiningOwned::UpdateChannel(m)) => {
                let max_target = Some(Target::from_le_bytes(m.maximum_target.to_array()));
                let target = match &mut self.channel {
                    Some(Channel::Extended(c)) => {
                        c.update_channel(m.nominal_hash_rate, max_target).ok().map(|()| *c.get_target())
                    }
                    Some(Channel::Standard(c)) => {
                        c.update_channel(m.nominal_hash_rate, max_target).ok().map(|()| *c.get_target())
                    }
                    None => None,
                };
                match target {
                    Some(target) => {
                        // New targets apply to new jobs on both sides: send one at once.
                        let mut out = vec![mining(MiningOwned::SetTarget(SetTargetOwned {
                            channel_id: 1,
                            maximum_target: U256Owned::from(target.to_le_bytes()),
                        }))];
                        out.extend(self.jobs());
                        out
                    }
                    None => vec![],
                }
            }
            AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(m)) => {
                let sequence_number = m.sequence_number;
                let checked = match &mut self.channel {
                    Some(Channel::Extended(c)) => Some(c.validate_share(m)),
                    _ => None,
                };
                self.answer(sequence_number, checked)
            }
            AnyMessageOwned::Mining(MiningOwned::SubmitSharesStandard(m)) => {
                let sequence_number = m.sequence_number;
                let checked = match &mut self.channel {
                    Some(Channel::Standard(c)) => Some(c.validate_share(m)),
                    _ => None,
                };
                self.answer(sequence_number, checked)
            }
            _ => vec![],
        }
    }

    fn answer<T>(
        &mut self,
        sequence_number: u32,
        checked: Option<Result<T, ShareValidationError>>,
    ) -> Vec<AnyMessageOwned> {
        let error_code = match checked {
            Some(Ok(_)) => {
                self.stats.accepted.fetch_add(1, Relaxed);
                return vec![mining(MiningOwned::SubmitSharesSuccess(SubmitSharesSuccessOwned {
                    channel_id: 1,
                    last_sequence_number: sequence_number,
                    new_submits_accepted_count: 1,
                    new_shares_sum: 1,
                }))];
            }
            Some(Err(e)) => match e {
                ShareValidationError::Invalid(c)
                | ShareValidationError::Stale(c)
                | ShareValidationError::InvalidJobId(c)
                | ShareValidationError::DoesNotMeetTarget(c)
                | ShareValidationError::VersionRollingNotAllowed(c)
                | ShareValidationError::DuplicateShare(c)
                | ShareValidationError::BadExtranonceSize(c) => c.to_string(),
                other => format!("{other:?}").to_lowercase(),
            },
            None => "invalid-channel-id".into(),
        };
        self.stats.rejected.fetch_add(1, Relaxed);
        vec![mining(MiningOwned::SubmitSharesError(SubmitSharesErrorOwned {
            channel_id: 1,
            sequence_number,
            error_code: str255(&error_code),
        }))]
    }

    /// The template of the current tip into the channel, and its job out as a future job with
    /// the `SetNewPrevHash` that activates it.
    fn jobs(&mut self) -> Vec<AnyMessageOwned> {
        let (template, tip): (NewTemplateOwned, TemplateTip) = template::at(self.height);
        let outputs = vec![template::reward_output()];
        match &mut self.channel {
            Some(Channel::Extended(c)) => {
                if c.on_new_template(template, outputs).is_err() || c.on_set_new_prev_hash(tip.clone()).is_err() {
                    return vec![];
                }
                let Some(job) = c.get_active_job() else { return vec![] };
                let mut future = job.get_job_message().clone();
                future.min_ntime = Sv2OptionOwned::new(None);
                let prev = activate(future.job_id, &tip);
                vec![mining(MiningOwned::NewExtendedMiningJob(future)), mining(MiningOwned::SetNewPrevHash(prev))]
            }
            Some(Channel::Standard(c)) => {
                if c.on_new_template(template, outputs).is_err() || c.on_set_new_prev_hash(tip.clone()).is_err() {
                    return vec![];
                }
                let Some(job) = c.get_active_job() else { return vec![] };
                let mut future = job.get_job_message().clone();
                future.min_ntime = Sv2OptionOwned::new(None);
                let prev = activate(future.job_id, &tip);
                vec![mining(MiningOwned::NewMiningJob(future)), mining(MiningOwned::SetNewPrevHash(prev))]
            }
            None => vec![],
        }
    }
}

fn activate(job_id: u32, tip: &TemplateTip) -> SetNewPrevHashOwned {
    SetNewPrevHashOwned {
        channel_id: 1,
        job_id,
        prev_hash: tip.prev_hash.clone(),
        min_ntime: tip.header_timestamp,
        nbits: tip.n_bits,
    }
}
