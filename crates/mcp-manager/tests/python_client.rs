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
    // Both servers offer the same resources: the first server in order
    // (`child`) keeps the URIs, the other's are listed in the gateway's own
    // form, and reading one reaches that server and shows the URI asked for.
    let resources: Vec<&str> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for uri in [
        "test://static-text",
        "mcp-manager://everything/test://static-text",
    ] {
        assert!(resources.contains(&uri), "{uri} missing from {resources:?}");
    }
    assert_eq!(
        report["renamed_resource"],
        serde_json::json!([
            "mcp-manager://everything/test://static-text",
            "This is the content of the static text resource."
        ])
    );
    // What started is reported on stderr, and so is every URI that had to
    // be listed in the gateway's own form.
    assert!(
        stderr.contains("mcp-manager: everything: running"),
        "{stderr}"
    );
    assert!(stderr.contains("mcp-manager: child: running"), "{stderr}");
    assert!(
        stderr.contains(
            "`test://static-text` is offered by server `child` too; this one is listed as `mcp-manager://everything/test://static-text`"
        ),
        "{stderr}"
    );
}
