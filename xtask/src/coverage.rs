//! `cargo xtask coverage`: line coverage per crate, measured by
//! cargo-tarpaulin (LLVM engine, no extra toolchain parts) over every
//! test of the library crates, against the real peers that
//! `cargo xtask peers` installs. Writes `target/coverage/coverage.md` and
//! tarpaulin's own JSON beside it. It reports; it fails only when the
//! tests do not run.
//!
//! cargo-tarpaulin is installed from crates.io into `.tools/` at a pinned
//! version. The instrumented build goes to a target directory of its own,
//! so the ordinary one is left as it was.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::{peers, shell};

/// The cargo-tarpaulin release installed into `.tools/`.
const TARPAULIN_VERSION: &str = "0.37.5";

/// Members left out: the build tool, the benchmarks, and the Python
/// extension (its tests are the Python package's, run by `xtask python`).
///
/// Code that tests run in a child process (the `mcp-manager` binary that
/// the CLI and gateway tests start) is not counted: the figures are of
/// what runs in the test processes themselves.
const EXCLUDED: &[&str] = &["xtask", "benches", "mcp-python"];

/// The crates whose coverage target is over 90 %.
const CORE_CRATES: &[&str] = &["mcp-protocol", "mcp-core", "mcp-runtime"];

pub(crate) fn run() -> Result<()> {
    peers::run(&[])?;
    let tarpaulin = install()?;
    let root = shell::root();
    let out = root.join("target").join("coverage");
    let mut cmd = shell::command(&tarpaulin);
    cmd.args(["tarpaulin", "--workspace", "--all-features"]);
    for excluded in EXCLUDED {
        cmd.args(["--exclude", excluded]);
    }
    cmd.args([
        "--engine",
        "llvm",
        "--skip-clean",
        "--no-fail-fast",
        "--timeout",
        "600",
        "--out",
        "Json",
        "--output-dir",
    ])
    .arg(&out)
    .arg("--target-dir")
    .arg(root.join("target").join("coverage-build"));
    // A test that fails is reported by tarpaulin; the figures still stand.
    if let Err(error) = shell::run(&mut cmd) {
        println!("note: {error:#}; coverage is reported from the tests that ran");
    }
    let report = out.join("tarpaulin-report.json");
    let text = std::fs::read_to_string(&report)
        .with_context(|| format!("reading {}", report.display()))?;
    let json: Value = serde_json::from_str(&text).context("tarpaulin's JSON report")?;
    let per_crate = per_crate(&json);
    let table = table(&per_crate);
    println!("{table}");
    let path = out.join("coverage.md");
    std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
    println!("coverage report: {}", path.display());
    Ok(())
}

/// Installs cargo-tarpaulin into `.tools/` unless the pinned version is
/// there; its path.
fn install() -> Result<PathBuf> {
    shell::install_pinned(
        "cargo-tarpaulin",
        TARPAULIN_VERSION,
        "cargo-tarpaulin",
        &["tarpaulin", "--version"],
    )
}

/// Lines covered and coverable per crate (`crates/NAME/src/...`), from
/// tarpaulin's JSON report.
fn per_crate(report: &Value) -> BTreeMap<String, (u64, u64)> {
    let mut totals = BTreeMap::new();
    for file in report["files"].as_array().into_iter().flatten() {
        let path = match &file["path"] {
            Value::Array(parts) => parts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("/"),
            Value::String(path) => path.clone(),
            _ => continue,
        };
        let Some(name) = crate_of(&path).filter(|name| !EXCLUDED.contains(&name.as_str())) else {
            continue;
        };
        let entry = totals.entry(name).or_insert((0, 0));
        entry.0 += file["covered"].as_u64().unwrap_or(0);
        entry.1 += file["coverable"].as_u64().unwrap_or(0);
    }
    totals
}

/// The crate of a source file under `crates/NAME/src/`.
fn crate_of(path: &str) -> Option<String> {
    let (_, rest) = path.split_once("crates/")?;
    let (name, rest) = rest.split_once('/')?;
    rest.starts_with("src/").then(|| name.to_owned())
}

fn table(per_crate: &BTreeMap<String, (u64, u64)>) -> String {
    let mut text = String::from(
        "# Line coverage per crate\n\n| crate | lines covered | coverable | coverage | target |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    let (mut all_covered, mut all_coverable) = (0, 0);
    for (name, (covered, coverable)) in per_crate {
        all_covered += covered;
        all_coverable += coverable;
        let target = if CORE_CRATES.contains(&name.as_str()) {
            "> 90 %"
        } else {
            "-"
        };
        text.push_str(&format!(
            "| {name} | {covered} | {coverable} | {:.1} % | {target} |\n",
            percent(*covered, *coverable)
        ));
    }
    text.push_str(&format!(
        "| all | {all_covered} | {all_coverable} | {:.1} % | > 90 % |\n",
        percent(all_covered, all_coverable)
    ));
    text
}

#[allow(clippy::cast_precision_loss)]
fn percent(covered: u64, coverable: u64) -> f64 {
    if coverable == 0 {
        0.0
    } else {
        covered as f64 * 100.0 / coverable as f64
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn files_are_summed_per_crate() {
        let report = json!({"files": [
            {"path": ["/", "w", "crates", "mcp-core", "src", "lib.rs"], "covered": 9, "coverable": 10},
            {"path": "/w/crates/mcp-core/src/id.rs", "covered": 1, "coverable": 10},
            {"path": "/w/crates/mcp-core/tests/t.rs", "covered": 5, "coverable": 5},
            {"path": "/w/xtask/src/main.rs", "covered": 1, "coverable": 1},
        ]});
        let totals = per_crate(&report);
        assert_eq!(totals.len(), 1);
        assert_eq!(totals["mcp-core"], (10, 20));
        let text = table(&totals);
        assert!(
            text.contains("| mcp-core | 10 | 20 | 50.0 % | > 90 % |"),
            "{text}"
        );
        assert!(text.contains("| all | 10 | 20 | 50.0 % |"), "{text}");
    }
}
