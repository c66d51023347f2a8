//! A server type of a `command` plugin: a supervised child process whose
//! command line its manifest's templates make from a server's settings.

use std::path::PathBuf;

use mcp_core::config::{JsonPath, TransportConfig};
use mcp_core::{ConfigIssue, ServerConfig};
use mcp_plugin_api::{DynamicPlugin, Launch, PluginInfo, PluginOrigin};
use serde_json::{Map, Value};

use crate::manifest::{Manifest, Run, TypeManifest};
use crate::template::{Filled, Template};

/// One type of a loaded plugin, as the registry runs it.
pub(crate) struct LoadedType {
    pub(crate) api: mcp_plugin_api::ApiVersion,
    pub(crate) origin: PluginOrigin,
    pub(crate) grants: Vec<String>,
    pub(crate) dir: String,
    pub(crate) ty: TypeManifest,
}

impl LoadedType {
    pub(crate) fn new(manifest: &Manifest, ty: TypeManifest) -> Self {
        Self {
            api: manifest.api,
            origin: PluginOrigin::Loaded {
                plugin: manifest.name.clone(),
                version: manifest.version.clone(),
                form: manifest.form.name().to_owned(),
                manifest: manifest.path(),
            },
            grants: manifest.grants.describe(),
            dir: manifest.dir.display().to_string(),
            ty,
        }
    }
}

/// A server's settings: the members of its entry that are not common
/// options.
fn settings(server: &ServerConfig) -> Map<String, Value> {
    match server.transport() {
        TransportConfig::Plugin(plugin) => plugin.settings().clone(),
        _ => Map::new(),
    }
}

impl DynamicPlugin for LoadedType {
    fn info(&self) -> PluginInfo {
        PluginInfo::new(self.ty.name.clone(), self.origin.clone())
            .api_version(self.api)
            .aliases(self.ty.aliases.clone())
            .capabilities(self.ty.capabilities.clone())
            .description(self.ty.description.clone())
            .grants(self.grants.clone())
            .settings_schema(self.ty.schema.clone())
    }

    fn settings_issues(&self, server: &ServerConfig) -> Vec<ConfigIssue> {
        let settings = Value::Object(settings(server));
        let base = JsonPath::from(server.path());
        self.ty
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
            .collect()
    }

    fn launch(&self, server: &ServerConfig) -> Result<Launch, mcp_plugin_api::Error> {
        if let Some(issue) = self.settings_issues(server).into_iter().next() {
            return Err(mcp_plugin_api::Error::invalid_config(format!(
                "{}: {}",
                issue.path(),
                issue.message()
            )));
        }
        let Run::Command {
            command,
            args,
            env,
            cwd,
        } = &self.ty.run
        else {
            return Err(mcp_plugin_api::Error::invalid_config(format!(
                "server `{}`: the `{}` type is not a command type",
                server.id(),
                self.ty.name
            )));
        };
        let values = with_defaults(settings(server), &self.ty.schema);
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
