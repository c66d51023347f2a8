//! Serving an in-process server over stdio-style byte streams.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::Keeper;
use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Notification, Request};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct Doubler;

impl McpServer for Doubler {
    fn handle_request(
        &self,
        request: Request<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        Box::pin(async move {
            match &*request.method {
                "double" => {
                    let n: i64 = request.params.unwrap().parse::<Value>().unwrap()["n"]
                        .as_i64()
                        .unwrap();
                    context
                        .notify(Notification {
                            method: "notifications/message".into(),
                            params: Some(Raw::from_value(
                                &json!({"level": "info", "data": "doubling"}),
                            )),
                        })
                        .await;
                    Ok(Raw::from_value(&json!({"n": n * 2})))
                }
                "forever" => std::future::pending().await,
                other => Err(ErrorObject::new(-32601, format!("no {other}"))),
            }
        })
    }

    fn handle_notification(
        &self,
        _: Notification<'static>,
        _: RequestContext,
    ) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Serves `input` (lines, the last ending the input) over stdio-style
/// streams; every line written back, as JSON.
async fn serve_lines(input: &str) -> Vec<Value> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (server_in, server_out) = tokio::io::split(server);
    let serving = tokio::spawn(mcp_serve::serve_stdio(
        Arc::new(Doubler),
        server_in,
        server_out,
        1024,
    ));
    let (client_in, mut client_out) = tokio::io::split(client);
    client_out.write_all(input.as_bytes()).await.unwrap();
    client_out.shutdown().await.unwrap();
    let mut lines = BufReader::new(client_in).lines();
    let mut answers = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        answers.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    serving.await.unwrap().unwrap();
    answers
}

#[tokio::test]
async fn lines_in_answers_out_and_bad_lines_answered() {
    let input = concat!(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"forever\"}\n",
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":1}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"double\",\"params\":{\"n\":21}}\n",
        "not json\n",
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":7}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"nope\"}\n",
    );
    let answers = serve_lines(input).await;

    let find = |pred: &dyn Fn(&Value) -> bool| answers.iter().find(|a| pred(a)).cloned();
    assert_eq!(find(&|a| a["id"] == 2).unwrap()["result"]["n"], 42);
    assert_eq!(
        find(&|a| a["method"] == "notifications/message").unwrap()["params"]["data"],
        "doubling"
    );
    assert_eq!(
        find(&|a| a["error"]["code"] == -32700).unwrap()["id"],
        Value::Null
    );
    assert_eq!(find(&|a| a["id"] == 3).unwrap()["error"]["code"], -32600);
    assert_eq!(
        find(&|a| a["id"] == 4).unwrap()["error"]["message"],
        "no nope"
    );
    // The cancelled request is never answered.
    assert!(find(&|a| a["id"] == 1).is_none());
    assert_eq!(answers.len(), 5);
}

#[tokio::test]
async fn the_end_of_input_ends_the_session_though_the_server_keeps_its_peer() {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (server_in, server_out) = tokio::io::split(server);
    let keeper = Arc::new(Keeper::default());
    let serving = tokio::spawn(mcp_serve::serve_stdio(
        keeper.clone(),
        server_in,
        server_out,
        1024,
    ));
    let (client_in, mut client_out) = tokio::io::split(client);
    client_out
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"keep\"}\n")
        .await
        .unwrap();
    client_out.shutdown().await.unwrap();
    let mut lines = BufReader::new(client_in).lines();
    let answer: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(answer["id"], 1);
    // Well before the drain of requests (10 s) could be what ends it.
    tokio::time::timeout(std::time::Duration::from_secs(5), serving)
        .await
        .expect("serve_stdio returns when its input ends")
        .unwrap()
        .unwrap();
    assert!(lines.next_line().await.unwrap().is_none());
    assert!(keeper.0.lock().unwrap()[0].is_closed());
}

#[tokio::test]
async fn stateless_requests_are_judged_before_the_server_sees_them() {
    let envelope = r#""io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}"#;
    let input = [
        // Served: a valid envelope.
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"double","params":{{"n":2,"_meta":{{{envelope}}}}}}}"#),
        // The envelope without the client's capabilities.
        r#"{"jsonrpc":"2.0","id":2,"method":"double","params":{"n":2,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#.to_owned(),
        // A version nobody speaks.
        r#"{"jsonrpc":"2.0","id":3,"method":"double","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#.to_owned(),
        // A method 2026-07-28 removed.
        format!(r#"{{"jsonrpc":"2.0","id":4,"method":"ping","params":{{"_meta":{{{envelope}}}}}}}"#),
        // A method that exists only statelessly, without the envelope.
        r#"{"jsonrpc":"2.0","id":5,"method":"server/discover"}"#.to_owned(),
    ]
    .join("\n")
        + "\n";
    let answers: std::collections::BTreeMap<i64, Value> = serve_lines(&input)
        .await
        .into_iter()
        .filter_map(|answer| Some((answer["id"].as_i64()?, answer)))
        .collect();
    assert_eq!(answers[&1]["result"]["n"], 4);
    assert_eq!(answers[&2]["error"]["code"], -32602);
    assert_eq!(answers[&3]["error"]["code"], -32022);
    assert_eq!(answers[&3]["error"]["data"]["requested"], "2099-01-01");
    assert_eq!(answers[&4]["error"]["code"], -32601);
    assert_eq!(answers[&5]["error"]["code"], -32602);
    // Refused ones never reached the server, whose own answer to an
    // unknown method is "no ...".
    assert!(
        !answers[&4]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no ")
    );
}
