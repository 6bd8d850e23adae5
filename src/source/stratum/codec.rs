//! Stratum v1 messages: newline-delimited JSON-RPC 1.0. Parsing is strict about types and never
//! panics: a bad line is an error that names what was wrong.

use bitcoin::hex::DisplayHex;
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
    json!([
        job.id,
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

/// `mining.submit` params: worker, job_id, extranonce2, ntime, nonce, and the rolled version
/// bits as a sixth when version rolling is on (BIP310).
pub fn submit_params(user: &str, share: &crate::source::Share) -> Value {
    let mut params = vec![
        json!(user),
        json!(share.job_id),
        json!(share.extranonce2.to_lower_hex_string()),
        json!(format!("{:08x}", share.time)),
        json!(format!("{:08x}", share.nonce)),
    ];
    if let Some(bits) = share.version_bits {
        params.push(json!(format!("{bits:08x}")));
    }
    Value::Array(params)
}

/// `mining.configure`'s result: the version-rolling mask the pool grants, 0 if none.
pub fn parse_configure_result(result: &Value) -> u32 {
    let granted = result.get("version-rolling").and_then(Value::as_bool) == Some(true);
    let mask = result.get("version-rolling.mask").and_then(Value::as_str).and_then(|m| u32::from_str_radix(m, 16).ok());
    if granted { mask.unwrap_or(0) } else { 0 }
}

/// `mining.set_version_mask [mask]`.
pub fn parse_version_mask(params: &Value) -> Result<u32, CodecError> {
    const M: &str = "mining.set_version_mask";
    let a = array(M, params, 1)?;
    u32::from_str_radix(string(M, &a[0], "mask")?, 16).map_err(|e| params_error(M, e))
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
pub fn spawn_line_reader<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    read: R,
) -> tokio::sync::mpsc::Receiver<Result<String, String>> {
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

    /// Block 881,423 was mined through a Stratum pool with version rolling (its version is
    /// 0x2e596000: base 0x20000000 plus rolled bits 0x0e596000 under mask 0x1fffe000). The job's
    /// parts (coinb1/coinb2 split, extranonces, merkle branch) are those recorded in
    /// 256foundation/mujina, mujina-miner/src/job_source/test_blocks.rs, with the coinbase in
    /// the non-witness form pools send; the header and hash are the chain's.
    #[test]
    fn version_rolled_share_of_block_881423() {
        let branch = [
            "4282357ab0a2f4e8e562c8c5eae1d63b559068f9072374b72e26b88ac841908f",
            "c2bbae90d06f8025ade3516ca2e42d79318b6e56fccb9609df85a654a8341068",
            "cbb30084acbcb5ce6d5436e853bc612466df0c00702be6f51d47072f1a5d0480",
            "bb092e533f70b79246fc9e4bdc9b81ac8332e56f2651e3b237a150d6d807b081",
            "0d32959988733447cb340326a1fe4d3c2cff5d636e32a4e08c3fc5a234f6f6bc",
            "8ba3477940924a90067cff3dd30bc46916cf4c2f73fb6229b8f8197b83b6ddb9",
            "3fe97cc5dec1cddd66c9d3780888c145c12418590cd983c4871b1bf03fabbf9e",
            "bd1c6a3bcd0ebaa0eca54d9c802540f312c7705435601d776b4f59bb52cff67d",
            "8638c10190b8f4f558bafdbb57f46226c349a83f229f431143ae75e425fb5cbd",
            "6d6f4eae41cccb21a7c97ac496d9f89b8a4f772389b76f7691519dda38264221",
            "82dad7a1e2613af0e61f77f03d6208c83e72f917dade4235cc35e37ee3ad6e3f",
        ];
        let notify = json!([
            "1a2b",
            "8a6ac9e3fe15ca70f8995e21434cb64ac4d2b5e10001543b0000000000000000",
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff3d030f730d000469c19a67",
            "9a67b6600000000000000a41706f6c6c6f192f6d696e65642062792032353620466f756e646174696f6e2fffffffff0275aac01200000000160014c64b1b9283ba1ea86bb9e7b696b0c8f68dad04000000000000000000266a24aa21a9edb395560ab72068c2afb1d7e6c7db26b813482089d2c4d2471b9036c5e826140600000000",
            branch,
            "20000000",
            "17029a8a",
            "679ac169",
            true
        ]);
        let job = parse_notify(&notify).unwrap();
        let (en1, en2) = (crate::work::hex_decode("04830cee").unwrap(), crate::work::hex_decode("220cf1ad").unwrap());
        let mask = 0x1fff_e000;
        let version_bits = 0x0e59_6000;
        let mut header = job.header(&en1, &en2, job.time, (job.version & !mask) | version_bits);
        header.nonce = 0xff05_fb02;
        assert_eq!(
            crate::work::header_bytes(&header).to_lower_hex_string(),
            "0060592ee3c96a8a70ca15fe215e99f84ab64c43e1b5d2c43b540100000000000000000076f63a35f1b8b5016d3eb0cce2eebbdf58bf8fbea4e870c8f770346bdfcf622d69c19a678a9a021702fb05ff"
        );
        assert_eq!(header.block_hash().to_string(), "0000000000000000000269d52c24ea451225613aab095d90d771d4e29aa96cdd");
        let share = crate::source::Share {
            source: 0,
            job_id: job.id.clone(),
            extranonce1: en1,
            extranonce2: en2,
            time: job.time,
            nonce: header.nonce,
            version_bits: Some(version_bits),
            hash: header.block_hash(),
            device: 0,
        };
        assert_eq!(
            request(7, "mining.submit", submit_params("telehash.worker", &share)),
            r#"{"id":7,"method":"mining.submit","params":["telehash.worker","1a2b","220cf1ad","679ac169","ff05fb02","0e596000"]}"#
        );
        assert_eq!(parse_configure_result(&json!({"version-rolling": true, "version-rolling.mask": "1fffe000"})), mask);
        assert_eq!(parse_configure_result(&json!({"version-rolling": false})), 0);
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
