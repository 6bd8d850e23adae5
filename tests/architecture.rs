//! ARCHITECTURE.md's first invariant, checked: the modules of `src/` stand in layers, and code
//! (tests aside) imports only from layers below its own.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom first. A module may use those of lower layers, never one of its own layer or above.
/// A new module goes here, and into ARCHITECTURE.md's map, where its imports put it.
const LAYERS: [&[&str]; 11] = [
    &["work", "logging", "admission"],
    &["wire", "listen"],
    &["device"],
    &["cpu", "gpu", "stats"],
    &["sensor", "source", "pool", "browser"],
    &["scheduler"],
    &["miner"],
    &["api", "http"],
    &["run", "config"],
    &["commands"],
    &["fuzzing"],
];

fn layer(module: &str) -> usize {
    LAYERS.iter().position(|l| l.contains(&module)).unwrap_or_else(|| {
        panic!("src/{module}: place it in LAYERS (tests/architecture.rs) and in ARCHITECTURE.md's map")
    })
}

/// The crate's modules a source file names (`crate::name…`), its test modules left out.
fn imports(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or_default().split(',').collect(),
            None => vec![rest],
        };
        for name in names {
            let name: String = name.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn visit(dir: &Path, module: Option<&str>, out: &mut Vec<(String, String, BTreeSet<String>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let top = module.map_or(name.clone(), str::to_string);
        if path.is_dir() {
            visit(&path, Some(&top), out);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "tests" {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), top, imports(&text)));
        }
    }
}

#[test]
fn imports_run_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, None, &mut files);
    let mut wrong = Vec::new();
    for (path, module, used) in files {
        if matches!(module.as_str(), "main" | "lib") {
            continue;
        }
        for other in used.iter().filter(|u| **u != module) {
            if layer(other) >= layer(&module) {
                wrong.push(format!("{path}: {module} uses {other}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn the_layers_are_the_ones_architecture_md_lists() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    for (i, layer) in LAYERS.iter().enumerate() {
        let line = format!("{}. {}", i + 1, layer.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "));
        assert!(doc.contains(&line), "ARCHITECTURE.md lacks the layer line `{line}`");
    }
}
