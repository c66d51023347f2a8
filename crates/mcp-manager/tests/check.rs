//! `mcp-manager check` run as a real process on config files.

// The functions below are test code too: a failed setup should panic.
#![allow(clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-manager");

/// What one run of the binary produced.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn assert_invalid_with(&self, expected: &[&str]) {
        self.assert_outcome(2, &self.stderr, expected);
    }

    #[track_caller]
    fn assert_valid_with(&self, expected: &[&str]) {
        self.assert_outcome(0, &self.stdout, expected);
    }

    /// The exit code is `code` and `stream` contains every expected text.
    #[track_caller]
    fn assert_outcome(&self, code: i32, stream: &str, expected: &[&str]) {
        let output = format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert_eq!(self.code, Some(code), "{output}");
        for text in expected {
            assert!(stream.contains(text), "missing {text:?} in\n{output}");
        }
    }
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("MCP_TEST_UNSET_VARIABLE");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("the binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes `text` to `config.json` in a fresh folder and checks it.
fn check_with_env(text: &str, env: &[(&str, &str)], extra_args: &[&str]) -> Run {
    let dir = TempDir::new().expect("a temporary folder");
    std::fs::write(dir.path().join("config.json"), text).expect("the config is written");
    let mut args = vec!["check", "--config", "config.json"];
    args.extend_from_slice(extra_args);
    run_in(dir.path(), &args, env)
}

fn check(text: &str) -> Run {
    check_with_env(text, &[], &[])
}

fn servers(entries: &str) -> String {
    format!(r#"{{"mcpServers": {{{entries}}}}}"#)
}

// ---- broken configs: exit code 2 and a message naming file, path, reason ----

#[test]
fn missing_file() {
    let dir = TempDir::new().unwrap();
    let run = run_in(dir.path(), &["check", "--config", "nope.json"], &[]);
    run.assert_invalid_with(&["error: nope.json: cannot read the file: No such file or directory"]);
    assert!(run.stdout.is_empty());
}

#[test]
fn invalid_json_reports_line_and_column() {
    let run =
        check("{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\"}\n    \"b\": {}\n  }\n}");
    run.assert_invalid_with(&["error: config.json:4:5: invalid JSON: expected `,` or `}`"]);
}

#[test]
fn no_server_map() {
    check(r#"{"servers_list": {}}"#).assert_invalid_with(&[
        "error: config.json: no `mcpServers` object",
        "  hint: add the servers as {\"mcpServers\":",
    ]);
}

#[test]
fn server_entry_not_an_object() {
    check(&servers(r#""a": ["npx", "server"]"#))
        .assert_invalid_with(&["error: config.json: mcpServers.a: expected an object with the server's settings, found an array"]);
}

#[test]
fn neither_command_nor_url() {
    check(&servers(r#""github": {"args": ["x"]}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.github: has neither `command` nor `url`",
        "  hint: a server needs either `command` (a local process) or `url` (a remote server)",
    ]);
}

#[test]
fn both_command_and_url() {
    check(&servers(r#""a": {"command": "x", "url": "https://h/mcp"}"#))
        .assert_invalid_with(&["error: config.json: mcpServers.a: has both `command` and `url`"]);
}

#[test]
fn wrong_types_in_args_and_env() {
    check(&servers(r#""github": {"command": "npx", "args": ["-y", 42], "env": {"PORT": 8080}}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.github.args[1]: expected a string, found a number\n  hint: write it in quotes: \"42\"",
        "error: config.json: mcpServers.github.env.PORT: expected a string, found a number",
        "config.json: invalid config: 2 errors, 0 warnings",
    ]);
}

#[test]
fn bad_url_scheme() {
    check(&servers(r#""a": {"url": "ws://localhost:3000"}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.a.url: unsupported URL scheme `ws`; use `http` or `https`",
    ]);
}

#[test]
fn empty_transport_type() {
    check(&servers(r#""a": {"type": "", "url": "http://h"}"#))
        .assert_invalid_with(&["error: config.json: mcpServers.a.type: must not be empty"]);
}

/// A type that is not built in names a plugin's server type: the entry is
/// shown with that type, and its other keys are the plugin's settings.
#[test]
fn unknown_transport_type() {
    check(&servers(r#""a": {"type": "websocket", "url": "http://h", "retries": 3}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.a.type: unknown server type \"websocket\"",
        "  hint: the known types are \"stdio\", \"http\", \"streamable-http\", \"streamableHttp\", \"sse\", \"frame-socket\", \"builtin\"",
    ]);
    check(&servers(r#""a": {"type": "htp", "url": "http://h"}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.a.type: unknown server type \"htp\"",
        "  hint: did you mean \"http\"?",
    ]);
}

#[test]
fn builtin_servers() {
    let run = check(&servers(
        r#""demo": {"type": "builtin", "server": "everything", "namespace": ""}"#,
    ));
    run.assert_valid_with(&[
        "demo (builtin, enabled)",
        "ok: the config is valid (0 warnings)",
    ]);
    check(&servers(r#""demo": {"type": "builtin", "server": "nothing"}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.demo: server `demo` asks for the built-in server \"nothing\", which does not exist",
        "  hint: the built-in servers are: everything",
    ]);
    check(&servers(r#""demo": {"type": "builtin", "sever": "everything"}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.demo: server `demo`: its settings do not fit the `builtin` server type: missing field `server`",
        "warning: config.json: mcpServers.demo.sever: unknown key `sever` is ignored\n  hint: did you mean `server`?",
    ]);
    // mcp-manager's own options are read on a builtin entry too; other
    // keys are warned about, as on any entry.
    let run = check(&servers(
        r#""demo": {"type": "builtin", "server": "echo", "timeoutMs": 5000, "tags": ["t"], "timeoutMS": 1, "zzz": 2}"#,
    ));
    run.assert_valid_with(&[
        "timeouts:    5s per request",
        "tags:        t",
        "warning: config.json: mcpServers.demo.timeoutMS: unknown key `timeoutMS` is ignored\n  hint: did you mean `timeoutMs`?",
        "warning: config.json: mcpServers.demo.zzz: unknown key `zzz` is ignored",
        "ok: the config is valid (2 warnings)",
    ]);
}

#[test]
fn zero_instances() {
    check(&servers(r#""a": {"command": "x", "instances": 0}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.a.instances: must be at least 1, found 0",
    ]);
}

#[test]
fn zero_timeout() {
    check(&servers(r#""a": {"command": "x", "timeoutMs": 0}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.a.timeoutMs: must be at least 1, found 0",
    ]);
}

#[test]
fn max_backoff_below_initial_backoff() {
    check(&servers(r#""a": {"command": "x", "restart": {"initialBackoffMs": 2000, "maxBackoffMs": 1000}}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.a.restart.maxBackoffMs: must be at least `initialBackoffMs`",
        "  hint: the backoff grows from initialBackoffMs (2000) up to maxBackoffMs (1000)",
    ]);
}

#[test]
fn undefined_variable() {
    check(&servers(r#""a": {"command": "x", "env": {"TOKEN": "${MCP_TEST_UNSET_VARIABLE}"}}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers.a.env.TOKEN: environment variable `MCP_TEST_UNSET_VARIABLE` is not set",
        "  hint: set `MCP_TEST_UNSET_VARIABLE` in the environment, or give a fallback: `${MCP_TEST_UNSET_VARIABLE:-value}`",
    ]);
}

#[test]
fn unterminated_reference() {
    check(&servers(
        r#""a": {"command": "x", "args": ["--dir", "${HOME/notes"]}"#,
    ))
    .assert_invalid_with(&["error: config.json: mcpServers.a.args[1]: `${` without a closing `}`"]);
}

#[test]
fn duplicate_key() {
    check(&servers(
        r#""a": {"command": "x", "args": [], "args": ["y"]}"#,
    ))
    .assert_invalid_with(&[
        "error: config.json: mcpServers.a.args: duplicate key `args`",
        "  hint: JSON keeps only the last of them; remove the others",
    ]);
}

#[test]
fn both_mcp_servers_and_servers() {
    check(r#"{"mcpServers": {}, "servers": {}}"#)
        .assert_invalid_with(&["error: config.json: has both `mcpServers` and `servers`"]);
}

#[test]
fn bad_separator() {
    check(r#"{"mcpServers": {}, "mcpManager": {"separator": "::"}}"#).assert_invalid_with(&[
        "error: config.json: mcpManager.separator: \"::\" is not a valid separator",
    ]);
}

#[test]
fn server_name_with_a_slash() {
    check(&servers(r#""team/github": {"command": "x"}"#)).assert_invalid_with(&[
        "error: config.json: mcpServers[\"team/github\"]: invalid server name: it contains `/`",
    ]);
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let run = check(&servers(
        r#""a": {"command": 1}, "b": {"url": "ftp://x"}, "c": {"command": "x", "instances": -1, "arg": []}"#,
    ));
    run.assert_invalid_with(&[
        "error: config.json: mcpServers.a.command: expected a string, found a number",
        "error: config.json: mcpServers.b.url: unsupported URL scheme `ftp`",
        "error: config.json: mcpServers.c.instances: must be at least 1, found -1",
        "warning: config.json: mcpServers.c.arg: unknown key `arg` is ignored\n  hint: did you mean `args`?",
        "config.json: invalid config: 3 errors, 1 warning",
    ]);
    assert_eq!(run.stderr.matches("error: ").count(), 3);
}

// ---- valid configs: exit code 0 and a summary on stdout ----

#[test]
fn claude_desktop_file() {
    let run = check(
        r#"{
          "mcpServers": {
            "filesystem": {
              "command": "npx",
              "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/My Documents"]
            },
            "sqlite": {"command": "uvx", "args": ["mcp-server-sqlite", "--db-path", "/tmp/test.db"], "env": {"LOG": "1"}}
          }
        }"#,
    );
    run.assert_valid_with(&[
        "config.json: 2 servers (2 enabled), tool names joined with \"__\"",
        "filesystem (stdio, enabled)\n  command:     npx -y @modelcontextprotocol/server-filesystem '/Users/me/My Documents'\n  namespace:   filesystem\n  instances:   1\n",
        "sqlite (stdio, enabled)\n  command:     uvx mcp-server-sqlite --db-path /tmp/test.db\n  env:         LOG (values hidden)\n",
        "ok: the config is valid (0 warnings)",
    ]);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn cursor_file_with_url_and_headers() {
    let run = check_with_env(
        &servers(
            r#""remote": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${MCP_TEST_TOKEN}"}},
               "legacy": {"url": "http://localhost:8080/sse", "type": "sse", "enabled": false}"#,
        ),
        &[("MCP_TEST_TOKEN", "secret-value")],
        &[],
    );
    run.assert_valid_with(&[
        "config.json: 2 servers (1 enabled)",
        "remote (streamable-http, enabled)\n  url:         https://mcp.example.com/mcp\n  headers:     Authorization (values hidden)\n",
        "legacy (sse, disabled)\n  url:         http://localhost:8080/sse\n",
    ]);
    assert!(!run.stdout.contains("secret-value"));
}

#[test]
fn vscode_file_with_servers_and_type() {
    let run = check(
        r#"{
          // .vscode/mcp.json
          "servers": {
            "memory": {"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]},
            "fetch": {"type": "http", "url": "http://127.0.0.1:8000/mcp", "namespace": "", "tags": ["web"]},
          }
        }"#,
    );
    run.assert_valid_with(&[
        "memory (stdio, enabled)",
        "fetch (streamable-http, enabled)\n  url:         http://127.0.0.1:8000/mcp\n  namespace:   (none)\n  instances:   1\n  tags:        web\n",
    ]);
}

#[test]
fn unknown_keys_are_warnings() {
    let run = check(&servers(
        r#""a": {"command": "x", "autoApprove": ["read"], "enviroment": {"A": "1"}}"#,
    ));
    run.assert_valid_with(&[
        "warning: config.json: mcpServers.a.autoApprove: `autoApprove` is a setting of other MCP clients; mcp-manager ignores it",
        "warning: config.json: mcpServers.a.enviroment: unknown key `enviroment` is ignored\n  hint: did you mean `env`?",
        "ok: the config is valid (2 warnings)",
    ]);
}

#[test]
fn the_example_config_is_valid() {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/claude_desktop_config.json");
    let dir = TempDir::new().unwrap();
    let example = example.to_str().expect("a UTF-8 path");
    let run = run_in(
        dir.path(),
        &["check", "--config", example],
        &[("HOME", "/home/demo")],
    );
    run.assert_valid_with(&[
        "3 servers (2 enabled)",
        "everything (stdio, enabled)\n  command:     mcp-manager builtin everything --stdio\n",
        "scratch (stdio, enabled)",
        "  instances:   2\n  deny tools:  test_sampling, *elicitation*\n  timeouts:    30s per request, 30s to start\n  restart:     always, at most 10 times in a row, waiting 250ms growing to 30s\n",
        "everything-http (streamable-http, disabled)",
        "ok: the config is valid (0 warnings)",
    ]);
}

// ---- JSON output and usage ----

#[test]
fn json_output_for_a_valid_config() {
    let run = check_with_env(
        &servers(r#""a": {"command": "x", "args": ["y"], "instances": 2}"#),
        &[],
        &["--format", "json"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(report["valid"], true);
    assert_eq!(report["servers"][0]["id"], "a");
    assert_eq!(report["servers"][0]["transport"], "stdio");
    assert_eq!(report["servers"][0]["args"], serde_json::json!(["y"]));
    assert_eq!(report["servers"][0]["instances"], 2);
    assert_eq!(report["servers"][0]["timeoutMs"], 60000);
    assert_eq!(report["separator"], "__");
}

#[test]
fn secrets_taken_from_references_are_never_printed() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("key.txt"), "f1le-s3cret\n").unwrap();
    let config = servers(
        r#""a": {"command": "x", "args": ["--token=${MCP_TEST_TOKEN}", "--key", "${file:key.txt}"], "env": {"K": "${file:key.txt}"}},
           "b": {"url": "https://example.invalid/mcp?key=${file:key.txt}", "headers": {"Authorization": "Bearer ${MCP_TEST_TOKEN}"}}"#,
    );
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let env = [("MCP_TEST_TOKEN", "env-s3cret")];
    for format in ["text", "json"] {
        let run = run_in(
            dir.path(),
            &["check", "--config", "config.json", "--format", format],
            &env,
        );
        assert_eq!(run.code, Some(0), "{format}: {}", run.stderr);
        let output = format!("{}{}", run.stdout, run.stderr);
        assert!(!output.contains("s3cret"), "{format}: {output}");
        assert!(output.contains("${file:key.txt}"), "{format}: {output}");
        assert!(
            output.contains("--token=${MCP_TEST_TOKEN}"),
            "{format}: {output}"
        );
    }
    // A file that cannot be read is an error that names it, fallback or not.
    std::fs::write(
        dir.path().join("config.json"),
        servers(r#""a": {"command": "x", "args": ["${file:nope.txt}"]}"#),
    )
    .unwrap();
    let run = run_in(dir.path(), &["check", "--config", "config.json"], &[]);
    run.assert_invalid_with(&["mcpServers.a.args[0]: `${file:nope.txt}`: there is no such file"]);
}

#[test]
fn json_output_for_an_invalid_config() {
    let run = check_with_env(
        "{\"mcpServers\": {\"a\": {\"command\": 1}}, \"x\": 1}",
        &[],
        &["--format", "json"],
    );
    assert_eq!(run.code, Some(2));
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"][0]["path"], "mcpServers.a.command");
    assert_eq!(
        report["errors"][0]["message"],
        "expected a string, found a number"
    );
    assert_eq!(report["warnings"][0]["path"], "x");

    let syntax = check_with_env("{\n  oops", &[], &["--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&syntax.stdout).expect("JSON on stdout");
    assert_eq!(
        (
            report["errors"][0]["line"].as_u64(),
            report["errors"][0]["column"].as_u64()
        ),
        (Some(2), Some(3))
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let dir = TempDir::new().unwrap();
    let run = run_in(dir.path(), &["check"], &[]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("--config <FILE>"), "{}", run.stderr);
}

#[test]
fn a_per_client_server_is_shown_and_a_bad_session_mode_refused() {
    check(&servers(
        r#""tools": {"command": "mcp-manager", "args": ["builtin", "everything", "--stdio"], "sessions": "per-client"}"#,
    ))
    .assert_valid_with(&["  sessions:    per-client: an instance for each client session\n"]);
    check(&servers(r#""tools": {"command": "x", "sessions": "each"}"#)).assert_invalid_with(&[
        "mcpServers.tools.sessions: unknown session mode \"each\"",
        "hint: use \"shared\"",
    ]);
}

#[test]
fn pinning_modes_are_shown_and_a_bad_one_refused() {
    let config = r#"{"mcpManager": {"pinning": "enforce", "pinsFile": "/var/lib/mcp/pins.json"},
        "mcpServers": {"strict": {"command": "x"}, "loose": {"command": "x", "pinning": "warn"}, "none": {"command": "x", "pinning": "off"}}}"#;
    check(config).assert_valid_with(&[
        "strict (stdio, enabled)\n  command:     x\n  namespace:   strict\n  instances:   1\n  pinning:     enforce: a tool whose definition changed is held back until approved\n",
        "loose (stdio, enabled)\n  command:     x\n  namespace:   loose\n  instances:   1\n\n",
        "  pinning:     off: tool definitions are not pinned\n",
    ]);
    let run = check_with_env(config, &[], &["--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(report["pinsFile"], "/var/lib/mcp/pins.json");
    let modes: Vec<&str> = report["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pinning"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["enforce", "warn", "off"]);
    check(&servers(r#""a": {"command": "x", "pinning": "strict"}"#)).assert_invalid_with(&[
        "mcpServers.a.pinning: unknown pinning mode \"strict\"",
        "hint: use \"warn\"",
    ]);
}

#[test]
fn a_sandbox_is_shown_and_a_remote_one_refused() {
    let config = servers(
        r#""boxed": {"command": "x", "sandbox": {"read": ["/opt/tool"], "write": [], "network": false, "memoryMb": 256, "openFiles": 64}}"#,
    );
    check(&config).assert_valid_with(&[
        "  sandbox:     no new privileges; files: read /opt/tool, write nothing (and the system's); no network; 256 MiB of memory; 64 open files\n",
    ]);
    let run = check_with_env(&config, &[], &["--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(
        report["servers"][0]["sandbox"],
        serde_json::json!({"read": ["/opt/tool"], "write": [], "network": false, "memoryMb": 256,
            "cpuSeconds": null, "openFiles": 64, "processes": null})
    );
    check(&servers(r#""far": {"url": "https://example.com/mcp", "sandbox": {}}"#)).assert_invalid_with(&[
        "mcpServers.far.sandbox: a sandbox applies only to servers run as local processes (`command`)",
    ]);
}

#[test]
fn auth_access_and_audit_are_shown() {
    let config = r#"{"mcpManager": {
        "auth": {"issuer": "https://idp.example.com/realms/team", "audience": "https://mcp.example.com/mcp", "requiredScopes": ["mcp:tools"]},
        "access": {"rules": [{"allow": ["*"], "scopes": ["mcp:admin"]}, {"deny": ["*/delete_*"]}]},
        "audit": {"file": "/var/log/mcp/audit.jsonl"}
    }, "mcpServers": {"a": {"command": "x"}}}"#;
    check(config).assert_valid_with(&[
        "  auth:        access tokens of https://idp.example.com/realms/team for https://mcp.example.com/mcp, with mcp:tools\n  access:      2 rules, else deny\n  audit:       /var/log/mcp/audit.jsonl\n",
    ]);
    check(r#"{"mcpManager": {"access": {"rules": [{"allow": ["echo"]}]}}, "mcpServers": {}}"#)
        .assert_invalid_with(&[
            "mcpManager.access.rules[0].allow[0]: \"echo\" does not name a server",
        ]);
}
