//! Wasm plugins through `serve`: the example plugins built by `cargo xtask
//! plugins` (Python compiled by componentize-py, JavaScript by
//! componentize-js) served beside a corrupt one, each server in its
//! sandbox, called by the official Python and TypeScript SDK clients.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

#[path = "../../mcp-plugin-wasm/tests/components/mod.rs"]
mod components;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{
    HttpGateway, Session, exchange, free_addr, run_node_client, run_python_client, unique_marker,
};

/// The example plugins as `cargo xtask plugins` builds them.
fn built_plugins() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins");
    for example in ["text-tools-py", "text-tools-js"] {
        assert!(
            dir.join(example).join("server.wasm").is_file(),
            "{} has no {example}/server.wasm: run `cargo xtask plugins` first",
            dir.display()
        );
    }
    dir
}

/// The built wasm examples and a corrupt plugin, in `dir`.
fn plugins_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    for example in ["text-tools-py", "text-tools-js"] {
        let to = plugins.join(example);
        std::fs::create_dir_all(&to).unwrap();
        for file in ["plugin.toml", "server.wasm"] {
            std::fs::copy(built_plugins().join(example).join(file), to.join(file)).unwrap();
        }
    }
    // One whose component starts as a component should, then is garbage:
    // found out when its server starts. One that is not WebAssembly at
    // all: refused when the plugin is loaded (and a config naming its type
    // would be refused as naming an unknown type).
    for (name, bytes) in [
        ("corrupt", &b"\0asm\x0d\0\x01\0not really"[..]),
        ("junk", &b"PK\x03\x04 a zip file"[..]),
    ] {
        let folder = plugins.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("plugin.toml"),
            format!("name = \"{name}\"\nversion = \"1.0.0\"\napi = \"2.1\"\nkind = \"wasm\"\n[types.{name}]\ncomponent = \"server.wasm\"\n"),
        )
        .unwrap();
        std::fs::write(folder.join("server.wasm"), bytes).unwrap();
    }
    plugins
}

/// `serve` over HTTP on the config `servers` (written into `dir`) with the
/// plugins of `plugins`: the gateway and its admin address.
fn serve(dir: &Path, servers: &Value, plugins: &Path) -> (HttpGateway, String) {
    let config = dir.join("mcp.json");
    std::fs::write(&config, servers.to_string()).unwrap();
    let admin = free_addr();
    let gateway = HttpGateway::start_with(
        &config,
        &unique_marker("wasm"),
        &[
            "--no-watch",
            "--plugins-dir",
            plugins.to_str().unwrap(),
            "--admin",
            &admin,
        ],
    );
    (gateway, admin)
}

#[test]
fn wasm_plugins_serve_the_sdk_clients_each_in_its_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugins_dir(dir.path());
    // The Python example is granted /tmp; this server only one folder in it.
    let granted = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
    let hidden = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
    let note = granted.path().join("note.txt");
    std::fs::write(&note, "visible to the plugin").unwrap();
    let secret = hidden.path().join("secret.txt");
    std::fs::write(&secret, "not for the plugin").unwrap();
    let servers = json!({"mcpServers": {
        "py": {
            "type": "text-tools-py",
            "namespace": "py",
            "startupTimeoutMs": 180_000,
            "grants": {"fs": [{"path": granted.path()}], "env": []}
        },
        "js": {"type": "text-tools-js", "namespace": "js", "startupTimeoutMs": 180_000},
        "broken": {"type": "corrupt", "namespace": "broken", "startupTimeoutMs": 180_000}
    }});
    let (gateway, admin) = serve(dir.path(), &servers, &plugins);

    // The corrupt plugin is reported by name and path; its type is unknown,
    // so its server fails alone.
    let listed = exchange(&admin, "GET", "/api/plugins", &[], b"").unwrap();
    let listed: Value = serde_json::from_str(&listed.body).unwrap();
    let py = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "text-tools-py")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(py["kind"], "wasm", "{py}");
    assert!(
        py["grants"].to_string().contains("fs /tmp (read-only)"),
        "{py}"
    );
    let broken = exchange(&admin, "GET", "/api/servers/broken", &[], b"").unwrap();
    let broken: Value = serde_json::from_str(&broken.body).unwrap();
    assert_eq!(broken["state"], "failed", "{broken}");
    let error = broken["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("wasm plugin `corrupt`")
            && error.contains("corrupt/server.wasm")
            && error.contains("could not start"),
        "{broken}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(["plugins", "--format", "json", "--plugins-dir"])
        .arg(&plugins)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report}");
    assert_eq!(problems[0]["plugin"], "junk", "{report}");
    assert!(
        problems[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("junk/server.wasm"),
        "{report}"
    );

    let calls = [
        "py__word_count",
        r#"{"text": "one two three four"}"#,
        "py__read_file",
        &json!({"path": note}).to_string(),
        "py__env",
        r#"{"name": "HOME"}"#,
        "js__slugify",
        r#"{"title": "Hello, Wasm World!"}"#,
        "js__word_count",
        r#"{"text": "a b"}"#,
    ];
    let (python, _) = run_python_client(
        "python_call_tools.py",
        &[&[gateway.url().as_str()][..], &calls].concat(),
    );
    let (node, _) = run_node_client(
        "ts_call_tools.mjs",
        &[&[gateway.url().as_str()][..], &calls].concat(),
    );
    for report in [&python, &node] {
        let tools = report["tools"].as_array().unwrap();
        for tool in [
            "py__word_count",
            "py__read_file",
            "py__env",
            "js__slugify",
            "js__word_count",
        ] {
            assert!(tools.contains(&json!(tool)), "{tool}: {report}");
        }
        assert!(
            !tools.iter().any(|t| {
                let t = t.as_str().unwrap();
                t.starts_with("broken__") || t.starts_with("junk__")
            }),
            "{report}"
        );
        let text = |tool: &str| {
            report["calls"][tool]["text"][0]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(text("py__word_count"), "4", "{report}");
        assert_eq!(text("py__read_file"), "visible to the plugin", "{report}");
        // HOME is not granted: the plugin does not see it.
        assert_eq!(text("py__env"), "(not set)", "{report}");
        assert_eq!(text("js__slugify"), "hello-wasm-world", "{report}");
        assert_eq!(text("js__word_count"), "2", "{report}");
    }

    // Outside its grant the plugin's read fails: the folder is not there
    // for it.
    let (denied, _) = run_python_client(
        "python_call_tools.py",
        &[
            &gateway.url(),
            "py__read_file",
            &json!({"path": secret}).to_string(),
        ],
    );
    assert_eq!(
        denied["calls"]["py__read_file"]["isError"], true,
        "{denied}"
    );
    assert!(
        !denied.to_string().contains("not for the plugin"),
        "{denied}"
    );
    drop(gateway);
}

/// A plugin whose component answers every message with the fixed answer
/// of [`components::ANSWER`] (a `hello` tool), but runs `misbehave` first
/// on a message longer than 1000 bytes.
fn misbehaving_plugin(plugins: &Path, name: &str, misbehave: &str, extra: &str) {
    let folder = plugins.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let body = format!("(if (i32.gt_u (local.get $len) (i32.const 1000)) (then {misbehave}))");
    std::fs::write(
        folder.join("server.wat"),
        components::component(&body, components::ANSWER, ""),
    )
    .unwrap();
    std::fs::write(
        folder.join("plugin.toml"),
        format!("name = \"{name}\"\nversion = \"1.0.0\"\napi = \"2.1\"\nkind = \"wasm\"\n[types.{name}]\ncomponent = \"server.wat\"\n{extra}"),
    )
    .unwrap();
}

#[test]
fn a_wasm_plugin_past_its_timeout_fuel_or_memory_fails_that_request_and_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    misbehaving_plugin(
        &plugins,
        "spin",
        "(loop $forever (br $forever))",
        "[limits]\ntimeout_ms = 300\n",
    );
    misbehaving_plugin(
        &plugins,
        "burn",
        "(loop $forever (br $forever))",
        "[limits]\nfuel = 1000000\n",
    );
    misbehaving_plugin(
        &plugins,
        "hog",
        "(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))",
        "[grants]\nmemory_mib = 8\n",
    );
    let servers = json!({"mcpServers": {
        "spin": {"type": "spin", "namespace": "spin"},
        "burn": {"type": "burn", "namespace": "burn"},
        "hog": {"type": "hog", "namespace": "hog"}
    }});
    let (gateway, admin) = serve(dir.path(), &servers, &plugins);
    let addr = gateway.url();
    let addr = addr
        .strip_prefix("http://")
        .and_then(|a| a.strip_suffix("/mcp"))
        .unwrap();
    let session = Session::open(addr, "faults");
    let long = json!({"text": "x".repeat(2000)});
    let cases = [
        ("spin", "took longer than its timeout of 300 ms"),
        ("burn", "ran out of fuel (1000000 units)"),
        ("hog", "needed more than its memory limit of 8 MiB"),
    ];
    for (i, (server, says)) in cases.into_iter().enumerate() {
        let tool = format!("{server}__hello");
        let id = 10 * (i as u64 + 1);
        let failed = session.call_text(id, &tool, long.clone()).unwrap_err();
        assert!(failed.contains(says), "{server}: {failed}");
        assert!(
            failed.contains(&format!("wasm plugin `{server}`")),
            "{failed}"
        );
        // Only that instance was replaced: the next call is served.
        let served = session.call_text(id + 1, &tool, json!({})).unwrap();
        assert_eq!(served, "hello from wat");
        let state = exchange(&admin, "GET", &format!("/api/servers/{server}"), &[], b"").unwrap();
        let state: Value = serde_json::from_str(&state.body).unwrap();
        assert_eq!(state["state"], "running", "{state}");
        assert_eq!(state["errors"], 1, "the failed request counts: {state}");
    }
    drop(gateway);
}

/// Compiled components are kept in the cache folder, made for this user
/// alone, and found there at the next start; a folder others may write
/// to is not used, and the plugin still runs.
#[test]
fn compiled_components_are_cached_in_a_private_folder() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    misbehaving_plugin(&plugins, "quiet", "(nop)", "");
    let config = dir.path().join("mcp.json");
    std::fs::write(
        &config,
        json!({"mcpServers": {"quiet": {"type": "quiet"}}}).to_string(),
    )
    .unwrap();
    let call = |cache: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
            .arg("--plugins-dir")
            .arg(&plugins)
            .args(["call", "quiet/hello", "--config"])
            .arg(&config)
            .env("MCP_MANAGER_WASM_CACHE", cache)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        assert_eq!(stdout.trim(), "hello from wat", "{stderr}");
        stderr
    };
    // The compiled artifacts, each with its modification time (the cache's
    // bookkeeping files left out).
    let artifacts = |dir: &Path| -> Vec<(PathBuf, std::time::SystemTime)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::time::SystemTime)>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir() {
                    walk(&path, out);
                } else if !name.starts_with('.') && !name.ends_with(".stats") {
                    out.push((path, entry.metadata().unwrap().modified().unwrap()));
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, &mut out);
        out.sort();
        out
    };

    let cache = dir.path().join("cache/wasm");
    call(&cache);
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    let cached = artifacts(&cache);
    assert!(!cached.is_empty(), "nothing cached in {}", cache.display());
    call(&cache);
    assert_eq!(artifacts(&cache), cached, "the second start compiled anew");

    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let stderr = call(&shared);
    assert!(stderr.contains("others may write to it"), "{stderr}");
    assert!(artifacts(&shared).is_empty());
}
