//! Stratum v1 messages: newline-delimited JSON-RPC 1.0. Parsing is strict about types and never
//! panics: a bad line is an error that names what was wrong.

use serde_json::{Value, json};

use crate::work::job::Job;

/// Lines longer than this are refused: no pool message comes near it.
pub const MAX_LINE: usize = 1 << 20;

/// Stratum's error codes (slush's documentation; cgminer and every pool use them).
pub mod code {
    pub const OTHER: i64 = 20;
    pub const JOB_NOT_FOUND: i64 = 21;
    pub const DUPLICATE: i64 = 22;
    pub const LOW_DIFFICULTY: i64 = 23;
    pub const UNAUTHORIZED: i64 = 24;
    pub const NOT_SUBSCRIBED: i64 = 25;
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call that wants an answer (`id` not null).
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A call that wants none (`id` null or absent).
    Notification {
        method: String,
        params: Value,
    },
    Response {
        id: Value,
        result: Value,
        error: Option<RpcError>,
    },
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
        match v {
            Value::Null => None,
            Value::Array(a) => Some(RpcError {
                code: a.first().and_then(Value::as_i64).unwrap_or(code::OTHER),
                message: a.get(1).and_then(Value::as_str).unwrap_or("unknown error").to_string(),
            }),
            Value::Object(o) => Some(RpcError {
                code: o.get("code").and_then(Value::as_i64).unwrap_or(code::OTHER),
                message: o.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_string(),
            }),
            other => Some(RpcError { code: code::OTHER, message: other.to_string() }),
        }
    }

    pub fn to_value(&self) -> Value {
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

pub fn parse_line(line: &str) -> Result<Message, CodecError> {
    if line.len() > MAX_LINE {
        return Err(CodecError::TooLong(line.len()));
    }
    let v: Value = serde_json::from_str(line).map_err(|e| CodecError::Json(e.to_string()))?;
    let Value::Object(mut o) = v else {
        return Err(CodecError::Shape("not an object".into()));
    };
    let id = o.remove("id").unwrap_or(Value::Null);
    match o.remove("method") {
        Some(Value::String(method)) => {
            let params = o.remove("params").unwrap_or(Value::Array(vec![]));
            if id.is_null() {
                Ok(Message::Notification { method, params })
            } else {
                Ok(Message::Request { id, method, params })
            }
        }
        Some(other) => Err(CodecError::Shape(format!("method is {other}, not a string"))),
        None if o.contains_key("result") || o.contains_key("error") => {
            let result = o.remove("result").unwrap_or(Value::Null);
            let error = o.get("error").and_then(RpcError::from_value);
            Ok(Message::Response { id, result, error })
        }
        None => Err(CodecError::Shape("neither method nor result".into())),
    }
}

pub fn request(id: u64, method: &str, params: Value) -> String {
    json!({"id": id, "method": method, "params": params}).to_string()
}

pub fn response(id: &Value, result: Value, error: Option<&RpcError>) -> String {
    json!({"id": id, "result": result, "error": error.map(RpcError::to_value)}).to_string()
}

pub fn notification(method: &str, params: Value) -> String {
    json!({"id": null, "method": method, "params": params}).to_string()
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

/// `mining.notify` params: job_id, prevhash, coinb1, coinb2, merkle_branch, version, nbits,
/// ntime, clean_jobs.
pub fn parse_notify(params: &Value) -> Result<Job, CodecError> {
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

/// The params of `mining.notify` for a job (the embedded pool sends them).
pub fn notify_params(job: &Job) -> Value {
    use crate::work::job::to_hex;
    json!([
        job.id,
        job.prev_hash_hex(),
        to_hex(&job.coinb1),
        to_hex(&job.coinb2),
        job.merkle_branch.iter().map(|b| to_hex(b)).collect::<Vec<_>>(),
        format!("{:08x}", job.version),
        format!("{:08x}", job.bits.to_consensus()),
        format!("{:08x}", job.time),
        job.clean,
    ])
}

/// `mining.set_difficulty`: one positive number (integers and fractions alike).
pub fn parse_difficulty(params: &Value) -> Result<f64, CodecError> {
    const M: &str = "mining.set_difficulty";
    let a = array(M, params, 1)?;
    let d = a[0].as_f64().ok_or_else(|| params_error(M, format!("{} is not a number", a[0])))?;
    if !(d.is_finite() && d > 0.0) {
        return Err(params_error(M, format!("difficulty {d} is not positive")));
    }
    Ok(d)
}

/// `mining.subscribe`'s result and `mining.set_extranonce`'s params share a shape:
/// extranonce1 (hex) and extranonce2's size in bytes.
pub fn parse_extranonce(method: &str, values: &[Value]) -> Result<(Vec<u8>, usize), CodecError> {
    if values.len() < 2 {
        return Err(params_error(method, "expected extranonce1 and extranonce2_size"));
    }
    let en1 =
        crate::work::hex_decode(string(method, &values[0], "extranonce1")?).map_err(|e| params_error(method, e))?;
    let size = values[1].as_u64().ok_or_else(|| params_error(method, "extranonce2_size is not a number"))?;
    if !(1..=16).contains(&size) || en1.len() > 32 {
        return Err(params_error(method, format!("extranonce sizes out of range ({} and {size} bytes)", en1.len())));
    }
    Ok((en1, size as usize))
}

pub fn parse_subscribe_result(result: &Value) -> Result<(Option<String>, Vec<u8>, usize), CodecError> {
    const M: &str = "mining.subscribe";
    let a = array(M, result, 3)?;
    // The first element lists subscriptions; its "mining.notify" id is the session to resume.
    let session = a[0].as_array().and_then(|subs| {
        subs.iter().find_map(|s| {
            let pair = s.as_array()?;
            (pair.first()?.as_str()? == "mining.notify").then(|| pair.get(1)?.as_str().map(String::from))?
        })
    });
    let (en1, size) = parse_extranonce(M, &a[1..])?;
    Ok((session, en1, size))
}

/// Reads lines in a task of its own (reading is not cancel-safe inside `select!`). A line over
/// 1 MiB or a read error ends the stream with an error.
pub fn spawn_line_reader(read: tokio::net::tcp::OwnedReadHalf) -> tokio::sync::mpsc::Receiver<Result<String, String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let mut reader = tokio::io::BufReader::new(read);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = match (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string())).await;
                    return;
                }
            };
            if n == 0 {
                return;
            }
            if buf.last() != Some(&b'\n') && n > MAX_LINE {
                let _ = tx.send(Err("a line from the peer is over 1 MiB".into())).await;
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
mod tests {
    use super::*;

    const SLUSH_NOTIFY: &str = r#"{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", [], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}"#;

    #[test]
    fn slush_notify_parses_and_round_trips() {
        let Message::Notification { method, params } = parse_line(SLUSH_NOTIFY).unwrap() else { panic!() };
        assert_eq!(method, "mining.notify");
        let job = parse_notify(&params).unwrap();
        assert_eq!((job.id.as_str(), job.version, job.time, job.clean), ("bf", 2, 0x504e86b9, false));
        assert_eq!(notify_params(&job), params);
    }

    #[test]
    fn slush_subscribe_result() {
        let line = r#"{"id": 1, "result": [[["mining.set_difficulty", "b4b6693b72a50c7116db18d6497cac52"], ["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null}"#;
        let Message::Response { id, result, error } = parse_line(line).unwrap() else { panic!() };
        assert_eq!((id, error), (json!(1), None));
        let (session, en1, size) = parse_subscribe_result(&result).unwrap();
        assert_eq!(session.as_deref(), Some("ae6812eb4cd7735a302a8a9dd95cf71f"));
        assert_eq!((en1, size), (vec![8, 0, 0, 2], 4));
    }

    #[test]
    fn errors_in_both_shapes() {
        let Message::Response { error, .. } =
            parse_line(r#"{"id":4,"result":null,"error":[23,"Low difficulty share",null]}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(error, Some(RpcError::new(23, "Low difficulty share")));
        let Message::Response { error, .. } =
            parse_line(r#"{"id":4,"result":null,"error":{"code":21,"message":"Job not found"}}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(error, Some(RpcError::new(21, "Job not found")));
    }

    #[test]
    fn garbage_and_wrong_types_are_errors() {
        for line in ["", "garbage", "[1,2]", "{}", r#"{"method":5}"#, "{\"id\":1"] {
            assert!(parse_line(line).is_err(), "{line:?}");
        }
        assert!(matches!(parse_line(&"x".repeat(MAX_LINE + 1)), Err(CodecError::TooLong(_))));
        for params in [json!(null), json!([]), json!(vec!["bf"; 9]), json!([1, 2, 3, 4, 5, 6, 7, 8, 9])] {
            assert!(parse_notify(&params).is_err(), "{params}");
        }
        for params in [json!([]), json!(["1"]), json!([-1]), json!([0]), json!(null)] {
            assert!(parse_difficulty(&params).is_err(), "{params}");
        }
        assert_eq!(parse_difficulty(&json!([0.001])), Ok(0.001));
    }

    /// Property: no line, however mangled, makes the parser panic; it gives a message or an
    /// error. Mutations of real messages reach deep into the typed parsers.
    #[test]
    fn mangled_lines_never_panic() {
        let seeds = [
            SLUSH_NOTIFY,
            r#"{"id":1,"result":[[["mining.notify","ae"]],"08000002",4],"error":null}"#,
            r#"{"id":null,"method":"mining.set_difficulty","params":[0.5]}"#,
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut bytes = seeds[(next() % 3) as usize].as_bytes().to_vec();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % bytes.len();
                match next() % 3 {
                    0 => bytes[i] = next() as u8,
                    1 => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i, b"[]{}\",:0-e1"[(next() % 11) as usize]),
                }
            }
            let line = String::from_utf8_lossy(&bytes);
            if let Ok(Message::Notification { method, params } | Message::Request { method, params, .. }) =
                parse_line(&line)
            {
                let _ = (parse_notify(&params), parse_difficulty(&params), method);
            }
            if let Ok(Message::Response { result, .. }) = parse_line(&line) {
                let _ = parse_subscribe_result(&result);
            }
        }
    }
}
