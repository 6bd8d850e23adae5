//! The embedded pool's Stratum V2 side (`wgminer pool --sv2-listen`, `demo --sv2`): the Noise
//! responder signs with the pool's authority key, and each channel is SRI's
//! `channels_sv2::server` channel fed the synthetic chain's templates (`template`), which
//! builds the jobs and checks the shares. One share a batch: every share is answered.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stratum_apps::network_helpers::noise_stream::NoiseTcpStream;
use stratum_apps::stratum_core::binary_sv2::{B032Owned, B0255Owned, Str0255Owned, Sv2OptionOwned, U256Owned};
use stratum_apps::stratum_core::channels_sv2::extranonce_manager::ExtranonceAllocator;
use stratum_apps::stratum_core::channels_sv2::server::extended::ExtendedChannel;
use stratum_apps::stratum_core::channels_sv2::server::share_accounting::ShareValidationError;
use stratum_apps::stratum_core::channels_sv2::server::standard::StandardChannel;
use stratum_apps::stratum_core::common_messages_sv2::SetupConnectionSuccessOwned;
use stratum_apps::stratum_core::mining_sv2::{
    OpenExtendedMiningChannelSuccessOwned, OpenMiningChannelErrorOwned, OpenStandardMiningChannelSuccessOwned,
    SetNewPrevHashOwned, SetTargetOwned, SubmitSharesErrorOwned, SubmitSharesSuccessOwned, UpdateChannelOwned,
};
use stratum_apps::stratum_core::noise_sv2::Responder;
use stratum_apps::stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};
use stratum_apps::stratum_core::template_distribution_sv2::{NewTemplateOwned, SetNewPrevHashOwned as TemplateTip};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use super::{PoolOptions, PoolStats, template};
use crate::wire::stratum_v2::{self, AuthorityPair, Writer, str255, target};
use crate::work::Target;

/// How long the pool's Noise certificate is valid, from each handshake.
const CERT_VALIDITY: Duration = Duration::from_secs(3600);

/// The rollable extranonce each extended channel gets: eight bytes, as v1's extranonce2 of
/// a large pool.
const ROLLABLE: u8 = 8;

/// Shares a minute the channels' targets aim at, from the miner's nominal rate.
const SHARES_PER_MINUTE: f32 = 30.0;

pub struct Sv2Pool {
    pub addr: SocketAddr,
    pub authority: crate::wire::stratum_v2::AuthorityKey,
    pub stats: Arc<PoolStats>,
    stop: super::Shutdown,
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
        let (stop, stop_rx) = super::Shutdown::new();
        let (tips, _) = broadcast::channel::<u32>(16);
        let height = Arc::new(Mutex::new(1u32));
        let (clock_tips, clock_height) = (tips.clone(), height.clone());
        tokio::spawn(super::chain_clock(options.job_interval, stop_rx.clone(), move |tip| {
            *clock_height.lock().unwrap_or_else(|p| p.into_inner()) = tip;
            let _ = clock_tips.send(tip);
        }));
        let allocator = allocator();
        let session_stats = stats.clone();
        let limits = super::limits(&options);
        super::accept_until_stopped(listener, stats.clone(), limits, stop_rx.clone(), move |tcp, ticket| {
            let responder =
                Responder::from_authority_kp(&keys.public.bytes(), &keys.secret.into_bytes(), CERT_VALIDITY);
            let height = *height.lock().unwrap_or_else(|p| p.into_inner());
            let connection = Connection::new(session_stats.clone(), allocator.clone(), height);
            let (tips, stop) = (tips.subscribe(), stop_rx.clone());
            async move {
                let login_by = ticket.deadline();
                let Ok(responder) = responder else { return };
                let handshake = NoiseTcpStream::accept(tcp, responder, Duration::from_secs(10));
                let Ok(Ok(stream)) = tokio::time::timeout_at(login_by, handshake).await else { return };
                let (read, write) = stream.into_split();
                let messages = stratum_v2::spawn_reader(read);
                super::serve(connection, messages, Writer::from(write), tips, ticket, stop).await;
            }
        });
        Ok(Sv2Pool { addr, authority: keys.public, stats, stop })
    }

    pub fn shutdown(&self) {
        self.stop.now();
    }
}

enum Channel {
    Extended(ExtendedChannel),
    Standard(StandardChannel),
}

/// Which channel a miner asks for.
enum Opening {
    Extended { min_extranonce_size: u16 },
    Standard,
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
    /// Jobs sent for the same tip (template ids apart).
    refreshes: u32,
    channel: Option<Channel>,
}

fn mining(m: MiningOwned) -> AnyMessageOwned {
    AnyMessageOwned::Mining(m)
}

impl Connection {
    pub(crate) fn new(stats: Arc<PoolStats>, allocator: Arc<Mutex<ExtranonceAllocator>>, height: u32) -> Connection {
        Connection { stats, allocator, height, refreshes: 0, channel: None }
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
                let opening = Opening::Extended { min_extranonce_size: m.min_extranonce_size };
                self.open(m.request_id, &m.user_identity, &m.max_target, m.nominal_hash_rate, opening)
            }
            AnyMessageOwned::Mining(MiningOwned::OpenStandardMiningChannel(m)) => {
                self.open(m.request_id, &m.user_identity, &m.max_target, m.nominal_hash_rate, Opening::Standard)
            }
            AnyMessageOwned::Mining(MiningOwned::UpdateChannel(m)) => self.update(&m),
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

    /// `UpdateChannel`: the target for the miner's measured rate, with a job under it.
    fn update(&mut self, m: &UpdateChannelOwned) -> Vec<AnyMessageOwned> {
        let max_target = Some(target(&m.maximum_target));
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
                // Channels keep a target per job on both sides: the new one comes with
                // a new job, active at once, while the earlier jobs stay open (no
                // SetNewPrevHash), so shares found on them are not made stale.
                let mut out = vec![mining(MiningOwned::SetTarget(SetTargetOwned {
                    channel_id: 1,
                    maximum_target: U256Owned::from(target.to_le_bytes()),
                }))];
                out.extend(self.job_now());
                out
            }
            None => vec![],
        }
    }

    /// `Open*MiningChannel`: one channel a connection, with an extranonce prefix of its own and
    /// a target for the miner's nominal rate; its first job follows the success.
    fn open(
        &mut self,
        request_id: u32,
        user: &Str0255Owned,
        max_target: &U256Owned,
        hash_rate: f32,
        opening: Opening,
    ) -> Vec<AnyMessageOwned> {
        let refuse = |code: &'static str| {
            vec![mining(MiningOwned::OpenMiningChannelError(OpenMiningChannelErrorOwned {
                request_id,
                error_code: str255(code),
            }))]
        };
        if self.channel.is_some() {
            return refuse("one-channel-per-connection");
        }
        let user = String::from_utf8_lossy(user.as_bytes()).into_owned();
        let max_target = target(max_target);
        let mut allocator = self.allocator.lock().unwrap_or_else(|p| p.into_inner());
        let opened = match opening {
            Opening::Extended { min_extranonce_size } => {
                extended(&mut allocator, min_extranonce_size, request_id, user, max_target, hash_rate)
            }
            Opening::Standard => standard(&mut allocator, request_id, user, max_target, hash_rate),
        };
        let (channel, success) = match opened {
            Ok(opened) => opened,
            Err(code) => return refuse(code),
        };
        drop(allocator);
        self.channel = Some(channel);
        let mut out = vec![mining(success)];
        out.extend(self.jobs());
        out
    }

    /// The tip's template again as a job active at once (a non-future template, under an id
    /// of its own), beside the jobs already open.
    fn job_now(&mut self) -> Vec<AnyMessageOwned> {
        let (mut template, _) = template::at(self.height);
        self.refreshes += 1;
        template.future_template = false;
        template.template_id |= u64::from(self.refreshes) << 32;
        // A coinbase of its own, or the miner would sweep the headers it swept already and
        // find the same shares again: duplicates.
        let mut script_sig = template.coinbase_prefix.to_owned_bytes();
        script_sig
            .extend(bitcoin::script::Builder::new().push_int(i64::from(self.refreshes)).into_script().into_bytes());
        template.coinbase_prefix = B0255Owned::new(script_sig).expect("a few bytes");
        let outputs = vec![template::reward_output()];
        let job = match &mut self.channel {
            Some(Channel::Extended(c)) => c
                .on_new_template(template, outputs)
                .ok()
                .and_then(|()| c.get_active_job())
                .map(|job| MiningOwned::NewExtendedMiningJob(job.get_job_message().clone())),
            Some(Channel::Standard(c)) => c
                .on_new_template(template, outputs)
                .ok()
                .and_then(|()| c.get_active_job())
                .map(|job| MiningOwned::NewMiningJob(job.get_job_message().clone())),
            None => None,
        };
        job.map(mining).into_iter().collect()
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

impl super::Served for Connection {
    type In = AnyMessageOwned;
    type Out = AnyMessageOwned;
    type Tip = u32;

    fn logged_in(&self) -> bool {
        self.channel.is_some()
    }

    fn received(&mut self, message: AnyMessageOwned) -> Vec<AnyMessageOwned> {
        self.handle(message)
    }

    fn tip(&mut self, height: u32) -> Vec<AnyMessageOwned> {
        Connection::tip(self, height)
    }
}

/// A pool-side extended channel for a miner, and its `OpenExtendedMiningChannel.Success`; or
/// the SV2 error code that refuses it.
fn extended(
    allocator: &mut ExtranonceAllocator,
    min_extranonce_size: u16,
    request_id: u32,
    user: String,
    max_target: Target,
    hash_rate: f32,
) -> Result<(Channel, MiningOwned), &'static str> {
    let prefix =
        allocator.allocate_extended(usize::from(min_extranonce_size)).map_err(|_| "min-extranonce-size-too-large")?;
    let channel = ExtendedChannel::new_for_pool(
        1,
        user,
        prefix,
        max_target,
        hash_rate,
        true,
        u16::from(ROLLABLE),
        1,
        SHARES_PER_MINUTE,
        "wgminer".into(),
        None,
    )
    .map_err(|_| "max-target-out-of-range")?;
    let success = OpenExtendedMiningChannelSuccessOwned {
        request_id,
        channel_id: 1,
        target: U256Owned::from(channel.get_target().to_le_bytes()),
        extranonce_size: channel.get_rollable_extranonce_size(),
        extranonce_prefix: B032Owned::new(channel.get_extranonce_prefix().to_vec()).expect("32 bytes at most"),
        group_channel_id: 0,
    };
    Ok((Channel::Extended(channel), MiningOwned::OpenExtendedMiningChannelSuccess(success)))
}

/// A pool-side standard channel and its `OpenStandardMiningChannel.Success`, or the refusal.
fn standard(
    allocator: &mut ExtranonceAllocator,
    request_id: u32,
    user: String,
    max_target: Target,
    hash_rate: f32,
) -> Result<(Channel, MiningOwned), &'static str> {
    let prefix = allocator.allocate_standard().map_err(|_| "no-extranonce-left")?;
    let channel = StandardChannel::new_for_pool(
        1,
        user,
        prefix,
        max_target,
        hash_rate,
        1,
        SHARES_PER_MINUTE,
        "wgminer".into(),
        None,
    )
    .map_err(|_| "max-target-out-of-range")?;
    let success = OpenStandardMiningChannelSuccessOwned {
        request_id,
        channel_id: 1,
        target: U256Owned::from(channel.get_target().to_le_bytes()),
        extranonce_prefix: B032Owned::new(channel.get_extranonce_prefix().to_vec()).expect("32 bytes at most"),
        group_channel_id: 0,
    };
    Ok((Channel::Standard(channel), MiningOwned::OpenStandardMiningChannelSuccess(success)))
}

#[cfg(test)]
mod tests {
    use stratum_apps::stratum_core::mining_sv2::{
        NewExtendedMiningJobOwned, OpenExtendedMiningChannelOwned, SubmitSharesExtendedOwned, UpdateChannelOwned,
    };

    use super::*;

    fn messages(out: Vec<AnyMessageOwned>) -> Vec<MiningOwned> {
        out.into_iter()
            .map(|m| match m {
                AnyMessageOwned::Mining(m) => m,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Shares on `job` with nonces from 0 until one is accepted; the error codes of the others.
    fn mine(conn: &mut Connection, job: &NewExtendedMiningJobOwned, ntime: u32, sequence: &mut u32) -> Vec<String> {
        let mut errors = Vec::new();
        for nonce in 0..256 {
            *sequence += 1;
            let share = SubmitSharesExtendedOwned {
                channel_id: 1,
                sequence_number: *sequence,
                job_id: job.job_id,
                nonce,
                ntime,
                version: job.version,
                extranonce: vec![0; usize::from(ROLLABLE)].try_into().unwrap(),
            };
            match &messages(conn.handle(mining(MiningOwned::SubmitSharesExtended(share))))[..] {
                [MiningOwned::SubmitSharesSuccess(_)] => return errors,
                [MiningOwned::SubmitSharesError(e)] => {
                    errors.push(String::from_utf8_lossy(e.error_code.as_bytes()).into_owned())
                }
                other => panic!("{other:?}"),
            }
        }
        panic!("no share accepted on job {} in 256 nonces: {errors:?}", job.job_id);
    }

    /// UpdateChannel brings a new target with a job active at once and keeps the earlier job
    /// open: a share found on it is still accepted, not stale (it was retired before, and the
    /// miner's first shares after its rate was measured came back stale).
    #[test]
    fn update_channel_keeps_the_open_jobs() {
        let mut conn = Connection::new(Arc::new(PoolStats::default()), allocator(), 7);
        let open = OpenExtendedMiningChannelOwned {
            request_id: 1,
            user_identity: str255("w"),
            nominal_hash_rate: 1.0,
            max_target: U256Owned::from([0xff; 32]),
            min_extranonce_size: u16::from(ROLLABLE),
        };
        let out = messages(conn.handle(mining(MiningOwned::OpenExtendedMiningChannel(open))));
        let [
            MiningOwned::OpenExtendedMiningChannelSuccess(_),
            MiningOwned::NewExtendedMiningJob(first),
            MiningOwned::SetNewPrevHash(prev),
        ] = &out[..]
        else {
            panic!("{out:?}")
        };
        assert_eq!(first.min_ntime.clone().into_inner(), None, "a future job, activated by SetNewPrevHash");
        let update =
            UpdateChannelOwned { channel_id: 1, nominal_hash_rate: 2.0, maximum_target: U256Owned::from([0xff; 32]) };
        let out = messages(conn.handle(mining(MiningOwned::UpdateChannel(update))));
        let [MiningOwned::SetTarget(_), MiningOwned::NewExtendedMiningJob(second)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(second.min_ntime.clone().into_inner(), Some(prev.min_ntime), "active at once");
        assert_ne!(second.job_id, first.job_id);
        assert_ne!(second.coinbase_tx_prefix, first.coinbase_tx_prefix, "a coinbase of its own");

        let mut sequence = 0;
        for job in [first, second] {
            let errors = mine(&mut conn, job, prev.min_ntime, &mut sequence);
            assert!(errors.iter().all(|e| e == "difficulty-too-low"), "job {}: {errors:?}", job.job_id);
        }
    }
}
