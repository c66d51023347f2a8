//! Hot reload: `serve --config FILE` watches the file and applies its
//! changes to the running gateway.
//!
//! The file is read again when its content changes (looked at every
//! second; editors that replace the file are fine) or on SIGHUP. A file
//! that does not load or check is rejected with every problem logged, and
//! the running servers stay as they were. Otherwise, server by server:
//!
//! - gone (or now disabled): taken out of the gateway first, so no new
//!   request reaches it, then stopped after its requests in flight finish
//!   (up to its request timeout);
//! - new: started, and added to the gateway once running (one that fails to
//!   start is logged and left out);
//! - changed: taken out, drained and stopped, then started with its new
//!   settings and put back;
//! - unchanged: left alone, its processes and sessions untouched.
//!
//! Every client session is then told which lists changed. `mcpManager`
//! options (separator, limits) apply at the next start; a change to them
//! is logged as such. A server deployed through the admin API runs until
//! undeployed, or until the file is applied again: the file is the
//! source of truth.
//!
//! The plugins directory is watched the same way (the names, sizes and
//! times of the files of its plugin folders): when it changes, the plugins
//! are loaded again and the config applied with them. A plugin added
//! serves its types at once (servers of the config that waited for one
//! start); one replaced is swapped in once the servers it runs have been
//! drained and stopped, which are then started through it; one removed has
//! its servers drained and stopped, shown as failed with the reason.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_control::Control;
use mcp_core::ManagerConfig;
use mcp_plugin_api::PluginRegistry;

use crate::cli::registries::Plugins;

/// How often the file is looked at.
const POLL: Duration = Duration::from_secs(1);

/// Watches the config file at `source` (if any) and the plugins
/// directory until `stop` resolves, having `control` apply each new
/// version of them.
pub(crate) async fn watch(
    source: Option<PathBuf>,
    plugins: Plugins,
    control: Control,
    mut config: ManagerConfig,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut seen = source.as_ref().and_then(|path| std::fs::read(path).ok());
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hangup = hangups();
    loop {
        let forced = tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => false,
            Some(()) = next_hangup(&mut hangup) => true,
        };
        let plugins_changed = plugins.changed(control.registry().plugins_dir());
        let Some(path) = &source else {
            if plugins_changed || forced {
                reload_plugins(&plugins, &control, &config).await;
            }
            continue;
        };
        let now = std::fs::read(path);
        if !forced && !plugins_changed && now.as_ref().ok() == seen.as_ref() {
            continue;
        }
        if now.as_ref().ok() == seen.as_ref() && !forced {
            // Only the plugins changed: the config stays as it was checked.
            reload_plugins(&plugins, &control, &config).await;
            continue;
        }
        seen = now.as_ref().ok().cloned();
        tracing::info!("reading {} again", path.display());
        let checked = now
            .map_err(|error| format!("cannot read {}: {error}", path.display()))
            .and_then(|bytes| check(&plugins, path, bytes));
        match checked {
            Err(problems) => {
                eprintln!(
                    "mcp-manager: config reload rejected, still running the previous one: {problems}"
                );
                if plugins_changed {
                    reload_plugins(&plugins, &control, &config).await;
                }
            }
            Ok((new, registry)) => {
                if new.gateway() != config.gateway() {
                    tracing::warn!(
                        "`mcpManager` changed in {}: it applies at the next start",
                        path.display()
                    );
                }
                config = new.clone();
                control.apply_with(new, registry).await;
            }
        }
    }
}

/// The plugins directory changed: the plugins loaded again, the config
/// applied with them (the servers of a plugin that is gone stop and show
/// why; they are not a reason to reject anything).
async fn reload_plugins(plugins: &Plugins, control: &Control, config: &ManagerConfig) {
    eprintln!("mcp-manager: the plugins changed; loading them again");
    let registry = plugins.registry(Some(config));
    control.apply_with(config.clone(), registry).await;
}

/// Checks `bytes`, the config file at `path`, against the plugins it
/// names: the config and its registry, or every problem as one text.
fn check(
    plugins: &Plugins,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<(ManagerConfig, Arc<PluginRegistry>), String> {
    let config = ManagerConfig::from_file_bytes(path, bytes).map_err(|e| e.to_string())?;
    let registry = plugins.registry(Some(&config));
    mcp_control::check_plugins(&registry, config)
        .map(|config| (config, registry))
        .map_err(|error| error.to_string())
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangups() -> Hangups {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

/// The next SIGHUP; never, where there are none.
async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    #[cfg(unix)]
    if let Some(signal) = hangups {
        return signal.recv().await;
    }
    let _ = hangups;
    std::future::pending().await
}
