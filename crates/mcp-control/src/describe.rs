//! How servers are doing, and which server types there are, as JSON: for
//! the admin API, the command line and the Python package alike.

use mcp_core::ServerConfig;
use mcp_runtime::{McpRuntime, MetricsSnapshot, ServerState, ServerStatus};
use serde_json::{Value, json};

use crate::actor::{Control, FailedStart};

/// Every server of `runtime` as [`describe`] shows it, with its config
/// when `control` runs it, and the servers of `control`'s config that did
/// not start ([`describe_failed`]); sorted by name.
///
/// # Errors
///
/// When the runtime has stopped.
pub async fn describe_all(
    runtime: &McpRuntime,
    control: Option<&Control>,
) -> mcp_runtime::Result<Vec<Value>> {
    let list = runtime.list().await?;
    let metrics = runtime.metrics().await?;
    let (configs, failed) = match control {
        Some(control) => (control.configs().await, control.failed().await),
        None => (Vec::new(), Vec::new()),
    };
    let mut described: Vec<Value> = list
        .iter()
        .map(|status| {
            let config = configs.iter().find(|c| c.id() == &status.id);
            describe(status, &metrics, config)
        })
        .collect();
    described.extend(
        failed
            .iter()
            .filter(|f| !list.iter().any(|status| &status.id == f.config.id()))
            .map(describe_failed),
    );
    described.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(described)
}

/// A server of the config that did not start, in the shape of
/// [`describe`]: state `failed`, health `down`, and why in `error`.
#[must_use]
pub fn describe_failed(failed: &FailedStart) -> Value {
    let config = &failed.config;
    json!({
        "name": config.id().as_str(),
        "type": config.transport().name(),
        "namespace": config.namespace(),
        "priority": config.priority(),
        "required": config.is_required(),
        "transport": Value::Null,
        "state": "failed",
        "health": "down",
        "error": failed.reason,
        "instances": [],
        "inFlight": 0,
        "queued": 0,
        "breaker": Value::Null,
        "protocolVersion": Value::Null,
        "bothGenerations": false,
        "sessions": config.sessions().name(),
        "clientInstances": 0,
        "serverInfo": Value::Null,
        "requests": 0,
        "errors": 0,
        "timeouts": 0,
        "restarts": 0,
        "recentErrors": [],
    })
}

/// `healthy` (every instance running, circuit closed), `degraded` (some
/// running, or the circuit not closed) or `down` (none running).
#[must_use]
pub fn health(status: &ServerStatus) -> &'static str {
    let running = status
        .instances
        .iter()
        .filter(|s| **s == ServerState::Running)
        .count();
    let closed = status
        .breaker
        .is_none_or(|b| b == mcp_runtime::observe::BreakerState::Closed);
    match running {
        0 => "down",
        n if n == status.instances.len() && closed => "healthy",
        _ => "degraded",
    }
}

/// How server `status` is doing, as the admin API and the Python package
/// show it: state, health, instances, requests in flight and queued,
/// breaker, protocol (and whether the server serves both generations),
/// the client sessions with an instance of their own, counters from
/// `metrics`, recent errors; with its `config`, also its transport type,
/// namespace, priority and session mode, and whether readiness waits for
/// it (without, it does).
#[must_use]
pub fn describe(
    status: &ServerStatus,
    metrics: &MetricsSnapshot,
    config: Option<&ServerConfig>,
) -> Value {
    let counters = metrics
        .servers
        .iter()
        .find(|m| m.id.as_ref() == Some(&status.id));
    let instances: Vec<Value> = status
        .instances
        .iter()
        .map(|state| match state {
            ServerState::Restarting { attempt, reason } => {
                json!({"state": state.name(), "attempt": attempt, "reason": reason})
            }
            ServerState::Failed { reason } => json!({"state": state.name(), "reason": reason}),
            _ => json!({"state": state.name()}),
        })
        .collect();
    let state = status
        .instances
        .iter()
        .find(|s| **s == ServerState::Running)
        .or_else(|| status.instances.first())
        .map_or("stopped", ServerState::name);
    json!({
        "name": status.id.as_str(),
        "type": config.map(|c| c.transport().name()),
        "error": Value::Null,
        "namespace": config.map(ServerConfig::namespace),
        "priority": config.map(ServerConfig::priority),
        "required": config.is_none_or(ServerConfig::is_required),
        "transport": status.transport,
        "state": state,
        "health": health(status),
        "instances": instances,
        "inFlight": status.in_flight,
        "queued": status.queued,
        "breaker": status.breaker.map(|b| b.name()),
        "protocolVersion": status.session.as_ref().map(|s| s.protocol_version.as_str()),
        "bothGenerations": status.session.as_ref().is_some_and(|s| s.dual),
        "sessions": config.map(|c| c.sessions().name()),
        "clientInstances": status.client_instances,
        "serverInfo": status.session.as_ref().map(|s| json!({
            "name": s.server_info.name,
            "version": s.server_info.version,
        })),
        "requests": counters.map_or(0, |c| c.requests),
        "errors": counters.map_or(0, |c| c.errors),
        "timeouts": counters.map_or(0, |c| c.timeouts),
        "restarts": counters.map_or(0, |c| c.restarts),
        "recentErrors": status.recent_errors.iter().map(|e| json!({
            "atMs": e.at_ms,
            "message": e.message,
        })).collect::<Vec<_>>(),
    })
}

/// One server type as `mcp-manager plugins`, the admin API
/// (`/api/plugins`) and Python's `plugins()` show it: `type`, `aliases`,
/// `kind` (`built-in`, `command`, `wasm`), `plugin` and `version` (a
/// built-in type's version is this manager's), `api`, `capabilities`,
/// `grants`, `description`, `manifest` and `settingsSchema`.
#[must_use]
pub fn describe_plugin(info: &mcp_plugin_api::PluginInfo) -> Value {
    let (plugin, version, manifest) = match &info.origin {
        mcp_plugin_api::PluginOrigin::Loaded {
            plugin,
            version,
            manifest,
            ..
        } => (
            Some(plugin.as_str()),
            version.clone(),
            Some(manifest.display().to_string()),
        ),
        _ => (None, env!("CARGO_PKG_VERSION").to_owned(), None),
    };
    json!({
        "type": info.kind,
        "aliases": info.aliases,
        "kind": info.origin.form(),
        "plugin": plugin,
        "version": version,
        "api": info.api_version.to_string(),
        "capabilities": info.capabilities.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "grants": info.grants,
        "description": info.description,
        "manifest": manifest,
        "settingsSchema": info.settings_schema,
    })
}
