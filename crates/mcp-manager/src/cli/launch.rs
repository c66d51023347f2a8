//! Loading a config, and running async code from the synchronous command
//! line. (Starting a config's servers is `mcp_control`'s.)

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use mcp_core::ManagerConfig;
use mcp_plugin_api::PluginRegistry;

use super::registries::Plugins;

/// The exit status for a config that is invalid or cannot be read.
pub(crate) const INVALID: u8 = 2;
/// The exit status when a server needed did not start.
pub(crate) const UNAVAILABLE: u8 = 3;

/// Runs `future` to completion on a fresh tokio runtime with two worker
/// threads.
pub(crate) fn run_async<F: Future>(future: F) -> anyhow::Result<F::Output> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2);
    block_on(builder, future)
}

/// Runs `future` on a fresh single-threaded tokio runtime: for work that
/// serves one peer over one pipe (a built-in server on stdio), where
/// handing every message between threads would only add latency.
pub(crate) fn run_async_on_one_thread<F: Future>(future: F) -> anyhow::Result<F::Output> {
    block_on(tokio::runtime::Builder::new_current_thread(), future)
}

/// The one place where the synchronous command line enters async code.
fn block_on<F: Future>(
    mut builder: tokio::runtime::Builder,
    future: F,
) -> anyhow::Result<F::Output> {
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(future))
}

/// What `--connect` names the running gateway it talks to.
pub(crate) const CONNECTED: &str = "gateway";

/// The config a command works on: the file at `path`, or with `connect`
/// one server, the running gateway at that URL (`http://…/mcp` or
/// `unix:PATH`).
pub(crate) fn load_or_connect(
    plugins: &Plugins,
    path: Option<&Path>,
    connect: Option<&str>,
) -> Result<(ManagerConfig, Arc<PluginRegistry>), u8> {
    match (path, connect) {
        (_, Some(url)) => {
            // A gateway is reached by a built-in type: no plugins to load.
            let registry = plugins.base.clone();
            let text = serde_json::json!({"mcpServers": {CONNECTED: {"url": url}}}).to_string();
            let env = |_: &str| None;
            ManagerConfig::from_json_str(&text, None, &env)
                .and_then(|config| mcp_control::check_plugins(&registry, config))
                .map(|config| (config, registry))
                .map_err(|error| {
                    eprintln!("error: --connect {url}: {error}");
                    eprintln!("(give `http://HOST:PORT/mcp` or `unix:/path/to/socket`)");
                    INVALID
                })
        }
        (Some(path), None) => load(plugins, path),
        (None, None) => {
            eprintln!("error: give --config FILE or --connect URL");
            Err(INVALID)
        }
    }
}

/// A config loaded and checked against the plugins (the compiled-in ones
/// and those of the plugins directory), its warnings printed to stderr,
/// with the registry its servers run on; or the report of why not
/// (already printed to stderr).
pub(crate) fn load(
    plugins: &Plugins,
    path: &Path,
) -> Result<(ManagerConfig, Arc<PluginRegistry>), u8> {
    let mut registry = None;
    ManagerConfig::load(path)
        .and_then(|config| {
            let loaded = plugins.registry(Some(&config));
            registry = Some(loaded.clone());
            mcp_control::check_plugins(&loaded, config)
        })
        .map(|config| {
            let registry = registry.unwrap_or_else(|| plugins.base.clone());
            (config, registry)
        })
        .inspect(|(config, _)| {
            let mut err = std::io::stderr().lock();
            for warning in config.warnings() {
                let _ = super::check::issue(path, "warning", warning, &mut err);
            }
        })
        .map_err(|error| {
            eprintln!("error: {error}");
            eprintln!(
                "(run `mcp-manager check --config {}` for details)",
                path.display()
            );
            INVALID
        })
}
