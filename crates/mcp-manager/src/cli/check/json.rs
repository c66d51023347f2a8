//! The machine-readable report of `check --format json`: one object with
//! `valid`, `file`, `errors`, `warnings`, `pluginProblems` (the plugins of
//! the plugins directory that could not be loaded: `plugin`, `path`,
//! `message`) and, when valid, `separator`, `pinsFile` (where tool pins
//! are kept) and `servers` (each with its `pinning` mode).

use std::error::Error as _;
use std::io::{self, Write};
use std::path::Path;

use mcp_core::config::{PinMode, ServerConfig, ToolPattern, TransportConfig};
use mcp_core::{ConfigIssue, Error, ManagerConfig};
use serde_json::{Map, Value, json};

pub(super) fn report(
    file: &Path,
    loaded: &Result<ManagerConfig, Error>,
    plugin_problems: &[mcp_plugin_host::Error],
    out: &mut dyn Write,
) -> io::Result<()> {
    let file = file.display().to_string();
    let mut document = match loaded {
        Ok(config) => json!({
            "valid": true,
            "file": file,
            "errors": [],
            "warnings": issues(config.warnings()),
            "separator": config.gateway().separator(),
            "pinsFile": config.pins_file().map(|file| file.display().to_string()),
            "servers": config
                .servers()
                .iter()
                .map(|s| server(s, config.gateway().pinning()))
                .collect::<Vec<_>>(),
        }),
        Err(error) => {
            let (errors, warnings) = match error.config() {
                Some(config) => (issues(config.issues()), issues(config.warnings())),
                None => {
                    let reason = error
                        .source()
                        .map_or_else(|| error.to_string(), ToString::to_string);
                    let message = format!("cannot read the file: {reason}");
                    (vec![json!({"path": "", "message": message})], Vec::new())
                }
            };
            json!({"valid": false, "file": file, "errors": errors, "warnings": warnings})
        }
    };
    let problems: Vec<Value> = plugin_problems
        .iter()
        .map(|p| {
            json!({
                "plugin": p.plugin(),
                "path": p.path().display().to_string(),
                "message": p.message(),
            })
        })
        .collect();
    if let Some(object) = document.as_object_mut() {
        object.insert("pluginProblems".into(), problems.into());
    }
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

fn issues(list: &[ConfigIssue]) -> Vec<Value> {
    list.iter().map(issue).collect()
}

fn issue(issue: &ConfigIssue) -> Value {
    let mut object = Map::new();
    object.insert("path".into(), issue.path().into());
    object.insert("message".into(), issue.message().into());
    if let Some(hint) = issue.hint() {
        object.insert("hint".into(), hint.into());
    }
    if let Some(position) = issue.position() {
        object.insert("line".into(), position.line.into());
        object.insert("column".into(), position.column.into());
    }
    Value::Object(object)
}

fn server(server: &ServerConfig, pinning: PinMode) -> Value {
    let mut object = json!({
        "id": server.id().as_str(),
        "enabled": server.is_enabled(),
        "transport": server.transport().name(),
        "namespace": server.namespace(),
        "instances": server.instances().get(),
        "tags": server.tags(),
        "priority": server.priority(),
        "timeoutMs": millis(server.timeouts().request()),
        "startupTimeoutMs": millis(server.timeouts().startup()),
        "restart": {
            "policy": server.restart().policy().name(),
            "maxRestarts": server.restart().max_restarts(),
            "initialBackoffMs": millis(server.restart().initial_backoff()),
            "maxBackoffMs": millis(server.restart().max_backoff()),
        },
        "maxConcurrency": server.max_concurrency().map(|n| n.get()),
        "tools": {
            "allow": server.tools().allow().map(patterns),
            "deny": patterns(server.tools().deny()),
        },
        "pinning": server.pinning().unwrap_or(pinning).name(),
        "sandbox": server.sandbox().map(|sandbox| json!({
            "read": sandbox.filesystem().map(|f| shown_paths(&f.read)),
            "write": sandbox.filesystem().map(|f| shown_paths(&f.write)),
            "network": sandbox.network(),
            "memoryMb": sandbox.memory_bytes().map(|bytes| bytes >> 20),
            "cpuSeconds": sandbox.cpu_seconds(),
            "openFiles": sandbox.open_files(),
            "processes": sandbox.processes(),
        })),
    });
    if let Value::Object(map) = &mut object {
        map.extend(transport(server.transport()));
    }
    object
}

/// The transport's own fields. Env values and header values are left out,
/// and arguments and URLs that took a value from a `${...}` reference are
/// shown as written: they are often secrets.
fn transport(transport: &TransportConfig) -> Map<String, Value> {
    let value = match transport {
        TransportConfig::Stdio(stdio) => json!({
            "command": stdio.command(),
            "args": stdio.shown_args(),
            "env": stdio.env().keys().collect::<Vec<_>>(),
            "cwd": stdio.cwd().map(|cwd| cwd.display().to_string()),
        }),
        TransportConfig::StreamableHttp(http) | TransportConfig::Sse(http) => json!({
            "url": http.shown_url(),
            "headers": http.headers().keys().collect::<Vec<_>>(),
        }),
        _ => json!({}),
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn patterns(list: &[ToolPattern]) -> Vec<&str> {
    list.iter().map(ToolPattern::as_str).collect()
}

fn shown_paths(paths: &[std::path::PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
