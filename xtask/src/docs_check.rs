//! The lib.rs docs check: every library of the workspace opens with `//!`
//! crate docs saying what the crate is for.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::shell;

/// Target kinds that make a library (`lib` is what cargo reports for a
/// plain `[lib]`; the others come from an explicit `crate-type`).
const LIBRARY_KINDS: &[&str] = &["lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"];

/// Checks every workspace library and reports all offenders at once.
pub(crate) fn run() -> Result<()> {
    let metadata = shell::cargo_metadata(&["--no-deps"])?;
    let root = shell::root();
    let mut offenders = Vec::new();
    let libraries = library_sources(&metadata)?;
    for (package, source) in &libraries {
        let text = std::fs::read_to_string(source)
            .with_context(|| format!("could not read {}", source.display()))?;
        if !opens_with_crate_docs(&text) {
            offenders.push(format!(
                "  {} (package {package})",
                source.strip_prefix(&root).unwrap_or(source).display()
            ));
        }
    }
    if !offenders.is_empty() {
        bail!(
            "these library roots do not open with `//!` crate docs:\n{}",
            offenders.join("\n")
        );
    }
    println!(
        "docs-check: all {} library roots open with `//!` docs",
        libraries.len()
    );
    Ok(())
}

/// The `(package name, library root file)` pairs of the workspace members in
/// `cargo metadata --no-deps` output, in the order cargo lists them.
fn library_sources(metadata: &Value) -> Result<Vec<(String, PathBuf)>> {
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata has no `packages` list")?;
    let mut found = Vec::new();
    for package in packages {
        let name = package["name"]
            .as_str()
            .context("a package without a name")?;
        let targets = package["targets"]
            .as_array()
            .with_context(|| format!("package {name} has no `targets` list"))?;
        for target in targets {
            let is_library = target["kind"].as_array().is_some_and(|kinds| {
                kinds
                    .iter()
                    .any(|kind| kind.as_str().is_some_and(|k| LIBRARY_KINDS.contains(&k)))
            });
            if is_library {
                let source = target["src_path"]
                    .as_str()
                    .with_context(|| format!("the library of {name} has no `src_path`"))?;
                found.push((name.to_owned(), Path::new(source).to_path_buf()));
            }
        }
    }
    Ok(found)
}

/// Whether `text` starts, after optional blank lines, with a `//!` line.
fn opens_with_crate_docs(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .lines()
        .find(|line| !line.trim().is_empty())
        .is_some_and(|line| line.trim_start().starts_with("//!"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crate_docs_first() {
        let cases = [
            ("//! A crate.\n", true),
            ("//!\n//! Text after an empty doc line.\n", true),
            ("\n\n   \n//! After blank lines.\nfn f() {}\n", true),
            ("\u{feff}//! After a byte-order mark.\n", true),
            ("//!", true),
            ("", false),
            ("\n\n", false),
            ("fn f() {}\n", false),
            ("// A plain comment.\n//! Docs too late.\n", false),
            ("/// An item doc.\nfn f() {}\n", false),
            (
                "#![forbid(unsafe_code)]\n//! Docs after an attribute.\n",
                false,
            ),
            ("/*! Block docs are not the house style. */\n", false),
        ];
        for (text, expected) in cases {
            assert_eq!(opens_with_crate_docs(text), expected, "{text:?}");
        }
    }

    #[test]
    fn finds_library_roots_only() {
        let metadata = json!({
            "packages": [
                {
                    "name": "alpha",
                    "targets": [
                        {"kind": ["lib"], "src_path": "/ws/alpha/src/lib.rs"},
                        {"kind": ["bin"], "src_path": "/ws/alpha/src/main.rs"},
                        {"kind": ["test"], "src_path": "/ws/alpha/tests/t.rs"}
                    ]
                },
                {
                    "name": "tool",
                    "targets": [{"kind": ["bin"], "src_path": "/ws/tool/src/main.rs"}]
                },
                {
                    "name": "py",
                    "targets": [{"kind": ["cdylib", "rlib"], "src_path": "/ws/py/src/lib.rs"}]
                }
            ]
        });
        let found = library_sources(&metadata).unwrap();
        assert_eq!(
            found,
            [
                ("alpha".to_owned(), PathBuf::from("/ws/alpha/src/lib.rs")),
                ("py".to_owned(), PathBuf::from("/ws/py/src/lib.rs")),
            ]
        );
    }

    #[test]
    fn rejects_malformed_metadata() {
        assert!(library_sources(&json!({})).is_err());
        assert!(library_sources(&json!({"packages": [{"name": "x"}]})).is_err());
    }
}
