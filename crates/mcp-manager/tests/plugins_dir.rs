//! Plugins loaded at run time from a plugins directory: the example
//! command plugins of `examples/plugins/` listed by `mcp-manager plugins`,
//! their settings checked against their schemas by `check` (each problem at
//! its JSON path), broken plugins reported by name and path while the others
//! load, and a server of a command plugin's type (FastMCP through the
//! `python-script` type) served by `serve` and called by the Python SDK
//! client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::{
    HttpGateway, exchange, free_addr, marked_by_arg, peer, run_python_client, unique_marker,
};

/// The example plugins of the repository.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins")
}

/// Runs the command line with `args`: exit code, stdout, stderr.
fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(args)
        // No plugins from the machine's own data directory.
        .env("XDG_DATA_HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The example plugins copied into `plugins`.
fn copy_examples(plugins: &Path) {
    for example in ["python-script", "uvx"] {
        let to = plugins.join(example);
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(examples().join(example)).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
        }
    }
}

/// The example plugins and some broken ones, in a fresh directory.
fn plugins_with_broken_ones(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    copy_examples(&plugins);
    let manifest = |name: &str, text: &str| {
        std::fs::create_dir_all(plugins.join(name)).unwrap();
        std::fs::write(plugins.join(name).join("plugin.toml"), text).unwrap();
    };
    let plain = |name: &str, api: &str, ty: &str| {
        format!(
            "name = \"{name}\"\nversion = \"1\"\napi = \"{api}\"\nkind = \"command\"\n[types.{ty}]\ncommand = \"true\"\n"
        )
    };
    manifest("not-toml", "name = \"not-toml\"\nversion = ");
    manifest("next-major", &plain("next-major", "3.0", "nm"));
    manifest("newer-minor", &plain("newer-minor", "2.9", "nn"));
    manifest("takes-stdio", &plain("takes-stdio", "2.1", "stdio"));
    manifest("fine", &plain("fine", "2.0", "fine"));
    std::fs::create_dir_all(plugins.join("empty-folder")).unwrap();
    std::fs::write(plugins.join("README.txt"), "not a plugin, and left alone").unwrap();
    plugins
}

#[test]
fn plugins_lists_every_type_and_reports_each_broken_plugin_by_name_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugins_with_broken_ones(dir.path());
    let (code, stdout, stderr) = cli(&[
        "plugins",
        "--plugins-dir",
        plugins.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let types = listed["types"].as_array().unwrap();
    let find = |name: &str| types.iter().find(|t| t["type"] == name).cloned();
    let script = find("python-script").expect("the python-script type");
    assert_eq!(script["kind"], "command");
    assert_eq!(script["plugin"], "python-script");
    assert_eq!(script["version"], "1.0.0");
    assert_eq!(script["api"], "2.1");
    assert_eq!(script["aliases"], json!(["py-script"]));
    assert_eq!(
        script["capabilities"],
        json!(["child-process", "instances"])
    );
    assert_eq!(script["settingsSchema"]["required"], json!(["script"]));
    assert_eq!(find("uvx").unwrap()["kind"], "command");
    assert_eq!(find("fine").unwrap()["api"], "2.0", "an older minor loads");
    let stdio = find("stdio").expect("built-in types are listed too");
    assert_eq!(stdio["kind"], "built-in");
    for refused in ["nm", "nn"] {
        assert!(find(refused).is_none(), "{refused} was loaded");
    }

    let problems: Vec<String> = listed["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{} | {} | {}", p["plugin"], p["path"], p["message"]))
        .collect();
    let expect = [
        ("empty-folder", "without a plugin.toml"),
        ("not-toml/plugin.toml", "line 2"),
        (
            "\"next-major\" | ",
            "written for plugin API 3.0, but this mcp-manager has 2.1",
        ),
        (
            "\"newer-minor\" | ",
            "written for plugin API 2.9, but this mcp-manager has 2.1: it needs a newer mcp-manager",
        ),
        (
            "\"takes-stdio\" | ",
            "claims `stdio`, which the `stdio` plugin serves already",
        ),
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    for (at, says) in expect {
        assert!(
            problems.iter().any(|p| p.contains(at) && p.contains(says)),
            "no problem with {at} saying {says}: {problems:#?}"
        );
    }

    // As a table, with the problems as warnings.
    let (code, stdout, stderr) = cli(&["plugins", "--plugins-dir", plugins.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("python-script"))
        .unwrap();
    for cell in [
        "(py-script)",
        "command",
        "1.0.0",
        "child-process, instances",
    ] {
        assert!(row.contains(cell), "{row}");
    }
    assert!(stdout.contains(&format!("plugins are looked up in {}", plugins.display())));
    assert!(
        stderr.contains("warning: plugin `next-major` ("),
        "{stderr}"
    );

    // A plugins directory asked for and missing is said to be so.
    let (code, _, stderr) = cli(&["plugins", "--plugins-dir", "/nonexistent/plugins"]);
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains("/nonexistent/plugins: the plugins directory cannot be read"),
        "{stderr}"
    );
}

#[test]
fn check_names_the_path_of_each_setting_that_does_not_fit_and_where_plugins_are() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    // The plugins directory from the config, relative to its folder.
    copy_examples(&dir.path().join("plugins"));
    let broken = dir.path().join("plugins/broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("plugin.toml"), "name = \"broken\"\n").unwrap();
    let write = |servers: Value| {
        let text = json!({"mcpServers": servers, "mcpManager": {"pluginsDir": "plugins"}});
        std::fs::write(&config, text.to_string()).unwrap();
    };
    write(json!({
        "time": {"type": "uvx", "package": "mcp-server-time", "args": ["--local-timezone", "UTC"]},
        "script": {"type": "py-script", "script": "/srv/server.py", "instances": 2}
    }));
    let (code, stdout, stderr) = cli(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    write(json!({
        "time": {"type": "uvx", "pakage": "mcp-server-time", "args": "UTC"},
        "script": {"type": "python-script", "script": 5},
        "typo": {"type": "pyton-script", "script": "x"}
    }));
    let (code, stdout, stderr) = cli(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["pluginProblems"][0]["plugin"],
        Value::Null,
        "{report}"
    );
    assert!(
        report["pluginProblems"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("broken/plugin.toml"),
        "{report}"
    );
    assert_eq!(report["pluginProblems"].as_array().unwrap().len(), 1);
    let errors: Vec<String> = report["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|e| format!("{} | {} | {}", e["path"], e["message"], e["hint"]))
        .collect();
    let expect = [
        (
            "\"mcpServers.time\"",
            "\\\"package\\\" is a required property",
        ),
        ("\"mcpServers.time\"", "did you mean \\\"package\\\"?"),
        ("\"mcpServers.time.args\"", "is not of type \\\"array\\\""),
        (
            "\"mcpServers.script.script\"",
            "is not of type \\\"string\\\"",
        ),
        (
            "\"mcpServers.typo.type\"",
            "did you mean \\\"python-script\\\"?",
        ),
        ("\"mcpServers.typo.type\"", "plugins are looked up in"),
    ];
    for (at, says) in expect {
        assert!(
            errors.iter().any(|e| e.starts_with(at) && e.contains(says)),
            "no error at {at} saying {says}: {errors:#?}"
        );
    }
}

#[test]
fn a_command_plugin_type_is_served_and_called_by_the_python_sdk_client() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("plugin");
    let config = dir.path().join("mcp.json");
    let servers = json!({"mcpServers": {"fast": {
        "type": "python-script",
        "namespace": "py",
        "python": peer("MCP_PEER_PYTHON"),
        "script": peer("MCP_PEER_FASTMCP"),
        "args": [format!("--marker={marker}")]
    }}});
    std::fs::write(&config, servers.to_string()).unwrap();
    let examples = examples();
    let admin = free_addr();
    let gateway = HttpGateway::start_with(
        &config,
        &marker,
        &[
            "--no-watch",
            "--plugins-dir",
            examples.to_str().unwrap(),
            "--admin",
            &admin,
        ],
    );
    assert_eq!(marked_by_arg(&marker).len(), 1, "the plugin's server runs");

    // The admin API lists the loaded types, and deploys a server of one
    // (by its alias) at run time.
    let listed = exchange(&admin, "GET", "/api/plugins", &[], b"").unwrap();
    assert_eq!(listed.status, 200, "{listed:?}");
    let listed: Value = serde_json::from_str(&listed.body).unwrap();
    let script = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "python-script")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(script["kind"], "command");
    assert_eq!(listed["pluginsDir"], examples.to_str().unwrap());
    let deploy = json!({"name": "again", "config": {
        "type": "py-script",
        "namespace": "p2",
        "python": peer("MCP_PEER_PYTHON"),
        "script": peer("MCP_PEER_FASTMCP"),
        "args": [format!("--marker={marker}")]
    }});
    let deployed = exchange(
        &admin,
        "POST",
        "/api/servers",
        &[],
        deploy.to_string().as_bytes(),
    )
    .unwrap();
    assert!(deployed.status < 300, "{deployed:?}");
    assert_eq!(marked_by_arg(&marker).len(), 2, "the deployed server runs");
    let (report, _) = run_python_client(
        "python_call_tools.py",
        &[
            &gateway.url(),
            "py__add",
            r#"{"a": 40, "b": 2}"#,
            "py__echo",
            r#"{"text": "via a plugin"}"#,
            "p2__add",
            r#"{"a": 1, "b": 2}"#,
        ],
    );
    let tools = report["tools"].as_array().unwrap();
    assert!(tools.contains(&json!("py__add")), "{report}");
    assert_eq!(
        report["calls"]["py__add"],
        json!({"isError": false, "text": ["42"]}),
        "{report}"
    );
    assert_eq!(
        report["calls"]["py__echo"]["text"][0], "via a plugin",
        "{report}"
    );
    assert_eq!(report["calls"]["p2__add"]["text"][0], "3", "{report}");
    drop(gateway);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !marked_by_arg(&marker).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the plugin's server outlived the gateway"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits up to 30 s for `done`, naming `what` if it never holds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The value of `key` in the environment of process `pid`.
fn env_of(pid: u32, key: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{key}=");
    environ
        .split(|b| *b == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .find_map(|entry| entry.strip_prefix(&prefix).map(str::to_owned))
}

#[test]
fn plugins_added_replaced_and_removed_while_serving_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("watched");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let config = dir.path().join("mcp.json");
    let servers = json!({"mcpServers": {
        "fast": {
            "type": "python-script",
            "namespace": "py",
            "python": peer("MCP_PEER_PYTHON"),
            "script": peer("MCP_PEER_FASTMCP"),
            "args": [format!("--marker={marker}")]
        },
        "rs": {"type": "builtin", "server": "everything", "namespace": "rs"}
    }});
    std::fs::write(&config, servers.to_string()).unwrap();
    let admin = free_addr();
    // The config names a type no plugin serves yet: `check` refuses it, so
    // the gateway starts on a config written after it is up.
    std::fs::write(
        &config,
        json!({"mcpServers": {"rs": servers["mcpServers"]["rs"]}}).to_string(),
    )
    .unwrap();
    let gateway = HttpGateway::start_with(
        &config,
        &marker,
        &[
            "--plugins-dir",
            plugins.to_str().unwrap(),
            "--admin",
            &admin,
        ],
    );
    let server_state = |name: &str| -> Value {
        let response = exchange(&admin, "GET", &format!("/api/servers/{name}"), &[], b"").unwrap();
        serde_json::from_str(&response.body).unwrap_or(Value::Null)
    };
    // Adding the plugin: the type appears and a config using it applies.
    let manifest = examples().join("python-script/plugin.toml");
    let copy_plugin = |extra_env: &str| {
        let to = plugins.join("python-script");
        std::fs::create_dir_all(&to).unwrap();
        let text = std::fs::read_to_string(&manifest).unwrap().replace(
            "env = { PYTHONUNBUFFERED = \"1\" }",
            &format!("env = {{ PYTHONUNBUFFERED = \"1\"{extra_env} }}"),
        );
        std::fs::copy(
            examples().join("python-script/settings.schema.json"),
            to.join("settings.schema.json"),
        )
        .unwrap();
        std::fs::write(to.join("plugin.toml"), text).unwrap();
    };
    copy_plugin(", PLUGIN_REV = \"1\"");
    wait_for("the added plugin's type is listed", || {
        let listed = exchange(&admin, "GET", "/api/plugins", &[], b"").unwrap();
        listed.body.contains("\"python-script\"")
    });
    std::fs::write(&config, servers.to_string()).unwrap();
    wait_for("the server of the new type runs", || {
        marked_by_arg(&marker).len() == 1
    });
    let first = marked_by_arg(&marker)[0];
    assert_eq!(env_of(first, "PLUGIN_REV").as_deref(), Some("1"));
    wait_for("the server of the new type is served", || {
        server_state("fast")["state"] == "running"
    });

    // Replacing it: the server is drained, stopped and started anew.
    copy_plugin(", PLUGIN_REV = \"2\"");
    wait_for("the replaced plugin's server runs anew", || {
        let now = marked_by_arg(&marker);
        now.len() == 1 && now[0] != first
    });
    let second = marked_by_arg(&marker)[0];
    assert_eq!(env_of(second, "PLUGIN_REV").as_deref(), Some("2"));
    wait_for("the restarted server is served again", || {
        server_state("fast")["state"] == "running"
    });
    let (report, _) = run_python_client(
        "python_call_tools.py",
        &[&gateway.url(), "py__add", r#"{"a": 2, "b": 2}"#],
    );
    assert_eq!(report["calls"]["py__add"]["text"][0], "4", "{report}");

    // Removing it: its server stops and shows why; the others serve on.
    std::fs::remove_dir_all(plugins.join("python-script")).unwrap();
    wait_for("the removed plugin's server stops", || {
        marked_by_arg(&marker).is_empty()
    });
    wait_for("the server shows why it stopped", || {
        let state = server_state("fast");
        state["state"] == "failed"
            && state["error"]
                .as_str()
                .is_some_and(|e| e.contains("unknown server type \"python-script\""))
    });
    assert_eq!(server_state("rs")["state"], "running");

    // Back again: the server that waited for its type starts.
    copy_plugin("");
    wait_for("the waiting server starts once its type is back", || {
        server_state("fast")["state"] == "running" && marked_by_arg(&marker).len() == 1
    });
    drop(gateway);
    assert!(marked_by_arg(&marker).is_empty());
}
