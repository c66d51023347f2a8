//! The registry a config's servers run on: the plugins compiled in, plus
//! the plugins of the plugins directory.

use std::path::{Path, PathBuf};

use mcp_core::ManagerConfig;
use mcp_plugin_api::PluginRegistry;

/// A registry with the run-time plugins added, and what could not be.
#[derive(Debug)]
pub struct WithPlugins {
    /// The compiled-in plugins and every run-time plugin that loaded.
    pub registry: PluginRegistry,
    /// Where run-time plugins were looked up, if anywhere.
    pub dir: Option<PathBuf>,
    /// The plugins (or the directory) that could not be loaded, each
    /// naming the plugin and its path; the others loaded.
    pub problems: Vec<mcp_plugin_host::Error>,
    /// What the directory held just before it was read: a later
    /// fingerprint that differs means it changed since.
    pub fingerprint: mcp_plugin_host::Fingerprint,
}

/// `base` with the plugins of the plugins directory: `dir` when given (the
/// command line's `--plugins-dir`), else the config's
/// `mcpManager.pluginsDir`, else the default
/// ([`mcp_plugin_host::default_plugins_dir`]), which may be absent without
/// a problem; a directory that was asked for and cannot be read is one.
#[must_use]
pub fn with_plugins(
    base: &PluginRegistry,
    dir: Option<&Path>,
    config: Option<&ManagerConfig>,
) -> WithPlugins {
    let mut registry = base.clone();
    let asked = dir
        .map(Path::to_owned)
        .or_else(|| config.and_then(ManagerConfig::plugins_dir));
    let said = asked.is_some();
    let Some(dir) = asked.or_else(mcp_plugin_host::default_plugins_dir) else {
        return WithPlugins {
            registry,
            dir: None,
            problems: Vec::new(),
            fingerprint: mcp_plugin_host::Fingerprint::default(),
        };
    };
    registry.set_plugins_dir(&dir);
    let fingerprint = mcp_plugin_host::Fingerprint::of(&dir);
    let mut problems = Vec::new();
    if said || dir.exists() {
        match mcp_plugin_host::load_dir(&dir) {
            Ok(loaded) => {
                problems = loaded.problems;
                problems.extend(mcp_plugin_host::register(&mut registry, &loaded.manifests));
            }
            Err(error) => problems.push(error),
        }
    }
    WithPlugins {
        registry,
        dir: Some(dir),
        problems,
        fingerprint,
    }
}
