//! Templates of the embedded pool's synthetic chain in Stratum V2's Template Distribution form
//! (`NewTemplate` and its `SetNewPrevHash`), for the SV2 pool and for the tests' template
//! provider that feeds SRI's `pool_sv2`. The chain is v1's (`super::new_job`): same tip, same
//! merkle branch, same nBits.

use bitcoin::hashes::Hash;
use bitcoin::{Amount, ScriptBuf, TxOut};
use stratum_apps::stratum_core::binary_sv2::{B064KOwned, B0255Owned, Seq0255Owned, U256Owned};
use stratum_apps::stratum_core::template_distribution_sv2::{NewTemplateOwned, SetNewPrevHashOwned};

/// The reward of a synthetic block.
pub const REWARD: Amount = Amount::from_sat(5_000_000_000);

/// The output the pool pays a block's reward to: v1's embedded pool's P2WPKH.
pub fn reward_output() -> TxOut {
    let mut script = vec![0x00, 0x14];
    script.extend_from_slice(&[0x5a; 20]);
    TxOut { value: REWARD, script_pubkey: ScriptBuf::from_bytes(script) }
}

/// The template at `height` (its id is the height) and the `SetNewPrevHash` that activates it.
pub fn at(height: u32) -> (NewTemplateOwned, SetNewPrevHashOwned) {
    let job = super::new_job(height);
    // BIP34: the height as a minimal script push, as Bitcoin Core's templates begin the
    // coinbase scriptSig.
    let push = bitcoin::script::Builder::new().push_int(i64::from(height)).into_script().into_bytes();
    let template = NewTemplateOwned {
        template_id: u64::from(height),
        future_template: true,
        version: job.version,
        coinbase_tx_version: 2,
        coinbase_prefix: B0255Owned::new(push).expect("a few bytes"),
        coinbase_tx_input_sequence: 0xffff_ffff,
        coinbase_tx_value_remaining: REWARD.to_sat(),
        coinbase_tx_outputs_count: 0,
        coinbase_tx_outputs: B064KOwned::new(Vec::new()).expect("empty"),
        coinbase_tx_locktime: 0,
        merkle_path: Seq0255Owned::new(job.merkle_branch.iter().map(|h| U256Owned::from(*h)).collect())
            .expect("two hashes"),
    };
    let prev = SetNewPrevHashOwned {
        template_id: u64::from(height),
        prev_hash: U256Owned::from(job.prev_hash.to_byte_array()),
        header_timestamp: job.time,
        n_bits: job.bits.to_consensus(),
        target: U256Owned::from(bitcoin::Target::from_compact(job.bits).to_le_bytes()),
    };
    (template, prev)
}
