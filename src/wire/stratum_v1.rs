//! Stratum v1 on the wire: newline-delimited JSON-RPC 1.0, read into typed messages and
//! written back from them, and the line reader. This is the only place that sees
//! `serde_json::Value`; the client session and the embedded pool work on `ServerMessage` and
//! `ClientMessage`.
//!
//! Parsing is strict about types and never panics: a bad line is an error that names what was
//! wrong. A response carries no method, so it is read by the method of the request it answers,
//! which the caller looks up by id.

use bitcoin::hex::DisplayHex;
use serde_json::{Map, Value, json};

use super::TransportError;
use crate::logging::printable;
pub use crate::work::VersionMask;
use crate::work::job::Job;
use crate::work::{Difficulty, hex_decode, hex_u32};

/// Lines longer than this are refused: no pool message comes near it.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// Stratum's error codes (slush's documentation; cgminer and every pool use them).
pub mod code {
    pub(crate) const OTHER: i64 = 20;
    pub(crate) const JOB_NOT_FOUND: i64 = 21;
    pub(crate) const DUPLICATE: i64 = 22;
    pub(crate) const LOW_DIFFICULTY: i64 = 23;
    pub(crate) const UNAUTHORIZED: i64 = 24;
    pub(crate) const NOT_SUBSCRIBED: i64 = 25;
}

/// A request id. Miners number their requests; pools may send strings, and an answer must
/// carry the id back unchanged. Ids of other JSON types are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    Num(u64),
    Text(String),
}

impl Id {
    fn from_value(v: Value) -> Result<Option<Id>, CodecError> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(Id::Text(s))),
            Value::Number(n) => n.as_u64().map(|n| Some(Id::Num(n))).ok_or_else(|| shape(format!("id {n}"))),
            other => Err(shape(format!("id is {other}"))),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Id::Num(n) => json!(n),
            Id::Text(s) => json!(s),
        }
    }
}

fn id_value(id: &Option<Id>) -> Value {
    id.as_ref().map_or(Value::Null, Id::to_value)
}

/// The extranonce space a pool gives a connection: its extranonce1, and extranonce2's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extranonce {
    pub extranonce1: Vec<u8>,
    pub extranonce2_size: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into() }
    }

    /// Stratum sends errors as `[code, message, traceback]`; some pools send objects.
    fn from_value(v: &Value) -> Option<RpcError> {
        let text = |m: Option<&Value>| printable(m.and_then(Value::as_str).unwrap_or("unknown error"));
        match v {
            Value::Null => None,
            Value::Array(a) => Some(RpcError {
                code: a.first().and_then(Value::as_i64).unwrap_or(code::OTHER),
                message: text(a.get(1)),
            }),
            Value::Object(o) => Some(RpcError {
                code: o.get("code").and_then(Value::as_i64).unwrap_or(code::OTHER),
                message: text(o.get("message")),
            }),
            other => Some(RpcError { code: code::OTHER, message: printable(&other.to_string()) }),
        }
    }

    fn to_value(&self) -> Value {
        json!([self.code, self.message, null])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("line of {0} bytes is over the 1 MiB limit")]
    TooLong(usize),
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not a JSON-RPC message: {0}")]
    Shape(String),
    #[error("{method}: {reason}")]
    Params { method: String, reason: String },
}

fn shape(reason: impl Into<String>) -> CodecError {
    CodecError::Shape(reason.into())
}

/// The methods a miner calls; a response is read by the method of the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Configure,
    Subscribe,
    Authorize,
    ExtranonceSubscribe,
    SuggestDifficulty,
    Submit,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Configure => "mining.configure",
            Method::Subscribe => "mining.subscribe",
            Method::Authorize => "mining.authorize",
            Method::ExtranonceSubscribe => "mining.extranonce.subscribe",
            Method::SuggestDifficulty => "mining.suggest_difficulty",
            Method::Submit => "mining.submit",
        }
    }
}

/// BIP310's version-rolling request: the bits the miner would roll and how many it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRolling {
    pub mask: VersionMask,
    pub min_bit_count: u32,
}

/// A share as `mining.submit` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub user: String,
    pub job_id: String,
    pub extranonce2: Vec<u8>,
    pub time: u32,
    pub nonce: u32,
    /// The rolled version bits, the sixth parameter once version rolling is on.
    pub version_bits: Option<u32>,
}

/// A miner's answer to a pool's request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Version(String),
    Pong,
    Ack,
    Refused(RpcError),
}

/// What a miner sends to a pool.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Configure {
        id: Id,
        version_rolling: Option<VersionRolling>,
    },
    Subscribe {
        id: Id,
        agent: String,
        session: Option<String>,
    },
    Authorize {
        id: Id,
        user: String,
        pass: String,
    },
    ExtranonceSubscribe {
        id: Id,
    },
    SuggestDifficulty {
        id: Id,
        difficulty: Difficulty,
    },
    Submit {
        id: Id,
        submission: Submission,
    },
    Answer {
        id: Option<Id>,
        answer: Answer,
    },
    /// A method the reader does not know.
    Other {
        id: Option<Id>,
        method: String,
    },
    /// A known method with parameters that do not read.
    Invalid {
        id: Option<Id>,
        method: String,
        reason: String,
    },
}

/// Where `client.reconnect` sends the miner: the same pool when host and port are absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redirect {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Seconds to wait before reconnecting.
    pub wait: u64,
}

/// What a pool's response says, read by the method it answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `mining.configure`: the version-rolling mask granted, if any.
    Configured {
        version_rolling: Option<VersionMask>,
    },
    /// `mining.subscribe`: the session id to resume later, and the extranonce space.
    Subscribed {
        session: Option<String>,
        extranonce: Extranonce,
    },
    /// `true`/`false` of authorize, submit and the optional methods.
    Result(bool),
    Error(RpcError),
    /// An answer to no request of ours (a stray id).
    Untracked,
}

/// What a pool sends to a miner.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Notify(Job),
    SetDifficulty(Difficulty),
    SetExtranonce(Extranonce),
    SetVersionMask(VersionMask),
    Reconnect { id: Option<Id>, redirect: Redirect },
    ShowMessage { id: Option<Id>, text: String },
    GetVersion { id: Id },
    Ping { id: Id },
    Other { id: Option<Id>, method: String },
    Response { id: Option<Id>, reply: Reply },
}

/// A JSON-RPC object split into its parts.
enum Raw {
    Call { id: Option<Id>, method: String, params: Value },
    Response { id: Option<Id>, result: Value, error: Option<RpcError> },
}

fn read_raw(line: &str) -> Result<Raw, CodecError> {
    if line.len() > MAX_LINE {
        return Err(CodecError::TooLong(line.len()));
    }
    let v: Value = serde_json::from_str(line).map_err(|e| CodecError::Json(e.to_string()))?;
    let Value::Object(mut o) = v else { return Err(shape("not an object")) };
    let id = Id::from_value(o.remove("id").unwrap_or(Value::Null))?;
    match o.remove("method") {
        Some(Value::String(method)) => {
            Ok(Raw::Call { id, method, params: o.remove("params").unwrap_or(Value::Array(vec![])) })
        }
        Some(other) => Err(shape(format!("method is {other}, not a string"))),
        None if o.contains_key("result") || o.contains_key("error") => {
            let error = o.get("error").and_then(RpcError::from_value);
            Ok(Raw::Response { id, result: o.remove("result").unwrap_or(Value::Null), error })
        }
        None => Err(shape("neither method nor result")),
    }
}

fn params_error(method: &str, reason: impl ToString) -> CodecError {
    CodecError::Params { method: method.to_string(), reason: reason.to_string() }
}

fn array<'a>(method: &str, params: &'a Value, min: usize) -> Result<&'a [Value], CodecError> {
    let a = params.as_array().ok_or_else(|| params_error(method, "params is not an array"))?;
    if a.len() < min {
        return Err(params_error(method, format!("{} params, expected at least {min}", a.len())));
    }
    Ok(a)
}

fn string<'a>(method: &str, v: &'a Value, what: &str) -> Result<&'a str, CodecError> {
    v.as_str().ok_or_else(|| params_error(method, format!("{what} is not a string: {v}")))
}

/// A number that pools write either as a JSON number or as a decimal string.
fn loose_u64(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
}

impl ServerMessage {
    /// Reads a pool's line; `expected` names the method of each id the miner has in flight.
    pub fn parse(line: &str, expected: impl Fn(&Id) -> Option<Method>) -> Result<ServerMessage, CodecError> {
        match read_raw(line)? {
            Raw::Response { id, result, error } => {
                let method = id.as_ref().and_then(&expected);
                Ok(ServerMessage::Response { reply: read_reply(method, result, error)?, id })
            }
            Raw::Call { id, method, params } => read_server_call(id, method, &params),
        }
    }

    pub(crate) fn to_line(&self) -> String {
        let notification = |method: &str, params: Value| json!({"id": null, "method": method, "params": params});
        let value = match self {
            ServerMessage::Notify(job) => notification("mining.notify", notify_params(job)),
            ServerMessage::SetDifficulty(d) => notification("mining.set_difficulty", json!([d.value()])),
            ServerMessage::SetExtranonce(e) => {
                notification("mining.set_extranonce", json!([e.extranonce1.to_lower_hex_string(), e.extranonce2_size]))
            }
            ServerMessage::SetVersionMask(m) => {
                notification("mining.set_version_mask", json!([format!("{:08x}", m.0)]))
            }
            ServerMessage::Reconnect { id, redirect } => json!({"id": id_value(id), "method": "client.reconnect",
                "params": [redirect.host, redirect.port, redirect.wait]}),
            ServerMessage::ShowMessage { id, text } => {
                json!({"id": id_value(id), "method": "client.show_message", "params": [text]})
            }
            ServerMessage::GetVersion { id } => {
                json!({"id": id.to_value(), "method": "client.get_version", "params": []})
            }
            ServerMessage::Ping { id } => json!({"id": id.to_value(), "method": "mining.ping", "params": []}),
            ServerMessage::Other { id, method } => json!({"id": id_value(id), "method": method, "params": []}),
            ServerMessage::Response { id, reply } => {
                let (result, error) = match reply {
                    Reply::Configured { version_rolling: Some(m) } => {
                        (json!({"version-rolling": true, "version-rolling.mask": format!("{:08x}", m.0)}), None)
                    }
                    Reply::Configured { version_rolling: None } => (json!({"version-rolling": false}), None),
                    Reply::Subscribed { session, extranonce } => {
                        let subs = session
                            .as_ref()
                            .map_or(json!([]), |s| json!([["mining.set_difficulty", s], ["mining.notify", s]]));
                        let en1 = extranonce.extranonce1.to_lower_hex_string();
                        (json!([subs, en1, extranonce.extranonce2_size]), None)
                    }
                    Reply::Result(b) => (json!(b), None),
                    Reply::Error(e) => (Value::Null, Some(e.to_value())),
                    Reply::Untracked => (Value::Null, None),
                };
                json!({"id": id_value(id), "result": result, "error": error})
            }
        };
        value.to_string()
    }
}

fn read_reply(method: Option<Method>, result: Value, error: Option<RpcError>) -> Result<Reply, CodecError> {
    let Some(method) = method else { return Ok(Reply::Untracked) };
    if let Some(e) = error {
        return Ok(Reply::Error(e));
    }
    Ok(match (method, result) {
        (Method::Configure, result) => Reply::Configured { version_rolling: read_configure_result(&result) },
        (Method::Subscribe, result) => {
            let (session, extranonce) = read_subscribe_result(&result)?;
            Reply::Subscribed { session, extranonce }
        }
        (_, Value::Bool(b)) => Reply::Result(b),
        (_, other) => Reply::Error(RpcError::new(code::OTHER, format!("result {other}"))),
    })
}

fn read_server_call(id: Option<Id>, method: String, params: &Value) -> Result<ServerMessage, CodecError> {
    let m = method.as_str();
    Ok(match m {
        "mining.notify" => ServerMessage::Notify(read_notify(params)?),
        "mining.set_difficulty" => ServerMessage::SetDifficulty(read_difficulty(m, params)?),
        "mining.set_extranonce" => ServerMessage::SetExtranonce(read_extranonce(m, array(m, params, 2)?)?),
        "mining.set_version_mask" => {
            let a = array(m, params, 1)?;
            ServerMessage::SetVersionMask(VersionMask(
                hex_u32(string(m, &a[0], "mask")?).map_err(|e| params_error(m, e))?,
            ))
        }
        "client.reconnect" => {
            let a = params.as_array().map(Vec::as_slice).unwrap_or_default();
            let host = a.first().and_then(Value::as_str).filter(|h| !h.is_empty()).map(String::from);
            let port = match loose_u64(a.get(1)) {
                Some(p) => Some(u16::try_from(p).map_err(|_| params_error(m, format!("port {p}")))?),
                None => None,
            };
            ServerMessage::Reconnect { id, redirect: Redirect { host, port, wait: loose_u64(a.get(2)).unwrap_or(0) } }
        }
        "client.show_message" => {
            let text = printable(params.get(0).and_then(Value::as_str).unwrap_or_default());
            ServerMessage::ShowMessage { id, text }
        }
        "client.get_version" | "mining.ping" | "client.ping" => {
            let id = id.ok_or_else(|| params_error(m, "a request without an id"))?;
            if m == "client.get_version" { ServerMessage::GetVersion { id } } else { ServerMessage::Ping { id } }
        }
        _ => ServerMessage::Other { id, method },
    })
}

/// `mining.notify` params: job_id, prevhash, coinb1, coinb2, merkle_branch, version, nbits,
/// ntime, clean_jobs.
fn read_notify(params: &Value) -> Result<Job, CodecError> {
    const M: &str = "mining.notify";
    let a = array(M, params, 9)?;
    let branch_values = a[4].as_array().ok_or_else(|| params_error(M, "merkle_branch is not an array"))?;
    let branch: Vec<&str> =
        branch_values.iter().map(|b| string(M, b, "merkle_branch entry")).collect::<Result<_, _>>()?;
    let clean = a[8].as_bool().ok_or_else(|| params_error(M, "clean_jobs is not a boolean"))?;
    Job::from_notify_hex(
        string(M, &a[0], "job_id")?,
        string(M, &a[1], "prevhash")?,
        string(M, &a[2], "coinb1")?,
        string(M, &a[3], "coinb2")?,
        &branch,
        string(M, &a[5], "version")?,
        string(M, &a[6], "nbits")?,
        string(M, &a[7], "ntime")?,
        clean,
    )
    .map_err(|e| params_error(M, e))
}

fn notify_params(job: &Job) -> Value {
    json!([
        job.id.to_string(),
        job.prev_hash_hex(),
        job.coinb1.to_lower_hex_string(),
        job.coinb2.to_lower_hex_string(),
        job.merkle_branch.iter().map(|b| b.to_lower_hex_string()).collect::<Vec<_>>(),
        format!("{:08x}", job.version),
        format!("{:08x}", job.bits.to_consensus()),
        format!("{:08x}", job.time),
        job.clean,
    ])
}

/// One positive number (integers and fractions alike): set_difficulty, suggest_difficulty.
fn read_difficulty(method: &str, params: &Value) -> Result<Difficulty, CodecError> {
    let a = array(method, params, 1)?;
    let d = a[0].as_f64().ok_or_else(|| params_error(method, format!("{} is not a number", a[0])))?;
    Difficulty::new(d).map_err(|e| params_error(method, e))
}

/// `mining.subscribe`'s result and `mining.set_extranonce`'s params share a shape:
/// extranonce1 (hex) and extranonce2's size in bytes.
fn read_extranonce(method: &str, values: &[Value]) -> Result<Extranonce, CodecError> {
    let en1 = hex_decode(string(method, &values[0], "extranonce1")?).map_err(|e| params_error(method, e))?;
    let size = values[1].as_u64().ok_or_else(|| params_error(method, "extranonce2_size is not a number"))?;
    if !(1..=16).contains(&size) || en1.len() > 32 {
        return Err(params_error(method, format!("extranonce sizes out of range ({} and {size} bytes)", en1.len())));
    }
    Ok(Extranonce { extranonce1: en1, extranonce2_size: size as usize })
}

fn read_subscribe_result(result: &Value) -> Result<(Option<String>, Extranonce), CodecError> {
    const M: &str = "mining.subscribe";
    let a = array(M, result, 3)?;
    // The first element lists subscriptions; its "mining.notify" id is the session to resume.
    let session = a[0].as_array().and_then(|subs| {
        subs.iter().find_map(|s| {
            let pair = s.as_array()?;
            (pair.first()?.as_str()? == "mining.notify").then(|| pair.get(1)?.as_str().map(String::from))?
        })
    });
    Ok((session, read_extranonce(M, &a[1..])?))
}

/// `mining.configure`'s result: the version-rolling mask granted, if any.
fn read_configure_result(result: &Value) -> Option<VersionMask> {
    let granted = result.get("version-rolling").and_then(Value::as_bool) == Some(true);
    let mask = result.get("version-rolling.mask").and_then(Value::as_str).and_then(|m| hex_u32(m).ok());
    if granted { mask.map(VersionMask) } else { None }
}

impl ClientMessage {
    /// Reads a miner's line (the embedded pool's side).
    pub fn parse(line: &str) -> Result<ClientMessage, CodecError> {
        match read_raw(line)? {
            Raw::Response { id, result, error } => {
                let answer = match (error, result) {
                    (Some(e), _) => Answer::Refused(e),
                    (None, Value::String(s)) if s == "pong" => Answer::Pong,
                    (None, Value::String(s)) => Answer::Version(s),
                    (None, _) => Answer::Ack,
                };
                Ok(ClientMessage::Answer { id, answer })
            }
            Raw::Call { id, method, params } => Ok(read_client_call(id, method, &params)),
        }
    }

    pub(crate) fn to_line(&self) -> String {
        let request =
            |id: &Id, method: &str, params: Value| json!({"id": id.to_value(), "method": method, "params": params});
        let value = match self {
            ClientMessage::Configure { id, version_rolling } => {
                let params = match version_rolling {
                    Some(r) => json!([["version-rolling"], {"version-rolling.mask": format!("{:08x}", r.mask.0),
                        "version-rolling.min-bit-count": r.min_bit_count}]),
                    None => json!([[], {}]),
                };
                request(id, Method::Configure.name(), params)
            }
            ClientMessage::Subscribe { id, agent, session } => {
                let params = match session {
                    Some(s) => json!([agent, s]),
                    None => json!([agent]),
                };
                request(id, Method::Subscribe.name(), params)
            }
            ClientMessage::Authorize { id, user, pass } => request(id, Method::Authorize.name(), json!([user, pass])),
            ClientMessage::ExtranonceSubscribe { id } => request(id, Method::ExtranonceSubscribe.name(), json!([])),
            ClientMessage::SuggestDifficulty { id, difficulty } => {
                request(id, Method::SuggestDifficulty.name(), json!([difficulty.value()]))
            }
            ClientMessage::Submit { id, submission } => request(id, Method::Submit.name(), submit_params(submission)),
            ClientMessage::Answer { id, answer } => {
                let (result, error) = match answer {
                    Answer::Version(v) => (json!(v), None),
                    Answer::Pong => (json!("pong"), None),
                    Answer::Ack => (json!(true), None),
                    Answer::Refused(e) => (Value::Null, Some(e.to_value())),
                };
                json!({"id": id_value(id), "result": result, "error": error})
            }
            ClientMessage::Other { id, method } | ClientMessage::Invalid { id, method, .. } => {
                json!({"id": id_value(id), "method": method, "params": []})
            }
        };
        value.to_string()
    }
}

fn submit_params(s: &Submission) -> Value {
    let mut params = vec![
        json!(s.user),
        json!(s.job_id),
        json!(s.extranonce2.to_lower_hex_string()),
        json!(format!("{:08x}", s.time)),
        json!(format!("{:08x}", s.nonce)),
    ];
    if let Some(bits) = s.version_bits {
        params.push(json!(format!("{bits:08x}")));
    }
    Value::Array(params)
}

fn read_client_call(id: Option<Id>, method: String, params: &Value) -> ClientMessage {
    let invalid = |id: Option<Id>, e: CodecError| {
        let reason = match e {
            CodecError::Params { reason, .. } => reason,
            other => other.to_string(),
        };
        ClientMessage::Invalid { id, method: method.clone(), reason }
    };
    let Some(request_id) = id.clone() else {
        return invalid(id, params_error(&method, "a request without an id"));
    };
    let read = || -> Result<ClientMessage, CodecError> {
        let m = method.as_str();
        let text = |i: usize| params.get(i).and_then(Value::as_str).map(String::from);
        Ok(match m {
            "mining.subscribe" => ClientMessage::Subscribe {
                id: request_id.clone(),
                agent: text(0).unwrap_or_default(),
                session: text(1),
            },
            // ckpool matches any method that starts with "mining.auth".
            "mining.authorize" | "mining.auth" => {
                let user = text(0).ok_or_else(|| params_error(m, "no user name"))?;
                ClientMessage::Authorize { id: request_id.clone(), user, pass: text(1).unwrap_or_default() }
            }
            "mining.extranonce.subscribe" => ClientMessage::ExtranonceSubscribe { id: request_id.clone() },
            "mining.suggest_difficulty" => {
                ClientMessage::SuggestDifficulty { id: request_id.clone(), difficulty: read_difficulty(m, params)? }
            }
            "mining.configure" => {
                ClientMessage::Configure { id: request_id.clone(), version_rolling: read_configure_request(params) }
            }
            "mining.submit" => ClientMessage::Submit { id: request_id.clone(), submission: read_submission(params)? },
            _ => ClientMessage::Other { id: Some(request_id.clone()), method: method.clone() },
        })
    };
    read().unwrap_or_else(|e| invalid(Some(request_id.clone()), e))
}

fn read_configure_request(params: &Value) -> Option<VersionRolling> {
    let asks = params.get(0).and_then(Value::as_array).is_some_and(|e| e.iter().any(|x| x == "version-rolling"));
    let options = params.get(1).and_then(Value::as_object).cloned().unwrap_or_else(Map::new);
    let mask =
        options.get("version-rolling.mask").and_then(Value::as_str).and_then(|m| u32::from_str_radix(m, 16).ok());
    let min_bit_count = options.get("version-rolling.min-bit-count").and_then(Value::as_u64).unwrap_or(0);
    asks.then(|| VersionRolling {
        mask: VersionMask(mask.unwrap_or(u32::MAX)),
        min_bit_count: u32::try_from(min_bit_count).unwrap_or(u32::MAX),
    })
}

fn read_submission(params: &Value) -> Result<Submission, CodecError> {
    const M: &str = "mining.submit";
    let a = array(M, params, 5)?;
    let hex = |i: usize, what: &str| -> Result<u32, CodecError> {
        hex_u32(string(M, &a[i], what)?).map_err(|e| params_error(M, format!("{what}: {e}")))
    };
    let extranonce2 =
        hex_decode(string(M, &a[2], "extranonce2")?).map_err(|_| params_error(M, "extranonce2 is not hex"))?;
    Ok(Submission {
        user: string(M, &a[0], "worker")?.to_string(),
        job_id: string(M, &a[1], "job_id")?.to_string(),
        extranonce2,
        time: hex(3, "ntime")?,
        nonce: hex(4, "nonce")?,
        version_bits: if a.len() > 5 { Some(hex(5, "version bits")?) } else { None },
    })
}

/// The sending half of a v1 connection, either side: one line a message, flushed (TLS holds
/// data back until then).
pub struct LineWriter(pub Box<dyn tokio::io::AsyncWrite + Unpin + Send>);

impl super::Outbox<String> for LineWriter {
    async fn put(&mut self, line: String) -> Result<(), TransportError> {
        use tokio::io::AsyncWriteExt;
        let bytes = format!("{line}\n");
        super::within_timeout(async {
            self.0.write_all(bytes.as_bytes()).await?;
            self.0.flush().await
        })
        .await
    }
}

impl super::Outbox<ClientMessage> for LineWriter {
    async fn put(&mut self, message: ClientMessage) -> Result<(), TransportError> {
        self.put(message.to_line()).await
    }
}

/// Reads lines in a task of its own (reading is not cancel-safe inside `select!`). A line over
/// `max_line` bytes or a read error ends the stream with an error.
pub(crate) fn spawn_line_reader<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    read: R,
    max_line: usize,
) -> tokio::sync::mpsc::Receiver<Result<String, TransportError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let mut reader = tokio::io::BufReader::new(read);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = match (&mut reader).take(max_line as u64 + 1).read_until(b'\n', &mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            if n == 0 {
                return;
            }
            if buf.last() != Some(&b'\n') && n > max_line {
                let _ = tx.send(Err(TransportError::LineTooLong(max_line))).await;
                return;
            }
            let line = String::from_utf8_lossy(&buf).trim().to_string();
            if line.is_empty() {
                continue;
            }
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests;
