//! The kernel's shape on each device: invocations per workgroup × nonces per invocation, and
//! the versions hashed with each nonce (K). The best one differs by vendor (wave32 or wave64,
//! Apple's SIMD groups, Intel's EUs, llvmpipe's vector width), so it is measured on a device's
//! first use, a few shapes for about 100 ms each, and remembered per adapter, driver and
//! kernel in the user's cache directory, as hashcat's autotune does. Options given on the
//! command line win over both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

// The shape is how a device sweeps, so its type is the device trait's; tuning it is ours.
pub use crate::device::{Origin, Shape};

/// What the user asked for: a dimension given is fixed, the others are tuned (or read from the
/// cache, unless `retune`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShapeRequest {
    pub workgroup_size: Option<u32>,
    pub nonces_per_invocation: Option<u32>,
    pub versions_per_nonce: Option<u32>,
    pub retune: bool,
    /// The cache file; `None` measures every time and remembers nothing.
    pub cache: Option<PathBuf>,
}

impl ShapeRequest {
    /// The default shape, nothing measured: for tests and library users that want no tuning.
    pub fn fixed(shape: Shape) -> Self {
        ShapeRequest {
            workgroup_size: Some(shape.workgroup_size),
            nonces_per_invocation: Some(shape.nonces_per_invocation),
            versions_per_nonce: Some(shape.versions_per_nonce),
            ..Default::default()
        }
    }

    /// Every dimension given: nothing to measure.
    pub(crate) fn explicit(&self) -> Option<Shape> {
        Some(Shape {
            workgroup_size: self.workgroup_size?,
            nonces_per_invocation: self.nonces_per_invocation?,
            versions_per_nonce: self.versions_per_nonce?,
        })
    }

    /// No dimension given: what a search finds is worth remembering.
    pub fn free(&self) -> bool {
        self.workgroup_size.is_none() && self.nonces_per_invocation.is_none() && self.versions_per_nonce.is_none()
    }

    /// Whether `shape` agrees with every dimension given.
    pub(crate) fn fits(&self, shape: Shape) -> bool {
        self.workgroup_size.is_none_or(|w| w == shape.workgroup_size)
            && self.nonces_per_invocation.is_none_or(|n| n == shape.nonces_per_invocation)
            && self.versions_per_nonce.is_none_or(|k| k == shape.versions_per_nonce)
    }
}

/// Workgroup sizes to try, likeliest first: 64 (AMD's wave64, two NVIDIA warps), then wider for
/// occupancy, then 32 (NVIDIA's warp, RDNA's wave32, Apple's SIMD group).
pub const WORKGROUP_SIZES: [u32; 4] = [64, 128, 256, 32];
/// Nonces per invocation, tried at the best workgroup size: longer loops amortise the
/// invocation's setup, shorter ones fill small devices.
pub const NONCES_PER_INVOCATION: [u32; 3] = [64, 256, 16];
/// Versions per nonce, tried at the best workgroup size before the nonces, most first: more
/// share each nonce's schedule (fewest operations per hash; lavapipe runs 8 fastest), fewer win
/// where the longer shader costs more than it saves (instruction cache, registers).
pub const VERSIONS_PER_NONCE: [u32; 4] = [8, 4, 2, 1];

/// How much faster a shape must measure to replace the best so far: a 100 ms reading on a
/// busy machine moves by about that much, and the shapes tried first are the safe ones.
pub(crate) const MARGIN: f64 = 0.05;

/// The most a search takes: a shape starts only if it should end within it, going by the
/// shapes measured so far (a pipeline compile on llvmpipe alone takes most of a second).
pub(crate) const BUDGET: Duration = Duration::from_secs(3);

/// Measures shapes in order, workgroup size first, then versions per nonce and then nonces per
/// invocation at the best so far, while `budget_left` says so (the first is always measured).
/// Returns the fastest, its rate, and how many shapes were measured. Pure: the measuring is the
/// caller's.
pub(crate) fn search<E>(
    request: &ShapeRequest,
    max_invocations: u32,
    mut budget_left: impl FnMut() -> bool,
    mut measure: impl FnMut(Shape) -> Result<f64, E>,
) -> Result<(Shape, f64, usize), E> {
    let sizes: Vec<u32> = match request.workgroup_size {
        Some(fixed) => vec![fixed],
        None => WORKGROUP_SIZES.into_iter().filter(|&w| w <= max_invocations).collect(),
    };
    let sizes = if sizes.is_empty() { vec![max_invocations.max(1)] } else { sizes };
    let nonces: Vec<u32> = match request.nonces_per_invocation {
        Some(fixed) => vec![fixed],
        None => NONCES_PER_INVOCATION.to_vec(),
    };
    let versions: Vec<u32> = match request.versions_per_nonce {
        Some(fixed) => vec![fixed],
        None => VERSIONS_PER_NONCE.to_vec(),
    };
    let mut best: Option<(Shape, f64)> = None;
    let mut measured = 0;
    let mut try_shape = |shape: Shape, best: &mut Option<(Shape, f64)>| -> Result<bool, E> {
        if measured > 0 && !budget_left() {
            return Ok(false);
        }
        let rate = measure(shape)?;
        measured += 1;
        if best.is_none_or(|(_, r)| rate > r * (1.0 + MARGIN)) {
            *best = Some((shape, rate));
        }
        Ok(true)
    };
    let first = Shape { workgroup_size: sizes[0], nonces_per_invocation: nonces[0], versions_per_nonce: versions[0] };
    let best_or_first = |best: &Option<(Shape, f64)>| best.map_or(first, |(s, _)| s);
    for &workgroup_size in &sizes {
        if !try_shape(Shape { workgroup_size, ..first }, &mut best)? {
            break;
        }
    }
    for &versions_per_nonce in &versions[1..] {
        if !try_shape(Shape { versions_per_nonce, ..best_or_first(&best) }, &mut best)? {
            break;
        }
    }
    for &nonces_per_invocation in &nonces[1..] {
        if !try_shape(Shape { nonces_per_invocation, ..best_or_first(&best) }, &mut best)? {
            break;
        }
    }
    let (shape, rate) = best.expect("the first shape is always measured");
    Ok((shape, rate, measured))
}

/// What identifies a device for the cache: adapter, backend, driver and its version, and the
/// kernel itself (a changed kernel is measured again).
pub(crate) fn cache_key(info: &wgpu::AdapterInfo, kernel: &str) -> String {
    use bitcoin::hex::DisplayHex;
    use sha2::Digest;
    let fingerprint = sha2::Sha256::digest(kernel.as_bytes());
    format!(
        "{} | {:?} | {:04x}:{:04x} | {} {} | kernel {}",
        info.name,
        info.backend,
        info.vendor,
        info.device,
        info.driver,
        info.driver_info,
        fingerprint[..6].to_lower_hex_string()
    )
}

/// One remembered choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(deserialize_with = "every_dimension")]
    pub shape: Shape,
    /// Its rate when measured, MH/s.
    pub mhs: f64,
    /// When (RFC 3339).
    pub measured: String,
}

/// The cache file: `wgminer/kernel-shapes.json` in the user's cache directory
/// (`$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%`).
pub(crate) fn default_cache_path() -> Option<PathBuf> {
    Some(dirs::cache_dir()?.join("wgminer").join("kernel-shapes.json"))
}

/// A remembered shape names every dimension: an older wgminer, which rewrites the whole file
/// when it remembers its own shape, drops the versions per nonce it does not know of, and the
/// entry it leaves is measured again rather than read as one version per nonce.
fn every_dimension<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Shape, D::Error> {
    #[derive(Deserialize)]
    struct Every {
        workgroup_size: u32,
        nonces_per_invocation: u32,
        versions_per_nonce: u32,
    }
    let Every { workgroup_size, nonces_per_invocation, versions_per_nonce } = Every::deserialize(deserializer)?;
    Ok(Shape { workgroup_size, nonces_per_invocation, versions_per_nonce })
}

/// Reads every remembered choice; an entry this version cannot read is left out (and measured
/// again). A missing file is an empty cache; an unreadable one is an error that says which
/// file, which the caller logs before measuring again.
pub fn load(path: &Path) -> Result<BTreeMap<String, Entry>, CacheError> {
    let entries = load_raw(path)?.into_iter();
    Ok(entries.filter_map(|(key, raw)| Some((key, serde_json::from_value(raw).ok()?))).collect())
}

/// The file's entries as they stand, for `store` to keep those written by other versions.
fn load_raw(path: &Path) -> Result<BTreeMap<String, serde_json::Value>, CacheError> {
    let error = |source: std::io::Error| CacheError { path: path.to_path_buf(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| error(e.into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(error(e)),
    }
}

/// Remembers `entry` under `key`, keeping the others as they are; written whole to a temporary
/// file and renamed, so that two miners starting at once never leave half a file.
pub fn store(path: &Path, key: &str, entry: Entry) -> Result<(), CacheError> {
    let error = |source: std::io::Error| CacheError { path: path.to_path_buf(), source };
    let mut all = load_raw(path).unwrap_or_default();
    all.insert(key.to_string(), serde_json::to_value(entry).map_err(|e| error(e.into()))?);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    let temporary = path.with_extension(format!("json.{}", std::process::id()));
    let text = serde_json::to_string_pretty(&all).map_err(|e| error(e.into()))?;
    std::fs::write(&temporary, text + "\n").map_err(error)?;
    std::fs::rename(&temporary, path).map_err(error)
}

/// The shape cache could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct CacheError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A clock for `search`'s budget: asked before each shape after the first, it says whether one
/// more as long as the longest so far still ends within `budget`.
pub(crate) fn budget_from_now(budget: Duration) -> impl FnMut() -> bool {
    let started = Instant::now();
    let (mut last, mut longest) = (started, Duration::ZERO);
    move || {
        let now = Instant::now();
        longest = longest.max(now - last);
        last = now;
        now - started + longest <= budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A made-up device whose rate peaks at 128 × 256, K = 4.
    fn rate(shape: Shape) -> Result<f64, Infallible> {
        let w = match shape.workgroup_size {
            128 => 10.0,
            256 => 8.0,
            64 => 7.0,
            _ => 5.0,
        };
        let n = match shape.nonces_per_invocation {
            256 => 2.0,
            64 => 1.5,
            _ => 1.0,
        };
        let k = match shape.versions_per_nonce {
            4 => 1.2,
            8 => 1.1,
            2 => 1.05,
            _ => 1.0,
        };
        Ok(w * n * k)
    }

    fn run(request: &ShapeRequest, max: u32, budget: usize) -> (Shape, f64, Vec<Shape>) {
        let mut tried = Vec::new();
        let mut left = budget;
        let (shape, mhs, n) = search(
            request,
            max,
            || {
                left = left.saturating_sub(1);
                left > 0
            },
            |s| {
                tried.push(s);
                rate(s)
            },
        )
        .unwrap();
        assert_eq!(n, tried.len());
        (shape, mhs, tried)
    }

    fn shape(workgroup_size: u32, nonces_per_invocation: u32, versions_per_nonce: u32) -> Shape {
        Shape { workgroup_size, nonces_per_invocation, versions_per_nonce }
    }

    #[test]
    fn finds_the_fastest_shape_workgroup_first() {
        let (best, mhs, tried) = run(&ShapeRequest::default(), 1024, 100);
        assert_eq!((best, mhs), (shape(128, 256, 4), 24.0));
        assert_eq!(
            tried,
            [
                shape(64, 64, 8),
                shape(128, 64, 8),
                shape(256, 64, 8),
                shape(32, 64, 8),
                shape(128, 64, 4),
                shape(128, 64, 2),
                shape(128, 64, 1),
                shape(128, 256, 4),
                shape(128, 16, 4)
            ]
        );
    }

    #[test]
    fn stays_within_the_adapters_limit_and_the_given_dimension() {
        let (_, _, tried) = run(&ShapeRequest::default(), 64, 100);
        assert!(tried.iter().all(|s| s.workgroup_size <= 64), "{tried:?}");
        let fixed = ShapeRequest { workgroup_size: Some(256), ..Default::default() };
        let (best, _, tried) = run(&fixed, 1024, 100);
        assert_eq!(best, shape(256, 256, 4));
        assert!(tried.iter().all(|s| s.workgroup_size == 256), "{tried:?}");
        let fixed = ShapeRequest { nonces_per_invocation: Some(16), ..Default::default() };
        let (best, _, _) = run(&fixed, 1024, 100);
        assert_eq!(best, shape(128, 16, 4));
        let fixed = ShapeRequest { versions_per_nonce: Some(1), ..Default::default() };
        let (best, _, tried) = run(&fixed, 1024, 100);
        assert_eq!(best, shape(128, 256, 1));
        assert!(tried.iter().all(|s| s.versions_per_nonce == 1), "{tried:?}");
    }

    #[test]
    fn a_shape_must_win_by_the_margin() {
        let request = ShapeRequest { nonces_per_invocation: Some(64), ..Default::default() };
        let rates = |s: Shape| -> Result<f64, Infallible> { Ok(if s.workgroup_size == 64 { 10.0 } else { 10.4 }) };
        let (best, _, _) = search(&request, 1024, || true, rates).unwrap();
        assert_eq!(best, shape(64, 64, 8));
    }

    #[test]
    fn the_budget_stops_the_search_but_not_before_one_shape() {
        let (best, _, tried) = run(&ShapeRequest::default(), 1024, 2);
        assert_eq!(tried, [shape(64, 64, 8), shape(128, 64, 8)]);
        assert_eq!(best, shape(128, 64, 8));
        let (_, _, tried) = run(&ShapeRequest::default(), 1024, 0);
        assert_eq!(tried, [shape(64, 64, 8)]);
    }

    #[test]
    fn the_cache_keeps_every_device_and_survives_a_bad_file() {
        let dir = std::env::temp_dir().join(format!("wgminer-shape-test-{}", std::process::id()));
        let path = dir.join("wgminer").join("kernel-shapes.json");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(load(&path).unwrap().is_empty());
        let entry = |s: Shape| Entry { shape: s, mhs: 1.5, measured: "2026-11-25T00:00:00Z".into() };
        store(&path, "gpu a", entry(shape(32, 16, 4))).unwrap();
        store(&path, "gpu b", entry(shape(256, 64, 4))).unwrap();
        store(&path, "gpu a", entry(shape(128, 64, 4))).unwrap();
        let all = load(&path).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["gpu a"].shape, shape(128, 64, 4));
        assert_eq!(all["gpu b"].shape, shape(256, 64, 4));
        // As a wgminer from before versions per nonce leaves the file when it remembers a shape
        // of its own: the entry without K is measured again, the others are kept as they were.
        let mut raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        raw["gpu b"]["shape"].as_object_mut().unwrap().remove("versions_per_nonce");
        raw["gpu old"] = serde_json::json!({"shape": {"workgroup_size": 64, "nonces_per_invocation": 64}, "mhs": 2.0, "measured": "x"});
        std::fs::write(&path, raw.to_string()).unwrap();
        assert_eq!(load(&path).unwrap().keys().collect::<Vec<_>>(), ["gpu a"]);
        store(&path, "gpu d", entry(shape(32, 64, 2))).unwrap();
        let kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(kept["gpu old"], raw["gpu old"]);
        assert_eq!(load(&path).unwrap().keys().collect::<Vec<_>>(), ["gpu a", "gpu d"]);
        std::fs::write(&path, "{ not json").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("kernel-shapes.json"));
        // Storing over a bad file starts it afresh.
        store(&path, "gpu c", entry(shape(64, 64, 4))).unwrap();
        assert_eq!(load(&path).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_key_names_adapter_driver_and_kernel() {
        let info = wgpu::AdapterInfo {
            name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
            vendor: 0x10005,
            driver: "llvmpipe".into(),
            driver_info: "Mesa 22.3.6 (LLVM 15.0.6)".into(),
            ..wgpu::AdapterInfo::new(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan)
        };
        let key = cache_key(&info, "kernel one");
        assert!(
            key.starts_with("llvmpipe (LLVM 15.0.6, 256 bits) | Vulkan | 10005:0000 | llvmpipe Mesa 22.3.6"),
            "{key}"
        );
        assert_ne!(key, cache_key(&info, "kernel two"));
    }
}
