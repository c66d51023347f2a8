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

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_control::Control;
use mcp_core::ManagerConfig;
use mcp_plugin_api::PluginRegistry;

/// How often the file is looked at.
const POLL: Duration = Duration::from_secs(1);

/// Checks `bytes`, the config file at `path`: the config, or every problem
/// as one text.
fn check(registry: &PluginRegistry, path: &Path, bytes: Vec<u8>) -> Result<ManagerConfig, String> {
    ManagerConfig::from_file_bytes(path, bytes)
        .and_then(|config| mcp_control::check_plugins(registry, config))
        .map_err(|error| error.to_string())
}

/// Watches `path` until `stop` resolves, having `control` apply each new
/// version of it.
pub(crate) async fn watch(
    path: PathBuf,
    control: Control,
    mut config: ManagerConfig,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut seen = std::fs::read(&path).ok();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hangup = hangups();
    loop {
        let forced = tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => false,
            Some(()) = next_hangup(&mut hangup) => true,
        };
        let now = std::fs::read(&path);
        if !forced && now.as_ref().ok() == seen.as_ref() {
            continue;
        }
        seen = now.as_ref().ok().cloned();
        tracing::info!("reading {} again", path.display());
        let checked = now
            .map_err(|error| format!("cannot read {}: {error}", path.display()))
            .and_then(|bytes| check(control.registry(), &path, bytes));
        match checked {
            Err(problems) => {
                eprintln!(
                    "mcp-manager: config reload rejected, still running the previous one: {problems}"
                );
            }
            Ok(new) => {
                if new.gateway() != config.gateway() {
                    tracing::warn!(
                        "`mcpManager` changed in {}: it applies at the next start",
                        path.display()
                    );
                }
                config = new.clone();
                control.apply(new).await;
            }
        }
    }
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
