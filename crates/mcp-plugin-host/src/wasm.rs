//! A `wasm` plugin's server type: its component, checked when the plugin
//! is loaded and compiled when its first server starts, and the sandbox
//! each server gets from its grants and limits.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use mcp_plugin_api::Launch;
use mcp_plugin_wasm::{ComponentFile, DirGrant, Sandbox, WasmServer};

use crate::grants::DEFAULT_MEMORY_MIB;
use crate::manifest::{Grants, Limits, Manifest};

/// One wasm type: its component file, shared by all its servers.
pub(crate) struct WasmType {
    file: Arc<ComponentFile>,
    /// Its servers' name in logs, which also tells one build of the
    /// component from another (so a replaced file restarts its servers).
    name: String,
}

impl WasmType {
    /// The type `type_name` of `manifest`'s plugin, whose component is at
    /// `component`.
    ///
    /// # Errors
    ///
    /// The file cannot be read or does not start as a component does.
    pub(crate) fn new(
        manifest: &Manifest,
        type_name: &str,
        component: &Path,
    ) -> Result<Self, mcp_plugin_wasm::Error> {
        // Metering fuel slows every call: only a plugin limited by fuel
        // gets it.
        let file = ComponentFile::new(&manifest.name, component, manifest.limits.fuel.is_some());
        file.check()?;
        let stamp = std::fs::metadata(component)
            .map(|meta| {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .unwrap_or_default();
                format!("{} bytes, {}", meta.len(), modified.as_nanos())
            })
            .unwrap_or_default();
        Ok(Self {
            file: Arc::new(file),
            name: format!(
                "wasm {}/{type_name} {} ({stamp})",
                manifest.name, manifest.version
            ),
        })
    }

    /// A server of this type in the sandbox `grants` and `limits` make.
    ///
    /// # Errors
    ///
    /// A granted folder cannot be opened.
    pub(crate) fn launch(&self, grants: &Grants, limits: &Limits) -> Result<Launch, String> {
        let server = WasmServer::new(self.file.clone(), sandbox(grants, limits))
            .map_err(|e| e.to_string())?;
        Ok(Launch::in_process(self.name.clone(), Arc::new(server)))
    }
}

/// The sandbox of grants and limits: the environment variables granted
/// get their values from this process's environment (one that is not set
/// is left out).
fn sandbox(grants: &Grants, limits: &Limits) -> Sandbox {
    Sandbox {
        dirs: grants
            .fs
            .iter()
            .map(|fs| DirGrant {
                path: fs.path.clone(),
                write: fs.write,
            })
            .collect(),
        env: grants
            .env
            .iter()
            .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
            .collect(),
        memory_bytes: u64::from(grants.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB)) << 20,
        fuel: limits.fuel,
        timeout: limits
            .timeout_ms
            .map_or(Sandbox::DEFAULT_TIMEOUT, Duration::from_millis),
        instances: limits.instances.unwrap_or(Sandbox::DEFAULT_INSTANCES),
    }
}
