//! The plugins a command runs on: those compiled in, and those of the
//! plugins directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcp_core::ManagerConfig;
use mcp_plugin_api::PluginRegistry;

/// The plugins commands run on: the compiled-in registry, and where the
/// command line says run-time plugins are (`--plugins-dir`).
#[derive(Debug, Clone)]
pub(crate) struct Plugins {
    pub(crate) base: Arc<PluginRegistry>,
    pub(crate) dir: Option<PathBuf>,
    /// What the plugins directory held when it was last loaded.
    pub(crate) loaded: Arc<std::sync::Mutex<mcp_plugin_host::Fingerprint>>,
}

impl Plugins {
    /// The compiled-in plugins and those of the plugins directory (the
    /// command line's, else `config`'s, else the default), with what could
    /// not be loaded.
    pub(crate) fn load(&self, config: Option<&ManagerConfig>) -> mcp_control::WithPlugins {
        let loaded = mcp_control::with_plugins(&self.base, self.dir.as_deref(), config);
        *self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded.fingerprint.clone();
        loaded
    }

    /// Whether the plugins directory `dir` changed since it was last
    /// loaded.
    pub(crate) fn changed(&self, dir: Option<&Path>) -> bool {
        let now = dir
            .map(mcp_plugin_host::Fingerprint::of)
            .unwrap_or_default();
        *self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            != now
    }

    /// The registry `config`'s servers run on; the plugins that could not
    /// be loaded are printed to stderr as warnings.
    pub(crate) fn registry(&self, config: Option<&ManagerConfig>) -> Arc<PluginRegistry> {
        let loaded = self.load(config);
        for problem in &loaded.problems {
            eprintln!("warning: {problem}");
        }
        Arc::new(loaded.registry)
    }
}
