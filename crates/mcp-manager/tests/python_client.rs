//! The official MCP Python SDK client (from `cargo xtask peers`) against
//! `mcp-manager serve --stdio` on its built-in default config.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use support::run_python_client;

#[test]
fn the_python_sdk_client_uses_the_stdio_gateway() {
    let (report, stderr) = run_python_client(
        "python_stdio_client.py",
        &[env!("CARGO_BIN_EXE_mcp-manager"), "serve", "--stdio"],
    );
    assert_eq!(report["protocol"], "2025-11-25");
    assert_eq!(report["server"], "mcp-manager");
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for name in [
        "everything__test_simple_text",
        "child__test_simple_text",
        "child__test_tool_with_progress",
    ] {
        assert!(tools.contains(&name), "{name} missing from {tools:?}");
    }
    assert!(
        tools
            .iter()
            .all(|t| t.starts_with("everything__") || t.starts_with("child__"))
    );
    assert_eq!(
        report["call"],
        "This is a simple text response for testing."
    );
    assert_eq!(report["progress"], serde_json::json!([0.0, 50.0, 100.0]));
    assert!(
        report["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "child__test_simple_prompt")
    );
    assert_eq!(report["prompt"], "This is a simple prompt for testing.");
    assert_eq!(
        report["resource"],
        "This is the content of the static text resource."
    );
    assert_eq!(report["unknown_tool"], "Unknown tool: nobody__nothing");
    assert_eq!(
        report["list_changed"], 1,
        "one debounced list change expected"
    );
    // What started is reported on stderr, and the same resources of both
    // servers are reported as clashes, not silently dropped.
    assert!(
        stderr.contains("mcp-manager: everything: running"),
        "{stderr}"
    );
    assert!(stderr.contains("mcp-manager: child: running"), "{stderr}");
    assert!(
        stderr.contains("`test://static-text` clashes with the one of server `child`"),
        "{stderr}"
    );
}
