//! The segwit path of solo mining, byte for byte: a Bitcoin Core-shaped getblocktemplate reply
//! with segwit transactions becomes a block that rust-bitcoin's checks accept.
//!
//! The template is built here from real, signed transactions published in BIP143 (its
//! P2SH-P2WPKH and native P2WSH examples) and the first bitcoin payment (block 170, legacy),
//! with Core's fields. Its `default_witness_commitment` is computed below from the
//! transactions' raw bytes with plain SHA-256d, not with rust-bitcoin's witness code, so that
//! the miner's commitment is checked against an independent computation.

use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::{Hash, sha256d};
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::{ScriptBuf, Transaction};
use serde_json::{Value, json};
use wgminer::source::gbt::template;
use wgminer::work::VersionMask;
use wgminer::work::block::{BlockError, BlockPlan};

const P2SH_P2WPKH: &str = "01000000000101db6b1b20aa0fd7b23880be2ecbd4a98130974cf4748fb66092ac4d3ceb1a5477010000001716001479091972186c449eb1ded22b78e40d009bdf0089feffffff02b8b4eb0b000000001976a914a457b684d7f0d539a46a45bbc043f35b59d0d96388ac0008af2f000000001976a914fd270b1ee6abcaea97fea7ad0402e8bd8ad6d77c88ac02473044022047ac8e878352d3ebbde1c94ce3a10d057c24175747116f8288e5d794d12d482f0220217f36a485cae903c713331d877c1f64677e3622ad4010726870540656fe9dcb012103ad1d8e89212f0b92c74d23bb710c00662ad1470198ac48c43f7d6f93a2a2687392040000";
const P2WSH: &str = "01000000000102fe3dc9208094f3ffd12645477b3dc56f60ec4fa8e6f5d67c565d1c6b9216b36e000000004847304402200af4e47c9b9629dbecc21f73af989bdaa911f7e6f6c2e9394588a3aa68f81e9902204f3fcf6ade7e5abb1295b6774c8e0abd94ae62217367096bc02ee5e435b67da201ffffffff0815cf020f013ed6cf91d29f4202e8a58726b1ac6c79da47c23d1bee0a6925f80000000000ffffffff0100f2052a010000001976a914a30741f8145e5acadf23f751864167f32e0963f788ac000347304402200de66acf4527789bfda55fc5459e214fa6083f936b430a762c629656216805ac0220396f550692cd347171cbc1ef1f51e15282e837bb2b30860dc77c8f78bc8501e503473044022027dc95ad6b740fe5129e7e62a75dd00f291a2aeb1200b84b09d9e3789406b6c002201a9ecd315dd6a0e632ab20bbb98948bc0c6fb204f2c286963bb48517a7058e27034721026dccc749adc2a9d0d89497ac511f760f45c47dc5ed9cf352a58ac706453880aeadab210255a9626aebf5e29c0e6538428ba0d1dcf6ca98ffdf086aa8ced5e0d0215ea465ac00000000";
/// Block 170's payment from Satoshi to Hal Finney: txid f4184fc5…9e16.
const LEGACY: &str = "0100000001c997a5e56e104102fa209c6a852dd90660a20b2d9c352423edce25857fcd3704000000004847304402204e45e16932b8af514961a1d3a1a25fdf3f4f7732e9d624c6c61548ab5fb8cd410220181522ec8eca07de4860a4acdd12909d831cc56cbbac4622082221a8768d1d0901ffffffff0200ca9a3b00000000434104ae1a62fe09c5f51b13905f07f06b99a2f7159b2225f374cd378d71302fa28414e7aab37397f554a7df5f142c21c1b7303b8a0626f1baded5c72a704f7e6cd84cac00286bee0000000043410411db93e1dcdb8a016b49840f8c53bc1eb68a382e97b1482ecad7b148a6909a5cb2e0eaddfb84ccf9744464f82e160bfa9b8b64f9d4c03f999b8643f656b412a3ac00000000";

/// P2WPKH payout (BIP173's example key hash).
const PAYOUT: &str = "0014751e76e8199196d454941c45d1b3a323f1433bd6";

fn bytes(hex: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(hex).unwrap()
}

fn sha256d(data: &[u8]) -> [u8; 32] {
    sha256d::Hash::hash(data).to_byte_array()
}

/// Display order (reversed), as RPC prints hashes.
fn display(hash: [u8; 32]) -> String {
    let mut h = hash;
    h.reverse();
    h.to_lower_hex_string()
}

/// BIP141's commitment by hand: merkle root of the wtxids (the coinbase's as zero), hashed with
/// the all-zero reserved value, behind OP_RETURN 0x24 aa21a9ed.
fn commitment_by_hand(raw: &[&str]) -> String {
    let mut level: Vec<[u8; 32]> = std::iter::once([0u8; 32]).chain(raw.iter().map(|t| sha256d(&bytes(t)))).collect();
    while level.len() > 1 {
        level = level.chunks(2).map(|p| sha256d(&[p[0], *p.get(1).unwrap_or(&p[0])].concat())).collect();
    }
    let commitment = sha256d(&[level[0], [0u8; 32]].concat());
    format!("6a24aa21a9ed{}", commitment.to_lower_hex_string())
}

fn core_template(with_commitment: bool) -> Value {
    let raw = [P2SH_P2WPKH, P2WSH, LEGACY];
    let transactions: Vec<Value> = raw
        .iter()
        .map(|hex| {
            let tx: Transaction = bitcoin::consensus::deserialize(&bytes(hex)).unwrap();
            json!({
                "data": hex, "txid": tx.compute_txid().to_string(), "hash": display(sha256d(&bytes(hex))),
                "depends": [], "fee": 1000, "sigops": 4, "weight": tx.weight().to_wu()
            })
        })
        .collect();
    let mut t = json!({
        "capabilities": ["proposal"], "version": 0x2000_0000, "rules": ["csv", "!segwit", "taproot"],
        "vbavailable": {}, "vbrequired": 0,
        "previousblockhash": "0000000000000000000320283a032748cef8227873ff4872689bf23f1cda83a5",
        "transactions": transactions, "coinbaseaux": {}, "coinbasevalue": 312_503_000u64,
        "longpollid": "0000000000000000000320283a032748cef8227873ff4872689bf23f1cda83a5123",
        "target": "0000000000000000000342190000000000000000000000000000000000000000",
        "mintime": 1_713_571_000, "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff", "sigoplimit": 80000, "sizelimit": 4_000_000, "weightlimit": 4_000_000,
        "curtime": 1_713_571_767, "bits": "17034219", "height": 840_000
    });
    if with_commitment {
        t["default_witness_commitment"] = json!(commitment_by_hand(&raw));
    }
    t
}

fn plan(template: &Value) -> Result<BlockPlan, BlockError> {
    let t = template::parse(template).unwrap();
    BlockPlan::new(t.block, ScriptBuf::from_bytes(bytes(PAYOUT)), b"/wgminer/")
}

#[test]
fn segwit_template_becomes_the_expected_block_byte_for_byte() {
    let tx: Transaction = bitcoin::consensus::deserialize(&bytes(LEGACY)).unwrap();
    assert_eq!(tx.compute_txid().to_string(), "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16");

    let template = core_template(true);
    let plan = plan(&template).unwrap();
    let extranonce = [0, 0, 0, 0, 0, 0, 0x01, 0x2c];
    let block = plan.block(&extranonce, 1_713_571_800, plan.template.version as u32, 0x1234_5678).unwrap();

    // The coinbase, field by field (BIP144 serialization).
    let coinbase = [
        "02000000",                                                         // version 2
        "0001",                                                             // segwit marker and flag
        "01",                                                               // one input
        "0000000000000000000000000000000000000000000000000000000000000000", // null outpoint
        "ffffffff",
        "17",                   // scriptSig: 23 bytes
        "0340d10c",             // BIP34: push 3 bytes, 840000 = 0x0cd140 little-endian
        "092f77676d696e65722f", // push "/wgminer/"
        "08000000000000012c",   // push the 8-byte extranonce
        "ffffffff",             // sequence
        "02",                   // two outputs
        "d86aa01200000000",     // 312 503 000 sat
        "16",                   // to the P2WPKH payout
        PAYOUT,
        "0000000000000000", // zero value: the witness commitment
        "26",
        template["default_witness_commitment"].as_str().unwrap(),
        "01",                                                               // one witness item
        "20",                                                               // of 32 bytes:
        "0000000000000000000000000000000000000000000000000000000000000000", // the reserved value
        "00000000",                                                         // lock time
    ]
    .concat();
    let header = bitcoin::consensus::encode::serialize(&block.header).to_lower_hex_string();
    assert_eq!(&header[..8], "00000020");
    assert_eq!(&header[8..72], display_to_internal("0000000000000000000320283a032748cef8227873ff4872689bf23f1cda83a5"));
    assert_eq!(&header[136..], "d80723661942031778563412"); // time, bits, nonce
    let expected = [header.as_str(), "04", &coinbase, P2SH_P2WPKH, P2WSH, LEGACY].concat();
    assert_eq!(serialize(&block).to_lower_hex_string(), expected);

    // rust-bitcoin's checks: merkle root, witness commitment, BIP34 height.
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    assert_eq!(block.bip34_block_height().unwrap(), 840_000);
    // The job's merkle root (branch folding, as devices get it) is the block's.
    let job = plan.job("1".into(), 1_713_571_800);
    assert_eq!(job.merkle_root(&[], &extranonce), block.header.merkle_root);
    assert_eq!(plan.merkle_branch.len(), 2);
}

fn display_to_internal(hex: &str) -> String {
    let mut b = bytes(hex);
    b.reverse();
    b.to_lower_hex_string()
}

#[test]
fn an_older_node_without_the_commitment_gets_the_same_block() {
    let with = plan(&core_template(true)).unwrap().block(&[7; 8], 1_713_571_800, 0x2000_0000, 1).unwrap();
    let without = plan(&core_template(false)).unwrap().block(&[7; 8], 1_713_571_800, 0x2000_0000, 1).unwrap();
    assert_eq!(serialize(&with), serialize(&without));
}

/// Solo work rolls BIP320's bits of a BIP9 version (as ckpool's solo mode lets its miners:
/// `version_mask` 1fffe000 in its config) less any bit the node set, and a block's version may
/// differ from the template's there only.
#[test]
fn solo_blocks_roll_only_bip320_bits_the_node_left_clear() {
    let plan = plan(&core_template(true)).unwrap();
    assert_eq!(plan.version_mask(), VersionMask(0x1fff_e000));
    let rolled = plan.block(&[7; 8], 1_713_571_800, 0x2e59_6000, 1).unwrap();
    assert_eq!(rolled.header.version.to_consensus(), 0x2e59_6000);
    for outside in [0x6000_0000, 0x2000_0001, 0x4000_0000] {
        let error = plan.block(&[7; 8], 1_713_571_800, outside, 1).unwrap_err();
        assert_eq!(error, BlockError::Check("version bits outside BIP320's"), "{outside:#x}");
    }
    // A node signalling on bit 28 keeps its signal; a version before BIP9 rolls nothing.
    let mut signalling = core_template(true);
    signalling["version"] = json!(0x3000_0000);
    assert_eq!(self::plan(&signalling).unwrap().version_mask(), VersionMask(0x0fff_e000));
    let mut old = core_template(true);
    old["version"] = json!(4);
    assert_eq!(self::plan(&old).unwrap().version_mask(), VersionMask::NONE);
}

#[test]
fn inconsistent_or_oversized_templates_are_refused() {
    let mut t = core_template(true);
    t["default_witness_commitment"] = json!(format!("6a24aa21a9ed{}", "00".repeat(32)));
    assert!(matches!(plan(&t), Err(BlockError::CommitmentMismatch { .. })));

    let mut t = core_template(true);
    t["sizelimit"] = json!(500);
    let error = plan(&t).unwrap_err();
    assert!(matches!(error, BlockError::OverLimit { what: "size", limit: 500, .. }), "{error}");
    let mut t = core_template(true);
    t["sigoplimit"] = json!(12);
    // 3 × 4 from the template, and the coinbase's outputs have none.
    assert!(plan(&t).is_ok());
    t["sigoplimit"] = json!(11);
    assert!(matches!(plan(&t), Err(BlockError::OverLimit { what: "sigop", value: 12, limit: 11 })));

    let mut t = core_template(true);
    t["coinbaseaux"] = json!({"flags": "ab".repeat(80)});
    assert!(matches!(plan(&t), Err(BlockError::ScriptSigTooLong(_))));
}
