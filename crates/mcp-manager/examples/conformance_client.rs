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
//! In the `auth/*` scenarios it also calls `test-tool`; whenever the server
//! asks for a token (401, or 403 `insufficient_scope` for more scopes), the
//! runtime's link signs in through `mcp_auth::tokens` and sends the request
//! again.
//!
//! Exit status 0 when every step worked, 1 otherwise (with the reason on
//! stderr).
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use mcp_auth::client;
use mcp_auth::tokens::{SignIn, Tokens};
use mcp_core::auth::TokenSource;
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
    let auth = scenario.starts_with("auth/");
    let credentials = if auth { Some(tokens(&url)?) } else { None };
    let target = HttpTarget {
        server: id.clone(),
        url,
        headers: BTreeMap::new(),
        max_message: 16 << 20,
        credentials,
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
            // Servers of the authorization scenarios have one tool, and
            // some ask for more scopes to call it.
            _ if auth => {
                call("test-tool", json!({}), CallOptions::default()).await?;
            }
            _ => {}
        }
        Ok::<(), String>(())
    }
    .await;
    runtime.shutdown().await;
    outcome
}

/// The tokens of the `auth/*` scenarios: the link sends none until the
/// server asks (401 at any request, or 403 `insufficient_scope`), and
/// then signs in with the MCP authorization flow of `mcp_auth::client`
/// (the scenario's pre-registered client from `MCP_CONFORMANCE_CONTEXT`
/// when there is one; else a client ID metadata document where the server
/// takes them, else dynamic registration), the user's visit played by
/// reading the authorization endpoint's redirect.
fn tokens(url: &str) -> Result<Arc<dyn TokenSource>, String> {
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
    let follow = Follow(mcp_auth::http_client().map_err(|e| e.to_string())?);
    let tokens = Tokens::new(SignIn {
        server: "conformance".to_owned(),
        url: url.to_owned(),
        client: client::ClientInfo {
            name: "mcp-manager conformance client".to_owned(),
            redirect_uri: "http://127.0.0.1:7/callback".to_owned(),
            metadata_url: Some("https://conformance-test.local/client-metadata.json".to_owned()),
            registered,
        },
        scope: None,
        file: None,
        browser: Some(Box::new(follow)),
    });
    Ok(Arc::new(tokens))
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
