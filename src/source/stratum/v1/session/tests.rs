//! Scripted exchanges with the pools' own words: lines in, exact lines and actions out. No
//! socket, no sleep: time is an argument.

use super::*;
use crate::work::{DeviceId, Extranonce2, hex_decode};

const SLUSH_SUBSCRIBED: &str = r#"{"id": 2, "result": [[["mining.set_difficulty", "b4b6693b72a50c7116db18d6497cac52"], ["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null}"#;
const SLUSH_NOTIFY: &str = r#"{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", [], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}"#;
const CONFIGURE: &str = r#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]}"#;

fn login() -> Login {
    Login { user: "worker.1".into(), pass: "x".into(), suggest_difficulty: None }
}

/// The lines the actions send.
fn sent(actions: &[Action]) -> Vec<String> {
    actions.iter().filter_map(|a| if let Action::Send(m) = a { Some(m.to_line()) } else { None }).collect()
}

fn closes(actions: &[Action]) -> Option<&Close> {
    actions.iter().find_map(|a| if let Action::Close(c) = a { Some(c) } else { None })
}

fn published(actions: &[Action]) -> Vec<Arc<SourceWork>> {
    actions
        .iter()
        .filter_map(|a| if let Action::Publish { work, .. } = a { Some(work.clone()) } else { None })
        .collect()
}

struct Script {
    session: Session,
    t0: Instant,
}

impl Script {
    fn new() -> Script {
        Script { session: Session::new(), t0: Instant::now() }
    }

    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    fn connect(&mut self, secs: u64) -> Vec<Action> {
        self.connect_as(login(), secs)
    }

    fn connect_as(&mut self, login: Login, secs: u64) -> Vec<Action> {
        self.session.disconnected();
        self.session.connected(PoolId(0), login, self.at(secs))
    }

    /// A line from the pool, read as the driver reads it.
    fn pool(&mut self, line: &str, secs: u64) -> Vec<Action> {
        let message = ServerMessage::parse(line, |id| self.session.expected(id)).unwrap();
        self.session.message(message, self.at(secs))
    }

    /// Subscribed (slush's answer) and authorized.
    fn mining(&mut self) -> Vec<Action> {
        let mut out = self.connect(0);
        out.extend(self.pool(SLUSH_SUBSCRIBED, 0));
        out.extend(self.pool(r#"{"id":3,"result":true,"error":null}"#, 0));
        out
    }
}

fn share_of(work: &SourceWork, nonce: u32) -> Share {
    Share {
        source: work.source,
        job_id: work.job.id.clone(),
        extranonce1: work.extranonce1.clone(),
        extranonce2: Extranonce2(vec![0, 0, 0, 1]),
        time: work.job.time,
        nonce,
        version_bits: None,
        hash: bitcoin::BlockHash::from_byte_array([0; 32]),
        device: DeviceId(0),
    }
}

use bitcoin::hashes::Hash;

#[test]
fn the_opening_lines_are_configure_then_subscribe() {
    let mut s = Script::new();
    assert_eq!(sent(&s.connect(0)), [CONFIGURE, r#"{"id":2,"method":"mining.subscribe","params":["wgminer/0.1.0"]}"#]);
    let out = s.pool(SLUSH_SUBSCRIBED, 0);
    assert_eq!(sent(&out), [r#"{"id":3,"method":"mining.authorize","params":["worker.1","x"]}"#]);
    // Optional requests follow the authorization.
    assert_eq!(
        sent(&s.pool(r#"{"id":3,"result":true,"error":null}"#, 0)),
        [r#"{"id":4,"method":"mining.extranonce.subscribe","params":[]}"#]
    );
    // A resumed subscription names slush's session id.
    let out = s.connect(1);
    assert_eq!(
        sent(&out)[1],
        r#"{"id":2,"method":"mining.subscribe","params":["wgminer/0.1.0","ae6812eb4cd7735a302a8a9dd95cf71f"]}"#
    );
}

/// ckpool before version rolling: its stratifier (ckpool src/stratifier.c, parse_method:
/// "Dropping %s from unsubscribed client", then connector_drop_client) closes the connection
/// on any method but subscribe/auth before the subscription. BIP310 says the same: "if a miner
/// sends an unknown message to a server, the server closes the connection (not all
/// implementations do that, but some do)".
#[test]
fn a_pool_that_drops_the_miner_at_mining_configure_gets_a_connection_without_it() {
    let mut s = Script::new();
    assert_eq!(sent(&s.connect(0))[0], CONFIGURE);
    let out = s.session.closed(None, s.at(0));
    let close = closes(&out).expect("closed");
    assert_eq!(close.then, Then::Retry);
    assert!(
        matches!(&out[0], Action::Notice(n) if n.contains("mining.configure") && n.contains("without version rolling")),
        "{out:?}"
    );
    assert!(s.session.quirks(PoolId(0)).no_configure);
    // Remembered for this pool: the next connection opens with subscribe, and mines.
    assert_eq!(sent(&s.connect(1)), [r#"{"id":1,"method":"mining.subscribe","params":["wgminer/0.1.0"]}"#]);
    let subscribed = SLUSH_SUBSCRIBED.replace(r#""id": 2"#, r#""id": 1"#);
    assert_eq!(sent(&s.pool(&subscribed, 1)).len(), 1);
    let work = published(&s.pool(SLUSH_NOTIFY, 1));
    assert_eq!(work[0].version_mask, VersionMask::NONE);
    // A later close is the pool's failure, not the method's.
    assert_eq!(closes(&s.session.closed(None, s.at(100))).unwrap().then, Then::Fail);
}

/// A pool that answers configure with an error (unknown method, as JSON-RPC servers do): the
/// session goes on without version rolling, and the next connection does not ask again.
#[test]
fn a_configure_error_is_remembered_without_closing() {
    let mut s = Script::new();
    s.connect(0);
    let out = s.pool(r#"{"id":1,"result":null,"error":[20,"Method 'mining.configure' not found",null]}"#, 0);
    assert!(matches!(&out[..], [Action::Notice(n)] if n.contains("does not take mining.configure")), "{out:?}");
    assert!(s.session.quirks(PoolId(0)).no_configure);
    s.pool(SLUSH_SUBSCRIBED, 0);
    assert_eq!(published(&s.pool(SLUSH_NOTIFY, 0))[0].version_mask, VersionMask::NONE);
    assert_eq!(sent(&s.connect(1)).len(), 1);
}

/// A pool that never answers configure: if it answers subscribe, mining goes on without
/// rolling; if it answers nothing for 10 s, the next connection leaves configure out.
#[test]
fn a_pool_that_never_answers_configure() {
    let mut s = Script::new();
    s.connect(0);
    s.pool(SLUSH_SUBSCRIBED, 1);
    assert!(s.session.tick(s.at(20), HashRate::ZERO).is_empty());
    assert!(!s.session.quirks(PoolId(0)).no_configure);

    let mut s = Script::new();
    s.connect(0);
    assert!(s.session.tick(s.at(9), HashRate::ZERO).is_empty());
    let out = s.session.tick(s.at(10), HashRate::ZERO);
    let close = closes(&out).unwrap();
    assert_eq!(close.then, Then::Retry);
    assert!(s.session.quirks(PoolId(0)).no_configure);
    // Said once: "after mining.configure after mining.configure" once.
    assert_eq!(close.reason.matches("after mining.configure").count(), 1, "{}", close.reason);
    assert!(close.reason.contains("did not answer mining.subscribe after mining.configure"), "{}", close.reason);
}

/// The grant is intersected with our mask; BIP310's `mining.set_version_mask` example
/// ("00003000") applies at once: the current job goes out again under the new mask.
#[test]
fn version_mask_granted_then_changed_by_the_pool() {
    let mut s = Script::new();
    s.connect(0);
    s.pool(r#"{"id":1,"result":{"version-rolling":true,"version-rolling.mask":"ffffffff"},"error":null}"#, 0);
    s.pool(SLUSH_SUBSCRIBED, 0);
    let first = published(&s.pool(SLUSH_NOTIFY, 0));
    assert_eq!(first[0].version_mask, VersionMask::BIP320);
    let again = published(&s.pool(r#"{"params":["00003000"], "id":null, "method": "mining.set_version_mask"}"#, 1));
    assert_eq!((again[0].version_mask, again[0].job.id.to_string().as_str()), (VersionMask(0x2000), "bf"));
    assert!(again[0].generation > first[0].generation);
}

/// ckpool answers neither `mining.extranonce.subscribe` (an unhandled method: "Unhandled
/// client ... method") nor `mining.suggest_difficulty` (suggest_diff sends no result), and
/// public-pool's StratumV1Client.handleMessage has no case for extranonce.subscribe: silence
/// is normal and costs nothing. An error answer is remembered.
#[test]
fn optional_requests_unanswered_refused_or_fatal() {
    let suggesting = Login { suggest_difficulty: Some(Difficulty::new(0.5).unwrap()), ..login() };
    let mut s = Script::new();
    s.connect_as(suggesting.clone(), 0);
    s.pool(SLUSH_SUBSCRIBED, 0);
    let out = s.pool(r#"{"id":3,"result":true,"error":null}"#, 0);
    assert_eq!(
        sent(&out),
        [
            r#"{"id":4,"method":"mining.extranonce.subscribe","params":[]}"#,
            r#"{"id":5,"method":"mining.suggest_difficulty","params":[0.5]}"#
        ]
    );
    s.pool(SLUSH_NOTIFY, 0);
    assert!(s.session.tick(s.at(60), HashRate::ZERO).is_empty(), "silence on optional requests is fine");

    // Refused with an error: not asked again.
    let out = s.pool(r#"{"id":4,"result":null,"error":[20,"Not supported",null]}"#, 60);
    assert!(matches!(&out[..], [Action::Notice(_)]));
    let out = s.pool(r#"{"id":5,"result":false,"error":null}"#, 60);
    assert!(matches!(&out[..], [Action::Notice(_)]));
    s.connect_as(suggesting.clone(), 61);
    s.pool(SLUSH_SUBSCRIBED, 61);
    assert!(sent(&s.pool(r#"{"id":3,"result":true,"error":null}"#, 61)).is_empty());

    // A pool that closes the connection right after extranonce.subscribe.
    let mut s = Script::new();
    s.mining();
    let out = s.session.closed(None, s.at(1));
    assert_eq!(closes(&out).unwrap().then, Then::Retry);
    assert!(s.session.quirks(PoolId(0)).no_extranonce_subscribe);
    s.connect(2);
    s.pool(SLUSH_SUBSCRIBED, 2);
    assert!(sent(&s.pool(r#"{"id":3,"result":true,"error":null}"#, 2)).is_empty());
}

/// Pools that send the difficulty and the first job before the subscribe answer (ckpool's
/// init_client sends them right behind it; a proxy may reorder): the job is published once
/// the extranonce is known, at the difficulty sent.
#[test]
fn difficulty_and_notify_before_the_subscribe_answer() {
    let mut s = Script::new();
    s.connect(0);
    assert!(s.pool(r#"{"id":null,"method":"mining.set_difficulty","params":[4]}"#, 0).is_empty());
    assert!(published(&s.pool(SLUSH_NOTIFY, 0)).is_empty());
    let out = s.pool(SLUSH_SUBSCRIBED, 0);
    let work = published(&out);
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].target, Difficulty::new(4.0).unwrap().to_target());
    assert_eq!(work[0].extranonce1.0, hex_decode("08000002").unwrap());
}

/// set_difficulty applies from the next notify; set_extranonce mid-job too, and a share of
/// the old extranonce1 whose job is still open is journaled, not sent with the wrong one.
#[test]
fn set_extranonce_mid_job() {
    let mut s = Script::new();
    s.mining();
    let old = published(&s.pool(SLUSH_NOTIFY, 0)).remove(0);
    assert!(s.pool(r#"{"id":null,"method":"mining.set_extranonce","params":["0a0b0c0d",4]}"#, 1).is_empty());
    let share = share_of(&old, 7);
    let second = SLUSH_NOTIFY.replace(r#"["bf""#, r#"["c0""#);
    let new = published(&s.pool(&second, 2)).remove(0);
    assert_eq!(new.extranonce1.0, vec![10, 11, 12, 13]);
    let out = s.session.share(share, s.at(3));
    assert!(matches!(&out[..], [Action::Journal { reason, .. }] if reason.contains("extranonce1 changed")), "{out:?}");
}

/// A pool that moves to a new block without clean_jobs: shares of the old block are stale,
/// not submitted (Braiins' docs: with clean_jobs the pool rejects shares of earlier jobs; a
/// new prevhash means the same whatever the flag).
#[test]
fn a_new_prevhash_without_clean_jobs_retires_old_jobs() {
    let mut s = Script::new();
    s.mining();
    let old = published(&s.pool(SLUSH_NOTIFY, 0)).remove(0);
    let next_block = SLUSH_NOTIFY.replace(r#"["bf", "4d16"#, r#"["c1", "5d16"#);
    s.pool(&next_block, 1);
    let out = s.session.share(share_of(&old, 9), s.at(1));
    assert!(matches!(&out[..], [Action::Answered { outcome: ShareOutcome::Stale(_), latency: None, .. }]), "{out:?}");
    // Same block, clean_jobs=false: the old job stays open and its share is sent.
    let mut s = Script::new();
    s.mining();
    let old = published(&s.pool(SLUSH_NOTIFY, 0)).remove(0);
    s.pool(&SLUSH_NOTIFY.replace(r#"["bf""#, r#"["c2""#), 1);
    let out = s.session.share(share_of(&old, 9), s.at(1));
    assert_eq!(
        sent(&out),
        [r#"{"id":5,"method":"mining.submit","params":["worker.1","bf","00000001","504e86b9","00000009"]}"#]
    );
}

/// slush's docs: `client.reconnect` with host, port and wait; with none, the same pool.
#[test]
fn client_reconnect_with_and_without_a_place() {
    let mut s = Script::new();
    s.mining();
    let out = s.pool(r#"{"id":null,"method":"client.reconnect","params":[]}"#, 1);
    assert_eq!(closes(&out).unwrap().then, Then::Redirect(Redirect::default()));
    let mut s = Script::new();
    s.mining();
    let out = s.pool(r#"{"id":"r1","method":"client.reconnect","params":["pool.example","3334","5"]}"#, 1);
    assert_eq!(sent(&out), [r#"{"error":null,"id":"r1","result":true}"#]);
    let close = closes(&out).unwrap();
    assert_eq!(close.then, Then::Redirect(Redirect { host: Some("pool.example".into()), port: Some(3334), wait: 5 }));
    assert!(close.reason.contains("pool.example:3334 in 5 s"), "{}", close.reason);
    // A host with a newline cannot forge a log line: the reason says it escaped.
    let mut s = Script::new();
    s.mining();
    let forged = r#"{"id":null,"method":"client.reconnect","params":["evil.example\n[ERROR] forged","3334",0]}"#;
    let close = closes(&s.pool(forged, 1)).unwrap().clone();
    assert!(!close.reason.contains('\n') && close.reason.contains(r"evil.example\n[ERROR] forged"), "{}", close.reason);
}

/// Strays and repeats: a response with id 0 (no request of ours) is not the authorize
/// answer, and a second subscribe answer does not send the requests again.
#[test]
fn stray_and_duplicate_responses_are_ignored() {
    let mut s = Script::new();
    s.connect(0);
    assert!(s.pool(r#"{"id":0,"result":true,"error":null}"#, 0).is_empty());
    assert_eq!(sent(&s.pool(SLUSH_SUBSCRIBED, 0)).len(), 1);
    assert!(s.pool(SLUSH_SUBSCRIBED, 0).is_empty());
    assert!(s.pool(r#"{"id":null,"result":null,"error":[20,"x",null]}"#, 0).is_empty());
    let out = s.pool(r#"{"id":3,"result":false,"error":null}"#, 0);
    assert_eq!(closes(&out).unwrap().reason, "the pool refused worker worker.1: result false");
}

/// Requests a pool may make: version, ping, messages (escaped: a pool cannot forge log lines),
/// and anything unknown gets an error answer rather than silence.
#[test]
fn pool_requests_are_answered() {
    let mut s = Script::new();
    s.mining();
    assert_eq!(
        sent(&s.pool(r#"{"id":7,"method":"client.get_version","params":[]}"#, 0)),
        [r#"{"error":null,"id":7,"result":"wgminer/0.1.0"}"#]
    );
    assert_eq!(
        sent(&s.pool(r#"{"id":8,"method":"mining.ping","params":[]}"#, 0)),
        [r#"{"error":null,"id":8,"result":"pong"}"#]
    );
    assert_eq!(
        sent(&s.pool(r#"{"id":9,"method":"mining.frobnicate","params":[]}"#, 0)),
        [r#"{"error":[20,"method mining.frobnicate not supported",null],"id":9,"result":null}"#]
    );
    let out = s.pool(r#"{"id":null,"method":"client.show_message","params":["hi\nERROR forged line"]}"#, 0);
    assert_eq!(out, [Action::PoolMessage(r"hi\nERROR forged line".into())]);
}

#[test]
fn submits_answers_and_timeouts() {
    let mut s = Script::new();
    s.mining();
    let work = published(&s.pool(SLUSH_NOTIFY, 0)).remove(0);
    let out = s.session.share(share_of(&work, 1), s.at(1));
    assert_eq!(
        sent(&out),
        [r#"{"id":5,"method":"mining.submit","params":["worker.1","bf","00000001","504e86b9","00000001"]}"#]
    );
    s.session.share(share_of(&work, 2), s.at(1));
    s.session.share(share_of(&work, 3), s.at(1));
    let out = s.pool(r#"{"id":5,"result":true,"error":null}"#, 3);
    assert!(
        matches!(&out[..], [Action::Answered { outcome: ShareOutcome::Accepted, latency: Some(l), .. }] if *l == Duration::from_secs(2))
    );
    let out = s.pool(r#"{"id":6,"result":null,"error":[21,"Job not found",null]}"#, 3);
    assert!(matches!(&out[..], [Action::Answered { outcome: ShareOutcome::Stale(_), .. }]));
    // The third is never answered: journaled when its time is up, and the connection, whose
    // pool stopped answering, is left.
    s.pool(SLUSH_NOTIFY, 20);
    assert!(s.session.tick(s.at(30), HashRate::ZERO).is_empty());
    let out = s.session.tick(s.at(31), HashRate::ZERO);
    assert!(
        matches!(&out[0], Action::Journal { share, reason } if share.nonce == 3 && reason.contains("did not answer")),
        "{out:?}"
    );
    assert_eq!(closes(&out).unwrap().then, Then::Fail);
    assert_eq!(s.session.held(), 0);
}

/// Shares sent and unanswered are bounded; the rest wait and go out as answers come.
#[test]
fn in_flight_is_bounded() {
    let mut s = Script::new();
    s.mining();
    let work = published(&s.pool(SLUSH_NOTIFY, 0)).remove(0);
    let mut sends = 0;
    for n in 0..(MAX_IN_FLIGHT as u32 + 10) {
        sends += sent(&s.session.share(share_of(&work, n), s.at(1))).len();
    }
    assert_eq!(sends, MAX_IN_FLIGHT);
    let out = s.pool(r#"{"id":5,"result":true,"error":null}"#, 1);
    assert_eq!(sent(&out).len(), 1, "one answer makes room for one more");
    assert_eq!(s.session.held(), MAX_IN_FLIGHT + 9);
}

/// A flood of clean_jobs=false notifies keeps at most MAX_JOBS ids open.
#[test]
fn open_jobs_are_bounded() {
    let mut s = Script::new();
    s.mining();
    let first = published(&s.pool(SLUSH_NOTIFY, 0)).remove(0);
    for n in 0..1000 {
        s.pool(&SLUSH_NOTIFY.replace(r#"["bf""#, &format!(r#"["j{n}""#)), 1);
    }
    assert_eq!(s.session.conn.as_ref().unwrap().open_jobs.len(), MAX_JOBS);
    let out = s.session.share(share_of(&first, 1), s.at(1));
    assert!(matches!(&out[..], [Action::Answered { outcome: ShareOutcome::Stale(_), .. }]));
}

/// Shares unanswered when the connection drops go out again on the next one if their job is
/// still open there (a resumed session), else to the journal; at stop, everything held does.
#[test]
fn shares_across_reconnects_and_stop() {
    let mut s = Script::new();
    s.mining();
    let work = published(&s.pool(SLUSH_NOTIFY, 0)).remove(0);
    s.session.share(share_of(&work, 1), s.at(1));
    s.session.share(share_of(&work, 2), s.at(1));
    let out = s.session.closed(Some("connection reset".into()), s.at(50));
    assert_eq!(closes(&out).unwrap(), &Close { reason: "connection reset".into(), then: Then::Fail });
    s.connect(51);
    s.pool(SLUSH_SUBSCRIBED, 51);
    s.pool(r#"{"id":3,"result":true,"error":null}"#, 51);
    let out = s.pool(SLUSH_NOTIFY, 51);
    assert_eq!(sent(&out).len(), 2, "resumed: the same job is open, both are sent again");
    let out = s.session.stop();
    assert_eq!(out.len(), 2);
    assert!(
        out.iter().all(|a| matches!(a, Action::Journal { reason, .. } if reason.contains("before the pool answered")))
    );
    // A connection whose jobs differ: journaled at the first notify.
    let mut s = Script::new();
    s.mining();
    let work = published(&s.pool(SLUSH_NOTIFY, 0)).remove(0);
    s.session.share(share_of(&work, 1), s.at(1));
    s.session.closed(None, s.at(50));
    s.connect(51);
    s.pool(&SLUSH_SUBSCRIBED.replace("08000002", "08000003"), 51);
    let out = s.pool(SLUSH_NOTIFY, 51);
    assert!(out.iter().any(|a| matches!(a, Action::Journal { reason, .. } if reason.contains("before a reconnect"))));
}

#[test]
fn silence_and_a_subscribe_that_never_comes() {
    let mut s = Script::new();
    s.mining();
    s.pool(SLUSH_NOTIFY, 0);
    assert!(s.session.tick(s.at(89), HashRate::ZERO).is_empty());
    assert_eq!(closes(&s.session.tick(s.at(90), HashRate::ZERO)).unwrap().reason, "no job for 90 s");
    let mut s = Script::new();
    s.session.quirks.insert(PoolId(0), Quirks { no_configure: true, ..Quirks::default() });
    s.connect(0);
    let out = s.session.tick(s.at(10), HashRate::ZERO);
    assert_eq!(
        closes(&out).unwrap(),
        &Close { reason: "no answer to mining.subscribe in 10 s".into(), then: Then::Fail }
    );
}
