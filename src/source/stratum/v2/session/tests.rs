//! The SV2 session fed decoded messages, and byte-exact frames, without sockets or sleeps.

use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use stratum_apps::stratum_core::binary_sv2::{B032Owned, B064KOwned, Seq0255Owned, Sv2OptionOwned};
use stratum_apps::stratum_core::common_messages_sv2::SetupConnectionSuccessOwned;
use stratum_apps::stratum_core::mining_sv2::{
    NewExtendedMiningJobOwned, OpenExtendedMiningChannelSuccessOwned, OpenMiningChannelErrorOwned,
    OpenStandardMiningChannelSuccessOwned, SetNewPrevHashOwned, SubmitSharesErrorOwned, SubmitSharesSuccessOwned,
};

use super::*;
use crate::wire::stratum_v2::{decode_frame, encode_frame};
use crate::work::{DeviceId, Extranonce2};

fn login(channel: ChannelKind) -> Login {
    Login {
        user: "wgminer.test".into(),
        channel,
        nominal_hash_rate: 1e8,
        max_target: None,
        host: "127.0.0.1".into(),
        port: 34254,
    }
}

fn hex(s: &str) -> Vec<u8> {
    crate::work::hex_decode(&s.split_whitespace().collect::<String>()).unwrap()
}

fn sent(actions: &[Action<Message>]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(encode_frame(m.clone()).unwrap()),
            _ => None,
        })
        .collect()
}

fn published(actions: &[Action<Message>]) -> Vec<SourceWork> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish { work, .. } => Some((**work).clone()),
            _ => None,
        })
        .collect()
}

fn success() -> Message {
    CommonMessagesOwned::SetupConnectionSuccess(SetupConnectionSuccessOwned { used_version: 2, flags: 0 }).into()
}

/// A session with a standard channel open (channel 1, the extranonce prefix and target of SRI's
/// `channels_sv2` test `test_share_validation_block_found`).
fn standard_session(now: Instant) -> Session {
    let mut s = Session::new();
    s.connected(PoolId(0), login(ChannelKind::Standard), now);
    s.received(success(), now);
    let prefix = b"Stratum V2 SRI Pool\0\0\0\0\0\0\0\x01".to_vec();
    let open = OpenStandardMiningChannelSuccessOwned {
        request_id: 1,
        channel_id: 1,
        target: u256([0xff; 32]),
        extranonce_prefix: B032Owned::new(prefix).unwrap(),
        group_channel_id: 0,
    };
    assert!(s.received(AnyMessageOwned::Mining(MiningOwned::OpenStandardMiningChannelSuccess(open)), now).is_empty());
    s
}

/// The frames of SRI's `test_share_validation_block_found` (channels_sv2 8.0.0,
/// `client/standard.rs`), written out byte by byte as the SV2 specification lays them out
/// (frame header: extension type u16 with the channel-message bit, message type u8, length u24,
/// all little-endian): `NewMiningJob` (0x15) for job 1 with no min_ntime (a future job), then
/// `SetNewPrevHash` (0x20) activating it. Its share, nonce 3 at ntime 1745596932, is a block
/// at nBits 0x207fffff with hash 61e8fe82…a94ebb.
#[test]
fn sri_frames_for_a_standard_job_give_the_header_of_its_block() {
    let now = Instant::now();
    let mut s = standard_session(now);
    let mut new_mining_job = hex("0080 15 2d0000
         01000000 01000000 00 00000020
         bdc819f67749222ad170ed32a947a3c01854385693
         47f32c126ba7a9a942ba62");
    let mut set_new_prev_hash = hex("0080 20 300000
         01000000 01000000
         c835fd81d61f2b54b33a3a4c80d51835
         2690cd58ac14fb16d98d15dd15000000
         02b20b68 ffff7f20");
    let job = decode_frame(&mut new_mining_job).unwrap();
    assert!(s.received(job, now).is_empty(), "a future job waits for its prev hash");
    let actions = s.received(decode_frame(&mut set_new_prev_hash).unwrap(), now);
    let work = published(&actions).pop().expect("the activated job is published");
    assert_eq!((work.extranonce2_size, work.version_mask, work.time_roll), (0, VersionMask::BIP320, MAX_TIME_ROLL));
    assert_eq!(work.job.time, 1_745_596_930);

    let mut header = work.job.header(&work.extranonce1, &[], 1_745_596_932, 0x2000_0000);
    header.nonce = 3;
    assert_eq!(header.block_hash().to_string(), "61e8fe82487d10282fdededed636403eb2c8cb05ce792951dd410a9011a94ebb");
    assert!(Target::from_compact(work.job.bits).is_met_by(header.block_hash()), "a block at nBits 0x207fffff");

    // The share goes out as SubmitSharesStandard (0x1a), sequence number 0, byte for byte.
    let share = Share {
        source: PoolId(0),
        job_id: work.job.id.clone(),
        extranonce1: Extranonce1::default(),
        extranonce2: Extranonce2::default(),
        time: 1_745_596_932,
        nonce: 3,
        version_bits: Some(0),
        hash: header.block_hash(),
        device: DeviceId(0),
    };
    let actions = s.share(share, now);
    assert_eq!(sent(&actions), vec![hex("0080 1a 180000  01000000 00000000 01000000 03000000 04b20b68 00000020")]);
    // SubmitShares.Success answers it (and any before it) by sequence number.
    let ok = SubmitSharesSuccessOwned {
        channel_id: 1,
        last_sequence_number: 0,
        new_submits_accepted_count: 1,
        new_shares_sum: 1,
    };
    let answered =
        s.received(AnyMessageOwned::Mining(MiningOwned::SubmitSharesSuccess(ok)), now + Duration::from_millis(30));
    assert!(matches!(
        answered.as_slice(),
        [Action::Answered { outcome: ShareOutcome::Accepted, latency: Some(l), .. }] if *l == Duration::from_millis(30)
    ));
    assert_eq!(s.held(), 0);
}

fn extended_session(now: Instant) -> (Session, SourceWork) {
    let mut s = Session::new();
    let first = s.connected(PoolId(3), login(ChannelKind::Extended), now);
    assert!(matches!(
        first.as_slice(),
        [Action::Send(AnyMessageOwned::Common(CommonMessagesOwned::SetupConnection(m)))] if m.flags == REQUIRES_VERSION_ROLLING
    ));
    let open = s.received(success(), now);
    assert!(matches!(
        open.as_slice(),
        [Action::Send(AnyMessageOwned::Mining(MiningOwned::OpenExtendedMiningChannel(m)))] if m.min_extranonce_size == 4
    ));
    let target = Difficulty::new(16.0).unwrap().to_target().to_le_bytes();
    let opened = OpenExtendedMiningChannelSuccessOwned {
        request_id: 1,
        channel_id: 7,
        target: u256(target),
        extranonce_size: 8,
        extranonce_prefix: B032Owned::new(vec![0xaa, 0xbb]).unwrap(),
        group_channel_id: 0,
    };
    s.received(AnyMessageOwned::Mining(MiningOwned::OpenExtendedMiningChannelSuccess(opened)), now);
    let job = NewExtendedMiningJobOwned {
        channel_id: 7,
        job_id: 42,
        min_ntime: Sv2OptionOwned::new(None),
        version: 0x2000_0000,
        version_rolling_allowed: true,
        merkle_path: Seq0255Owned::new(vec![u256([0x11; 32])]).unwrap(),
        coinbase_tx_prefix: B064KOwned::new(hex(
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0b03",
        ))
        .unwrap(),
        coinbase_tx_suffix: B064KOwned::new(hex("ffffffff0100f2052a010000000000000000")).unwrap(),
    };
    s.received(AnyMessageOwned::Mining(MiningOwned::NewExtendedMiningJob(job)), now);
    let prev = SetNewPrevHashOwned {
        channel_id: 7,
        job_id: 42,
        prev_hash: u256([0x22; 32]),
        min_ntime: 1_700_000_000,
        nbits: 0x1d00_ffff,
    };
    let work = published(&s.received(AnyMessageOwned::Mining(MiningOwned::SetNewPrevHash(prev)), now)).pop().unwrap();
    (s, work)
}

/// An extended channel's job is v1-shaped work: the extranonce prefix is extranonce1, the
/// rollable size extranonce2's, and the coinbase is prefix ‖ extranonce ‖ suffix.
#[test]
fn an_extended_job_becomes_v1_shaped_work() {
    let (_, work) = extended_session(Instant::now());
    assert_eq!(work.source, PoolId(3));
    assert_eq!(work.job.id, JobId::Number(42));
    assert_eq!(work.extranonce1.0, vec![0xaa, 0xbb]);
    assert_eq!(work.extranonce2_size, 8);
    assert_eq!(work.version_mask, VersionMask::BIP320);
    assert_eq!(work.job.prev_hash.to_byte_array(), [0x22; 32]);
    assert_eq!(work.job.bits.to_consensus(), 0x1d00_ffff);
    assert_eq!(work.job.merkle_branch, vec![[0x11; 32]]);
    assert_eq!(Difficulty::from_target(&work.target).value().round(), 16.0);
    assert_eq!(work.job.coinbase(&work.extranonce1, &[0; 8]).len(), 43 + 2 + 8 + 18);
}

fn share_of(work: &SourceWork, nonce: u32) -> Share {
    Share {
        source: work.source,
        job_id: work.job.id.clone(),
        extranonce1: work.extranonce1.clone(),
        extranonce2: Extranonce2(vec![0, 0, 0, 0, 0, 0, 0, 1]),
        time: work.job.time,
        nonce,
        version_bits: Some(0x0000_2000),
        hash: crate::work::BlockHash::all_zeros(),
        device: DeviceId(0),
    }
}

/// A share the pool refuses with `SubmitShares.Error` is a reject, with the pool's code as its
/// reason (SV2 specification 5.3.14; SRI's pool sends codes such as `invalid-job-id`).
#[test]
fn a_refused_share_is_a_reject_with_the_pools_code() {
    let now = Instant::now();
    let (mut s, work) = extended_session(now);
    // A share whose hash does not meet the job's target never leaves (the channel checks it):
    // the CPU would never pass such a share, so it is journaled as wgminer's own error.
    let bad = s.share(share_of(&work, 1), now);
    assert!(matches!(bad.as_slice(), [Action::Journal { reason, .. }] if reason.contains("refused")), "{bad:?}");
    assert_eq!(s.held(), 0);
}

#[test]
fn submit_errors_and_batched_successes_answer_by_sequence_number() {
    let now = Instant::now();
    let (mut s, work) = extended_session(now);
    // Three shares in flight, as the pool sees them: sequence numbers 0, 1 and 2.
    for seq in 0..3 {
        s.in_flight.insert(seq, Pending { share: share_of(&work, seq), sent: now });
    }
    let error = SubmitSharesErrorOwned { channel_id: 7, sequence_number: 1, error_code: str255("invalid-job-id") };
    let out = s.received(AnyMessageOwned::Mining(MiningOwned::SubmitSharesError(error)), now);
    assert!(
        matches!(
            out.as_slice(),
            [Action::Answered { share, outcome: ShareOutcome::Rejected(e), .. }] if share.nonce == 1 && e.code == "invalid-job-id"
        ),
        "{out:?}"
    );
    let ok = SubmitSharesSuccessOwned {
        channel_id: 7,
        last_sequence_number: 2,
        new_submits_accepted_count: 2,
        new_shares_sum: 32,
    };
    let out = s.received(AnyMessageOwned::Mining(MiningOwned::SubmitSharesSuccess(ok)), now);
    let accepted: Vec<u32> = out
        .iter()
        .filter_map(|a| match a {
            Action::Answered { share, outcome: ShareOutcome::Accepted, .. } => Some(share.nonce),
            _ => None,
        })
        .collect();
    assert_eq!(accepted, vec![0, 2]);
}

/// `OpenMiningChannel.Error` (SV2 specification 5.3.4; SRI's pool answers e.g.
/// `unknown-user` or `max-target-out-of-range`) ends the connection like a refused v1
/// authorization: the failover moves on.
#[test]
fn a_refused_channel_fails_the_pool_with_its_code() {
    let now = Instant::now();
    let mut s = Session::new();
    s.connected(PoolId(0), login(ChannelKind::Extended), now);
    s.received(success(), now);
    let error = OpenMiningChannelErrorOwned { request_id: 1, error_code: str255("unknown-user") };
    let out = s.received(AnyMessageOwned::Mining(MiningOwned::OpenMiningChannelError(error)), now);
    assert!(
        matches!(
            out.as_slice(),
            [Action::Close(Close { reason, then: Then::Fail })] if reason.contains("wgminer.test") && reason.contains("unknown-user")
        ),
        "{out:?}"
    );
}

/// Shares held when the connection ends cannot be sent on another (their channel and job ids
/// die with it): they are journaled, never dropped.
#[test]
fn shares_held_at_a_disconnect_are_journaled() {
    let now = Instant::now();
    let (mut s, work) = extended_session(now);
    s.in_flight.insert(0, Pending { share: share_of(&work, 9), sent: now });
    let out = s.disconnected();
    assert!(matches!(out.as_slice(), [Action::Journal { share, .. }] if share.nonce == 9));
    // A share that arrives with no connection goes to the journal at once.
    let out = s.share(share_of(&work, 10), now);
    assert!(matches!(out.as_slice(), [Action::Journal { share, .. }] if share.nonce == 10));
}

#[test]
fn a_pool_that_never_opens_a_channel_or_falls_silent_is_left() {
    let now = Instant::now();
    let mut s = Session::new();
    s.connected(PoolId(0), login(ChannelKind::Extended), now);
    assert!(s.tick(now + HANDSHAKE / 2, HashRate::new(0.0)).is_empty());
    assert!(matches!(
        s.tick(now + HANDSHAKE * 2, HashRate::new(0.0)).as_slice(),
        [Action::Close(Close { then: Then::Fail, .. })]
    ));
    let (mut s, _) = extended_session(now);
    assert!(s.tick(now + SILENCE / 2, HashRate::new(0.0)).is_empty());
    assert!(matches!(
        s.tick(now + SILENCE * 2, HashRate::new(0.0)).as_slice(),
        [Action::Close(Close { then: Then::Fail, .. })]
    ));
}

/// The channel is opened at a guessed rate; the measured one goes to the pool as
/// `UpdateChannel` (0x16) so that its target follows, and only when it is far off.
#[test]
fn the_measured_rate_updates_the_channel() {
    let now = Instant::now();
    let (mut s, _) = extended_session(now);
    assert!(s.tick(now, HashRate::new(1.2e8)).is_empty(), "within half of the nominal rate");
    let out = s.tick(now, HashRate::new(1.5e7));
    assert_eq!(sent(&out).len(), 1);
    assert!(matches!(
        out.as_slice(),
        [Action::Send(AnyMessageOwned::Mining(MiningOwned::UpdateChannel(m)))] if m.channel_id == 7 && m.nominal_hash_rate == 1.5e7
    ));
    assert!(s.tick(now, HashRate::new(1.6e7)).is_empty());
}
