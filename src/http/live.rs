//! What the dashboard follows: the last hour of hash rates (a sample every `SAMPLE_EVERY`), the
//! last notable events (shares answered, pools down or switched, blocks), and a stream of both
//! for server-sent events. One task subscribes to `Stats`' events for it all, and feeds the
//! metrics' histograms on the way.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::{self, error::RecvError};

use super::metrics::Metrics;
use super::{Site, json, redact};
use crate::stats::{Event, ShareEvent};
use crate::work::PoolId;

/// How often the hash rate is sampled, and the stream's `sample` sent.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// An hour of samples.
const HISTORY: usize = 1800;
/// Notable events kept for `/api/v1/events` and a new page.
const RECENT: usize = 100;

/// Something a person watching would want to see, as `/api/v1/events` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// Unix milliseconds.
    pub time: u64,
    /// accepted, rejected, stale, journaled, unjournaled, hardware_error, pool_down,
    /// pool_switched, block, paused or resumed (the temperature guard), or a device's state
    /// (starting, alive, sick, dead, gone).
    pub kind: &'static str,
    pub device: Option<usize>,
    /// The pool's URL, without credentials.
    pub pool: Option<String>,
    pub detail: Option<String>,
}

/// MH/s, a column per series (as uPlot takes them): times, the total, each device.
#[derive(Debug, Default, Serialize)]
pub struct History {
    pub every_s: f64,
    /// Unix seconds.
    pub t: Vec<f64>,
    pub total: Vec<f64>,
    pub devices: Vec<Vec<Option<f64>>>,
}

struct Point {
    time: f64,
    total: f64,
    devices: Vec<f64>,
}

/// A message of the stream: its SSE event name and JSON.
#[derive(Clone)]
struct Message {
    kind: &'static str,
    data: Arc<str>,
}

#[derive(Default)]
struct Shared {
    points: Mutex<VecDeque<Point>>,
    recent: Mutex<VecDeque<Notice>>,
}

pub struct Live {
    shared: Arc<Shared>,
    messages: broadcast::Sender<Message>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Live {
    /// Subscribes now, so that no event after the server's start is missed.
    pub fn start(site: Site, metrics: Metrics) -> Live {
        let live = Live { shared: Arc::default(), messages: broadcast::channel(256).0 };
        let events = site.stats.subscribe();
        let follower = Follower { site, metrics, shared: live.shared.clone(), messages: live.messages.clone() };
        tokio::spawn(follower.run(events));
        live
    }

    pub fn recent(&self) -> Vec<Notice> {
        lock(&self.shared.recent).iter().cloned().collect()
    }

    pub fn history(&self) -> History {
        let points = lock(&self.shared.points);
        let width = points.iter().map(|p| p.devices.len()).max().unwrap_or(0);
        History {
            every_s: SAMPLE_EVERY.as_secs_f64(),
            t: points.iter().map(|p| p.time).collect(),
            total: points.iter().map(|p| p.total).collect(),
            devices: (0..width).map(|d| points.iter().map(|p| p.devices.get(d).copied()).collect()).collect(),
        }
    }

    /// Server-sent events until the server's runtime ends; `slot` is held as long.
    pub fn stream(&self, slot: OwnedSemaphorePermit) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>> {
        let messages = self.messages.subscribe();
        let stream = futures_util::stream::unfold((messages, slot), |(mut messages, slot)| async move {
            loop {
                match messages.recv().await {
                    Ok(m) => return Some((Ok(SseEvent::default().event(m.kind).data(&*m.data)), (messages, slot))),
                    // A page that fell behind misses a sample; the next one has all the counters.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        });
        Sse::new(stream).keep_alive(KeepAlive::default())
    }
}

struct Follower {
    site: Site,
    metrics: Metrics,
    shared: Arc<Shared>,
    messages: broadcast::Sender<Message>,
}

impl Follower {
    async fn run(self, mut events: broadcast::Receiver<Event>) {
        // The first sample a period after the start, not at once: a rate needs time.
        let mut sample = tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE_EVERY, SAMPLE_EVERY);
        sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut active = None;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => {
                        self.metrics.observe(&event);
                        if let Some(notice) = self.notice(&event, &mut active) {
                            self.publish("event", &notice);
                            let mut recent = lock(&self.shared.recent);
                            if recent.len() == RECENT {
                                recent.pop_front();
                            }
                            recent.push_back(notice);
                        }
                    }
                    Err(RecvError::Lagged(n)) => tracing::warn!("dashboard: {n} events missed (the live page's event list has gaps)"),
                    Err(RecvError::Closed) => return,
                },
                _ = sample.tick() => self.sample(),
            }
        }
    }

    /// The hash rate now, as the status line and the API's "MHS 5s" have it (`Stats::mhs_5s`),
    /// kept for the chart and sent with the counters of the moment to open pages.
    fn sample(&self) {
        let (total, devices) = self.site.stats.mhs_5s();
        let point = Point { time: unix_seconds(), total, devices };
        if self.messages.receiver_count() > 0 {
            #[derive(Serialize)]
            struct Sample<'a> {
                t: f64,
                total: f64,
                devices: &'a [f64],
                summary: json::Summary,
                device_list: Vec<json::Device>,
                pools: Vec<json::Pool>,
            }
            self.publish(
                "sample",
                &Sample {
                    t: point.time,
                    total: point.total,
                    devices: &point.devices,
                    summary: json::summary(&self.site),
                    device_list: json::devices(&self.site),
                    pools: json::pools(&self.site),
                },
            );
        }
        let mut points = lock(&self.shared.points);
        if points.len() == HISTORY {
            points.pop_front();
        }
        points.push_back(point);
    }

    fn publish<T: Serialize>(&self, kind: &'static str, value: &T) {
        if self.messages.receiver_count() == 0 {
            return;
        }
        if let Ok(data) = serde_json::to_string(value) {
            let _ = self.messages.send(Message { kind, data: data.into() });
        }
    }

    /// What of `event` a person would want to see; `active` is the pool in use so far.
    fn notice(&self, event: &Event, active: &mut Option<PoolId>) -> Option<Notice> {
        let url = |pool: PoolId| self.site.stats.pools().entries.get(pool.0).map(|p| redact(&p.url));
        let at = |kind, device: Option<usize>, pool: Option<String>, detail: Option<String>| {
            let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
            Some(Notice { time, kind, device, pool, detail })
        };
        match event {
            Event::Share { event: ShareEvent::Found, .. } => None,
            Event::Share { device, pool, event } => {
                let kind = match event {
                    ShareEvent::Accepted => "accepted",
                    ShareEvent::Rejected => "rejected",
                    ShareEvent::Stale => "stale",
                    ShareEvent::Journaled => "journaled",
                    _ => "unjournaled",
                };
                at(kind, Some(device.0), url(*pool), None)
            }
            Event::HardwareError { device } => at("hardware_error", Some(device.0), None, None),
            Event::PoolDown { pool, reason } => at("pool_down", None, url(*pool), Some(reason.clone())),
            Event::PoolChoice { active: now, .. } => {
                let switched = active.is_some_and(|before| before != *now);
                *active = Some(*now);
                if switched { at("pool_switched", None, url(*now), None) } else { None }
            }
            Event::Block => at("block", None, None, None),
            Event::Paused { device, paused, temp_c } => {
                let temp = temp_c.map(|t| format!("{t:.0} °C"));
                at(if *paused { "paused" } else { "resumed" }, Some(device.0), None, temp)
            }
            Event::DeviceState { device, state, message } => {
                at(state.name(), Some(device.0), None, message.as_deref().map(crate::logging::printable))
            }
            _ => None,
        }
    }
}
