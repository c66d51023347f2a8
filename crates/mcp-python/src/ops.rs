//! The operations a [`crate::Core`] runs, named by a string with JSON
//! arguments: start, request, deploy, undeploy, scale, restart, servers,
//! health, metrics, close.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mcp_control::{self as control, Control, Report};
use mcp_core::config::ProcessEnv;
use mcp_core::state::Deployed;
use mcp_core::{ManagerConfig, McpServer, RequestContext, ServerId};
use mcp_gateway::Gateway;
use mcp_observability::metrics::Metrics;
use mcp_plugin_api::PluginRegistry;
use mcp_protocol::raw::Raw;
use mcp_protocol::{Request, RequestId};
use mcp_runtime::{CallOptions, McpRuntime, Server};
use serde_json::{Value, json};

use crate::caller::{Caller, CallerPeer, PROGRESS_TOKEN};
use crate::failure::{Failure, Outcome};

/// The servers behind the gateway, once started.
#[derive(Clone)]
pub(crate) struct Started {
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) control: Control,
}

/// What a [`crate::Core`] owns.
pub(crate) struct Inner {
    pub(crate) runtime: McpRuntime,
    /// The server types this manager can start: the built-in ones.
    pub(crate) registry: Arc<PluginRegistry>,
    pub(crate) metrics: Metrics,
    pub(crate) started: Mutex<Option<Started>>,
    pub(crate) closed: AtomicBool,
    /// The session key of this manager's requests through the gateway.
    pub(crate) session: u64,
    pub(crate) next_id: AtomicU64,
    /// Requests answered, and their summed time in microseconds.
    pub(crate) answered: AtomicU64,
    pub(crate) answered_micros: AtomicU64,
}

pub(crate) fn text_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, Failure> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::invalid(format!("`{key}` must be a string")))
}

pub(crate) fn server_id(name: &str) -> Result<ServerId, Failure> {
    ServerId::new(name).map_err(|_| {
        Failure::new("not_found", format!("no server `{name}` is deployed")).about(name)
    })
}

/// Server `name`, deployed; a failure naming it when there is none.
async fn deployed(inner: &Inner, name: &str) -> Result<Server<Deployed>, Failure> {
    let id = server_id(name)?;
    inner
        .runtime
        .server(&id)
        .await
        .map_err(|e| Failure::from(e).about(name))
}

pub(crate) fn to_text(value: &Value) -> Outcome {
    Ok(value.to_string())
}

pub(crate) async fn dispatch(inner: &Arc<Inner>, op: &str, args: Value, caller: Caller) -> Outcome {
    if inner.closed.load(Ordering::Acquire) && op != "close" {
        return Err(Failure::new("closed", "the manager is closed"));
    }
    match op {
        "start" => start(inner, &args).await,
        "request" => {
            let started = Instant::now();
            let outcome = request(inner, &args, caller).await;
            inner.answered.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            inner.answered_micros.fetch_add(micros, Ordering::Relaxed);
            outcome
        }
        "deploy" => {
            let name = text_arg(&args, "name")?;
            let config = control::server_entry(
                &inner.registry,
                name,
                args.get("config").unwrap_or(&Value::Null),
            )?;
            running(inner)?.control.deploy(config).await?;
            describe(inner, name).await
        }
        "undeploy" => {
            let name = text_arg(&args, "name")?;
            let undeployed = running(inner)?.control.undeploy(server_id(name)?).await;
            undeployed.map_err(|e| Failure::from(e).about(name))?;
            to_text(&Value::Null)
        }
        "scale" => {
            let name = text_arg(&args, "name")?;
            let instances = args
                .get("instances")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .and_then(NonZeroU32::new)
                .filter(|n| n.get() <= 64)
                .ok_or_else(|| Failure::invalid("`instances` must be a number from 1 to 64"))?;
            deployed(inner, name).await?.scale(instances).await?;
            describe(inner, name).await
        }
        "restart" => {
            let name = text_arg(&args, "name")?;
            deployed(inner, name).await?.restart().await?;
            describe(inner, name).await
        }
        "servers" => to_text(&Value::Array(described(inner).await?)),
        "plugins" => plugins(inner, &args),
        "health" => health(inner).await,
        "metrics" => to_text(&Value::String(inner.metrics.render())),
        "close" => {
            if !inner.closed.swap(true, Ordering::AcqRel) {
                let started = inner
                    .started
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                drop(started);
                inner.runtime.shutdown().await;
            }
            to_text(&Value::Null)
        }
        other => Err(Failure::invalid(format!("no operation `{other}`"))),
    }
}

/// The started servers, or why there are none.
pub(crate) fn running(inner: &Inner) -> Result<Started, Failure> {
    inner
        .started
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .ok_or_else(|| Failure::new("closed", "the manager has not started"))
}

/// `{"path": FILE}` or `{"config": {...}, "baseDir": DIR}`: loads and
/// checks the config, starts its servers, and reports each, with the
/// config's warnings.
pub(crate) async fn start(inner: &Arc<Inner>, args: &Value) -> Outcome {
    let config = config_of(args)?;
    let plugins = with_plugins(inner, args, Some(&config));
    let registry = Arc::new(plugins.registry);
    let config = control::check_plugins(&registry, config)
        .map_err(|e| Failure::invalid(config_message(&e)))?;
    if running(inner).is_ok() {
        return Err(Failure::new(
            "conflict",
            "start() was called already: this manager is running (close() it, or make a new Manager)",
        ));
    }
    let policies = control::policies(&config).map_err(|e| Failure::invalid(e.to_string()))?;
    let mut report = Vec::new();
    let mut servers = Vec::new();
    let mut failed = Vec::new();
    for started in control::start_servers(&inner.runtime, &registry, config.servers().iter()).await
    {
        let name = started.config.id().as_str();
        match started.server {
            None => report.push(json!({"name": name, "state": "disabled"})),
            Some(Err(reason)) => {
                report.push(json!({"name": name, "state": "failed", "error": reason}));
                failed.push(control::FailedStart {
                    config: started.config.clone(),
                    reason,
                });
            }
            Some(Ok(server)) => {
                report.push(json!({"name": name, "state": "running"}));
                servers.push((started.config.clone(), server));
            }
        }
    }
    if servers.is_empty() && !failed.is_empty() {
        return Err(none_started(args, &failed));
    }
    let log: Report = Arc::new(|line: &str| tracing::info!("{line}"));
    let (control, gateway) = Control::start(
        inner.runtime.clone(),
        registry,
        config.gateway().separator(),
        policies,
        servers,
        failed,
        log,
    );
    *inner.started.lock().unwrap_or_else(PoisonError::into_inner) =
        Some(Started { gateway, control });
    let mut warnings: Vec<Value> = config.warnings().iter().map(issue).collect();
    warnings.extend(plugins.problems.iter().map(|problem| {
        json!({"path": problem.path().display().to_string(), "message": problem.to_string()})
    }));
    to_text(&json!({"servers": report, "warnings": warnings}))
}

/// The registry of this manager's plugins and those of the plugins
/// directory: `args`' `pluginsDir`, else the config's, else the default.
fn with_plugins(
    inner: &Inner,
    args: &Value,
    config: Option<&ManagerConfig>,
) -> control::WithPlugins {
    let dir = args
        .get("pluginsDir")
        .and_then(Value::as_str)
        .map(Path::new);
    control::with_plugins(&inner.registry, dir, config)
}

/// Every server type: those new servers of the running manager can be
/// deployed with, or (before `start()`) those its config would have.
pub(crate) fn plugins(inner: &Inner, args: &Value) -> Outcome {
    let registry = match running(inner) {
        Ok(started) => started.control.registry(),
        Err(_) => Arc::new(with_plugins(inner, args, config_of(args).ok().as_ref()).registry),
    };
    let types: Vec<Value> = registry
        .plugins()
        .iter()
        .map(control::describe_plugin)
        .collect();
    to_text(&Value::Array(types))
}

/// The config `args` give: `{"path": FILE}` or `{"config": {...},
/// "baseDir": DIR}`, read but not yet checked against the plugins.
fn config_of(args: &Value) -> Result<ManagerConfig, Failure> {
    let loaded = match (args.get("path").and_then(Value::as_str), args.get("config")) {
        (Some(path), _) => ManagerConfig::load(path),
        (None, Some(config)) => {
            let text = config.to_string();
            // `${workspaceFolder}` is `baseDir`, as a config file's folder.
            match args.get("baseDir").and_then(Value::as_str) {
                Some(dir) => ManagerConfig::from_json_str_in(&text, Path::new(dir), &ProcessEnv),
                None => ManagerConfig::from_json_str(&text, None, &ProcessEnv),
            }
        }
        (None, None) => return Err(Failure::invalid("give a config: a path or a dict")),
    };
    loaded.map_err(|e| Failure::invalid(config_message(&e)))
}

/// The failure of a start where no server started and some failed (the
/// others disabled): the gateway's address that does not answer for a
/// connected manager (`args` has `connect`), else every server's reason.
fn none_started(args: &Value, failed: &[control::FailedStart]) -> Failure {
    if let (Some(url), [gateway]) = (args.get("connect").and_then(Value::as_str), failed) {
        return Failure::new(
            "unavailable",
            format!("no MCP server answers at {url}: {}", gateway.reason),
        );
    }
    let mut message = String::from("no server started:");
    for server in failed {
        message.push_str(&format!("\n  {}: {}", server.config.id(), server.reason));
    }
    Failure::new("unavailable", message)
}

/// What is wrong with a config, every problem with its hint, and for a
/// file that cannot be read, why (the OS's reason).
fn config_message(error: &mcp_core::Error) -> String {
    let Some(config) = error.config() else {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        return message;
    };
    let count = config.issues().len();
    let mut message = format!(
        "invalid config ({count} problem{})",
        if count == 1 { "" } else { "s" }
    );
    for problem in config.issues() {
        message.push_str(&format!("\n  {}", problem.display_in(config.file())));
        if let Some(hint) = problem.hint() {
            message.push_str(&format!(" ({hint})"));
        }
    }
    message
}

/// A config warning as the `start()` result lists it.
fn issue(warning: &mcp_core::ConfigIssue) -> Value {
    json!({
        "path": warning.path(),
        "message": warning.message(),
        "hint": warning.hint(),
    })
}

/// `{"server": NAME or null, "method": M, "params": P, "timeout": SECONDS}`:
/// a request to one server directly, or (no server) to the gateway, which
/// routes it by tool, prompt or resource name.
pub(crate) async fn request(inner: &Arc<Inner>, args: &Value, caller: Caller) -> Outcome {
    let method = text_arg(args, "method")?.to_owned();
    let mut params = match args.get("params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => return Err(Failure::invalid("`params` must be a dict or None")),
    };
    if caller.progress.is_some() {
        let meta = params
            .get_or_insert_with(serde_json::Map::new)
            .entry("_meta")
            .or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("progressToken".to_owned(), json!(PROGRESS_TOKEN));
        }
    }
    let params = params.map(|p| Raw::from_value(&p));
    let timeout = match args.get("timeout") {
        None | Some(Value::Null) => None,
        Some(seconds) => Some(
            seconds
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    Failure::invalid("`timeout` must be a positive number of seconds")
                })?,
        ),
    };
    let server = match args.get("server") {
        None | Some(Value::Null) => None,
        Some(name) => Some(
            name.as_str()
                .ok_or_else(|| Failure::invalid("`server` must be a string"))?
                .to_owned(),
        ),
    };
    let progress = caller.progress.clone();
    let context = RequestContext::new(Arc::new(CallerPeer {
        caller,
        session: inner.session,
    }));
    let call = async {
        match server {
            Some(name) => {
                let server = match inner.runtime.server(&server_id(&name)?).await {
                    Ok(server) => server,
                    Err(error) => return Err(not_started(inner, &name, error).await),
                };
                let options = CallOptions {
                    progress,
                    session: Some(inner.session),
                    requester: Some(context),
                    ..CallOptions::default()
                };
                let result = server.request(method, params, options).await?;
                Ok(result.get().to_owned())
            }
            None => {
                let gateway = running(inner)?.gateway;
                let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
                let request = Request {
                    id: RequestId::Number(i64::try_from(id).unwrap_or(i64::MAX)),
                    method: method.into(),
                    params,
                };
                match gateway.handle_request(request, context).await {
                    Ok(result) => Ok(result.get().to_owned()),
                    Err(error) => Err(Failure::from_gateway(&error)),
                }
            }
        }
    };
    match timeout {
        None => call.await,
        Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(Failure::new(
                "timeout",
                format!(
                    "no answer within {} ms (the request was cancelled)",
                    limit.as_millis()
                ),
            ))
        }),
    }
}

/// The failure for a request to server `name` that the runtime could not
/// find (`error`): unavailable, naming why, when it is one of the
/// config's servers that did not start.
async fn not_started(inner: &Inner, name: &str, error: mcp_runtime::Error) -> Failure {
    if *error.kind() != mcp_runtime::ErrorKind::NotFound {
        return error.into();
    }
    let reason = match (running(inner), ServerId::new(name)) {
        (Ok(started), Ok(id)) => started.control.failed_reason(&id).await,
        _ => None,
    };
    match reason {
        Some(reason) => Failure::new(
            "unavailable",
            format!("server `{name}` is unavailable: it failed to start: {reason}"),
        )
        .about(name),
        None => Failure::from(error).about(name),
    }
}

/// Every server as `servers()` shows it.
pub(crate) async fn described(inner: &Inner) -> Result<Vec<Value>, Failure> {
    let control = running(inner).ok().map(|started| started.control);
    Ok(control::describe_all(&inner.runtime, control.as_ref()).await?)
}

/// One server as `servers()` shows it.
pub(crate) async fn describe(inner: &Inner, name: &str) -> Outcome {
    described(inner)
        .await?
        .into_iter()
        .find(|s| s["name"] == name)
        .map_or_else(
            || {
                Err(
                    Failure::new("not_found", format!("no server `{name}` is deployed"))
                        .about(name),
                )
            },
            |server| to_text(&server),
        )
}

/// Every server as `servers()` shows it (each with its `health`), and the
/// mean time of this manager's requests; the package counts them.
pub(crate) async fn health(inner: &Inner) -> Outcome {
    let answered = inner.answered.load(Ordering::Relaxed);
    let mean_ms = if answered == 0 {
        0.0
    } else {
        inner.answered_micros.load(Ordering::Relaxed) as f64 / answered as f64 / 1000.0
    };
    to_text(&json!({
        "servers": described(inner).await?,
        "avgResponseTimeMs": mean_ms,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::{Arc, Mutex};

    use mcp_observability::metrics::Metrics;
    use mcp_runtime::McpRuntime;
    use serde_json::json;

    use super::{Inner, dispatch};
    use crate::caller::Caller;

    #[tokio::test]
    async fn requests_check_their_arguments_before_sending() {
        let inner = Arc::new(Inner {
            runtime: McpRuntime::start(),
            registry: Arc::new(mcp_plugins::default_registry()),
            metrics: Metrics::new(),
            started: Mutex::new(None),
            closed: AtomicBool::new(false),
            session: 1,
            next_id: AtomicU64::new(1),
            answered: AtomicU64::new(0),
            answered_micros: AtomicU64::new(0),
        });
        let bad = [
            json!({"method": 3}),
            json!({"method": "ping", "params": [1]}),
            json!({"method": "ping", "timeout": -1}),
            json!({"method": "ping", "server": 7}),
        ];
        for args in bad {
            let failure = dispatch(&inner, "request", args.clone(), Caller::default())
                .await
                .unwrap_err();
            assert_eq!(failure.kind, "invalid", "{args}");
        }
        let missing = dispatch(
            &inner,
            "request",
            json!({"method": "ping", "server": "x"}),
            Caller::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(missing.kind, "not_found");
        let unknown = dispatch(&inner, "fly", json!({}), Caller::default())
            .await
            .unwrap_err();
        assert_eq!(unknown.kind, "invalid");
        // Through the gateway before `start`: not started.
        let early = dispatch(
            &inner,
            "request",
            json!({"method": "ping"}),
            Caller::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(early.kind, "closed");
        dispatch(&inner, "close", json!({}), Caller::default())
            .await
            .unwrap();
        let closed = dispatch(&inner, "servers", json!({}), Caller::default())
            .await
            .unwrap_err();
        assert_eq!(closed.kind, "closed");
    }
}
