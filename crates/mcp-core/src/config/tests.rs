//! The rules of the config loader, one test per rule.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::{ErrorKind, TextPosition};

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/me".into()),
        "TOKEN" => Some("t0k".into()),
        "SECRET" => Some("s3cret".into()),
        _ => None,
    }
}

/// A config of the one server entry `entry` (named `s`), with the test
/// environment; else its issues, each with its hint in parentheses, one
/// per line.
pub(super) fn load_entry(entry: &str) -> Result<ManagerConfig, String> {
    ManagerConfig::from_json_str(
        &format!(r#"{{"mcpServers": {{"s": {entry}}}}}"#),
        None,
        &env,
    )
    .map_err(|error| {
        error
            .config()
            .map(|config| {
                config
                    .issues()
                    .iter()
                    .map(|issue| format!("{issue} ({})", issue.hint().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_else(|| error.to_string())
    })
}

fn load(text: &str) -> ManagerConfig {
    match ManagerConfig::from_json_str(text, None, &env) {
        Ok(config) => config,
        Err(err) => panic!("expected a valid config, got: {err}"),
    }
}

fn config_error(text: &str) -> ConfigError {
    let err =
        ManagerConfig::from_json_str(text, None, &env).expect_err("expected an invalid config");
    assert_eq!(err.kind(), ErrorKind::Config);
    err.config().cloned().unwrap()
}

fn describe(issue: &ConfigIssue) -> String {
    match issue.hint() {
        Some(hint) => format!("{issue} (hint: {hint})"),
        None => issue.to_string(),
    }
}

/// Every error of `text`, as `path: message (hint: ...)`.
fn errors(text: &str) -> Vec<String> {
    config_error(text).issues().iter().map(describe).collect()
}

/// Every warning of the valid config `text`.
fn warnings(text: &str) -> Vec<String> {
    load(text).warnings().iter().map(describe).collect()
}

/// `text` has exactly one error, and it contains `expected`.
fn assert_one_error(text: &str, expected: &str) {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains(expected),
        "{:?} does not contain {expected:?}",
        errors[0]
    );
}

/// For each `(entry, expected)`: a config whose one server `a` has the
/// settings `entry` has exactly one error, containing `expected`.
fn assert_entry_errors(cases: &[(&str, &str)]) {
    for (entry, expected) in cases {
        assert_one_error(&servers(&format!(r#""a": {entry}"#)), expected);
    }
}

fn servers(entries: &str) -> String {
    format!(r#"{{"mcpServers": {{{entries}}}}}"#)
}

fn stdio(config: &ManagerConfig, name: &str) -> StdioConfig {
    match config.server(name).map(ServerConfig::transport) {
        Some(TransportConfig::Stdio(stdio)) => stdio.clone(),
        other => panic!("{name} is not stdio: {other:?}"),
    }
}

#[test]
fn claude_desktop_file_loads_with_defaults() {
    let config = load(
        r#"{
          "mcpServers": {
            "filesystem": {
              "command": "npx",
              "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"]
            },
            "github": {
              "command": "docker",
              "args": ["run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"],
              "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_x", "A": "1"}
            }
          }
        }"#,
    );
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    let ids: Vec<&str> = config.servers().iter().map(|s| s.id().as_str()).collect();
    assert_eq!(ids, ["filesystem", "github"]);
    let fs = config.server("filesystem").unwrap();
    assert_eq!(fs.transport().name(), "stdio");
    assert!(fs.is_enabled());
    assert_eq!(fs.namespace(), "filesystem");
    assert_eq!(fs.instances(), NonZeroU32::MIN);
    assert_eq!(fs.priority(), 0);
    assert!(fs.tags().is_empty());
    assert_eq!(*fs.timeouts(), Timeouts::default());
    assert_eq!(fs.timeouts().request(), Duration::from_secs(60));
    assert_eq!(fs.timeouts().startup(), Duration::from_secs(30));
    assert_eq!(*fs.restart(), RestartConfig::default());
    assert_eq!(fs.restart().policy(), RestartPolicy::OnFailure);
    assert_eq!(fs.max_concurrency(), None);
    assert!(fs.tools().is_unrestricted());
    let github = stdio(&config, "github");
    assert_eq!(github.command(), "docker");
    assert_eq!(github.args().len(), 6);
    let names: Vec<&String> = github.env().keys().collect();
    assert_eq!(names, ["A", "GITHUB_PERSONAL_ACCESS_TOKEN"]);
    assert_eq!(github.cwd(), None);
    assert_eq!(config.gateway().separator(), "__");
    assert_eq!(config.source(), None);
    assert_eq!(config.enabled_servers().count(), 2);
}

#[test]
fn cursor_remote_server_with_headers() {
    let config = load(&servers(
        r#""remote": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}"#,
    ));
    let server = config.server("remote").unwrap();
    let TransportConfig::StreamableHttp(http) = server.transport() else {
        panic!("{:?}", server.transport());
    };
    assert_eq!(http.url().as_str(), "https://mcp.example.com/mcp");
    assert_eq!(http.url().host(), "mcp.example.com");
    assert_eq!(
        http.headers().get("Authorization").map(String::as_str),
        Some("Bearer t0k")
    );
}

#[test]
fn vscode_file_with_servers_types_and_comments() {
    let text = r#"{
      // VS Code writes JSON with comments
      "inputs": [{"type": "promptString", "id": "key"}],
      "servers": {
        "local": {"type": "stdio", "command": "node", "args": ["${workspaceFolder}/server.js"],},
        "http": {"type": "http", "url": "http://localhost:3000/mcp"},
        "legacy": {"type": "sse", "url": "http://localhost:3001/sse"}
      }
    }"#;
    let config =
        ManagerConfig::from_json_str(text, Some(Path::new("/proj/.vscode/mcp.json")), &env)
            .unwrap();
    let names: Vec<&str> = config
        .servers()
        .iter()
        .map(|s| s.transport().name())
        .collect();
    assert_eq!(names, ["stdio", "streamable-http", "sse"]);
    assert_eq!(stdio(&config, "local").args(), ["/proj/server.js"]);
    assert_eq!(config.source(), Some(Path::new("/proj/.vscode/mcp.json")));
    let warnings: Vec<&str> = config.warnings().iter().map(ConfigIssue::path).collect();
    assert_eq!(warnings, ["inputs"]);
}

#[test]
fn both_server_maps_are_rejected() {
    let errors = errors(r#"{"mcpServers": {}, "servers": {}}"#);
    assert_eq!(
        errors,
        [
            "has both `mcpServers` and `servers` (hint: keep one: `mcpServers` (Claude Desktop, Cursor) or `servers` (VS Code))"
        ]
    );
}

#[test]
fn missing_server_map_is_an_error_with_a_hint() {
    assert_one_error(
        r#"{"other": 1}"#,
        "no `mcpServers` object (hint: add the servers as",
    );
    assert_one_error(
        r#"{"github": {"command": "x"}}"#,
        r#"the servers must sit inside "mcpServers""#,
    );
    assert_one_error("[1]", "the top level must be an object, found an array");
    assert_one_error(
        r#"{"mcpServers": []}"#,
        "mcpServers: expected an object mapping server names to their settings, found an array",
    );
}

#[test]
fn invalid_json_has_line_and_column() {
    let err = config_error(
        "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",}\n  }\n  \"oops\"\n}",
    );
    let issue = &err.issues()[0];
    assert_eq!(issue.position(), Some(TextPosition { line: 5, column: 3 }));
    assert_eq!(issue.message(), "invalid JSON: expected `,` or `}`");
    assert_one_error("", "the file is empty");
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let config = load(&format!("\u{feff}{}", servers(r#""a": {"command": "x"}"#)));
    assert_eq!(config.servers().len(), 1);
}

#[test]
fn entry_must_be_an_object() {
    assert_one_error(
        &servers(r#""a": "npx server""#),
        "mcpServers.a: expected an object with the server's settings, found a string",
    );
}

#[test]
fn entry_needs_exactly_one_of_command_and_url() {
    assert_entry_errors(&[
        (
            r#"{"args": []}"#,
            "mcpServers.a: has neither `command` nor `url` (hint: a server needs either `command` (a local process) or `url` (a remote server))",
        ),
        (
            r#"{"command": "x", "url": "http://h"}"#,
            "mcpServers.a: has both `command` and `url`",
        ),
    ]);
}

#[test]
fn type_must_fit_the_entry() {
    assert_entry_errors(&[
        (
            r#"{"type": "stdio", "url": "http://h"}"#,
            "mcpServers.a.type: \"stdio\" needs `command`",
        ),
        (
            r#"{"type": "sse", "command": "x"}"#,
            "mcpServers.a.type: a remote transport needs `url`",
        ),
        (
            r#"{"type": "", "url": "http://h"}"#,
            "mcpServers.a.type: must not be empty (hint: use \"stdio\", \"http\" (Streamable HTTP), \"streamable-http\", \"sse\" or the server type of a plugin, or leave it out)",
        ),
        (
            r#"{"type": 1, "url": "http://h"}"#,
            "mcpServers.a.type: expected a string, found a number",
        ),
    ]);
}

fn plugin(config: &ManagerConfig, name: &str) -> PluginTransport {
    match config.server(name).map(ServerConfig::transport) {
        Some(TransportConfig::Plugin(plugin)) => plugin.clone(),
        other => panic!("{name} is not a plugin entry: {other:?}"),
    }
}

#[test]
fn unknown_types_are_plugin_entries() {
    let config = load(&servers(
        r#""ws": {"type": "websocket", "url": "ws://h/${TOKEN}", "headers": {"X": "1"}, "namespace": "w", "timeoutMs": 5000},
           "py": {"transportType": "python", "module": "calc", "command": "${HOME}/py"},
           "typo": {"type": "streamable_http", "url": "http://h"},
           "bare": {"type": "in-process"}"#,
    ));
    let kinds: Vec<&str> = config
        .servers()
        .iter()
        .map(|s| s.transport().name())
        .collect();
    assert_eq!(
        kinds,
        ["websocket", "python", "streamable_http", "in-process"]
    );
    let ws = plugin(&config, "ws");
    assert_eq!(ws.kind(), "websocket");
    assert_eq!(
        serde_json::Value::Object(ws.settings().clone()),
        serde_json::json!({"url": "ws://h/t0k", "headers": {"X": "1"}})
    );
    let server = config.server("ws").unwrap();
    assert_eq!(server.namespace(), "w");
    assert_eq!(server.timeouts().request(), Duration::from_millis(5000));
    assert_eq!(
        serde_json::Value::Object(plugin(&config, "py").settings().clone()),
        serde_json::json!({"module": "calc", "command": "/home/me/py"})
    );
    assert!(plugin(&config, "bare").settings().is_empty());
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn builtin_type_names_are_never_plugins() {
    for name in BUILTIN_TRANSPORT_TYPES {
        let entry = match *name {
            "stdio" => r#"{"command": "x"}"#,
            "frame-socket" => r#"{"url": "unix:/run/mcp.sock"}"#,
            _ => r#"{"url": "http://h"}"#,
        };
        let entry = entry.replacen('{', &format!(r#"{{"type": "{name}", "#), 1);
        let config = load(&servers(&format!(r#""a": {entry}"#)));
        let transport = config.server("a").unwrap().transport();
        assert!(
            !matches!(transport, TransportConfig::Plugin(_)),
            "{name}: {transport:?}"
        );
    }
    assert_eq!(closest_name("htp", BUILTIN_TRANSPORT_TYPES), Some("http"));
    assert_eq!(closest_name("SSE", BUILTIN_TRANSPORT_TYPES), Some("sse"));
    assert_eq!(closest_name("python", BUILTIN_TRANSPORT_TYPES), None);
    assert_eq!(closest_name("python", &[]), None);
}

#[test]
fn plugin_settings_are_interpolated_at_every_depth() {
    let config = load(&servers(
        r#""a": {"type": "custom",
                 "options": {"home": "${HOME}", "list": ["$${HOME}", {"deep": ["${NOPE:-d}", 1]}], "${KEY}": "k"},
                 "flags": [true, false, null, -3, 2.5, 18446744073709551615, 18446744073709551616]}"#,
    ));
    let settings = serde_json::Value::Object(plugin(&config, "a").settings().clone());
    assert_eq!(
        settings,
        serde_json::json!({
            "options": {"home": "/home/me", "list": ["${HOME}", {"deep": ["d", 1]}], "${KEY}": "k"},
            "flags": [true, false, null, -3, 2.5, u64::MAX, 18_446_744_073_709_551_616.0],
        })
    );
}

#[test]
fn plugin_settings_interpolation_errors_name_the_path() {
    let errors = errors(&servers(
        r#""a": {"type": "custom", "options": {"list": [1, {"token": "${GITHUB_TOKEN}"}]}, "x": "${HOME", "ok": "${HOME}"}"#,
    ));
    assert_eq!(
        errors,
        [
            "mcpServers.a.options.list[1].token: environment variable `GITHUB_TOKEN` is not set (hint: set `GITHUB_TOKEN` in the environment, or give a fallback: `${GITHUB_TOKEN:-value}`)",
            "mcpServers.a.x: `${` without a closing `}` (hint: close it with `}`, or write `$$` for a literal `$`)",
        ]
    );
    // A disabled plugin entry is checked all the same.
    assert_one_error(
        &servers(r#""a": {"type": "custom", "s": ["${NOPE}"], "enabled": false}"#),
        "mcpServers.a.s[0]: environment variable `NOPE` is not set",
    );
}

#[test]
fn plugin_entries_check_the_common_options() {
    let errors = errors(&servers(
        r#""a": {"type": "custom", "instances": 0, "namespace": "a/b", "timeoutMs": "1",
                 "restart": "sometimes", "tools": {"deny": [""]}, "enabled": true, "disabled": true}"#,
    ));
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e.split_once(':').map_or(e.as_str(), |(path, _)| path))
        .collect();
    assert_eq!(
        paths,
        [
            "mcpServers.a.disabled",
            "mcpServers.a.namespace",
            "mcpServers.a.instances",
            "mcpServers.a.timeoutMs",
            "mcpServers.a.restart",
            "mcpServers.a.tools.deny[0]",
        ],
        "{errors:#?}"
    );
    let config = load(&servers(
        r#""a": {"type": "custom", "instances": 3, "priority": 7, "tags": ["t"], "maxConcurrency": 2,
                 "restart": {"policy": "always"}, "tools": {"allow": ["x*"]}, "disabledTools": ["xy"],
                 "disabled": true, "startupTimeoutMs": 100}"#,
    ));
    let a = config.server("a").unwrap();
    assert_eq!(a.instances().get(), 3);
    assert_eq!(a.priority(), 7);
    assert_eq!(a.tags(), ["t"]);
    assert_eq!(a.max_concurrency().map(NonZeroU32::get), Some(2));
    assert_eq!(a.restart().policy(), RestartPolicy::Always);
    assert!(a.tools().permits("xa") && !a.tools().permits("xy") && !a.tools().permits("y"));
    assert!(!a.is_enabled());
    assert_eq!(a.timeouts().startup(), Duration::from_millis(100));
    assert!(plugin(&config, "a").settings().is_empty());
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn plugin_settings_keys_are_not_warned_about() {
    let text = servers(
        r#""a": {"type": "custom", "arg": 1, "autoApprove": [], "args": [], "headers": {}, "zzz": 0,
                 "restart": {"maxRetries": 3}, "tools": {"exclude": []}}"#,
    );
    // The settings are the plugin's; the common options keep their checks.
    assert_eq!(
        warnings(&text),
        [
            "mcpServers.a.restart.maxRetries: unknown key `maxRetries` is ignored (hint: did you mean `maxRestarts`?)",
            "mcpServers.a.tools.exclude: unknown key `exclude` is ignored (hint: did you mean `deny`?)",
        ]
    );
    let entry = plugin(&load(&text), "a");
    let mut settings: Vec<&String> = entry.settings().keys().collect();
    settings.sort();
    assert_eq!(settings, ["arg", "args", "autoApprove", "headers", "zzz"]);
}

#[test]
fn an_empty_type_is_an_error() {
    assert_entry_errors(&[
        (
            r#"{"type": "", "command": "x"}"#,
            "mcpServers.a.type: must not be empty",
        ),
        (
            r#"{"transportType": "", "setting": 1}"#,
            "mcpServers.a.transportType: must not be empty",
        ),
    ]);
    // Without a type, an entry still needs `command` or `url`.
    assert_entry_errors(&[(
        r#"{"module": "calc"}"#,
        "mcpServers.a: has neither `command` nor `url`",
    )]);
}

#[test]
fn other_clients_transport_keys_are_honoured() {
    let config = load(&servers(
        r#""cline": {"transportType": "sse", "url": "http://h/sse"},
           "cline2": {"transportType": "streamableHttp", "url": "http://h/mcp"},
           "windsurf": {"serverUrl": "https://w.example/mcp"}"#,
    ));
    let names: Vec<&str> = config
        .servers()
        .iter()
        .map(|s| s.transport().name())
        .collect();
    assert_eq!(names, ["sse", "streamable-http", "streamable-http"]);
    let warnings = warnings(&servers(
        r#""a": {"url": "http://a", "serverUrl": "http://b"}"#,
    ));
    assert_eq!(
        warnings,
        ["mcpServers.a.serverUrl: ignored because `url` is also given"]
    );
}

#[test]
fn args_and_env_must_hold_strings() {
    let errors = errors(&servers(
        r#""a": {"command": "x", "args": ["ok", 1, true, null], "env": {"PORT": 8080, "": "v", "A=B": "v"}}"#,
    ));
    assert_eq!(
        errors,
        [
            "mcpServers.a.args[1]: expected a string, found a number (hint: write it in quotes: \"1\")",
            "mcpServers.a.args[2]: expected a string, found a boolean (hint: write it in quotes: \"true\")",
            "mcpServers.a.args[3]: expected a string, found null",
            "mcpServers.a.env.PORT: expected a string, found a number (hint: write it in quotes: \"8080\")",
            "mcpServers.a.env[\"\"]: the variable name is empty",
            "mcpServers.a.env[\"A=B\"]: variable names cannot contain `=` or NUL",
        ]
    );
    assert_entry_errors(&[
        (
            r#"{"command": "x", "args": "--stdio"}"#,
            "write a list, even of one element: [\"--stdio\"]",
        ),
        (
            r#"{"command": "x", "env": []}"#,
            "mcpServers.a.env: expected an object, found an array",
        ),
        (
            r#"{"command": ""}"#,
            "mcpServers.a.command: must not be empty",
        ),
        (
            r#"{"command": "x", "cwd": 3}"#,
            "mcpServers.a.cwd: expected a string",
        ),
        (
            r#"{"command": "x\u0000"}"#,
            "mcpServers.a.command: contains a NUL character",
        ),
    ]);
}

#[test]
fn cwd_is_expanded() {
    let config = load(&servers(r#""a": {"command": "x", "cwd": "${HOME}/work"}"#));
    assert_eq!(stdio(&config, "a").cwd(), Some(Path::new("/home/me/work")));
}

#[test]
fn url_must_be_http_with_a_host() {
    assert_entry_errors(&[
        (
            r#"{"url": "ftp://h/x"}"#,
            "mcpServers.a.url: unsupported URL scheme `ftp`; use `http` or `https`",
        ),
        (
            r#"{"url": "localhost:3000"}"#,
            "mcpServers.a.url: the URL has no scheme",
        ),
        (
            r#"{"url": "https://"}"#,
            "mcpServers.a.url: the URL has no host",
        ),
        (
            r#"{"url": "${NOPE:-}"}"#,
            "mcpServers.a.url: the URL is empty",
        ),
    ]);
}

#[test]
fn headers_are_checked() {
    let errors = errors(&servers(
        r#""a": {"url": "http://h", "headers": {"Bad Name": "v", "X-A": "1", "x-a": "2", "X-B": 3, "X-C": "${NOPE}"}}"#,
    ));
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].starts_with(
        "mcpServers.a.headers[\"Bad Name\"]: `Bad Name` is not a valid HTTP header name"
    ));
    assert!(errors[1].starts_with("mcpServers.a.headers.x-a: header `x-a` is given twice"));
    assert!(errors[2].starts_with("mcpServers.a.headers.X-B: expected a string, found a number"));
    assert!(
        errors[3].starts_with("mcpServers.a.headers.X-C: environment variable `NOPE` is not set")
    );
    assert_one_error(
        &servers(r#""a": {"url": "http://h", "headers": {"X": "a\nb"}}"#),
        "header values cannot contain line breaks",
    );
}

#[test]
fn keys_of_the_other_transport_are_warned_about() {
    let remote = warnings(&servers(
        r#""a": {"url": "http://h", "args": [], "env": {}, "cwd": "/"}"#,
    ));
    assert_eq!(
        remote,
        [
            "mcpServers.a.args: `args` only applies to local servers (`command`); ignored",
            "mcpServers.a.env: `env` only applies to local servers (`command`); ignored",
            "mcpServers.a.cwd: `cwd` only applies to local servers (`command`); ignored",
        ]
    );
    let local = warnings(&servers(r#""a": {"command": "x", "headers": {}}"#));
    assert_eq!(
        local,
        ["mcpServers.a.headers: `headers` only applies to remote servers (`url`); ignored"]
    );
}

#[test]
fn a_command_with_spaces_and_no_args_is_warned_about() {
    let warnings = warnings(&servers(r#""a": {"command": "npx -y pkg"}"#));
    assert_eq!(
        warnings,
        [
            r#"mcpServers.a.command: contains spaces; the whole text is run as one program name (hint: put the arguments in `args`: "command": "npx", "args": ["-y","pkg"])"#
        ]
    );
    let quiet = load(&servers(
        r#""a": {"command": "C:\\Program Files\\x.exe"}, "b": {"command": "a b", "args": ["c"]}"#,
    ));
    assert!(quiet.warnings().is_empty());
}

#[test]
fn instances_and_concurrency() {
    let config = load(&servers(
        r#""a": {"command": "x", "instances": 3, "maxConcurrency": 8, "priority": -2}"#,
    ));
    let a = config.server("a").unwrap();
    assert_eq!(a.instances().get(), 3);
    assert_eq!(a.max_concurrency().map(NonZeroU32::get), Some(8));
    assert_eq!(a.priority(), -2);
    assert_entry_errors(&[
        (
            r#"{"command": "x", "instances": 0}"#,
            "mcpServers.a.instances: must be at least 1, found 0",
        ),
        (
            r#"{"command": "x", "instances": 1.5}"#,
            "expected a whole number, found 1.5",
        ),
        (
            r#"{"command": "x", "maxConcurrency": 0}"#,
            "mcpServers.a.maxConcurrency: must be at least 1",
        ),
        (
            r#"{"command": "x", "priority": 3000000000}"#,
            "must be at most 2147483647",
        ),
    ]);
}

#[test]
fn servers_are_required_for_readiness_unless_said_otherwise() {
    let config = load(&servers(
        r#""a": {"command": "x"}, "b": {"url": "http://h", "required": false}, "c": {"type": "custom", "required": true}"#,
    ));
    assert!(config.server("a").unwrap().is_required());
    assert!(!config.server("b").unwrap().is_required());
    assert!(config.server("c").unwrap().is_required());
    assert_entry_errors(&[(
        r#"{"command": "x", "required": "no"}"#,
        "mcpServers.a.required: expected true or false",
    )]);
}

#[test]
fn instances_on_a_remote_server_are_one() {
    let text = servers(r#""a": {"url": "http://h", "instances": 4}"#);
    let config = load(&text);
    assert_eq!(config.server("a").unwrap().instances(), NonZeroU32::MIN);
    assert!(warnings(&text)[0].starts_with(
        "mcpServers.a.instances: only local (`command`) servers run several instances"
    ));
}

#[test]
fn timeouts() {
    let config = load(&servers(
        r#""a": {"command": "x", "timeoutMs": 1500, "startupTimeoutMs": 90000}"#,
    ));
    let timeouts = config.server("a").unwrap().timeouts();
    assert_eq!(timeouts.request(), Duration::from_millis(1500));
    assert_eq!(timeouts.startup(), Duration::from_secs(90));
    assert_entry_errors(&[
        (
            r#"{"command": "x", "timeoutMs": 0}"#,
            "mcpServers.a.timeoutMs: must be at least 1, found 0",
        ),
        (
            r#"{"command": "x", "startupTimeoutMs": -5}"#,
            "must be at least 1, found -5",
        ),
        (
            r#"{"command": "x", "timeoutMs": 86400001}"#,
            "must be at most 86400000",
        ),
        (
            r#"{"command": "x", "timeoutMs": "100"}"#,
            "(hint: write it without quotes: 100)",
        ),
    ]);
}

#[test]
fn restart_settings() {
    let config = load(&servers(
        r#""a": {"command": "x", "restart": {"policy": "always", "maxRestarts": 0, "initialBackoffMs": 100, "maxBackoffMs": 100}},
           "b": {"command": "x", "restart": "never"}"#,
    ));
    let a = config.server("a").unwrap().restart();
    assert_eq!(a.policy(), RestartPolicy::Always);
    assert_eq!(a.max_restarts(), 0);
    assert_eq!(a.initial_backoff(), Duration::from_millis(100));
    assert_eq!(a.max_backoff(), Duration::from_millis(100));
    let b = config.server("b").unwrap().restart();
    assert_eq!(b.policy(), RestartPolicy::Never);
    assert_eq!(b.max_restarts(), 5);
    assert_eq!(RestartPolicy::OnFailure.name(), "onFailure");
}

#[test]
fn restart_errors() {
    assert_one_error(
        &servers(
            r#""a": {"command": "x", "restart": {"initialBackoffMs": 1000, "maxBackoffMs": 500}}"#,
        ),
        "mcpServers.a.restart.maxBackoffMs: must be at least `initialBackoffMs` (hint: the backoff grows from initialBackoffMs (1000) up to maxBackoffMs (500))",
    );
    assert_entry_errors(&[
        (
            r#"{"command": "x", "restart": {"initialBackoffMs": 60000}}"#,
            "mcpServers.a.restart.initialBackoffMs: must not exceed `maxBackoffMs` (30000 unless set)",
        ),
        (
            r#"{"command": "x", "restart": {"policy": "on-failure"}}"#,
            "mcpServers.a.restart.policy: unknown restart policy \"on-failure\" (hint: did you mean \"onFailure\"?)",
        ),
        (
            r#"{"command": "x", "restart": "sometimes"}"#,
            "use \"never\", \"onFailure\" or \"always\"",
        ),
        (
            r#"{"command": "x", "restart": 1}"#,
            "mcpServers.a.restart: expected an object, found a number",
        ),
    ]);
    let warnings = warnings(&servers(
        r#""a": {"command": "x", "restart": {"maxRetries": 3}}"#,
    ));
    assert_eq!(
        warnings,
        [
            "mcpServers.a.restart.maxRetries: unknown key `maxRetries` is ignored (hint: did you mean `maxRestarts`?)"
        ]
    );
}

#[test]
fn tool_filters() {
    let config = load(&servers(
        r#""a": {"command": "x", "tools": {"allow": ["read_*", "list"], "deny": ["read_secret"]}, "disabledTools": ["list"]}"#,
    ));
    let tools = config.server("a").unwrap().tools();
    assert!(tools.permits("read_file"));
    assert!(!tools.permits("read_secret"));
    assert!(!tools.permits("list"));
    assert!(!tools.permits("write"));
    let deny: Vec<&str> = tools.deny().iter().map(ToolPattern::as_str).collect();
    assert_eq!(deny, ["read_secret", "list"]);
}

#[test]
fn tool_filter_warnings_and_errors() {
    let warnings = warnings(&servers(
        r#""a": {"command": "x", "tools": {"allow": ["a", "b*"], "deny": ["a", "b*"], "exclude": []}},
           "b": {"command": "y", "tools": {"allow": []}}"#,
    ));
    assert_eq!(
        warnings,
        [
            "mcpServers.a.tools.exclude: unknown key `exclude` is ignored (hint: did you mean `deny`?)",
            "mcpServers.a.tools.deny[0]: `a` is both allowed and denied; deny wins, so it is hidden",
            "mcpServers.b.tools.allow: the allow list is empty, so none of the server's tools is exposed",
        ]
    );
    assert_entry_errors(&[
        (
            r#"{"command": "x", "tools": {"deny": [""]}}"#,
            "mcpServers.a.tools.deny[0]: must not be empty",
        ),
        (
            r#"{"command": "x", "tools": ["a"]}"#,
            "mcpServers.a.tools: expected an object, found an array",
        ),
    ]);
}

#[test]
fn namespaces() {
    let text = servers(
        r#""plain": {"command": "x"},
           "my server": {"command": "x"},
           "custom": {"command": "x", "namespace": "c"},
           "bare": {"command": "x", "namespace": ""}"#,
    );
    let config = load(&text);
    let namespaces: Vec<&str> = config
        .servers()
        .iter()
        .map(ServerConfig::namespace)
        .collect();
    assert_eq!(namespaces, ["plain", "my_server", "c", ""]);
    assert_eq!(
        warnings(&text),
        [
            r#"mcpServers["my server"]: the server name cannot prefix tool names, so its namespace is "my_server" (hint: set "namespace" to choose the prefix (letters, digits, `_`, `.`, `-`), or "" for none)"#
        ]
    );
    assert_one_error(
        &servers(r#""a": {"command": "x", "namespace": "a/b"}"#),
        "mcpServers.a.namespace: \"a/b\" is not a valid namespace",
    );
}

#[test]
fn shared_namespaces_are_warned_about() {
    let warnings = warnings(&servers(
        r#""a": {"command": "x", "namespace": ""}, "b": {"command": "x", "namespace": ""},
           "c": {"command": "x", "namespace": "x"}, "d": {"command": "x", "namespace": "x", "enabled": false},
           "e": {"command": "x", "namespace": "x"}"#,
    ));
    assert_eq!(
        warnings,
        [
            "mcpServers.b: shares the empty namespace (no prefix) with `a`; tools with the same name would clash (hint: give one of them its own \"namespace\")",
            "mcpServers.e: shares the namespace \"x\" with `c`; tools with the same name would clash (hint: give one of them its own \"namespace\")",
        ]
    );
}

#[test]
fn enabled_and_disabled() {
    let config = load(&servers(
        r#""a": {"command": "x", "enabled": false}, "b": {"command": "x", "disabled": true},
           "c": {"command": "x", "disabled": false}, "d": {"command": "x", "enabled": true, "disabled": false}"#,
    ));
    let enabled: Vec<bool> = config
        .servers()
        .iter()
        .map(ServerConfig::is_enabled)
        .collect();
    assert_eq!(enabled, [false, false, true, true]);
    let ids: Vec<&str> = config.enabled_servers().map(|s| s.id().as_str()).collect();
    assert_eq!(ids, ["c", "d"]);
    assert_entry_errors(&[
        (
            r#"{"command": "x", "enabled": true, "disabled": true}"#,
            "mcpServers.a.disabled: \"disabled\": true contradicts \"enabled\": true",
        ),
        (
            r#"{"command": "x", "enabled": "no"}"#,
            "mcpServers.a.enabled: expected true or false, found a string",
        ),
    ]);
}

#[test]
fn tags() {
    let config = load(&servers(
        r#""a": {"command": "x", "tags": ["dev", "local"]}"#,
    ));
    assert_eq!(config.server("a").unwrap().tags(), ["dev", "local"]);
    assert_one_error(
        &servers(r#""a": {"command": "x", "tags": ["ok", 2]}"#),
        "mcpServers.a.tags[1]: expected a string",
    );
}

#[test]
fn unknown_and_foreign_keys_are_warnings() {
    let text = r#"{
      "mcpServers": {"a": {"command": "x", "arg": ["y"], "enviroment": {}, "autoApprove": ["t"], "timeout": 30, "zzz": 1}},
      "globalShortcut": "Ctrl+Space",
      "mcpManager": {"seperator": "."}
    }"#;
    assert_eq!(
        warnings(text),
        [
            "globalShortcut: unknown key `globalShortcut` is ignored",
            "mcpManager.seperator: unknown key `seperator` is ignored (hint: did you mean `separator`?)",
            "mcpServers.a.arg: unknown key `arg` is ignored (hint: did you mean `args`?)",
            "mcpServers.a.enviroment: unknown key `enviroment` is ignored (hint: did you mean `env`?)",
            "mcpServers.a.autoApprove: `autoApprove` is a setting of other MCP clients; mcp-manager ignores it (hint: to limit what the gateway exposes, use \"tools\": {\"allow\": [...], \"deny\": [...]})",
            "mcpServers.a.timeout: `timeout` is a setting of other MCP clients; mcp-manager ignores it (hint: use `timeoutMs` (milliseconds) for the request timeout)",
            "mcpServers.a.zzz: unknown key `zzz` is ignored",
        ]
    );
}

#[test]
fn duplicate_keys_are_errors_with_their_path() {
    let errors =
        errors(r#"{"mcpServers": {"a": {"command": "x", "command": "y"}, "a": {"command": "z"}}}"#);
    assert_eq!(
        errors,
        [
            "mcpServers.a.command: duplicate key `command` (hint: JSON keeps only the last of them; remove the others)",
            "mcpServers.a: duplicate key `a` (hint: JSON keeps only the last of them; remove the others)",
        ]
    );
}

#[test]
fn interpolation_in_every_expanded_field() {
    let config = load(&servers(
        r#""a": {"command": "${HOME}/bin/s", "args": ["--token=${env:TOKEN}", "$$5", "${NOPE:-d}"], "env": {"K": "${TOKEN}"}},
           "b": {"url": "https://${NOPE:-example.com}/mcp"}"#,
    ));
    let a = stdio(&config, "a");
    assert_eq!(a.command(), "/home/me/bin/s");
    assert_eq!(a.args(), ["--token=t0k", "$5", "d"]);
    assert_eq!(a.env().get("K").map(String::as_str), Some("t0k"));
    let TransportConfig::StreamableHttp(b) = config.server("b").unwrap().transport() else {
        panic!();
    };
    assert_eq!(b.url().as_str(), "https://example.com/mcp");
}

#[test]
fn interpolation_errors_name_the_path() {
    assert_entry_errors(&[
        (
            r#"{"command": "x", "env": {"T": "${GITHUB_TOKEN}"}}"#,
            "mcpServers.a.env.T: environment variable `GITHUB_TOKEN` is not set (hint: set `GITHUB_TOKEN` in the environment, or give a fallback: `${GITHUB_TOKEN:-value}`)",
        ),
        (
            r#"{"command": "x", "args": ["${HOME"]}"#,
            "mcpServers.a.args[0]: `${` without a closing `}`",
        ),
        (
            r#"{"command": "${}"}"#,
            "mcpServers.a.command: `${}` names no variable",
        ),
        (
            r#"{"command": "${input:key}"}"#,
            "asks VS Code to prompt for a value",
        ),
    ]);
    // A disabled server is checked all the same.
    assert_one_error(
        &servers(r#""a": {"command": "${NOPE}", "enabled": false}"#),
        "`NOPE` is not set",
    );
}

#[test]
fn server_names_are_validated() {
    assert_one_error(
        &servers(r#""a/b": {"command": "x"}"#),
        "mcpServers[\"a/b\"]: invalid server name: it contains `/`",
    );
    assert_one_error(
        &servers(r#""": {"command": "x"}"#),
        "mcpServers[\"\"]: invalid server name: it is empty",
    );
}

#[test]
fn separator() {
    let config = load(r#"{"mcpServers": {}, "mcpManager": {"separator": "."}}"#);
    assert_eq!(config.gateway().separator(), ".");
    assert_eq!(GatewayOptions::default().separator(), "__");
    assert_one_error(
        r#"{"mcpServers": {}, "mcpManager": {"separator": "/"}}"#,
        "mcpManager.separator: \"/\" is not a valid separator",
    );
    assert_one_error(
        r#"{"mcpServers": {}, "mcpManager": {"separator": ""}}"#,
        "mcpManager.separator: must not be empty",
    );
    assert_one_error(
        r#"{"mcpServers": {}, "mcpManager": 1}"#,
        "mcpManager: expected an object, found a number",
    );
}

#[test]
fn gateway_limits() {
    let config = load(
        r#"{"mcpServers": {}, "mcpManager": {"maxSessions": 10, "maxSessionsPerClient": 2,
            "maxInFlightPerSession": 3, "maxInFlightPerClient": 4,
            "sessionIdleTimeoutMs": 60000, "maxRequestBytes": 65536}}"#,
    );
    let limits = config.gateway().limits();
    assert_eq!(limits.max_sessions, Some(10));
    assert_eq!(limits.max_sessions_per_client, Some(2));
    assert_eq!(limits.max_in_flight_per_session, Some(3));
    assert_eq!(limits.max_in_flight_per_client, Some(4));
    assert_eq!(
        limits.session_idle_timeout,
        Some(Some(std::time::Duration::from_secs(60)))
    );
    assert_eq!(limits.max_request_bytes, Some(65536));
    assert_eq!(config.gateway().separator(), "__");

    let never = load(r#"{"mcpServers": {}, "mcpManager": {"sessionIdleTimeoutMs": 0}}"#);
    assert_eq!(never.gateway().limits().session_idle_timeout, Some(None));
    assert_eq!(
        load(r#"{"mcpServers": {}}"#).gateway().limits(),
        &GatewayLimits::default()
    );
    assert_one_error(
        r#"{"mcpServers": {}, "mcpManager": {"maxSessions": 0}}"#,
        "mcpManager.maxSessions: must be at least 1, found 0",
    );
    assert_one_error(
        r#"{"mcpServers": {}, "mcpManager": {"maxRequestBytes": 10}}"#,
        "mcpManager.maxRequestBytes: must be at least 1024, found 10",
    );
    assert_one_error(
        r#"{"mcpServers": {}, "mcpManager": {"maxInFlightPerClient": "5"}}"#,
        "mcpManager.maxInFlightPerClient: expected a whole number, found a string",
    );
}

#[test]
fn an_empty_server_map_is_a_warning() {
    assert_eq!(
        warnings(r#"{"mcpServers": {}}"#),
        ["mcpServers: no servers are configured"]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = config_error(&servers(
        r#""a": {"command": 1, "instances": 0}, "b": {}, "c": {"url": "ftp://x", "zzz": 1}"#,
    ));
    let paths: Vec<&str> = err.issues().iter().map(ConfigIssue::path).collect();
    assert_eq!(
        paths,
        [
            "mcpServers.a.command",
            "mcpServers.a.instances",
            "mcpServers.b",
            "mcpServers.c.url"
        ]
    );
    let warnings: Vec<&str> = err.warnings().iter().map(ConfigIssue::path).collect();
    assert_eq!(warnings, ["mcpServers.c.zzz"]);
    assert_eq!(err.file(), None);
}

#[test]
fn load_reads_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = dir.join("good.json");
    fs::write(&good, servers(r#""a": {"command": "x"}"#)).unwrap();
    let config = ManagerConfig::load(&good).unwrap();
    assert_eq!(config.source(), Some(good.as_path()));

    let bad = dir.join("bad.json");
    fs::write(&bad, b"{\"mcpServers\": {\"a\": {\"command\": \"\xff\"}}}").unwrap();
    let err = ManagerConfig::load(&bad).unwrap_err();
    let issue = &err.config().unwrap().issues()[0];
    assert_eq!(issue.message(), "the file is not valid UTF-8 (at byte 34)");
    assert_eq!(err.config().unwrap().file(), Some(bad.as_path()));

    let missing = ManagerConfig::load(dir.join("missing.json")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Io);
}

/// Arbitrary JSON values, to put where a server entry belongs.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "(\\$\\{?[A-Z]{0,3}\\}?|[a-z:/.]){0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let keys = prop_oneof![
            Just("command".to_owned()),
            Just("url".to_owned()),
            Just("args".to_owned()),
            Just("env".to_owned()),
            Just("type".to_owned()),
            Just("restart".to_owned()),
            Just("tools".to_owned()),
            Just("instances".to_owned()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = ManagerConfig::from_json_str(&text, None, &env);
    }

    #[test]
    fn arbitrary_entries_never_panic_and_errors_say_something(entry in json_value()) {
        let text = serde_json::json!({"mcpServers": {"s": entry}}).to_string();
        if let Err(err) = ManagerConfig::from_json_str(&text, None, &env) {
            let config = err.config().unwrap();
            prop_assert!(!config.issues().is_empty());
            prop_assert!(config.issues().iter().all(|i| !i.message().is_empty()));
        }
    }
}

#[test]
fn protocol_mode() {
    let config = load(&servers(
        r#""a": {"command": "x"}, "b": {"url": "http://h/mcp", "protocol": "stateless"}, "c": {"command": "x", "protocol": "auto"}"#,
    ));
    let mode = |name: &str| config.server(name).unwrap().protocol();
    assert_eq!(mode("a"), ProtocolMode::Stateful);
    assert_eq!(mode("b"), ProtocolMode::Stateless);
    assert_eq!(mode("c"), ProtocolMode::Auto);
    assert_eq!(ProtocolMode::Auto.name(), "auto");
    assert_entry_errors(&[
        (
            r#"{"command": "x", "protocol": "2026"}"#,
            "mcpServers.a.protocol: unknown protocol \"2026\"",
        ),
        (
            r#"{"command": "x", "protocol": 1}"#,
            "mcpServers.a.protocol: expected a string, found a number",
        ),
    ]);
}

#[test]
fn session_mode() {
    let config = load(&servers(
        r#""a": {"command": "x"}, "b": {"command": "x", "sessions": "per-client"}, "c": {"url": "http://h/mcp", "sessions": "shared"}"#,
    ));
    let mode = |name: &str| config.server(name).unwrap().sessions();
    assert_eq!(mode("a"), SessionMode::Shared);
    assert_eq!(mode("b"), SessionMode::PerClient);
    assert_eq!(mode("c"), SessionMode::Shared);
    assert_eq!(SessionMode::PerClient.name(), "per-client");
    assert_entry_errors(&[
        (
            r#"{"command": "x", "sessions": "per-user"}"#,
            "mcpServers.a.sessions: unknown session mode \"per-user\"",
        ),
        (
            r#"{"command": "x", "sessions": true}"#,
            "mcpServers.a.sessions: expected a string, found a boolean",
        ),
    ]);
}

#[test]
fn resilience_settings() {
    let server = |entry: &str| {
        let config = load(&format!(r#"{{"mcpServers": {{"s": {entry}}}}}"#));
        *config.servers()[0].resilience()
    };
    let default = server(r#"{"command": "x"}"#);
    assert_eq!(default, Resilience::default());
    assert_eq!(default.max_queued(), 64);
    assert_eq!(default.breaker(), Some(BreakerConfig::default()));
    assert_eq!(default.retries().attempts(), 1);
    assert_eq!(default.total_timeout(), None);

    let set = server(
        r#"{"command": "x", "resilience": {"maxQueued": 0, "totalTimeoutMs": 5000,
            "circuitBreaker": {"failures": 2, "openMs": 1000, "halfOpenRequests": 3},
            "retries": {"attempts": 3, "backoffMs": 20}}}"#,
    );
    assert_eq!(set.max_queued(), 0);
    assert_eq!(set.total_timeout(), Some(Duration::from_secs(5)));
    assert_eq!(
        set.breaker(),
        Some(BreakerConfig::new(2, Duration::from_secs(1), 3))
    );
    assert_eq!(
        set.retries(),
        RetryConfig::new(3, Duration::from_millis(20))
    );

    let off = server(r#"{"command": "x", "resilience": {"circuitBreaker": false, "retries": 0}}"#);
    assert_eq!(off.breaker(), None);
    assert_eq!(off.retries().attempts(), 0);

    assert_one_error(
        r#"{"mcpServers": {"s": {"command": "x", "resilience": {"retries": 11}}}}"#,
        "mcpServers.s.resilience.retries: must be at most 10, found 11",
    );
    assert_one_error(
        r#"{"mcpServers": {"s": {"command": "x", "resilience": {"circuitBreaker": {"failures": 0}}}}}"#,
        "mcpServers.s.resilience.circuitBreaker.failures: must be at least 1, found 0",
    );
    let warned =
        warnings(r#"{"mcpServers": {"s": {"command": "x", "resilience": {"breaker": false}}}}"#);
    assert!(
        warned.iter().any(|w| w.contains("circuitBreaker")),
        "{warned:?}"
    );
}

#[test]
fn drain_timeout() {
    let config = load(r#"{"mcpServers": {}, "mcpManager": {"drainTimeoutMs": 2500}}"#);
    assert_eq!(
        config.gateway().limits().drain_timeout,
        Some(Duration::from_millis(2500))
    );
}

#[test]
fn a_config_from_no_file_names_no_file_and_has_its_folder() {
    let text = r#"{"mcpServers": {"s": {"command": "${workspaceFolder}/run"}}}"#;
    let config = ManagerConfig::from_json_str_in(text, Path::new("/home/me/proj"), &env).unwrap();
    assert_eq!(config.source(), None);
    match config.servers()[0].transport() {
        TransportConfig::Stdio(stdio) => assert_eq!(stdio.command, "/home/me/proj/run"),
        other => panic!("not stdio: {other:?}"),
    }
    let err = ManagerConfig::from_json_str_in(
        r#"{"mcpServers": {"s": {"command": 1}}}"#,
        Path::new("/home/me/proj"),
        &env,
    )
    .unwrap_err();
    let config = err.config().unwrap();
    assert_eq!(config.file(), None);
    let message = err.to_string();
    assert!(message.contains("mcpServers.s.command"), "{message}");
    assert!(!message.contains(".json"), "{message}");
}

#[test]
fn warnings_of_a_later_check_join_the_others_in_file_order() {
    let config = load(
        r#"{"mcpServers": {"kid": {"command": "x", "timeoutMS": 1},
                           "good": {"command": "x"}, "late": {"command": "x", "tag": []}},
            "extra": 1}"#,
    );
    let config = config
        .check_servers(|server, warnings| {
            if server.id().as_str() != "late" {
                warnings.push(unknown_setting(server, "plugin-only", &[]));
            }
            Vec::new()
        })
        .unwrap();
    let paths: Vec<&str> = config.warnings().iter().map(ConfigIssue::path).collect();
    assert_eq!(
        paths,
        [
            "extra",
            "mcpServers.kid.timeoutMS",
            "mcpServers.kid.plugin-only",
            "mcpServers.good.plugin-only",
            "mcpServers.late.tag",
        ]
    );
}

#[test]
fn a_unix_url_is_a_frame_socket() {
    for entry in [
        r#"{"url": "unix:/run/mcp.sock"}"#,
        r#"{"url": "unix:///run/mcp.sock"}"#,
        r#"{"url": "UNIX:/run/mcp.sock"}"#,
        r#"{"type": "frame-socket", "url": "unix:/run/mcp.sock"}"#,
    ] {
        let url = entry;
        let config = load(&servers(&format!(r#""s": {entry}"#)));
        let server = config.server("s").unwrap();
        let TransportConfig::FrameSocket(socket) = server.transport() else {
            panic!("{url}: {:?}", server.transport());
        };
        assert_eq!(socket.path(), Path::new("/run/mcp.sock"), "{url}");
        assert_eq!(server.transport().name(), "frame-socket");
    }
    let config = load(&servers(r#""s": {"url": "unix:${HOME}/mcp.sock"}"#));
    let TransportConfig::FrameSocket(socket) = config.server("s").unwrap().transport() else {
        panic!("a frame socket");
    };
    assert_eq!(socket.path(), Path::new("/home/me/mcp.sock"));
    assert_entry_errors(&[
        (
            r#"{"url": "unix:mcp.sock"}"#,
            "mcpServers.a.url: a frame socket's path must be absolute",
        ),
        (
            r#"{"type": "http", "url": "unix:/run/mcp.sock"}"#,
            "mcpServers.a.type: a `unix:` URL reaches a frame socket, not an `http` server",
        ),
        (
            r#"{"type": "frame-socket", "url": "http://h/mcp"}"#,
            "mcpServers.a.url: a frame socket's `url` is `unix:` and its path",
        ),
    ]);
}

#[test]
fn the_plugins_dir_is_read_expanded_and_taken_from_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    fs::write(
        &path,
        r#"{"mcpServers": {}, "mcpManager": {"pluginsDir": "plugins"}}"#,
    )
    .unwrap();
    let config = ManagerConfig::load(&path).unwrap();
    assert_eq!(config.gateway().plugins_dir(), Some(Path::new("plugins")));
    assert_eq!(config.plugins_dir(), Some(dir.path().join("plugins")));
    let env = |key: &str| (key == "BASE").then(|| "/opt/mcp".to_owned());
    let config = ManagerConfig::from_json_str(
        r#"{"mcpServers": {}, "mcpManager": {"pluginsDir": "${BASE}/plugins"}}"#,
        None,
        &env,
    )
    .unwrap();
    assert_eq!(
        config.plugins_dir(),
        Some(PathBuf::from("/opt/mcp/plugins"))
    );
    let error = ManagerConfig::from_json_str(
        r#"{"mcpServers": {}, "mcpManager": {"pluginsDir": ""}}"#,
        None,
        &env,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("mcpManager.pluginsDir"),
        "{error}"
    );
}

#[test]
fn secrets_from_references_are_shown_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("key"), "f1le-secret\n").unwrap();
    let path = tmp.path().join("mcp.json");
    let text = servers(
        r#""a": {"command": "x", "args": ["--token", "${TOKEN}", "--key=${file:key}", "plain", "$${literal}"], "env": {"K": "${file:key}"}},
           "b": {"url": "https://example.invalid/mcp?key=${file:key}", "headers": {"Authorization": "Bearer ${TOKEN}"}}"#,
    );
    let config = ManagerConfig::from_json_str(&text, Some(&path), &env).unwrap();
    let a = stdio(&config, "a");
    assert_eq!(
        a.args(),
        ["--token", "t0k", "--key=f1le-secret", "plain", "${literal}"]
    );
    assert_eq!(
        a.shown_args(),
        [
            "--token",
            "${TOKEN}",
            "--key=${file:key}",
            "plain",
            "$${literal}"
        ]
    );
    assert_eq!(a.env()["K"], "f1le-secret");
    let Some(TransportConfig::StreamableHttp(b)) = config.server("b").map(ServerConfig::transport)
    else {
        panic!("b is not HTTP");
    };
    assert_eq!(
        b.url().as_str(),
        "https://example.invalid/mcp?key=f1le-secret"
    );
    assert_eq!(b.shown_url(), "https://example.invalid/mcp?key=${file:key}");
    // Nothing that prints a config prints a secret.
    let shown = format!("{config:?}");
    for secret in ["t0k", "f1le-secret"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[test]
fn pinning_modes_and_the_pins_file() {
    let config = load(&servers(
        r#""a": {"command": "x"}, "b": {"command": "x", "pinning": "enforce"}, "c": {"url": "http://h/mcp", "pinning": "off"}"#,
    ));
    let mode = |name: &str| config.server(name).unwrap().pinning();
    assert_eq!(mode("a"), None);
    assert_eq!(mode("b"), Some(PinMode::Enforce));
    assert_eq!(mode("c"), Some(PinMode::Off));
    assert_eq!(config.gateway().pinning(), PinMode::Warn);
    assert_eq!(PinMode::Enforce.name(), "enforce");
    assert_entry_errors(&[
        (
            r#"{"command": "x", "pinning": "strict"}"#,
            "mcpServers.a.pinning: unknown pinning mode \"strict\"",
        ),
        (
            r#"{"command": "x", "pinning": true}"#,
            "mcpServers.a.pinning: expected a string, found a boolean",
        ),
    ]);
    // A plugin's entry keeps `pinning` for mcp-manager, not the plugin.
    let config = load(r#"{"mcpServers": {"p": {"type": "mine", "pinning": "off", "depth": 2}}}"#);
    assert_eq!(config.server("p").unwrap().pinning(), Some(PinMode::Off));
    let TransportConfig::Plugin(plugin) = config.server("p").unwrap().transport() else {
        panic!("a plugin entry");
    };
    assert!(
        plugin.settings.get("pinning").is_none(),
        "{:?}",
        plugin.settings
    );

    let config = load(r#"{"mcpServers": {}, "mcpManager": {"pinning": "enforce"}}"#);
    assert_eq!(config.gateway().pinning(), PinMode::Enforce);
    assert_one_error(
        r#"{"mcpServers": {}, "mcpManager": {"pinning": "warm"}}"#,
        "mcpManager.pinning: unknown pinning mode \"warm\" (hint: use \"warn\"",
    );

    // The file: relative to the config's folder, else the data directory.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    fs::write(
        &path,
        r#"{"mcpServers": {}, "mcpManager": {"pinsFile": "state/pins.json"}}"#,
    )
    .unwrap();
    let config = ManagerConfig::load(&path).unwrap();
    assert_eq!(
        config.gateway().pins_file(),
        Some(Path::new("state/pins.json"))
    );
    assert_eq!(config.pins_file(), Some(dir.path().join("state/pins.json")));
    let config = load(r#"{"mcpServers": {}}"#);
    assert_eq!(
        config.pins_file(),
        crate::user_data_dir().map(|dir| dir.join("pins.json"))
    );
}
