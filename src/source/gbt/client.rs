//! The solo session: fetch templates (longpoll when the node offers it, and a fresh template
//! every `poll` interval so that ntime, transactions and testnet's minimum-difficulty rule
//! stay current), publish them as work, and turn every verified hit into a block: journaled
//! first, then submitted, and retried while the node is unreachable until the tip moves on.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Address, BlockHash, Network, ScriptBuf};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::rpc::{Node, RpcError};
use super::template::{self, Template};
use crate::source::{Share, SourceWork};
use crate::stats::{Event, ShareEvent, Stats};
use crate::work::block::{BlockPlan, EXTRANONCE_SIZE};
use crate::work::{DeviceId, Difficulty, Extranonce1, JobId, PoolId};

/// Written into every coinbase, after the height.
pub const COINBASE_TAG: &[u8] = b"/wgminer/";

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A stopping miner gives the node this long to take a block found at the last moment; the
/// block is in the journal either way.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// A longpoll that long without an answer is simply asked again.
const LONGPOLL_TIMEOUT: Duration = Duration::from_secs(600);
/// Longpolls are asked at most this often.
const MIN_LONGPOLL: Duration = Duration::from_secs(1);
/// Templates kept per tip: a device sweeps pieces of the newest work and holds at most two, so
/// a hit always belongs to one of the last few templates; older ones are only memory (a
/// 50,000-transaction template served on every poll grew the miner by 800 MB a minute).
const MAX_PLANS: usize = 8;
const RETRY_SUBMIT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct SoloConfig {
    pub node: Node,
    pub payout: ScriptBuf,
    /// Found blocks, one JSON line each (time, height, hash, hex), written before submitting.
    pub journal: PathBuf,
    /// How often a fresh template is fetched.
    pub poll: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("the node is on {node}, not {asked}: point --rpc-url at a {asked} node, or drop --network")]
    WrongNetwork { node: String, asked: String },
    #[error("the node reports chain {0:?}, which wgminer does not know")]
    UnknownChain(String),
    #[error("--address {address}: {reason}")]
    Address { address: String, reason: String },
}

/// What `submitblock` answered: accepted (`null`, or the node's word when it has the block
/// already: `duplicate`, or `inconclusive` when it holds it off the best chain), or rejected
/// with the node's reason, its control characters escaped.
pub fn submit_answer(answer: &Value) -> Result<Option<String>, BlockRejected> {
    match answer {
        Value::Null => Ok(None),
        Value::String(s) if s == "duplicate" || s == "inconclusive" => Ok(Some(s.clone())),
        other => Err(BlockRejected(crate::logging::printable(
            &other.as_str().map_or_else(|| other.to_string(), str::to_string),
        ))),
    }
}

/// The node refused a block, in its words (escaped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BlockRejected(pub String);

/// The `--network` names, as the node's `getblockchaininfo` spells its chain.
pub fn network_from_chain(chain: &str) -> Option<Network> {
    Network::from_core_arg(chain).ok()
}

/// Asks the node which chain it is on, checks it against `asked`, and checks that `address`
/// belongs to that chain. Returns the chain and the payout script.
pub fn check_node(node: &Node, asked: Option<Network>, address: &str) -> Result<(Network, ScriptBuf), SetupError> {
    let info = node.call("getblockchaininfo", &[], CALL_TIMEOUT)?;
    let chain = info.get("chain").and_then(Value::as_str).ok_or_else(|| RpcError::BadReply {
        method: "getblockchaininfo".into(),
        reason: "no `chain` in the reply".into(),
    })?;
    let network = network_from_chain(chain).ok_or_else(|| SetupError::UnknownChain(chain.into()))?;
    if let Some(asked) = asked {
        if asked != network {
            return Err(SetupError::WrongNetwork { node: chain.into(), asked: asked.to_core_arg().into() });
        }
    }
    Ok((network, payout_script(address, network)?))
}

/// The output script paying `address`, which must belong to `network`: P2PKH, P2SH, P2WPKH,
/// P2WSH and P2TR (any address rust-bitcoin knows).
pub fn payout_script(address: &str, network: Network) -> Result<ScriptBuf, SetupError> {
    let bad = |reason: String| SetupError::Address { address: address.into(), reason };
    let parsed: Address<_> = address.parse().map_err(|e| bad(format!("{e}")))?;
    let checked = parsed
        .require_network(network)
        .map_err(|_| bad(format!("this address is not for {}, the node's network", network.to_core_arg())))?;
    Ok(checked.script_pubkey())
}

/// The node's entry in the pools' view (the API's only "pool"), registered once: solo shows it
/// while it waits for the node, and the session reports to the same one.
pub fn node_pool(stats: &Stats, node: &Node) -> PoolId {
    match stats.pools().entries.iter().position(|p| p.url == node.url) {
        Some(i) => PoolId(i),
        None => stats.register_pool(&node.url, "solo"),
    }
}

/// `check_node`, waiting with backoff while the node is down or starting: the user is told
/// what is wrong each time it changes, and `stats` shows it (the node's `last_failure`).
/// Wrong credentials, network or address end it. Dropping the future stops waiting at once.
pub async fn connect(
    node: &Node,
    asked: Option<Network>,
    address: &str,
    stats: &Stats,
) -> Result<(Network, ScriptBuf), SetupError> {
    let pool = node_pool(stats, node);
    let mut backoff = Duration::from_secs(1);
    let mut last = String::new();
    loop {
        let (n, a) = (node.clone(), address.to_string());
        let result = super::rpc::detached(move || check_node(&n, asked, &a)).await.unwrap_or_else(|| {
            Err(SetupError::Rpc(RpcError::BadReply {
                method: "getblockchaininfo".into(),
                reason: "thread failed".into(),
            }))
        });
        match result {
            Err(SetupError::Rpc(e)) if e.is_transient() => {
                let message = e.to_string();
                if message != last {
                    tracing::warn!("waiting for the node: {message}");
                    stats.record(Event::PoolDown { pool, reason: message.clone() });
                    last = message;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            other => return other,
        }
    }
}

/// A block found: kept until the node has it, or until the tip has moved past its parent.
#[derive(Debug, Clone)]
struct Found {
    device: DeviceId,
    /// Whether the block is in the journal (it ends journaled if it cannot be sent).
    journaled: bool,
    height: u64,
    hash: BlockHash,
    prev: BlockHash,
    hex: String,
}

struct Session {
    config: SoloConfig,
    /// The node's entry in the pools' view.
    pool: PoolId,
    /// Set when the miner stops: a call to the node is then given `STOP_GRACE`, no more.
    stop: watch::Receiver<bool>,
    work: watch::Sender<Option<Arc<SourceWork>>>,
    stats: Arc<Stats>,
    /// The newest templates of the tip, oldest first: those a device may still be sweeping.
    plans: VecDeque<(JobId, Arc<BlockPlan>)>,
    tip: Option<BlockHash>,
    /// Parents on which one of our blocks was accepted: later hits on them are siblings.
    solved: HashSet<BlockHash>,
    pending: Vec<Found>,
    generation: u64,
    last_error: Option<String>,
    /// A block was accepted: fetch the next template now, not at the next poll.
    refresh: bool,
}

/// The longpoll blocks for as long as the node likes: it runs on a thread of its own, which a
/// stopping miner simply leaves behind. Longpoll ids go in; the node's answers come out.
#[allow(clippy::type_complexity)]
fn spawn_longpoll(
    node: Node,
) -> (std::sync::mpsc::Sender<String>, mpsc::UnboundedReceiver<Result<serde_json::Value, RpcError>>) {
    let (longpoll_ask, longpoll_ids) = std::sync::mpsc::channel::<String>();
    let (longpoll_tx, longpoll_rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(id) = longpoll_ids.recv() {
            let asked = std::time::Instant::now();
            let reply = node.call("getblocktemplate", &[template_request(Some(&id))], LONGPOLL_TIMEOUT);
            // A node that answers a longpoll at once (or fails) is asked again a second later
            // at the soonest, not in a loop.
            if let Some(rest) = MIN_LONGPOLL.checked_sub(asked.elapsed()) {
                std::thread::sleep(rest);
            }
            if longpoll_tx.send(reply).is_err() {
                return;
            }
        }
    });
    (longpoll_ask, longpoll_rx)
}

/// A template being fetched, awaited beside the stop.
type Fetch = std::pin::Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send>>;

/// Runs the solo session until `stop`: publishes work on `work`, takes verified hits from
/// `shares`. Every wait on the node is cut short by `stop`.
pub async fn run(
    config: SoloConfig,
    work: watch::Sender<Option<Arc<SourceWork>>>,
    mut shares: mpsc::Receiver<Share>,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut session = Session::new(config, work, stats, stop.clone());
    let (longpoll_ask, mut longpoll_rx) = spawn_longpoll(session.config.node.clone());
    let mut longpoll_waiting = false;
    let mut next_fetch = tokio::time::Instant::now();
    let mut fetching: Option<Fetch> = None;
    let mut backoff = Duration::from_secs(1);
    let mut retry = tokio::time::interval(RETRY_SUBMIT);
    loop {
        let reply = tokio::select! {
            _ = stop.changed() => break,
            Some(share) = shares.recv() => {
                session.found(share).await;
                if std::mem::take(&mut session.refresh) {
                    next_fetch = tokio::time::Instant::now();
                }
                continue
            }
            Some(reply) = longpoll_rx.recv() => { longpoll_waiting = false; reply }
            _ = tokio::time::sleep_until(next_fetch), if fetching.is_none() => {
                fetching = Some(fetch(session.config.node.clone()));
                continue
            }
            reply = async {
                match fetching.as_mut() {
                    Some(fetch) => fetch.await,
                    None => std::future::pending().await,
                }
            }, if fetching.is_some() => {
                fetching = None;
                reply
            }
            _ = retry.tick(), if !session.pending.is_empty() => { session.resubmit().await; continue }
        };
        match session.take_template(reply) {
            Ok(longpoll_id) => {
                backoff = Duration::from_secs(1);
                next_fetch = tokio::time::Instant::now() + session.config.poll;
                if let Some(id) = longpoll_id {
                    if !longpoll_waiting && longpoll_ask.send(id).is_ok() {
                        longpoll_waiting = true;
                    }
                }
            }
            Err(()) => {
                next_fetch = tokio::time::Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    session.stop(&mut shares).await;
}

/// A fresh template, fetched on a thread that a stop leaves behind.
fn fetch(node: Node) -> Fetch {
    Box::pin(async move { node.call_detached("getblocktemplate", vec![template_request(None)], CALL_TIMEOUT).await })
}

/// getblocktemplate's request: segwit always (Core refuses templates without it), signet's
/// rule too (a node not on signet ignores it).
fn template_request(longpoll_id: Option<&str>) -> Value {
    let mut request = json!({"rules": ["segwit", "signet"], "capabilities": ["coinbasevalue", "longpoll"]});
    if let Some(id) = longpoll_id {
        request["longpollid"] = json!(id);
    }
    request
}

impl Session {
    fn new(
        config: SoloConfig,
        work: watch::Sender<Option<Arc<SourceWork>>>,
        stats: Arc<Stats>,
        stop: watch::Receiver<bool>,
    ) -> Session {
        Session {
            pool: node_pool(&stats, &config.node),
            stop,
            config,
            work,
            stats,
            plans: VecDeque::new(),
            tip: None,
            solved: HashSet::new(),
            pending: Vec::new(),
            generation: 0,
            last_error: None,
            refresh: false,
        }
    }

    /// Reports a problem once, not on every retry.
    fn problem(&mut self, message: String) {
        if self.last_error.as_ref() != Some(&message) {
            tracing::warn!("node: {message}");
            self.stats.record(Event::PoolDown { pool: self.pool, reason: message.clone() });
            self.last_error = Some(message);
        }
    }

    /// Takes a template reply: publishes its work and returns its longpoll id.
    fn take_template(&mut self, reply: Result<Value, RpcError>) -> Result<Option<String>, ()> {
        let value = reply.map_err(|e| self.problem(e.to_string()))?;
        let template = template::parse(&value).map_err(|e| self.problem(e.to_string()))?;
        if self.last_error.take().is_some() {
            tracing::info!("node: templates again");
        }
        self.publish(template)
    }

    fn publish(&mut self, template: Template) -> Result<Option<String>, ()> {
        let Template { block, target, longpoll_id, nonces } = template;
        let prev = block.prev_hash;
        let (height, cur_time, min_time, time_mutable) =
            (block.height, block.cur_time, block.min_time, block.time_mutable);
        let plan =
            BlockPlan::new(block, self.config.payout.clone(), COINBASE_TAG).map_err(|e| self.problem(e.to_string()))?;
        if self.tip != Some(prev) {
            if self.tip.is_some() {
                tracing::info!("new block on the node: mining height {height}");
            }
            self.tip = Some(prev);
            self.plans.clear();
            let (stats, pool) = (self.stats.clone(), self.pool);
            self.pending.retain(|f| {
                let keep = f.prev == prev;
                if !keep {
                    let event = if f.journaled { ShareEvent::Journaled } else { ShareEvent::Unjournaled };
                    stats.record(Event::Share { device: f.device, pool, event });
                    tracing::warn!("block {} {} dropped: the tip moved on (it stays in the journal)", f.height, f.hash);
                }
                keep
            });
        }
        self.stats.record(Event::Template { pool: self.pool, network_difficulty: Difficulty::from_target(&target) });
        // The node's clock at fetch time; a fresh template every `poll` keeps it current.
        let time = if time_mutable { cur_time.max(min_time) } else { cur_time };
        self.generation += 1;
        let id = JobId::from(format!("{:x}", self.generation));
        let plan = Arc::new(plan);
        self.plans.push_back((id.clone(), plan.clone()));
        if self.plans.len() > MAX_PLANS {
            self.plans.pop_front();
        }
        let work = SourceWork {
            source: self.pool,
            generation: self.generation,
            job: plan.job(id.clone(), time),
            extranonce1: Extranonce1::default(),
            extranonce2_size: EXTRANONCE_SIZE,
            target,
            version_mask: plan.version_mask(),
            nonces,
            time_roll: 0,
            received: Instant::now(),
        };
        self.work.send_replace(Some(Arc::new(work)));
        Ok(longpoll_id)
    }

    /// A verified hit: build the block, journal it, submit it.
    async fn found(&mut self, share: Share) {
        // Hits of a retired template are stale: counted, not printed (on regtest, where every
        // other hash is a block, there are thousands of them per block).
        let Some(plan) = self.plans.iter().find(|(id, _)| *id == share.job_id).map(|(_, p)| p.clone()) else {
            self.end_share(&share, ShareEvent::Stale);
            return;
        };
        let prev = plan.template.prev_hash;
        if self.solved.contains(&prev) {
            // A sibling of our own accepted block cannot extend the chain past it.
            self.end_share(&share, ShareEvent::Stale);
            return;
        }
        if self.pending.iter().any(|f| f.prev == prev) {
            // One block per parent is waiting already: a sibling could not extend the chain
            // past it either.
            self.end_share(&share, ShareEvent::Stale);
            return;
        }
        let version = plan.version_mask().apply(plan.template.version as u32, share.version_bits.unwrap_or(0));
        let block = match plan.block(&share.extranonce2, share.time, version, share.nonce) {
            Ok(block) => block,
            Err(e) => {
                self.end_share(&share, ShareEvent::Rejected);
                tracing::error!("found a hash below target but cannot build its block: {e}");
                return;
            }
        };
        let mut found = Found {
            device: share.device,
            journaled: false,
            height: plan.template.height,
            hash: block.block_hash(),
            prev,
            hex: serialize_hex(&block),
        };
        self.stats.record(Event::Block);
        tracing::info!("found block {} {}", found.height, found.hash);
        match self.journal(&found) {
            Ok(()) => found.journaled = true,
            Err(e) => tracing::error!(
                "cannot write the found-blocks journal {}: {e}; the block was: {}",
                self.config.journal.display(),
                found.hex
            ),
        }
        self.submit(found).await;
    }

    /// The miner stops: hits still queued may be blocks, each built, journaled and sent like
    /// the others; blocks not sent end journaled (or unjournaled, if the journal failed).
    async fn stop(&mut self, shares: &mut mpsc::Receiver<Share>) {
        while let Ok(share) = shares.try_recv() {
            self.found(share).await;
        }
        for found in &self.pending {
            self.end(found, if found.journaled { ShareEvent::Journaled } else { ShareEvent::Unjournaled });
            tracing::warn!(
                "block {} {} was not sent; it is in {}",
                found.height,
                found.hash,
                self.config.journal.display()
            );
        }
    }

    /// A hit's one end, counted to its device and the node.
    fn end_share(&self, share: &Share, event: ShareEvent) {
        self.stats.record(Event::Share { device: share.device, pool: self.pool, event });
    }

    /// A block's one end.
    fn end(&self, found: &Found, event: ShareEvent) {
        self.stats.record(Event::Share { device: found.device, pool: self.pool, event });
    }

    fn journal(&self, found: &Found) -> std::io::Result<()> {
        let line = json!({
            "time": crate::stats::unix_time(),
            "height": found.height,
            "hash": found.hash.to_string(),
            "prev": found.prev.to_string(),
            "hex": found.hex,
        });
        crate::source::append_to_journal(&self.config.journal, std::slice::from_ref(&line))
    }

    async fn submit(&mut self, found: Found) {
        let started = Instant::now();
        let reply = self.ask("submitblock", vec![json!(found.hex)]).await;
        let (height, hash) = (found.height, found.hash);
        let answer = match reply {
            Ok(answer) => answer,
            Err(_) if *self.stop.borrow() => {
                // Stopping: `stop` ends it journaled, and says so.
                self.pending.push(found);
                return;
            }
            Err(e) => {
                tracing::warn!("block {height} {hash} not sent yet ({e}); retrying every {}s", RETRY_SUBMIT.as_secs());
                self.pending.push(found);
                return;
            }
        };
        self.stats.record(Event::Answer { pool: self.pool, latency: started.elapsed() });
        match submit_answer(&answer) {
            Ok(None) => tracing::info!("block {height} {hash} accepted"),
            Ok(Some(word)) => tracing::info!("block {height} {hash} accepted ({word})"),
            Err(reason) => {
                self.end(&found, ShareEvent::Rejected);
                tracing::warn!("block {height} {hash} rejected: {reason}");
                return;
            }
        }
        self.end(&found, ShareEvent::Accepted);
        self.solved.insert(found.prev);
        self.refresh = true;
    }

    /// A call to the node that a stop cuts short (the block stays pending, and ends journaled);
    /// once stopping, the node gets `STOP_GRACE` to answer.
    async fn ask(&self, method: &str, params: Vec<Value>) -> Result<Value, RpcError> {
        let mut stop = self.stop.clone();
        let stopping = *stop.borrow();
        let timeout = if stopping { STOP_GRACE } else { CALL_TIMEOUT };
        let stopped = || RpcError::Down { url: self.config.node.url.clone(), reason: "stopping".into() };
        tokio::select! {
            reply = self.config.node.call_detached(method, params, timeout) => reply,
            _ = stop.wait_for(|s| *s), if !stopping => Err(stopped()),
        }
    }

    async fn resubmit(&mut self) {
        for found in std::mem::take(&mut self.pending) {
            self.submit(found).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same template on every poll of one tip: only the last few stay, and a hit on an
    /// older one is counted stale (a device holds no piece of it any more).
    #[test]
    fn only_the_newest_templates_of_a_tip_are_kept() {
        let reply = json!({
            "version": 536870912, "previousblockhash": "69d5aeed25f544c8c83b69470833bf8aa72028fbc5a78a64296518aa24650181",
            "transactions": [], "coinbaseaux": {}, "coinbasevalue": 5000000000u64,
            "curtime": 1795577484, "bits": "207fffff", "height": 2
        });
        let (work, _work_rx) = watch::channel(None);
        let stats = Arc::new(Stats::new());
        let config = SoloConfig {
            node: Node { url: "http://127.0.0.1:1".into(), auth: crate::source::gbt::rpc::Auth::Cookie("c".into()) },
            payout: payout_script("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", Network::Regtest).unwrap(),
            journal: std::env::temp_dir().join("wgminer-unit-plans.jsonl"),
            poll: Duration::from_secs(1),
        };
        let (_stop, stop_rx) = watch::channel(false);
        let mut session = Session::new(config, work, stats.clone(), stop_rx);
        for _ in 0..100 {
            session.publish(template::parse(&reply).unwrap()).unwrap();
        }
        assert_eq!(session.plans.len(), MAX_PLANS);
        assert_eq!(session.plans.front().unwrap().0, JobId::from(format!("{:x}", 100 - MAX_PLANS + 1)));
        let old = Share {
            source: session.pool,
            job_id: "1".into(),
            extranonce1: Extranonce1::default(),
            extranonce2: crate::work::Extranonce2(vec![0; 8]),
            time: 0,
            nonce: 0,
            version_bits: None,
            hash: {
                use bitcoin::hashes::Hash;
                BlockHash::from_byte_array([0; 32])
            },
            device: DeviceId(0),
        };
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(session.found(old));
        assert_eq!(stats.counts().stale, 1);
    }

    #[test]
    fn every_address_type_pays_to_its_script() {
        // BIP173 and BIP350 vectors, a P2PKH and a P2SH from mainnet.
        let cases = [
            ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"),
            ("3P14159f73E4gFr7JterCCQh9QjiTjiZrG", "a914e9c3dd0c07aac76179ebc76a6c78d4d67c6c160a87"),
            ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
            (
                "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
                "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
            ),
            (
                "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
                "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
            ),
        ];
        for (address, script) in cases {
            assert_eq!(payout_script(address, Network::Bitcoin).unwrap().to_hex_string(), script, "{address}");
        }
        let testnet = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx";
        assert_eq!(payout_script(testnet, Network::Testnet4).unwrap().to_hex_string(), cases[2].1);
        assert_eq!(
            payout_script(testnet, Network::Bitcoin).unwrap_err().to_string(),
            format!("--address {testnet}: this address is not for main, the node's network")
        );
        assert!(payout_script("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", Network::Bitcoin).is_err(), "checksum");
        assert!(payout_script("", Network::Regtest).is_err());
    }

    #[test]
    fn network_names_are_the_nodes_chain_names() {
        for (name, network) in [
            ("main", Network::Bitcoin),
            ("test", Network::Testnet),
            ("testnet4", Network::Testnet4),
            ("signet", Network::Signet),
            ("regtest", Network::Regtest),
        ] {
            assert_eq!(network_from_chain(name), Some(network));
        }
        assert_eq!(network_from_chain("mainnet"), None);
    }
}
