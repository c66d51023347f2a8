//! The plugins directory: one folder per plugin, each with its
//! `plugin.toml`, and the registration of what they add.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use mcp_plugin_api::PluginRegistry;

use crate::error::{Error, ErrorKind};
use crate::loaded::LoadedType;
use crate::manifest::{MANIFEST, Manifest, PluginForm};

/// Where plugins are looked up when neither the command line nor the
/// config says: `$XDG_DATA_HOME/mcp-manager/plugins`, else
/// `~/.local/share/mcp-manager/plugins`; `None` without a home.
#[must_use]
pub fn default_plugins_dir() -> Option<PathBuf> {
    Some(mcp_core::user_data_dir()?.join("plugins"))
}

/// What a plugins directory held.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The plugins whose manifests were read, by folder name.
    pub manifests: Vec<Manifest>,
    /// The folders that could not be read as plugins, each saying why.
    pub problems: Vec<Error>,
}

/// Every plugin in `dir`: each folder in it with a `plugin.toml`, in name
/// order (files beside them are left alone). One plugin's trouble is
/// reported in [`Loaded::problems`] and the others load.
///
/// # Errors
///
/// [`ErrorKind::Unreadable`] when `dir` itself cannot be read (it does not
/// exist, or is not a readable folder).
pub fn load_dir(dir: &Path) -> Result<Loaded, Error> {
    let unreadable = |e: std::io::Error| {
        Error::new(
            ErrorKind::Unreadable,
            None,
            dir,
            format!("the plugins directory cannot be read: {e}"),
        )
    };
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    let mut loaded = Loaded::default();
    for folder in folders {
        if !folder.join(MANIFEST).exists() {
            loaded.problems.push(Error::new(
                ErrorKind::Manifest,
                None,
                &folder,
                format!("a folder without a {MANIFEST}: not a plugin"),
            ));
            continue;
        }
        match Manifest::load(&folder) {
            Ok(manifest) => loaded.manifests.push(manifest),
            Err(error) => loaded.problems.push(error),
        }
    }
    Ok(loaded)
}

/// Adds the server types of `manifests` to `registry`, each plugin whole or
/// not at all; the plugins it refuses come back, each saying why (built
/// for another plugin API, a type another plugin serves, a kind this build
/// cannot run, a component file that is missing or not a component).
pub fn register(registry: &mut PluginRegistry, manifests: &[Manifest]) -> Vec<Error> {
    let mut refused = Vec::new();
    for manifest in manifests {
        let path = manifest.path();
        if manifest.form == PluginForm::Wasm && !cfg!(feature = "wasm") {
            refused.push(Error::new(
                ErrorKind::Unsupported,
                Some(&manifest.name),
                &path,
                "wasm plugins cannot run in this build (built without the `wasm` feature); its types are left out".to_owned(),
            ));
            continue;
        }
        let host = mcp_plugin_api::PLUGIN_API_VERSION;
        if !manifest.api.runs_on(host) {
            let needs = if manifest.api.major == host.major {
                "it needs a newer mcp-manager"
            } else {
                "it needs a version of the plugin written for this one"
            };
            refused.push(Error::new(
                ErrorKind::Refused,
                Some(&manifest.name),
                &path,
                format!(
                    "written for plugin API {}, but this mcp-manager has {host}: {needs}",
                    manifest.api
                ),
            ));
            continue;
        }
        let types: Result<Vec<LoadedType>, Error> = manifest
            .types
            .iter()
            .map(|ty| LoadedType::new(manifest, ty.clone()))
            .collect();
        let types = match types {
            Ok(types) => types,
            Err(error) => {
                refused.push(error);
                continue;
            }
        };
        let mut trial = registry.clone();
        let added = types
            .into_iter()
            .try_for_each(|ty| trial.register_dynamic(Arc::new(ty)));
        match added {
            Ok(()) => *registry = trial,
            Err(error) => {
                let message = match error.hint() {
                    Some(hint) => format!("{}; {hint}", error.message()),
                    None => error.message().to_owned(),
                };
                refused.push(Error::new(
                    ErrorKind::Refused,
                    Some(&manifest.name),
                    &path,
                    message,
                ));
            }
        }
    }
    refused
}

/// What a plugins directory holds, as far as noticing a change goes: each
/// file of its plugin folders (two levels down) with its size and time.
/// Taken before loading, compared later: any difference means load again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

impl Fingerprint {
    /// The fingerprint of `dir` now (empty when it cannot be read).
    #[must_use]
    pub fn of(dir: &Path) -> Self {
        fn walk(dir: &Path, depth: u8, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                if meta.is_dir() {
                    if depth > 0 {
                        walk(&path, depth - 1, out);
                    }
                } else {
                    out.push((path, meta.len(), meta.modified().ok()));
                }
            }
        }
        let mut files = Vec::new();
        walk(dir, 2, &mut files);
        files.sort();
        Self(files)
    }
}

#[cfg(all(test, not(feature = "wasm")))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn without_the_wasm_feature_wasm_plugins_are_refused_by_name() {
        let text = "name = \"w\"\nversion = \"1\"\napi = \"2.0\"\nkind = \"wasm\"\n[types.w]\ncomponent = \"w.wasm\"\n";
        let manifest = Manifest::parse(text, Path::new("/plugins/w")).unwrap();
        let mut registry = PluginRegistry::new();
        let refused = register(&mut registry, &[manifest]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].kind(), ErrorKind::Unsupported);
        assert!(
            refused[0].to_string().contains("plugin `w`"),
            "{}",
            refused[0]
        );
        assert!(registry.plugin("w").is_err());
    }
}
