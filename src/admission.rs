//! Who keeps a connection slot when every slot is taken. The embedded pools, the HTTP server and
//! the cgminer API admit their connections here, so that clients that connect and never get
//! anywhere (silent, or sending a byte a second) cannot lock everyone else out.
//!
//! A connection is *pending* until it is *held*: a pool's miner logged in, an HTTP request being
//! answered (its live stream included), an API request read. When every slot is taken, the
//! oldest pending connection of the address that holds the most slots is shed to make room (a
//! flood from a few addresses sheds its own, not a newcomer from elsewhere that has not been
//! read yet); when a peer address has its share of the slots, the oldest pending one of that
//! address is. Pending connections that have said nothing yet go before those that have (a
//! miner halfway through its login, a browser's kept-alive connection), so that a flood of
//! silent connections cannot shed a client that is logging in.
//! Only when every candidate is held is the newcomer refused (closed at once): a held connection
//! is never shed for a newcomer. While more than half the slots are taken, a newcomer gets a
//! shorter time to be held (`hurried`).
//!
//! `Table` is the policy, sans I/O; `Admission` runs each admitted connection on a task that a
//! shed ends, by dropping the sender its task waits on.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// What one listener lets its connections hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections at once.
    pub max: usize,
    /// Connections at once from one address.
    pub per_peer: usize,
    /// Time a newcomer has to be held.
    pub patience: Duration,
    /// The same while more than half the slots are taken.
    pub hurried: Duration,
}

/// A connection admitted: its id, the handles of the connections shed for it, and its time to
/// be held.
#[derive(Debug)]
pub struct Admitted<T> {
    pub id: u64,
    pub shed: Vec<T>,
    pub patience: Duration,
}

/// The connections of one listener, oldest first (ids grow with arrival), each with the handle
/// that ends it.
#[derive(Debug)]
pub struct Table<T> {
    limits: Limits,
    next: u64,
    slots: BTreeMap<u64, Slot<T>>,
}

#[derive(Debug)]
struct Slot<T> {
    peer: IpAddr,
    holds: usize,
    /// It sent something that made sense (a Stratum message, an HTTP request).
    spoke: bool,
    handle: T,
}

impl<T> Table<T> {
    pub fn new(limits: Limits) -> Table<T> {
        let limits = Limits { max: limits.max.max(1), per_peer: limits.per_peer.max(1), ..limits };
        Table { limits, next: 0, slots: BTreeMap::new() }
    }

    /// Admits a connection from `peer`, shedding pending ones to make room; `None`: refused,
    /// every candidate is held.
    pub fn admit(&mut self, peer: IpAddr, handle: T) -> Option<Admitted<T>> {
        let peer = peer.to_canonical();
        let mut shed = Vec::new();
        if self.slots.values().filter(|s| s.peer == peer).count() >= self.limits.per_peer {
            shed.push(self.shed_oldest(Some(peer))?);
        }
        if self.slots.len() >= self.limits.max {
            shed.push(self.shed_oldest(None)?);
        }
        let busy = self.slots.len() + 1 > self.limits.max / 2;
        let patience = if busy { self.limits.hurried } else { self.limits.patience };
        let id = self.next;
        self.next += 1;
        self.slots.insert(id, Slot { peer, holds: 0, spoke: false, handle });
        Some(Admitted { id, shed, patience })
    }

    /// Removes a pending connection (of `peer`, if given): a silent one if there is one, of the
    /// address that holds the most slots, its oldest; its handle.
    fn shed_oldest(&mut self, peer: Option<IpAddr>) -> Option<T> {
        let mut held_by: HashMap<IpAddr, usize> = HashMap::new();
        for slot in self.slots.values() {
            *held_by.entry(slot.peer).or_default() += 1;
        }
        let pending = |s: &Slot<T>| s.holds == 0 && peer.is_none_or(|p| s.peer == p);
        let choose = |spoke: bool| {
            let candidates = self.slots.iter().filter(|(_, s)| pending(s) && s.spoke == spoke);
            // The first of the largest holders in age order: `max_by_key` keeps the last maximum.
            candidates.rev().max_by_key(|(_, s)| held_by[&s.peer]).map(|(id, _)| *id)
        };
        let id = choose(false).or_else(|| choose(true))?;
        self.slots.remove(&id).map(|s| s.handle)
    }

    /// The connection sent something that made sense: shed after the silent ones.
    pub fn spoke(&mut self, id: u64) {
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.spoke = true;
        }
    }

    /// The connection is held once more (it is not shed while held).
    pub fn hold(&mut self, id: u64) {
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.holds += 1;
        }
    }

    pub fn release(&mut self, id: u64) {
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.holds = slot.holds.saturating_sub(1);
        }
    }

    /// The connection ended (or was shed): its slot is free.
    pub fn remove(&mut self, id: u64) -> Option<T> {
        self.slots.remove(&id).map(|s| s.handle)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

type Shared = Arc<Mutex<Table<oneshot::Sender<()>>>>;

fn lock(table: &Shared) -> std::sync::MutexGuard<'_, Table<oneshot::Sender<()>>> {
    table.lock().unwrap_or_else(|p| p.into_inner())
}

/// One listener's table, shared by its accept loop and its connections.
#[derive(Clone)]
pub struct Admission(Shared);

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        Admission(Arc::new(Mutex::new(Table::new(limits))))
    }

    /// Admits a connection from `peer` and runs what `serve` makes of its ticket on a task of
    /// its own, until it ends or is shed. False: refused (drop the connection).
    pub fn serve<F>(&self, peer: IpAddr, serve: impl FnOnce(Ticket) -> F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (shed_tx, shed_rx) = oneshot::channel();
        let admitted = lock(&self.0).admit(peer, shed_tx);
        let Some(Admitted { id, shed, patience }) = admitted else { return false };
        // Their senders dropped, the shed connections' tasks end and close them.
        drop(shed);
        let ticket = Ticket { id, table: self.0.clone(), patience, since: tokio::time::Instant::now() };
        let served = serve(ticket);
        tokio::spawn(async move {
            tokio::select! {
                _ = served => {}
                _ = shed_rx => {}
            }
        });
        true
    }

    /// Connections admitted and not yet ended.
    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An admitted connection's slot, freed when dropped.
pub struct Ticket {
    id: u64,
    table: Shared,
    /// Time it has to be held.
    pub patience: Duration,
    since: tokio::time::Instant,
}

impl Ticket {
    /// By when it must be held (a miner logged in, a request's head read).
    pub fn deadline(&self) -> tokio::time::Instant {
        self.since + self.patience
    }

    /// The connection sent something that made sense: shed after the silent ones.
    pub fn spoke(&self) {
        lock(&self.table).spoke(self.id);
    }

    /// Holds the connection (never shed) until the `Hold` is dropped.
    pub fn hold(&self) -> Hold {
        lock(&self.table).hold(self.id);
        Hold { id: self.id, table: self.table.clone() }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.table).remove(self.id);
    }
}

/// A connection held: not shed while this lives.
pub struct Hold {
    id: u64,
    table: Shared,
}

impl Drop for Hold {
    fn drop(&mut self) {
        lock(&self.table).release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits =
        Limits { max: 4, per_peer: 3, patience: Duration::from_secs(30), hurried: Duration::from_secs(5) };

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn the_oldest_pending_connection_makes_room_and_held_ones_stay() {
        let mut table = Table::new(LIMITS);
        let a = table.admit(ip(1), "a").unwrap();
        assert_eq!((a.patience, a.shed.len()), (LIMITS.patience, 0));
        let b = table.admit(ip(2), "b").unwrap();
        assert_eq!(b.patience, LIMITS.patience);
        let c = table.admit(ip(3), "c").unwrap();
        assert_eq!(c.patience, LIMITS.hurried, "more than half the slots taken");
        table.hold(a.id);
        table.admit(ip(4), "d").unwrap();
        // Full: the oldest pending one (b; a is held) goes for the newcomer.
        let e = table.admit(ip(5), "e").unwrap();
        assert_eq!(e.shed, vec!["b"]);
        assert_eq!(table.len(), 4);
        for id in [c.id, e.id] {
            table.hold(id);
        }
        assert_eq!(table.admit(ip(6), "f").unwrap().shed, vec!["d"]);
        let f = 5;
        table.hold(f);
        assert!(table.admit(ip(7), "g").is_none(), "all held: the newcomer is refused");
        table.release(a.id);
        assert_eq!(table.admit(ip(7), "g").unwrap().shed, vec!["a"], "released, it is pending again");
        assert_eq!(table.remove(c.id), Some("c"));
        assert!(table.admit(ip(8), "h").unwrap().shed.is_empty());
    }

    /// A flood from a few addresses sheds its own, even its newest, before a lone newcomer from
    /// elsewhere that has not been read yet, even an older one.
    #[test]
    fn the_address_holding_the_most_slots_sheds_first() {
        let mut table = Table::new(Limits { max: 6, per_peer: 6, ..LIMITS });
        let lone = table.admit(ip(9), "lone").unwrap();
        for _ in 0..5 {
            assert!(table.admit(ip(1), "flood").unwrap().shed.is_empty());
        }
        for n in 0..20 {
            assert_eq!(table.admit(ip(1 + n % 2), "flood").unwrap().shed, vec!["flood"]);
        }
        assert_eq!(table.remove(lone.id), Some("lone"));
    }

    /// A flood of silent connections sheds its own, not a client halfway through its login.
    #[test]
    fn silent_connections_go_before_those_that_spoke() {
        let mut table = Table::new(LIMITS);
        let miner = table.admit(ip(1), "miner").unwrap();
        table.spoke(miner.id);
        table.admit(ip(2), "silent 1").unwrap();
        table.admit(ip(3), "silent 2").unwrap();
        table.admit(ip(4), "silent 3").unwrap();
        for n in 5..50 {
            let shed = table.admit(ip(n), "silent").unwrap().shed;
            assert!(shed.len() == 1 && shed[0] != "miner", "{shed:?}");
        }
        let ids: Vec<u64> = table.slots.keys().copied().collect();
        for id in ids {
            if id != miner.id {
                table.hold(id);
            }
        }
        assert_eq!(table.admit(ip(60), "late").unwrap().shed, vec!["miner"], "only when none is silent");
    }

    #[test]
    fn an_address_past_its_share_sheds_its_own() {
        let mut table = Table::new(Limits { max: 10, ..LIMITS });
        let first = table.admit(ip(1), 1).unwrap();
        table.admit(ip(2), 2).unwrap();
        table.admit(ip(1), 3).unwrap();
        table.admit(ip(1), 4).unwrap();
        assert_eq!(table.admit(ip(1), 5).unwrap().shed, vec![1], "its own oldest, not 2");
        let v6_mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(table.admit(v6_mapped, 6).unwrap().shed, vec![3], "the same address");
        for id in first.id..=5 {
            table.hold(id);
        }
        assert!(table.admit(ip(1), 7).is_none(), "every one of its connections is held");
        assert!(table.admit(ip(3), 8).is_some(), "other addresses still come in");
    }
}
