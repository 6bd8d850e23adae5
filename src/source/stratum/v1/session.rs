//! The Stratum v1 client as a state machine, sans I/O (the shape of quinn-proto's or rustls'
//! connection): it takes a pool's messages, the shares devices found and the clock's ticks,
//! and returns what to do: lines to send, work to publish, answers to count, shares to
//! journal, and when to close. It holds no socket, reads no clock and never sleeps, so every
//! exchange with a pool is a test that feeds it lines. `stratum::driver` does the I/O.
//!
//! Difficulty: `mining.set_difficulty` applies to the work of the *next* `mining.notify`, as
//! pools (ckpool, slush) expect; shares of earlier jobs are checked against the difficulty their
//! job came with.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::source::stratum::core::{
    self, Close, HANDSHAKE, MAX_IN_FLIGHT, MAX_UNSENT, Pending, Protocol, Rejection, SILENCE, ShareOutcome, Then,
    USER_AGENT, fail,
};
use crate::source::stratum::pool_url::{Endpoint, PoolConfig};
use crate::source::{Share, SourceWork};
use crate::wire::stratum_v1::{
    Answer, ClientMessage, Extranonce, Id, Method, Redirect, Reply, RpcError, ServerMessage, Submission,
    VersionRolling, code,
};
use crate::work::job::Job;
use crate::work::{Difficulty, Extranonce1, HashRate, JobId, NonceRange, PoolId, VersionMask};

/// A share the pool has not answered in this long is written to the journal (it may have
/// been lost on the way; a user can still claim it from there) and the connection, whose
/// pool no longer answers, is replaced.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Job ids remembered per connection for shares still to be sent (a pool that never sends
/// clean_jobs would otherwise grow the set without end).
const MAX_JOBS: usize = 64;

/// What a pool is known not to take, learned from how it answered (or did not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    pub no_configure: bool,
    pub no_extranonce_subscribe: bool,
    pub no_suggest_difficulty: bool,
}

impl Quirks {
    fn learn(&mut self, method: Method) {
        match method {
            Method::Configure => self.no_configure = true,
            Method::ExtranonceSubscribe => self.no_extranonce_subscribe = true,
            Method::SuggestDifficulty => self.no_suggest_difficulty = true,
            _ => {}
        }
    }
}

/// What one pool connection needs to know of its pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    pub user: String,
    pub pass: String,
    /// Sent as `mining.suggest_difficulty` once authorized (cgminer's --suggest-diff).
    pub suggest_difficulty: Option<Difficulty>,
}

/// What this protocol's driver does: the actions of every protocol, with v1 lines to send.
pub type Action = core::Action<ClientMessage>;

/// One connection's state.
struct Connection {
    pool: PoolId,
    login: Login,
    next_id: u64,
    opened: Instant,
    /// Requests other than submits that wait for an answer: what they were and when sent.
    requests: HashMap<u64, (Method, Instant)>,
    /// The highest request id the pool answered.
    last_answered: u64,
    extranonce: Option<Extranonce>,
    pending_difficulty: Difficulty,
    version_mask: VersionMask,
    /// Open job ids, oldest first.
    jobs: VecDeque<JobId>,
    open_jobs: HashSet<JobId>,
    /// A notify that came before the subscribe answer: published once the extranonce is known.
    early_job: Option<Job>,
    current: Option<Arc<SourceWork>>,
    last_notify: Instant,
}

impl Connection {
    /// The next request id of this connection: submits and other requests share the count.
    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }
}

/// The client's state across connections and pools: the shares it still owes a pool, what
/// it learned of each pool, and the connection in hand.
pub struct Session {
    quirks: HashMap<PoolId, Quirks>,
    /// The pool and subscription id to resume on the next connection to the same pool.
    resume: Option<(PoolId, String)>,
    generation: u64,
    /// Verified shares waiting for a job to check them against.
    unsent: VecDeque<Share>,
    /// Shares from an earlier connection: sent if their job is open on this one, else journaled.
    carried: VecDeque<Share>,
    /// Shares sent and not yet answered, by request id.
    in_flight: BTreeMap<u64, Pending>,
    conn: Option<Connection>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Session {
        Session {
            quirks: HashMap::new(),
            resume: None,
            generation: 0,
            unsent: VecDeque::new(),
            carried: VecDeque::new(),
            in_flight: BTreeMap::new(),
            conn: None,
        }
    }

    pub fn quirks(&self, pool: PoolId) -> Quirks {
        self.quirks.get(&pool).copied().unwrap_or_default()
    }

    /// The method of the request `id` answers, for the codec to read a response by.
    pub fn expected(&self, id: &Id) -> Option<Method> {
        let Id::Num(n) = id else { return None };
        let conn = self.conn.as_ref()?;
        conn.requests.get(n).map(|(m, _)| *m).or_else(|| self.in_flight.contains_key(n).then_some(Method::Submit))
    }

    fn conn(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("a connection is open")
    }

    /// Numbers a request and remembers what it asked.
    fn request(&mut self, now: Instant, method: Method, make: impl FnOnce(Id) -> ClientMessage) -> Action {
        let id = self.conn().take_id();
        self.conn().requests.insert(id, (method, now));
        Action::Send(make(Id::Num(id)))
    }

    /// A message from the pool, read by the codec.
    pub fn message(&mut self, message: ServerMessage, now: Instant) -> Vec<Action> {
        if self.conn.is_none() {
            return vec![];
        }
        match message {
            ServerMessage::Response { id: Some(Id::Num(id)), reply } => self.response(id, reply, now),
            ServerMessage::Response { .. } => vec![],
            ServerMessage::Notify(job) => self.notify(job, now),
            ServerMessage::SetDifficulty(d) => {
                self.conn().pending_difficulty = d;
                vec![]
            }
            ServerMessage::SetExtranonce(extranonce) => {
                self.conn().extranonce = Some(extranonce);
                vec![]
            }
            ServerMessage::SetVersionMask(mask) => self.set_version_mask(mask, now),
            ServerMessage::Reconnect { id, redirect } => {
                let mut out: Vec<Action> = id.map(|id| answer(id, Answer::Ack)).into_iter().collect();
                let reason = format!("the pool asked to reconnect{}", describe(&redirect));
                out.push(Action::Close(Close { reason, then: Then::Redirect(redirect) }));
                out
            }
            ServerMessage::ShowMessage { id, text } => {
                let mut out = vec![Action::PoolMessage(text)];
                out.extend(id.map(|id| answer(id, Answer::Ack)));
                out
            }
            ServerMessage::GetVersion { id } => vec![answer(id, Answer::Version(USER_AGENT.into()))],
            ServerMessage::Ping { id } => vec![answer(id, Answer::Pong)],
            ServerMessage::Other { id: Some(id), method } => {
                let refusal = RpcError::new(code::OTHER, format!("method {method} not supported"));
                vec![answer(id, Answer::Refused(refusal))]
            }
            ServerMessage::Other { id: None, .. } => vec![],
        }
    }

    fn response(&mut self, id: u64, reply: Reply, now: Instant) -> Vec<Action> {
        if self.expected(&Id::Num(id)).is_some() {
            let conn = self.conn();
            conn.last_answered = conn.last_answered.max(id);
        }
        if let Some(pending) = self.in_flight.remove(&id) {
            let mut out = vec![answered(pending, reply, now)];
            out.extend(self.flush(now)); // room for shares held back
            return out;
        }
        let Some((method, _)) = self.conn().requests.remove(&id) else { return vec![] };
        match (method, reply) {
            (Method::Subscribe, Reply::Subscribed { session, extranonce }) => self.subscribed(session, extranonce, now),
            (Method::Subscribe, reply) => fail(format!("the pool refused mining.subscribe: {}", reply_text(&reply))),
            (Method::Authorize, Reply::Result(true)) => self.authorized(now),
            (Method::Authorize, reply) => {
                let user = &self.conn().login.user;
                fail(format!("the pool refused worker {user}: {}", reply_text(&reply)))
            }
            (Method::Configure, Reply::Configured { version_rolling }) => {
                let mask = version_rolling.unwrap_or_default().and(VersionMask::BIP320);
                self.conn().version_mask = mask;
                vec![]
            }
            // extranonce.subscribe or suggest_difficulty taken
            (_, Reply::Result(true)) => vec![],
            (method, reply) => self.refused_optional(method, &reply),
        }
    }

    /// An optional request the pool answered with an error (or `false`): not asked again.
    fn refused_optional(&mut self, method: Method, reply: &Reply) -> Vec<Action> {
        let pool = self.conn().pool;
        self.quirks.entry(pool).or_default().learn(method);
        vec![Action::Notice(format!(
            "pool {pool} does not take {} ({}); {}",
            method.name(),
            reply_text(reply),
            consequence(method)
        ))]
    }

    fn subscribed(&mut self, session: Option<String>, extranonce: Extranonce, now: Instant) -> Vec<Action> {
        let pool = self.conn().pool;
        self.resume = session.map(|s| (pool, s));
        self.conn().extranonce = Some(extranonce);
        let login = self.conn().login.clone();
        let mut out = vec![self.request(now, Method::Authorize, |id| ClientMessage::Authorize {
            id,
            user: login.user,
            pass: login.pass,
        })];
        if let Some(job) = self.conn().early_job.take() {
            out.extend(self.notify(job, now));
        }
        out
    }

    /// Authorized: the optional requests follow (ckpool takes them only from authorized
    /// clients and ignores them before).
    fn authorized(&mut self, now: Instant) -> Vec<Action> {
        let pool = self.conn().pool;
        let quirks = self.quirks(pool);
        let mut out = Vec::new();
        if !quirks.no_extranonce_subscribe {
            out.push(self.request(now, Method::ExtranonceSubscribe, |id| ClientMessage::ExtranonceSubscribe { id }));
        }
        if let (Some(difficulty), false) = (self.conn().login.suggest_difficulty, quirks.no_suggest_difficulty) {
            out.push(
                self.request(now, Method::SuggestDifficulty, |id| ClientMessage::SuggestDifficulty { id, difficulty }),
            );
        }
        out
    }

    fn notify(&mut self, job: Job, now: Instant) -> Vec<Action> {
        let conn = self.conn.as_mut().expect("a connection is open");
        let Some(extranonce) = conn.extranonce.clone() else {
            // Before the subscribe answer: keep the newest, publish it once subscribed.
            conn.early_job = Some(job);
            return vec![];
        };
        conn.last_notify = now;
        // A new previous block retires every older job, whatever clean_jobs says.
        let new_block = conn.current.as_ref().is_some_and(|w| w.job.prev_hash != job.prev_hash);
        if job.clean || new_block {
            conn.jobs.clear();
            conn.open_jobs.clear();
        }
        if conn.open_jobs.insert(job.id.clone()) {
            conn.jobs.push_back(job.id.clone());
        }
        while conn.jobs.len() > MAX_JOBS {
            let oldest = conn.jobs.pop_front().expect("over the limit");
            conn.open_jobs.remove(&oldest);
        }
        let difficulty = conn.pending_difficulty;
        self.generation += 1;
        let work = Arc::new(SourceWork {
            source: conn.pool,
            generation: self.generation,
            job,
            extranonce1: Extranonce1(extranonce.extranonce1),
            extranonce2_size: extranonce.extranonce2_size,
            target: difficulty.to_target(),
            version_mask: conn.version_mask,
            nonces: NonceRange::FULL_RANGE,
            time_roll: 0,
            received: now,
        });
        conn.current = Some(work.clone());
        let mut out = vec![Action::Publish { work, difficulty }];
        out.extend(self.flush(now));
        out
    }

    /// BIP310: a new mask is valid at once, so the current job goes out again under it.
    fn set_version_mask(&mut self, mask: VersionMask, now: Instant) -> Vec<Action> {
        let conn = self.conn();
        conn.version_mask = mask.and(VersionMask::BIP320);
        let Some(current) = conn.current.clone() else { return vec![] };
        let difficulty = Difficulty::from_target(&current.target);
        self.generation += 1;
        let work = Arc::new(SourceWork {
            generation: self.generation,
            version_mask: self.conn().version_mask,
            received: now,
            ..(*current).clone()
        });
        self.conn().current = Some(work.clone());
        vec![Action::Publish { work, difficulty }]
    }

    /// Sends held shares whose job is open on this connection with the same extranonce1;
    /// counts those of jobs a clean notify retired as stale; journals those of an earlier
    /// connection whose jobs are gone.
    fn flush(&mut self, now: Instant) -> Vec<Action> {
        let Some(conn) = &self.conn else { return vec![] };
        let Some(current) = conn.current.clone() else { return vec![] };
        let sendable = |share: &Share, conn: &Connection| {
            share.source == current.source
                && share.extranonce1 == current.extranonce1
                && conn.open_jobs.contains(&share.job_id)
        };
        let mut out = Vec::new();
        while self.in_flight.len() < MAX_IN_FLIGHT {
            let Some(share) = self.carried.pop_front() else { break };
            if sendable(&share, self.conn.as_ref().expect("open")) {
                out.push(self.submit(share, now));
            } else {
                let reason = "found before a reconnect; its job or extranonce is not current on the new session";
                out.push(Action::Journal { share, reason: reason.into() });
            }
        }
        while self.in_flight.len() < MAX_IN_FLIGHT {
            let Some(share) = self.unsent.pop_front() else { break };
            let conn = self.conn.as_ref().expect("open");
            if sendable(&share, conn) {
                out.push(self.submit(share, now));
            } else if share.source == current.source && !conn.open_jobs.contains(&share.job_id) {
                let outcome = ShareOutcome::Stale("its job was retired by a new block or clean_jobs".into());
                out.push(Action::Answered { share, outcome, latency: None });
            } else {
                let reason = "its extranonce1 changed (set_extranonce) while its job is still open";
                out.push(Action::Journal { share, reason: reason.into() });
            }
        }
        out
    }

    fn submit(&mut self, share: Share, now: Instant) -> Action {
        let conn = self.conn();
        let id = conn.take_id();
        let submission = Submission {
            user: conn.login.user.clone(),
            job_id: share.job_id.to_string(),
            extranonce2: share.extranonce2.0.clone(),
            time: share.time,
            nonce: share.nonce,
            version_bits: share.version_bits,
        };
        self.in_flight.insert(id, Pending { share, sent: now });
        Action::Send(ClientMessage::Submit { id: Id::Num(id), submission })
    }

    fn blame(&mut self, method: Method, what: &str) -> Vec<Action> {
        let pool = self.conn().pool;
        self.quirks.entry(pool).or_default().learn(method);
        let reason = format!("pool {pool} {what} after {}; reconnecting without it", method.name());
        vec![
            Action::Notice(format!("{reason}: {}", consequence(method))),
            Action::Close(Close { reason, then: Then::Retry }),
        ]
    }
}

impl Protocol for Session {
    type Out = ClientMessage;
    type In = String;
    type Login = Login;

    fn login(config: &PoolConfig, _: &Endpoint, _: HashRate) -> Login {
        Login { user: config.user.clone(), pass: config.pass.clone(), suggest_difficulty: config.suggest_difficulty }
    }

    /// A new connection to pool `pool` is open: the opening lines. BIP310 asks for
    /// `mining.configure` before `mining.subscribe`, unless this pool is known to refuse it.
    fn connected(&mut self, pool: PoolId, login: Login, now: Instant) -> Vec<Action> {
        // Shares from before this connection go out again once a job arrives, or to the journal.
        let unanswered = std::mem::take(&mut self.in_flight);
        self.carried.extend(unanswered.into_values().map(|p| p.share));
        self.carried.extend(self.unsent.drain(..));
        if self.resume.as_ref().is_some_and(|(p, _)| *p != pool) {
            self.resume = None;
        }
        self.conn = Some(Connection {
            pool,
            login,
            next_id: 1,
            opened: now,
            requests: HashMap::new(),
            last_answered: 0,
            extranonce: None,
            pending_difficulty: Difficulty::ONE,
            version_mask: VersionMask::NONE,
            jobs: VecDeque::new(),
            open_jobs: HashSet::new(),
            early_job: None,
            current: None,
            last_notify: now,
        });
        let mut out = Vec::new();
        if !self.quirks(pool).no_configure {
            let rolling = VersionRolling { mask: VersionMask::BIP320, min_bit_count: 2 };
            out.push(
                self.request(now, Method::Configure, |id| ClientMessage::Configure {
                    id,
                    version_rolling: Some(rolling),
                }),
            );
        }
        let session = self.resume.as_ref().map(|(_, id)| id.clone());
        out.push(self.request(now, Method::Subscribe, |id| ClientMessage::Subscribe {
            id,
            agent: USER_AGENT.into(),
            session,
        }));
        out
    }

    /// A line from the pool: read by the codec (by the method of the request a response
    /// answers), then taken as a message; a line that cannot be read ends the connection.
    fn received(&mut self, line: String, now: Instant) -> Vec<Action> {
        match ServerMessage::parse(&line, |id| self.expected(id)) {
            Ok(message) => self.message(message, now),
            Err(e) => fail(format!("bad line from the pool: {e}")),
        }
    }

    /// The pool closed the connection (or reading failed with `error`). A close soon after an
    /// optional request the pool never answered is blamed on that request: the next
    /// connection goes without it, at once.
    fn closed(&mut self, error: Option<String>, now: Instant) -> Vec<Action> {
        let Some(conn) = &self.conn else { return vec![] };
        // Pools read lines in order: a request followed by an answered one was read and
        // survived, so the suspect is the first unanswered optional request after those.
        let suspect = conn
            .requests
            .iter()
            .filter(|(id, (m, sent))| {
                **id > conn.last_answered
                    && matches!(m, Method::Configure | Method::ExtranonceSubscribe | Method::SuggestDifficulty)
                    && now < *sent + HANDSHAKE
            })
            .min_by_key(|(id, _)| **id)
            .map(|(_, (m, _))| *m);
        match suspect {
            Some(method) => self.blame(method, "closed the connection"),
            None => fail(error.unwrap_or_else(|| "connection closed by the pool".into())),
        }
    }

    /// A share a device found and the CPU verified.
    fn share(&mut self, share: Share, now: Instant) -> Vec<Action> {
        self.unsent.push_back(share);
        let mut out = Vec::new();
        while self.unsent.len() > MAX_UNSENT {
            let share = self.unsent.pop_front().expect("over the limit");
            out.push(Action::Journal { share, reason: "the pool is not keeping up with the shares found".into() });
        }
        out.extend(self.flush(now));
        out
    }

    /// The clock moved on: handshake, silence and answer deadlines.
    fn tick(&mut self, now: Instant, _: HashRate) -> Vec<Action> {
        let mut out = Vec::new();
        let expired: Vec<u64> =
            self.in_flight.iter().filter(|(_, p)| now >= p.sent + ANSWER_TIMEOUT).map(|(id, _)| *id).collect();
        let reason = format!("the pool did not answer the submit in {} s", ANSWER_TIMEOUT.as_secs());
        for id in &expired {
            let share = self.in_flight.remove(id).expect("listed").share;
            out.push(Action::Journal { share, reason: reason.clone() });
        }
        if !expired.is_empty() {
            out.extend(fail(reason));
            return out;
        }
        let Some(conn) = &self.conn else { return out };
        if conn.extranonce.is_none() && now >= conn.opened + HANDSHAKE {
            let configure_unanswered = conn.requests.values().any(|(m, _)| *m == Method::Configure);
            out.extend(if configure_unanswered {
                self.blame(Method::Configure, "did not answer mining.subscribe")
            } else {
                fail(format!("no answer to mining.subscribe in {} s", HANDSHAKE.as_secs()))
            });
        } else if now >= conn.last_notify + SILENCE {
            out.extend(fail(format!("no job for {} s", SILENCE.as_secs())));
        }
        out
    }

    /// The connection is gone (closed by either side): its jobs go with it.
    fn disconnected(&mut self) -> Vec<Action> {
        self.conn = None;
        vec![]
    }

    /// The miner stops: every share still held goes to the journal.
    fn stop(&mut self) -> Vec<Action> {
        let unanswered = std::mem::take(&mut self.in_flight)
            .into_values()
            .map(|p| Action::Journal { share: p.share, reason: "miner stopped before the pool answered".into() });
        let unsent = self
            .carried
            .drain(..)
            .chain(self.unsent.drain(..))
            .map(|share| Action::Journal { share, reason: "miner stopped before the share could be sent".into() });
        unanswered.chain(unsent).collect()
    }

    /// Shares the session still holds: unsent, carried and unanswered.
    fn held(&self) -> usize {
        self.unsent.len() + self.carried.len() + self.in_flight.len()
    }
}

fn answer(id: Id, answer: Answer) -> Action {
    Action::Send(ClientMessage::Answer { id: Some(id), answer })
}

fn answered(pending: Pending, reply: Reply, now: Instant) -> Action {
    let outcome = match reply {
        Reply::Result(true) => ShareOutcome::Accepted,
        Reply::Error(e) if e.code == code::JOB_NOT_FOUND => ShareOutcome::Stale(e.message),
        Reply::Error(e) => ShareOutcome::Rejected(Rejection::new(e.code.to_string(), e.message)),
        other => ShareOutcome::Rejected(Rejection::new(code::OTHER.to_string(), reply_text(&other))),
    };
    Action::Answered { share: pending.share, outcome, latency: Some(now.saturating_duration_since(pending.sent)) }
}

fn reply_text(reply: &Reply) -> String {
    match reply {
        Reply::Error(e) => e.to_string(),
        Reply::Result(b) => format!("result {b}"),
        other => format!("{other:?}"),
    }
}

fn consequence(method: Method) -> &'static str {
    match method {
        Method::Configure => "mining without version rolling (BIP310)",
        Method::ExtranonceSubscribe => "extranonce changes will come with new connections only",
        Method::SuggestDifficulty => "the pool chooses the difficulty",
        _ => "",
    }
}

fn describe(redirect: &Redirect) -> String {
    let place = match (&redirect.host, redirect.port) {
        (None, None) => String::new(),
        (host, port) => format!(
            " at {}:{}",
            host.as_deref().map_or("the same host".to_string(), crate::logging::printable),
            port.map_or("the same port".to_string(), |p| p.to_string())
        ),
    };
    let wait = if redirect.wait > 0 { format!(" in {} s", redirect.wait) } else { String::new() };
    format!("{place}{wait}")
}

#[cfg(test)]
mod tests;
