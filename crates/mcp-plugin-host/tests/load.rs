//! A plugins directory loaded into a registry: the good plugins' types
//! launch as their templates say, the bad ones are reported and left out.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;

use mcp_core::config::ProcessEnv;
use mcp_core::{Launch, ManagerConfig, ServerConfig};
use mcp_plugin_api::PluginRegistry;
use mcp_plugin_host::{ErrorKind, load_dir, register};

const TOOLS: &str = r#"
name = "tools"
version = "0.3.0"
api = "2.0"
kind = "command"

[types.runner]
command = "{interpreter}"
args = ["-u", "{plugin_dir}/server.py", "--port={port}", "{extra}", "{missing}"]
env = { MODE = "{mode}", UNSET = "{missing}" }
cwd = "{plugin_dir}"

[types.runner.settings]
type = "object"
additionalProperties = false
required = ["port"]
properties.interpreter = { type = "string", default = "python3" }
properties.port = { type = "integer", minimum = 1 }
properties.extra = { type = "array", items = { type = "string" } }
properties.mode = { type = "string", enum = ["fast", "safe"], default = "safe" }
properties.missing = { type = "string" }
"#;

fn server(entry: &str) -> ServerConfig {
    let text = format!(r#"{{"mcpServers": {{"s": {entry}}}}}"#);
    ManagerConfig::from_json_str(&text, None, &ProcessEnv)
        .unwrap()
        .servers()[0]
        .clone()
}

fn write(dir: &Path, folder: &str, text: &str) {
    std::fs::create_dir_all(dir.join(folder)).unwrap();
    std::fs::write(dir.join(folder).join("plugin.toml"), text).unwrap();
}

#[test]
fn types_launch_as_their_templates_say_and_bad_plugins_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tools", TOOLS);
    write(dir.path(), "broken", "name = \"broken\"\nkind = [");
    write(
        dir.path(),
        "copycat",
        &TOOLS.replace("name = \"tools\"", "name = \"copycat\""),
    );
    std::fs::write(dir.path().join("notes.md"), "left alone").unwrap();

    let loaded = load_dir(dir.path()).unwrap();
    assert_eq!(loaded.manifests.len(), 2, "{:?}", loaded.problems);
    assert_eq!(loaded.problems.len(), 1);
    assert_eq!(loaded.problems[0].kind(), ErrorKind::Manifest);
    assert!(loaded.problems[0].path().ends_with("broken/plugin.toml"));

    let mut registry = PluginRegistry::new();
    let refused = register(&mut registry, &loaded.manifests);
    // `copycat` comes first by name and takes `runner`; `tools` is refused.
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].plugin(), Some("tools"));
    assert!(
        refused[0].message().contains("claims `runner`"),
        "{}",
        refused[0]
    );

    let launch = registry
        .launch(&server(
            r#"{"type": "runner", "port": 8, "extra": ["a", "b c"]}"#,
        ))
        .unwrap();
    let Launch::Stdio(stdio) = launch else {
        panic!("a child process");
    };
    let plugin_dir = dir.path().join("copycat");
    assert_eq!(stdio.command, "python3");
    assert_eq!(
        stdio.args,
        [
            "-u".to_owned(),
            format!("{}/server.py", plugin_dir.display()),
            "--port=8".to_owned(),
            "a".to_owned(),
            "b c".to_owned(),
        ]
    );
    assert_eq!(stdio.env.get("MODE").map(String::as_str), Some("safe"));
    assert!(!stdio.env.contains_key("UNSET"));
    assert_eq!(stdio.cwd.as_deref(), Some(plugin_dir.as_path()));

    // Settings that do not fit: every problem at its path, and no launch.
    let bad = server(r#"{"type": "runner", "port": 0, "mode": "slow", "colour": 1}"#);
    let mut warnings = Vec::new();
    let issues = registry.config_issues(&bad, &mut warnings);
    let mut paths: Vec<&str> = issues.iter().map(|i| i.path()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        ["mcpServers.s", "mcpServers.s.mode", "mcpServers.s.port"]
    );
    let error = registry.launch(&bad).unwrap_err();
    assert!(error.message().starts_with("mcpServers.s"), "{error}");
}

#[test]
fn a_directory_that_cannot_be_read_is_an_error_naming_it() {
    let error = load_dir(Path::new("/nonexistent/plugins")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unreadable);
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/plugins: the plugins directory cannot be read")
    );
}
