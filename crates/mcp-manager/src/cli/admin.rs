//! The admin listener: Prometheus metrics and a JSON API for operators,
//! on an address of its own (never the MCP port), loopback unless told
//! otherwise.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /metrics` | every metric, OpenMetrics text |
//! | `GET /healthz` | `{"status": "ok"}`: the gateway is up |
//! | `GET /readyz` | 200 once the servers started, while every required server (all but those with `"required": false`) has a running instance, else 503; with the servers' health and `waitingFor`, the required servers down (one that failed to start is); 503 `{"ready": false, "starting": true}` while the servers start, and `{"ready": false, "draining": true}` from Ctrl-C or SIGTERM on, while the gateway drains |
//! | `GET /api/servers` | every server: state, health, breaker, instances, counters, recent errors |
//! | `GET /api/servers/NAME` | one server |
//! | `POST /api/servers` with `{"name": NAME, "config": ENTRY}` | starts the server of an `mcpServers` entry and adds it to the gateway (201) |
//! | `DELETE /api/servers/NAME` | takes the server out of the gateway, drains and stops it |
//! | `POST /api/servers/NAME/restart` | new instances started, then the old ones drained and stopped |
//! | `POST /api/servers/NAME/scale` with `{"instances": N}` | that many instances |
//!
//! With a token set, `/api/` requests must carry `Authorization: Bearer
//! TOKEN` (compared in constant time); `/metrics`, `/healthz` and `/readyz`
//! stay open for scrapers and probes. Errors are JSON: `{"error": "..."}`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use mcp_core::ServerId;
use mcp_observability::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics};
use mcp_runtime::McpRuntime;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use mcp_control::ErrorKind;
use mcp_control::{Control, describe_all, server_entry};

/// Where the admin listener listens when `--admin` names no address.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:8932";

/// What the admin listener serves.
pub(crate) struct Admin {
    pub(crate) runtime: McpRuntime,
    pub(crate) metrics: Metrics,
    pub(crate) token: Option<String>,
    /// What deploys and undeploys, once the gateway runs.
    pub(crate) control: tokio::sync::watch::Receiver<Option<Control>>,
    /// Set at Ctrl-C or SIGTERM, when the gateway starts to drain: from
    /// then on `/readyz` says 503, so that a load balancer sends new
    /// sessions elsewhere while the requests in flight finish.
    pub(crate) draining: std::sync::atomic::AtomicBool,
}

type AdminResponse = Response<Full<Bytes>>;

/// Binds `addr` and serves the admin API until `stop` resolves.
pub(crate) async fn serve(
    admin: Admin,
    addr: SocketAddr,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} for the admin API"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    eprintln!("mcp-manager: admin API and metrics on http://{bound}/");
    let admin = Arc::new(admin);
    let drains = admin.clone();
    tokio::spawn(async move {
        crate::cli::signal::signalled().await;
        drains
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    });
    Ok(tokio::spawn(async move {
        let mut stop = std::pin::pin!(stop);
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                () = &mut stop => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    };
                    let admin = admin.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| {
                            let admin = admin.clone();
                            async move { Ok::<_, Infallible>(admin.handle(request).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(std::time::Duration::from_secs(10))
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
        connections.abort_all();
    }))
}

impl Admin {
    async fn handle(&self, request: Request<Incoming>) -> AdminResponse {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        match (&method, path.as_str()) {
            (&Method::GET, "/metrics") => {
                return text(StatusCode::OK, METRICS_CONTENT_TYPE, self.metrics.render());
            }
            (&Method::GET, "/healthz") => {
                return json_response(StatusCode::OK, &json!({"status": "ok"}));
            }
            (&Method::GET, "/readyz") => return self.ready().await,
            _ => {}
        }
        let listing_plugins = path == "/api/plugins";
        let Some(rest) = path
            .strip_prefix("/api/servers")
            .or(listing_plugins.then_some(""))
        else {
            return error(StatusCode::NOT_FOUND, format!("no such endpoint: {path}"));
        };
        if !self.authorized(&request) {
            let mut response = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
            return response;
        }
        if listing_plugins {
            return match method {
                Method::GET => self.plugins(),
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{method} is not allowed here"),
                ),
            };
        }
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        match (&method, parts.as_slice()) {
            (&Method::GET, []) => self.servers().await,
            (&Method::POST, []) => {
                let body = match read_json(request).await {
                    Ok(body) => body,
                    Err(response) => return response,
                };
                self.deploy(&body).await
            }
            (&Method::DELETE, [name]) => self.undeploy(name).await,
            (&Method::GET, [name]) => self.server(name).await,
            (&Method::POST, [name, "restart"]) => self.restart(name).await,
            (&Method::POST, [name, "scale"]) => {
                let body = match read_json(request).await {
                    Ok(body) => body,
                    Err(response) => return response,
                };
                self.scale(name, &body).await
            }
            (_, [] | [_] | [_, "restart" | "scale"]) => error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed here"),
            ),
            _ => error(StatusCode::NOT_FOUND, format!("no such endpoint: {path}")),
        }
    }

    /// Every server type new servers can be deployed with.
    fn plugins(&self) -> AdminResponse {
        let Some(control) = self.control() else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the gateway is still starting its servers",
            );
        };
        let registry = control.registry();
        let plugins: Vec<Value> = registry
            .plugins()
            .iter()
            .map(mcp_control::describe_plugin)
            .collect();
        let dir = registry.plugins_dir().map(|d| d.display().to_string());
        json_response(
            StatusCode::OK,
            &json!({"plugins": plugins, "pluginsDir": dir}),
        )
    }

    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| mcp_serve::constant_time_eq(given.as_bytes(), token.as_bytes()))
    }

    async fn described(&self) -> Result<Vec<Value>, AdminResponse> {
        describe_all(&self.runtime, self.control().as_ref())
            .await
            .map_err(|_| {
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the gateway is shutting down",
                )
            })
    }

    async fn servers(&self) -> AdminResponse {
        match self.described().await {
            Ok(servers) => json_response(StatusCode::OK, &json!({ "servers": servers })),
            Err(response) => response,
        }
    }

    async fn server(&self, name: &str) -> AdminResponse {
        match self.described().await {
            Ok(servers) => match servers.iter().find(|s| s["name"] == name) {
                Some(server) => json_response(StatusCode::OK, server),
                None => not_found(name),
            },
            Err(response) => response,
        }
    }

    /// Ready once the gateway runs (its config loaded, its servers
    /// started), while every required server has an instance running (one
    /// that failed to start is down), until a drain starts.
    async fn ready(&self) -> AdminResponse {
        if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"ready": false, "draining": true}),
            );
        }
        if self.control().is_none() {
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"ready": false, "starting": true}),
            );
        }
        let described = match self.described().await {
            Ok(described) => described,
            Err(response) => return response,
        };
        let servers: serde_json::Map<String, Value> = described
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or_default().to_owned(),
                    s["health"].clone(),
                )
            })
            .collect();
        let waiting: Vec<&Value> = described
            .iter()
            .filter(|s| s["health"] == "down" && s["required"] != false)
            .map(|s| &s["name"])
            .collect();
        let ready = waiting.is_empty();
        let code = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json_response(
            code,
            &json!({"ready": ready, "servers": servers, "waitingFor": waiting}),
        )
    }

    async fn handle_of(&self, name: &str) -> Result<mcp_runtime::ServerHandle, AdminResponse> {
        let Ok(id) = ServerId::new(name) else {
            return Err(not_found(name));
        };
        self.runtime
            .server(&id)
            .await
            .map(|server| server.handle().clone())
            .map_err(|_| not_found(name))
    }

    async fn restart(&self, name: &str) -> AdminResponse {
        let handle = match self.handle_of(name).await {
            Ok(handle) => handle,
            Err(response) => return response,
        };
        tracing::info!(server = name, "restart asked through the admin API");
        match handle.restart().await {
            Ok(()) => self.server(name).await,
            Err(e) => error(
                StatusCode::BAD_GATEWAY,
                format!("restarting `{name}` failed: {e}"),
            ),
        }
    }

    /// What deploys and undeploys; `None` while the gateway starts.
    fn control(&self) -> Option<Control> {
        self.control.borrow().clone()
    }

    async fn deploy(&self, body: &Value) -> AdminResponse {
        let (Some(name), Some(entry)) = (
            body.get("name").and_then(Value::as_str),
            body.get("config").filter(|c| c.is_object()),
        ) else {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be {\"name\": NAME, \"config\": {an mcpServers entry}}",
            );
        };
        let Some(control) = self.control() else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the gateway is still starting",
            );
        };
        let server = match server_entry(&control.registry(), name, entry) {
            Ok(server) => server,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        };
        tracing::info!(server = name, "deploy asked through the admin API");
        match control.deploy(server).await {
            Ok(()) => {
                let mut response = self.server(name).await;
                *response.status_mut() = StatusCode::CREATED;
                response
            }
            Err(e) if e.kind() == ErrorKind::Conflict => error(StatusCode::CONFLICT, e.to_string()),
            Err(e) => error(StatusCode::BAD_GATEWAY, e.to_string()),
        }
    }

    async fn undeploy(&self, name: &str) -> AdminResponse {
        let Ok(id) = ServerId::new(name) else {
            return not_found(name);
        };
        let Some(control) = self.control() else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the gateway is still starting",
            );
        };
        tracing::info!(server = name, "undeploy asked through the admin API");
        match control.undeploy(id).await {
            Ok(()) => json_response(StatusCode::OK, &json!({"undeployed": name})),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                error(StatusCode::NOT_FOUND, e.to_string())
            }
            Err(e) => error(StatusCode::BAD_GATEWAY, e.to_string()),
        }
    }

    async fn scale(&self, name: &str, body: &Value) -> AdminResponse {
        let Some(instances) = body
            .get("instances")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .and_then(NonZeroU32::new)
            .filter(|n| n.get() <= 64)
        else {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be {\"instances\": N} with N from 1 to 64",
            );
        };
        let handle = match self.handle_of(name).await {
            Ok(handle) => handle,
            Err(response) => return response,
        };
        tracing::info!(
            server = name,
            instances = instances.get(),
            "scale asked through the admin API"
        );
        match handle.scale(instances).await {
            Ok(()) => self.server(name).await,
            Err(e) => error(
                StatusCode::BAD_GATEWAY,
                format!("scaling `{name}` failed: {e}"),
            ),
        }
    }
}

async fn read_json(request: Request<Incoming>) -> Result<Value, AdminResponse> {
    let bytes = Limited::new(request.into_body(), 64 << 10)
        .collect()
        .await
        .map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "the body could not be read (64 KiB at most)",
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })
}

fn not_found(name: &str) -> AdminResponse {
    error(
        StatusCode::NOT_FOUND,
        format!("no server `{name}` is deployed"),
    )
}

fn error(code: StatusCode, message: impl Into<String>) -> AdminResponse {
    json_response(code, &json!({"error": message.into()}))
}

fn json_response(code: StatusCode, value: &Value) -> AdminResponse {
    text(code, "application/json", value.to_string())
}

fn text(code: StatusCode, content_type: &'static str, body: String) -> AdminResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
