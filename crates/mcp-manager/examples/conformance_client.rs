//! A small MCP client built on the runtime, for the client scenarios of the
//! official conformance suite: `conformance_client URL`, with the scenario
//! named in `MCP_CONFORMANCE_SCENARIO` (the suite's runner appends the URL
//! and sets the variable).
//!
//! It connects to the server over Streamable HTTP through the runtime (a
//! session with `initialize`, or statelessly for the 2026-07-28
//! scenarios), lists the tools, and does what the scenario asks:
//!
//! | scenario | does |
//! | --- | --- |
//! | `initialize` | connects and lists the tools |
//! | `tools_call` | calls `add_numbers` with `a: 5`, `b: 3` |
//! | `elicitation-sep1034-client-defaults` | calls `test_client_elicitation_defaults`, accepting every form with its fields' defaults |
//! | `sse-retry` | calls `test_reconnection`, whose answer comes after the stream is resumed |
//! | `request-metadata` | connects statelessly and calls `test_tool` |
//!
//! In the `auth/*` scenarios, a server that answers 401 is signed in to
//! first, with the MCP authorization flow of `mcp_auth::client`.
//!
//! Exit status 0 when every step worked, 1 otherwise (with the reason on
//! stderr).
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use mcp_auth::client;
use mcp_core::config::{RestartConfig, RestartPolicy};
use mcp_core::{BoxFuture, HandlerResult, Peer, RequestContext, ServerId};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Notification};
use mcp_runtime::transport::http::{HttpConnector, HttpTarget};
use mcp_runtime::{CallOptions, ListKind, McpRuntime, ServerSpec, UpstreamProtocol};
use serde_json::{Map, Value, json};

fn main() -> ExitCode {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: conformance_client URL (scenario in MCP_CONFORMANCE_SCENARIO)");
        return ExitCode::from(2);
    };
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&scenario, url)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {scenario}: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(scenario: &str, url: String) -> Result<(), String> {
    let id = ServerId::new("conformance").map_err(|e| e.to_string())?;
    // Only the authorization scenarios ask for a token; the others count
    // every request a client makes, a probe included.
    let headers = if scenario.starts_with("auth/") {
        authorization(&url).await?
    } else {
        BTreeMap::new()
    };
    let target = HttpTarget {
        server: id.clone(),
        url,
        headers,
        max_message: 16 << 20,
    };
    let mut spec = ServerSpec::new(id, Arc::new(HttpConnector::new(target)));
    spec.protocol = if scenario == "request-metadata" {
        UpstreamProtocol::Stateless
    } else {
        UpstreamProtocol::Stateful
    };
    spec.restart = RestartConfig::new(
        RestartPolicy::Never,
        0,
        std::time::Duration::from_millis(100),
        std::time::Duration::from_millis(100),
    );
    spec.health_interval = None;
    let runtime = McpRuntime::start();
    let outcome = async {
        let server = mcp_runtime::Server::new(runtime.clone(), spec)
            .deploy()
            .await
            .map_err(|failed| failed.error().to_string())?
            .into_handle();
        server
            .list_all(ListKind::Tools)
            .await
            .map_err(|e| e.to_string())?;
        let call = |name: &str, arguments: Value, options: CallOptions| {
            let params = Raw::from_value(&json!({ "name": name, "arguments": arguments }));
            let server = server.clone();
            async move {
                server
                    .request("tools/call".to_owned(), Some(params), options)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        match scenario {
            "tools_call" => {
                call(
                    "add_numbers",
                    json!({"a": 5, "b": 3}),
                    CallOptions::default(),
                )
                .await?;
            }
            "elicitation-sep1034-client-defaults" => {
                let options = CallOptions {
                    requester: Some(RequestContext::new(Arc::new(AcceptDefaults))),
                    ..CallOptions::default()
                };
                call("test_client_elicitation_defaults", json!({}), options).await?;
            }
            "sse-retry" => {
                call("test_reconnection", json!({}), CallOptions::default()).await?;
            }
            "request-metadata" => {
                call("test_tool", json!({}), CallOptions::default()).await?;
            }
            _ => {}
        }
        Ok::<(), String>(())
    }
    .await;
    runtime.shutdown().await;
    outcome
}

/// The `Authorization` header for the server at `url`, when it asks for
/// one: an `initialize` sent without a token, and on a 401 the
/// authorization flow of `mcp_auth::client` (the scenario's pre-registered
/// client from `MCP_CONFORMANCE_CONTEXT` when there is one; else a client
/// ID metadata document where the server takes them, else dynamic
/// registration), the user's visit played by following the authorization
/// endpoint's redirect.
async fn authorization(url: &str) -> Result<BTreeMap<String, String>, String> {
    mcp_runtime::transport::http::install_crypto_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let probe = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "mcp-manager-conformance-client", "version": "1"}}
    });
    let answer = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(probe.to_string())
        .send()
        .await
        .map_err(|e| format!("probing {url}: {e}"))?;
    if answer.status().as_u16() != 401 {
        return Ok(BTreeMap::new());
    }
    let challenge = answer
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .and_then(client::challenge);
    let discovery = client::discover(&client, url, challenge.as_ref()).await?;
    let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let registered =
        context
            .get("client_id")
            .and_then(Value::as_str)
            .map(|id| client::Registration {
                client_id: id.to_owned(),
                client_secret: context
                    .get("client_secret")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                auth_method: "client_secret_basic".to_owned(),
            });
    let info = client::ClientInfo {
        name: "mcp-manager conformance client".to_owned(),
        redirect_uri: "http://127.0.0.1:7/callback".to_owned(),
        metadata_url: Some("https://conformance-test.local/client-metadata.json".to_owned()),
        registered,
    };
    let grant = client::authorize(
        &client,
        &discovery,
        &info,
        None,
        &mut Follow(client.clone()),
    )
    .await?;
    Ok(BTreeMap::from([(
        "Authorization".to_owned(),
        format!("Bearer {}", grant.access_token),
    )]))
}

/// A user who approves at once: the authorization endpoint's redirect is
/// read, not followed.
struct Follow(reqwest::Client);

impl client::Browser for Follow {
    fn visit(&mut self, url: &str) -> BoxFuture<'_, Result<String, String>> {
        let url = url.to_owned();
        Box::pin(async move {
            let answer = self.0.get(&url).send().await.map_err(|e| e.to_string())?;
            let location = answer
                .headers()
                .get("location")
                .and_then(|value| value.to_str().ok())
                .ok_or_else(|| {
                    format!(
                        "the authorization endpoint answered {} without a redirect",
                        answer.status()
                    )
                })?;
            Ok(location
                .split_once('?')
                .map(|(_, query)| query.to_owned())
                .unwrap_or_default())
        })
    }
}

/// A user who accepts every form as it comes: each field with a default
/// gets that default.
struct AcceptDefaults;

impl Peer for AcceptDefaults {
    fn notify(&self, _: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn request(&self, method: &str, params: Option<Raw<'static>>) -> BoxFuture<'_, HandlerResult> {
        let answer = if method == "elicitation/create" {
            let params: Value = params
                .and_then(|p| serde_json::from_str(p.get()).ok())
                .unwrap_or(Value::Null);
            let content: Map<String, Value> = params
                .get("requestedSchema")
                .and_then(|schema| schema.get("properties"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(name, field)| Some((name.clone(), field.get("default")?.clone())))
                .collect();
            Ok(Raw::from_value(
                &json!({"action": "accept", "content": content}),
            ))
        } else {
            Err(ErrorObject::new(
                -32601,
                format!("this client does not answer `{method}`"),
            ))
        };
        Box::pin(std::future::ready(answer))
    }
}
