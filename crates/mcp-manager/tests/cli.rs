//! `mcp-manager list` and `mcp-manager call` on a config with a built-in
//! server, a child process, a server that cannot start and a disabled one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-manager");

fn config() -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    let text = format!(
        r#"{{"mcpServers": {{
            "everything": {{"type": "builtin", "server": "everything"}},
            "child": {{"command": "{BIN}", "args": ["builtin", "everything", "--stdio"]}},
            "broken": {{"command": "definitely-missing-command-xyz"}},
            "off": {{"url": "http://127.0.0.1:9/mcp", "enabled": false, "timeoutMS": 5}}
        }}}}"#
    );
    std::fs::write(file.path(), text).unwrap();
    file
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN).args(args).output().unwrap();
    (
        status.code(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[test]
fn list_shows_every_server_and_its_state() {
    let file = config();
    let (code, stdout, stderr) = run(&["list", "--config", file.path().to_str().unwrap()]);
    // One server could not start.
    assert_eq!(code, Some(3), "{stdout}");
    // The config's warnings are shown as `check` shows them, on stderr.
    assert!(
        stderr.contains("mcpServers.off.timeoutMS: unknown key `timeoutMS` is ignored\n  hint: did you mean `timeoutMs`?"),
        "{stderr}"
    );
    assert!(!stdout.contains("timeoutMS"), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("SERVER      STATE     TYPE"),
        "{stdout}"
    );
    let row = |name: &str| lines.iter().find(|l| l.starts_with(name)).copied().unwrap();
    assert!(
        row("broken").contains("failed")
            && row("broken").contains("could not start `definitely-missing-command-xyz`")
    );
    for name in ["child", "everything"] {
        let cells: Vec<&str> = row(name).split_whitespace().collect();
        assert_eq!(
            &cells[1..3],
            ["running", if name == "child" { "stdio" } else { "builtin" }]
        );
        assert!(cells[3].parse::<usize>().unwrap() > 10, "{}", row(name));
        assert!(row(name).contains("2025-11-25 (everything"));
    }
    assert!(row("off").contains("disabled"));
}

#[test]
fn call_prints_the_result_and_the_exit_status_says_how_it_went() {
    let file = config();
    let path = file.path().to_str().unwrap();
    let (code, stdout, _) = run(&["call", "--config", path, "child/test_simple_text"]);
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "This is a simple text response for testing.\n")
    );
    let (code, stdout, _) = run(&[
        "call",
        "--config",
        path,
        "everything/test_simple_text",
        "--json",
    ]);
    assert_eq!(code, Some(0));
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(value["content"][0]["type"], "text");

    let (code, _, stderr) = run(&["call", "--config", path, "everything/test_error_handling"]);
    assert_eq!(code, Some(4));
    assert!(stderr.contains("the tool reported an error"), "{stderr}");
    let (code, _, stderr) = run(&["call", "--config", path, "everything/no_such_tool"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr
            .contains("server `everything` has no tool `no_such_tool`; it has: test_simple_text,"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["call", "--config", path, "broken/x"]);
    assert_eq!(code, Some(3));
    assert!(stderr.contains("server `broken` did not start"), "{stderr}");
    let (code, _, stderr) = run(&["call", "--config", path, "nope/x"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("has no server `nope`; it has: everything, child, broken, off"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&[
        "call",
        "--config",
        path,
        "everything/test_simple_text",
        "--args",
        "[1]",
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--args must be a JSON object"), "{stderr}");
    let (code, _, stderr) = run(&["call", "--config", path, "no-slash"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("expected SERVER/TOOL"), "{stderr}");
}

#[test]
fn a_bad_log_level_is_a_usage_error() {
    let (code, _, stderr) = run(&["--log-level", "info,=[", "builtin", "everything", "--stdio"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("invalid log level or filter"), "{stderr}");
}
