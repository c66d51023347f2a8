//! Wasm plugins loaded from a plugins directory: a good one serves
//! through its component in the sandbox its grants make, narrowed per
//! server; a missing or corrupt component, or a plugin asking for what is
//! not offered, is reported with the plugin's name and path.
#![cfg(feature = "wasm")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../../mcp-plugin-wasm/tests/components/mod.rs"]
mod components;

use std::path::Path;
use std::sync::Arc;

use mcp_core::config::ProcessEnv;
use mcp_core::{BoxFuture, Launch, ManagerConfig, Peer, RequestContext, ServerConfig};
use mcp_plugin_api::PluginRegistry;
use mcp_plugin_host::{ErrorKind, load_dir, register};
use mcp_protocol::raw::Raw;
use mcp_protocol::{Notification, Request, RequestId};

struct Nobody;

impl Peer for Nobody {
    fn notify(&self, _: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

fn server(entry: &str) -> ServerConfig {
    let text = format!(r#"{{"mcpServers": {{"s": {entry}}}}}"#);
    ManagerConfig::from_json_str(&text, None, &ProcessEnv)
        .unwrap()
        .servers()[0]
        .clone()
}

fn plugin(dir: &Path, name: &str, extra: &str, component: Option<&[u8]>) {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let manifest = format!(
        "name = \"{name}\"\nversion = \"1.0.0\"\napi = \"2.0\"\nkind = \"wasm\"\n\n[types.{name}]\ncomponent = \"server.wat\"\n{extra}"
    );
    std::fs::write(folder.join("plugin.toml"), manifest).unwrap();
    if let Some(bytes) = component {
        std::fs::write(folder.join("server.wat"), bytes).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_plugin_serves_in_its_sandbox_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_path = data.path().display().to_string();
    let answering = components::answering();
    plugin(
        dir.path(),
        "hello",
        &format!(
            "\n[grants]\nfs = [{{ path = \"{data_path}\", write = true }}]\nenv = [\"HOME\"]\nmemory_mib = 32\n\n[limits]\ntimeout_ms = 2000\ninstances = 2\n"
        ),
        Some(answering.as_bytes()),
    );
    plugin(
        dir.path(),
        "corrupt",
        "",
        Some(b"PK\x03\x04 not a component"),
    );
    plugin(dir.path(), "missing", "", None);
    plugin(
        dir.path(),
        "networked",
        "\n[grants]\nhttp = [\"example.com\"]\n",
        Some(answering.as_bytes()),
    );

    let loaded = load_dir(dir.path()).unwrap();
    assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
    let networked = &loaded.problems[0];
    assert_eq!(networked.plugin(), Some("networked"));
    assert!(networked.message().contains("outgoing HTTP is not offered"));

    let mut registry = PluginRegistry::new();
    let refused = register(&mut registry, &loaded.manifests);
    let mut refused: Vec<_> = refused
        .iter()
        .map(|e| (e.plugin().unwrap().to_owned(), e.kind(), e.to_string()))
        .collect();
    refused.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0].0, "corrupt");
    assert_eq!(refused[0].1, ErrorKind::Component);
    assert!(
        refused[0].2.contains("corrupt/server.wat"),
        "{}",
        refused[0].2
    );
    assert!(refused[0].2.contains("`\\0asm` header"), "{}", refused[0].2);
    assert_eq!(refused[1].0, "missing");
    assert!(refused[1].2.contains("cannot be read"), "{}", refused[1].2);

    let info = registry.plugin("hello").unwrap();
    assert_eq!(
        info.grants,
        [
            format!("fs {data_path} (read-write)"),
            "env HOME".to_owned(),
            "memory 32 MiB".to_owned(),
            "timeout 2000 ms".to_owned(),
            "instances 2".to_owned(),
        ]
    );

    // A server of the type runs the component in-process.
    let Launch::InProcess(launch) = registry.launch(&server(r#"{"type": "hello"}"#)).unwrap()
    else {
        panic!("a wasm type launches in-process");
    };
    assert!(
        launch.name.starts_with("wasm hello/hello 1.0.0"),
        "{}",
        launch.name
    );
    let request = Request {
        id: RequestId::Number(1),
        method: "tools/call".into(),
        params: Some(Raw::from_value(&serde_json::json!({"name": "hello"}))),
    };
    let result = launch
        .server
        .handle_request(request, RequestContext::new(Arc::new(Nobody)))
        .await
        .unwrap();
    assert!(result.get().contains("hello from wat"), "{}", result.get());

    // An entry narrows its grants; asking for more is an issue at its path.
    let inner = format!("{data_path}/inner");
    std::fs::create_dir_all(&inner).unwrap();
    let narrowed = server(&format!(
        r#"{{"type": "hello", "grants": {{"fs": [{{"path": "{inner}"}}], "memory_mib": 16}}}}"#
    ));
    let mut warnings = Vec::new();
    assert!(registry.config_issues(&narrowed, &mut warnings).is_empty());
    assert!(matches!(
        registry.launch(&narrowed),
        Ok(Launch::InProcess(_))
    ));
    let wider =
        server(r#"{"type": "hello", "grants": {"fs": [{"path": "/etc"}], "env": ["PATH"]}}"#);
    let issues = registry.config_issues(&wider, &mut warnings);
    let paths: Vec<&str> = issues.iter().map(|i| i.path()).collect();
    assert_eq!(
        paths,
        [
            "mcpServers.s.grants.fs[0].path",
            "mcpServers.s.grants.env[0]"
        ]
    );
    let error = registry.launch(&wider).unwrap_err();
    assert!(
        error
            .message()
            .contains("not inside a folder the plugin is granted"),
        "{error}"
    );

    // A granted folder that is gone is reported when the server is made.
    drop(data);
    let error = registry
        .launch(&server(r#"{"type": "hello"}"#))
        .unwrap_err();
    assert!(error.message().contains("cannot be opened"), "{error}");
}

/// The servers of a wasm plugin whose component was replaced launch
/// differently, so a watching `serve` restarts them on the new one; an
/// unchanged plugin launches the same.
#[test]
fn a_replaced_component_launches_anew() {
    let dir = tempfile::tempdir().unwrap();
    let answering = components::answering();
    plugin(dir.path(), "hello", "", Some(answering.as_bytes()));
    let registry = || {
        let mut registry = PluginRegistry::new();
        let loaded = load_dir(dir.path()).unwrap();
        assert!(register(&mut registry, &loaded.manifests).is_empty());
        registry
    };
    let entry = server(r#"{"type": "hello"}"#);
    let first = registry().launch(&entry).unwrap();
    assert!(first.same_as(&registry().launch(&entry).unwrap()));
    let replaced = format!("{answering}\n;; version 2\n");
    std::fs::write(dir.path().join("hello/server.wat"), replaced).unwrap();
    assert!(!first.same_as(&registry().launch(&entry).unwrap()));
}
