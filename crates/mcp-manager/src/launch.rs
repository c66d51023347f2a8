//! Loading a config and starting its servers through the plugin registry,
//! for the commands that talk to servers (`list`, `call`).

use std::future::Future;
use std::path::Path;

use anyhow::Context;

use mcp_core::{ManagerConfig, ServerConfig};
use mcp_runtime::{McpRuntime, ServerHandle};

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

/// A config loaded and checked against the plugins, or the report of why
/// not (already printed to stderr).
pub(crate) fn load(path: &Path) -> Result<ManagerConfig, u8> {
    let registry = mcp_plugins::default_registry();
    ManagerConfig::load(path)
        .and_then(|config| config.check_servers(|server| registry.config_issue(server)))
        .map_err(|error| {
            eprintln!("error: {error}");
            eprintln!(
                "(run `mcp-manager check --config {}` for details)",
                path.display()
            );
            INVALID
        })
}

/// One server of the config and how starting it went.
pub(crate) struct Started<'c> {
    pub(crate) config: &'c ServerConfig,
    /// `None` for a disabled server.
    pub(crate) handle: Option<Result<ServerHandle, String>>,
}

/// Starts the enabled servers among `servers` side by side and waits until
/// each runs or has failed to start.
pub(crate) async fn start<'c>(
    runtime: &McpRuntime,
    servers: impl Iterator<Item = &'c ServerConfig>,
) -> Vec<Started<'c>> {
    let registry = mcp_plugins::default_registry();
    let mut started = Vec::new();
    let mut pending = Vec::new();
    for config in servers {
        if !config.is_enabled() {
            started.push(Started {
                config,
                handle: None,
            });
            continue;
        }
        let spec = match registry.spec(config) {
            Ok(spec) => spec,
            Err(error) => {
                started.push(Started {
                    config,
                    handle: Some(Err(error.to_string())),
                });
                continue;
            }
        };
        let runtime = runtime.clone();
        pending.push((
            config,
            tokio::spawn(async move { runtime.deploy(spec).await }),
        ));
    }
    for (config, task) in pending {
        let handle = match task.await {
            Ok(Ok(handle)) => Ok(handle),
            Ok(Err(error)) => Err(error.to_string()),
            Err(error) => Err(format!("starting it panicked: {error}")),
        };
        started.push(Started {
            config,
            handle: Some(handle),
        });
    }
    started.sort_by_key(|s| s.config.id().as_str().to_owned());
    started
}
