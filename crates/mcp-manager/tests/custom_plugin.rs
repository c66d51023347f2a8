//! A downstream binary adds server types of its own without touching our
//! crates: `examples/custom-plugin` (its own Cargo.toml, not a workspace
//! member) is built here and run through `serve`, with the official MCP
//! Python SDK client as its client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the example once (into this workspace's target directory, with
/// a copy of this workspace's lock file, refreshed every time so it never
/// goes stale, so the crates both share are built once) and gives its
/// binary.
fn example() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = root().join("examples/custom-plugin");
        std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root().join("target"), PathBuf::from);
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .unwrap();
        assert!(status.success(), "building examples/custom-plugin failed");
        target.join("debug/custom-plugin")
    })
}

#[test]
fn a_downstream_binary_serves_its_own_server_types() {
    let config = root().join("examples/custom-plugin/servers.json");
    let program = example().to_str().unwrap();
    let config = config.to_str().unwrap();
    let (report, stderr) = support::run_python_client(
        "python_custom_plugin_client.py",
        &[
            program,
            "serve",
            "--stdio",
            "--no-watch",
            "--config",
            config,
        ],
    );
    assert_eq!(
        report["tools"],
        json!(["echo__echo", "echo__meta", "hello__greet"]),
        "{stderr}"
    );
    assert_eq!(report["greet"], "Hello, Ada!");
    assert_eq!(report["echo"], "from a child");
    assert_eq!(report["wrong"]["isError"], true, "{report}");
    assert!(
        report["wrong"]["text"]
            .as_str()
            .unwrap()
            .contains("needs {\"name\": string}"),
        "{report}"
    );
}

#[test]
fn its_types_are_checked_like_ours() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.json");
    std::fs::write(
        &config,
        r#"{"mcpServers": {
            "empty": {"type": "greeter", "greeting": " "},
            "typo": {"type": "greeter", "greting": "Hi"},
            "unknown": {"type": "greeterz"}
        }}"#,
    )
    .unwrap();
    let out = Command::new(example())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}{stderr}");
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("`greeting` must not be empty"), "{text}");
    assert!(text.contains("unknown field `greting`"), "{text}");
    assert!(text.contains("did you mean \"greeter\"?"), "{text}");
    // The built-in types are all still there.
    let out = Command::new(example())
        .args(["check", "--config"])
        .arg(root().join("examples/builtin.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
