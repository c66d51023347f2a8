//! `cargo xtask plugins`: builds the example plugins of `examples/plugins/`
//! into `target/plugins/`, a plugins directory that tests, benchmarks and
//! people can point `--plugins-dir` at.
//!
//! Each example's folder is copied. A wasm example's component (the
//! `component` its manifest names) is compiled from its source with the
//! toolchains `cargo xtask peers` installs from the package registries:
//! `app.py` with componentize-py (PyPI), `app.js` with componentize-js
//! (npm), both against the world in `crates/mcp-plugin-wasm/wit/`. A
//! component newer than its source and the world is left as it is.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};

use crate::{peers, shell};

/// The WIT folder of the plugin world, from the workspace root.
const WIT: &str = "crates/mcp-plugin-wasm/wit";
/// The world's name in it.
const WORLD: &str = "server";

/// What `cargo xtask plugins` builds into, from the workspace root.
pub(crate) const OUT: &str = "target/plugins";

pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let root = shell::root();
    let examples = root.join("examples").join("plugins");
    let out = root.join(OUT);
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&examples)
        .with_context(|| format!("cannot read {}", examples.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("plugin.toml").is_file())
        .collect();
    folders.sort();
    let wit = root.join(WIT);
    let world_time = newest(&wit)?;
    for folder in &folders {
        let name = folder
            .file_name()
            .context("an example folder without a name")?;
        let dest = out.join(name);
        std::fs::create_dir_all(&dest)
            .with_context(|| format!("cannot create {}", dest.display()))?;
        copy_files(folder, &dest)?;
        let manifest: toml::Value = std::fs::read_to_string(folder.join("plugin.toml"))
            .context("cannot read a manifest")
            .and_then(|text| toml::from_str(&text).context("a manifest that is not TOML"))
            .with_context(|| format!("in {}", folder.display()))?;
        if manifest.get("kind").and_then(toml::Value::as_str) != Some("wasm") {
            println!("plugins: {} (command) copied", name.to_string_lossy());
            continue;
        }
        for component in components(&manifest) {
            let target = dest.join(&component);
            let source_time = newest(folder)?.max(world_time);
            if modified(&target).is_some_and(|built| built > source_time) {
                println!("plugins: {} is up to date", target.display());
                continue;
            }
            let took = Instant::now();
            build(&root, folder, &wit, &target)?;
            let size = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
            println!(
                "plugins: built {} ({:.1} MiB) in {:.1}s",
                target.display(),
                size as f64 / f64::from(1u32 << 20),
                took.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "plugins: {} example plugin(s) in {} ({:.1}s)",
        folders.len(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The component files a wasm manifest's types name.
fn components(manifest: &toml::Value) -> Vec<String> {
    let mut files: Vec<String> = manifest
        .get("types")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|types| types.values())
        .filter_map(|ty| ty.get("component")?.as_str().map(str::to_owned))
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Compiles the source in `folder` into the component `target`.
fn build(root: &Path, folder: &Path, wit: &Path, target: &Path) -> Result<()> {
    if folder.join("app.py").is_file() {
        let componentize = peers::env_value(root, "MCP_PEER_COMPONENTIZE_PY")?;
        return shell::run(
            shell::command(componentize)
                .arg("-d")
                .arg(wit)
                .args(["-w", WORLD, "componentize", "-p"])
                .arg(folder)
                .args(["app", "-o"])
                .arg(target),
        );
    }
    if folder.join("app.js").is_file() {
        let node = peers::env_value(root, "MCP_PEER_NODE")?;
        let componentize = peers::env_value(root, "MCP_PEER_COMPONENTIZE_JS")?;
        // Only what the world offers: no WASI HTTP (and so no fetch event).
        return shell::run(
            shell::command(node)
                .arg(componentize)
                .arg(folder.join("app.js"))
                .arg("--wit")
                .arg(wit)
                .args([
                    "--world-name",
                    WORLD,
                    "--disable",
                    "http",
                    "fetch-event",
                    "-o",
                ])
                .arg(target),
        );
    }
    bail!(
        "{}: a wasm example needs its source, app.py or app.js",
        folder.display()
    )
}

/// Copies the files of `from` (not its folders) into `to`.
fn copy_files(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from)?.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_file() {
            std::fs::copy(&path, to.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    Ok(())
}

/// When a file was last modified.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// The newest modification time of the files in `dir`.
fn newest(dir: &Path) -> Result<SystemTime> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_file())
        .filter_map(|entry| modified(&entry.path()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH))
}
