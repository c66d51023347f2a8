//! A server type of a loaded plugin as the registry runs it: a `command`
//! type's supervised child process, whose command line its manifest's
//! templates make from a server's settings, or a `wasm` type's component
//! run in-process in the sandbox its grants allow.

use std::path::PathBuf;

use mcp_core::config::{JsonPath, TransportConfig};
use mcp_core::{ConfigIssue, ServerConfig};
use mcp_plugin_api::{DynamicPlugin, Launch, PluginInfo, PluginOrigin};
use serde_json::{Map, Value};

use crate::error::Error;
#[cfg(feature = "wasm")]
use crate::error::ErrorKind;
use crate::grants;
use crate::manifest::{Grants, Limits, Manifest, PluginForm, Run, TypeManifest};
use crate::template::{Filled, Template};

/// One type of a loaded plugin, as the registry runs it.
pub(crate) struct LoadedType {
    pub(crate) api: mcp_plugin_api::ApiVersion,
    pub(crate) origin: PluginOrigin,
    pub(crate) form: PluginForm,
    pub(crate) granted: Grants,
    pub(crate) limits: Limits,
    pub(crate) dir: String,
    pub(crate) ty: TypeManifest,
    /// A wasm type's component, checked when the plugin was loaded.
    #[cfg(feature = "wasm")]
    pub(crate) wasm: Option<crate::wasm::WasmType>,
}

impl LoadedType {
    /// The type `ty` of `manifest`'s plugin.
    ///
    /// # Errors
    ///
    /// A wasm type whose component file is missing or is not a component.
    pub(crate) fn new(manifest: &Manifest, ty: TypeManifest) -> Result<Self, Error> {
        #[cfg(feature = "wasm")]
        let wasm = match ty.component() {
            Some(component) => Some(
                crate::wasm::WasmType::new(manifest, &ty.name, component).map_err(|e| {
                    Error::new(
                        ErrorKind::Component,
                        Some(&manifest.name),
                        e.path(),
                        format!("type `{}`, its component: {}", ty.name, e.message()),
                    )
                })?,
            ),
            None => None,
        };
        Ok(Self {
            api: manifest.api,
            origin: PluginOrigin::Loaded {
                plugin: manifest.name.clone(),
                version: manifest.version.clone(),
                form: manifest.form.name().to_owned(),
                manifest: manifest.path(),
            },
            form: manifest.form,
            granted: manifest.grants.clone(),
            limits: manifest.limits.clone(),
            dir: manifest.dir.display().to_string(),
            ty,
            #[cfg(feature = "wasm")]
            wasm,
        })
    }

    /// A server's settings: the members of its entry that are not common
    /// options (nor, for a wasm type, its `grants`).
    fn settings(&self, server: &ServerConfig) -> Map<String, Value> {
        let mut settings = match server.transport() {
            TransportConfig::Plugin(plugin) => plugin.settings().clone(),
            _ => Map::new(),
        };
        if self.form == PluginForm::Wasm {
            settings.remove(grants::MEMBER);
        }
        settings
    }

    /// A wasm server's grants, its entry's narrowing of its plugin's.
    fn grants(&self, server: &ServerConfig) -> Result<Grants, Vec<ConfigIssue>> {
        let entry = match server.transport() {
            TransportConfig::Plugin(plugin) => plugin.settings().get(grants::MEMBER),
            _ => None,
        };
        grants::narrow(&self.granted, entry, &JsonPath::from(server.path()))
    }

    #[cfg(feature = "wasm")]
    fn launch_wasm(&self, server: &ServerConfig) -> Result<Launch, mcp_plugin_api::Error> {
        let grants = self.grants(server).map_err(|issues| first(&issues))?;
        let wasm = self.wasm.as_ref().ok_or_else(|| {
            mcp_plugin_api::Error::invalid_config(format!(
                "server `{}`: the `{}` type has no component",
                server.id(),
                self.ty.name
            ))
        })?;
        wasm.launch(&grants, &self.limits).map_err(|e| {
            mcp_plugin_api::Error::invalid_config(format!("server `{}`: {}", server.id(), e))
        })
    }

    #[cfg(not(feature = "wasm"))]
    fn launch_wasm(&self, server: &ServerConfig) -> Result<Launch, mcp_plugin_api::Error> {
        Err(mcp_plugin_api::Error::invalid_config(format!(
            "server `{}`: the `{}` type is a wasm plugin's, and wasm plugins cannot run in this build",
            server.id(),
            self.ty.name
        )))
    }
}

/// The first of `issues` as an error.
fn first(issues: &[ConfigIssue]) -> mcp_plugin_api::Error {
    let message = issues.first().map_or_else(
        || "its settings are not valid".to_owned(),
        |issue| format!("{}: {}", issue.path(), issue.message()),
    );
    mcp_plugin_api::Error::invalid_config(message)
}

impl DynamicPlugin for LoadedType {
    fn info(&self) -> PluginInfo {
        PluginInfo::new(self.ty.name.clone(), self.origin.clone())
            .api_version(self.api)
            .aliases(self.ty.aliases.clone())
            .capabilities(self.ty.capabilities.clone())
            .description(self.ty.description.clone())
            .grants(
                self.granted
                    .describe()
                    .into_iter()
                    .chain(self.limits.describe())
                    .collect(),
            )
            .settings_schema(self.ty.schema.clone())
    }

    fn settings_issues(&self, server: &ServerConfig) -> Vec<ConfigIssue> {
        let settings = Value::Object(self.settings(server));
        let base = JsonPath::from(server.path());
        let mut issues: Vec<ConfigIssue> = self
            .ty
            .validator
            .iter_errors(&settings)
            .map(|error| {
                let mut path = base.clone();
                for segment in error.instance_path() {
                    path = match segment {
                        jsonschema::paths::LocationSegment::Property(key) => path.key(&key),
                        jsonschema::paths::LocationSegment::Index(index) => path.index(index),
                    };
                }
                let issue = ConfigIssue::new(
                    path.as_str(),
                    format!("{} (the `{}` server type's settings)", error, self.ty.name),
                );
                match hint(&self.ty.schema, error.kind()) {
                    Some(hint) => issue.with_hint(hint),
                    None => issue,
                }
            })
            .collect();
        if self.form == PluginForm::Wasm {
            issues.extend(self.grants(server).err().into_iter().flatten());
        }
        issues
    }

    fn launch(&self, server: &ServerConfig) -> Result<Launch, mcp_plugin_api::Error> {
        let issues = self.settings_issues(server);
        if !issues.is_empty() {
            return Err(first(&issues));
        }
        let Run::Command {
            command,
            args,
            env,
            cwd,
        } = &self.ty.run
        else {
            return self.launch_wasm(server);
        };
        let values = with_defaults(self.settings(server), &self.ty.schema);
        let fail = |what: &str, message: String| {
            mcp_plugin_api::Error::invalid_config(format!(
                "server `{}`: the `{}` type's {what}: {message}",
                server.id(),
                self.ty.name
            ))
        };
        let one =
            |what: &str, template: &Template| -> Result<Option<String>, mcp_plugin_api::Error> {
                match template
                    .fill(&values, &self.dir)
                    .map_err(|e| fail(what, e))?
                {
                    Filled::Absent => Ok(None),
                    Filled::One(text) => Ok(Some(text)),
                    Filled::Many(_) => Err(fail(what, "a list cannot fill it".to_owned())),
                }
            };
        let program = one("command", command)?
            .filter(|program| !program.is_empty())
            .ok_or_else(|| fail("command", "it came out empty".to_owned()))?;
        let mut launch = Launch::stdio(program);
        for (i, arg) in args.iter().enumerate() {
            match arg
                .fill(&values, &self.dir)
                .map_err(|e| fail(&format!("args[{i}]"), e))?
            {
                Filled::Absent => {}
                Filled::One(text) => launch.args.push(text),
                Filled::Many(items) => launch.args.extend(items),
            }
        }
        for (key, value) in env {
            if let Some(value) = one(&format!("env.{key}"), value)? {
                launch.env.insert(key.clone(), value);
            }
        }
        if let Some(cwd) = cwd {
            launch.cwd = one("cwd", cwd)?.map(PathBuf::from);
        }
        Ok(Launch::Stdio(launch))
    }
}

/// `settings` with the schema's defaults for the top-level properties
/// they leave out.
fn with_defaults(mut settings: Map<String, Value>, schema: &Value) -> Map<String, Value> {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, property) in properties {
            if let Some(default) = property.get("default") {
                settings
                    .entry(key.clone())
                    .or_insert_with(|| default.clone());
            }
        }
    }
    settings
}

/// For a setting the schema does not have, the nearest one it has.
fn hint(schema: &Value, kind: &jsonschema::error::ValidationErrorKind) -> Option<String> {
    let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } = kind else {
        return None;
    };
    let known: Vec<&str> = schema
        .get("properties")
        .and_then(Value::as_object)?
        .keys()
        .map(String::as_str)
        .collect();
    unexpected.iter().find_map(|name| {
        mcp_core::config::closest_name(name, &known)
            .map(|close| format!("did you mean \"{close}\"?"))
    })
}
