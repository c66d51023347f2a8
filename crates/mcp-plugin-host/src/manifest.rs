//! A plugin's manifest, `plugin.toml`: what the plugin is, which server
//! types it adds, the JSON Schema of each type's settings, how each type's
//! servers run, and what the plugin may touch.
//!
//! ```toml
//! name = "python-tools"          # the plugin: letters, digits, `-`, `_`
//! version = "1.0.0"              # the plugin's own version
//! api = "2.1"                    # the plugin API it was written for
//! kind = "command"               # "command" or "wasm"
//! description = "Python MCP servers from PyPI"
//!
//! [types.uvx]                    # a server type it adds
//! description = "A server from PyPI, run by uvx"
//! aliases = ["uv"]
//! capabilities = ["instances"]   # several instances may run side by side
//! command = "uvx"                # a command plugin's template (see below)
//! args = ["{package}", "{args}"]
//! env = { UV_NO_PROGRESS = "1" }
//! settings = { type = "object", required = ["package"], additionalProperties = false, properties = { package = { type = "string" }, args = { type = "array", items = { type = "string" }, default = [] } } }
//! ```
//!
//! `settings` is a JSON Schema written as TOML, or the name of a JSON
//! file beside the manifest that holds one; without it a type takes no
//! settings. The templates' placeholders (see the `template` rules in the
//! crate docs) must name properties of that schema, or `plugin_dir`.
//! A `wasm` plugin names its component (`component = "server.wasm"`) in
//! each type instead of a command, and may be granted access:
//!
//! ```toml
//! [grants]                       # nothing is granted that is not named
//! fs = [{ path = "/srv/data" }, { path = "/tmp/scratch", write = true }]
//! env = ["HOME"]                 # its value comes from mcp-manager's environment
//! memory_mib = 64                # 128 unless said
//!
//! [limits]                       # optional
//! timeout_ms = 5000              # per message, 30 000 unless said
//! fuel = 1_000_000_000           # per message, about one unit per instruction
//! instances = 4                  # messages served at once per server
//! ```
//!
//! A server's config entry may narrow the grants with a `grants` member
//! of the same form (see [`crate::grants`]); outgoing HTTP is not
//! offered, so a wasm plugin asking for `http` hosts is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jsonschema::Validator;
use mcp_plugin_api::{ApiVersion, Capability};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::template::{PLUGIN_DIR, Template};

/// The manifest's file name in a plugin's folder.
pub const MANIFEST: &str = "plugin.toml";

/// How a plugin's servers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginForm {
    /// A child process built from a command template: no code, a manifest.
    Command,
    /// A WebAssembly component run inside the manager.
    Wasm,
}

impl PluginForm {
    /// Its name in manifests and listings.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Wasm => "wasm",
        }
    }
}

/// Access to a folder.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsGrant {
    /// The folder, absolute.
    pub path: PathBuf,
    /// Whether it may be written too (read-only unless said).
    #[serde(default)]
    pub write: bool,
}

/// What a plugin may touch beyond its own memory (`[grants]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Folders it may read (or write).
    #[serde(default)]
    pub fs: Vec<FsGrant>,
    /// Environment variables it may read.
    #[serde(default)]
    pub env: Vec<String>,
    /// Hosts it may send HTTP requests to.
    #[serde(default)]
    pub http: Vec<String>,
    /// The most memory it may use, in MiB.
    pub memory_mib: Option<u32>,
}

/// How much one wasm server may use per message (`[limits]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The longest one message may take, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// The most fuel one message may burn.
    pub fuel: Option<u64>,
    /// How many messages one server serves at once.
    pub instances: Option<usize>,
}

impl Limits {
    /// Each limit set as a short phrase, for listings.
    #[must_use]
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.timeout_ms.map(|ms| format!("timeout {ms} ms")));
        out.extend(self.fuel.map(|fuel| format!("fuel {fuel}")));
        out.extend(self.instances.map(|n| format!("instances {n}")));
        out
    }
}

impl Grants {
    /// Each grant as a short phrase, for listings.
    #[must_use]
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .fs
            .iter()
            .map(|fs| {
                let mode = if fs.write { "read-write" } else { "read-only" };
                format!("fs {} ({mode})", fs.path.display())
            })
            .collect();
        out.extend(self.env.iter().map(|name| format!("env {name}")));
        out.extend(self.http.iter().map(|host| format!("http {host}")));
        out.extend(self.memory_mib.map(|mib| format!("memory {mib} MiB")));
        out
    }

    fn is_empty(&self) -> bool {
        self.describe().is_empty()
    }
}

/// How one server type's servers run.
#[derive(Clone, Debug)]
pub(crate) enum Run {
    /// A child process.
    Command {
        command: Template,
        args: Vec<Template>,
        env: BTreeMap<String, Template>,
        cwd: Option<Template>,
    },
    /// A component in the plugin's folder.
    Wasm { component: PathBuf },
}

/// One server type a plugin adds.
#[derive(Clone, Debug)]
pub struct TypeManifest {
    /// The `type` server entries name.
    pub name: String,
    /// What it is, for listings.
    pub description: Option<String>,
    /// Other spellings of it.
    pub aliases: Vec<String>,
    /// What its servers are and can do.
    pub capabilities: Vec<Capability>,
    /// The JSON Schema of its settings.
    pub schema: Value,
    pub(crate) validator: std::sync::Arc<Validator>,
    pub(crate) run: Run,
}

impl TypeManifest {
    /// A wasm type's component file; `None` for a command type.
    #[must_use]
    pub fn component(&self) -> Option<&Path> {
        match &self.run {
            Run::Wasm { component } => Some(component),
            Run::Command { .. } => None,
        }
    }
}

/// A parsed and checked `plugin.toml`.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The plugin's name.
    pub name: String,
    /// Its own version.
    pub version: String,
    /// The plugin API it was written for.
    pub api: ApiVersion,
    /// How its servers run.
    pub form: PluginForm,
    /// What it is, for listings.
    pub description: Option<String>,
    /// Its folder.
    pub dir: PathBuf,
    /// The server types it adds, by name.
    pub types: Vec<TypeManifest>,
    /// What it may touch.
    pub grants: Grants,
    /// How much it may use.
    pub limits: Limits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    api: String,
    kind: String,
    description: Option<String>,
    #[serde(default)]
    types: BTreeMap<String, RawType>,
    #[serde(default)]
    grants: Grants,
    #[serde(default)]
    limits: Limits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    description: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    capabilities: Vec<String>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    component: Option<String>,
    settings: Option<toml::Value>,
}

impl Manifest {
    /// Reads `dir/plugin.toml`.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or [`Manifest::parse`]'s.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::new(
                ErrorKind::Unreadable,
                None,
                &path,
                format!("cannot be read: {e}"),
            )
        })?;
        Self::parse(&text, dir)
    }

    /// Parses the text of the manifest of the plugin in `dir` and checks
    /// it: the fields, the API version's form, each type's schema (it must
    /// compile) and templates (each placeholder a property of the schema).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Manifest`] naming the plugin (once its name is known)
    /// and what is wrong, with the line for a TOML error.
    pub fn parse(text: &str, dir: &Path) -> Result<Self, Error> {
        let path = dir.join(MANIFEST);
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::Manifest,
                None,
                &path,
                e.to_string().trim_end().to_owned(),
            )
        })?;
        let name = raw.name.clone();
        let fail = |message: String| Error::new(ErrorKind::Manifest, Some(&name), &path, message);
        if !is_name(&raw.name) {
            return Err(fail(format!(
                "`{}` is not a plugin name: use letters, digits, `-` and `_`",
                raw.name
            )));
        }
        if raw.version.trim().is_empty() {
            return Err(fail("`version` is empty".to_owned()));
        }
        let api = parse_api(&raw.api).ok_or_else(|| {
            fail(format!(
                "`api = \"{}\"` is not a plugin API version: write MAJOR.MINOR, e.g. \"{}\"",
                raw.api,
                mcp_plugin_api::PLUGIN_API_VERSION
            ))
        })?;
        let form = match raw.kind.as_str() {
            "command" => PluginForm::Command,
            "wasm" => PluginForm::Wasm,
            other => {
                return Err(fail(format!(
                    "`kind = \"{other}\"` is not a kind of plugin: \"command\" or \"wasm\""
                )));
            }
        };
        if form == PluginForm::Command && !raw.grants.is_empty() {
            return Err(fail(
                "a command plugin's servers run as child processes with your rights: `[grants]` apply to wasm plugins only"
                    .to_owned(),
            ));
        }
        if form == PluginForm::Command && raw.limits != Limits::default() {
            return Err(fail(
                "`[limits]` apply to wasm plugins only: a command plugin's servers take the common options (`timeoutMs`, `maxConcurrency`)"
                    .to_owned(),
            ));
        }
        if !raw.grants.http.is_empty() {
            return Err(fail(
                "grants: outgoing HTTP is not offered to wasm plugins (they get no network); remove `http`"
                    .to_owned(),
            ));
        }
        if raw.limits.instances == Some(0) || raw.limits.timeout_ms == Some(0) {
            return Err(fail(
                "limits: `instances` and `timeout_ms` are at least 1".to_owned(),
            ));
        }
        if raw.grants.memory_mib == Some(0) {
            return Err(fail("grants: `memory_mib` is at least 1".to_owned()));
        }
        if let Some(relative) = raw.grants.fs.iter().find(|fs| !fs.path.is_absolute()) {
            return Err(fail(format!(
                "grants: `{}` is not an absolute path",
                relative.path.display()
            )));
        }
        if raw.types.is_empty() {
            return Err(fail(
                "it adds no server type: add a `[types.NAME]` table".to_owned(),
            ));
        }
        let mut types = Vec::new();
        for (type_name, raw_type) in raw.types {
            let ty = parse_type(&type_name, raw_type, form, dir)
                .map_err(|message| fail(format!("type `{type_name}`: {message}")))?;
            types.push(ty);
        }
        Ok(Self {
            name: raw.name,
            version: raw.version,
            api,
            form,
            description: raw.description,
            dir: dir.to_owned(),
            types,
            grants: raw.grants,
            limits: raw.limits,
        })
    }

    /// The manifest file's path.
    #[must_use]
    pub fn path(&self) -> PathBuf {
        self.dir.join(MANIFEST)
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `MAJOR.MINOR`.
fn parse_api(text: &str) -> Option<ApiVersion> {
    let (major, minor) = text.trim().split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some(ApiVersion::new(major.parse().ok()?, minor.parse().ok()?))
}

fn parse_type(
    name: &str,
    raw: RawType,
    form: PluginForm,
    dir: &Path,
) -> Result<TypeManifest, String> {
    if !is_name(name) {
        return Err("a type's name uses letters, digits, `-` and `_`".to_owned());
    }
    if let Some(alias) = raw.aliases.iter().find(|alias| !is_name(alias)) {
        return Err(format!(
            "alias `{alias}`: a type's name uses letters, digits, `-` and `_`"
        ));
    }
    let mut capabilities = vec![match form {
        PluginForm::Command => Capability::ChildProcess,
        PluginForm::Wasm => Capability::InProcess,
    }];
    for capability in &raw.capabilities {
        match capability.as_str() {
            "instances" => capabilities.push(Capability::Instances),
            other => {
                return Err(format!(
                    "`{other}` is not a capability a plugin declares: \"instances\" (several instances side by side)"
                ));
            }
        }
    }
    let schema = match raw.settings {
        None => serde_json::json!({"type": "object", "additionalProperties": false}),
        Some(toml::Value::String(file)) => {
            let path = dir.join(&file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!("its settings schema {} cannot be read: {e}", path.display())
            })?;
            serde_json::from_str(&text)
                .map_err(|e| format!("its settings schema {} is not JSON: {e}", path.display()))?
        }
        Some(table @ toml::Value::Table(_)) => serde_json::to_value(table)
            .map_err(|e| format!("its settings schema cannot be read as JSON: {e}"))?,
        Some(other) => {
            return Err(format!(
                "`settings` must be a JSON Schema (a table) or the name of a JSON file, not a {}",
                other.type_str()
            ));
        }
    };
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| format!("its settings schema is not a valid JSON Schema: {e}"))?;
    let properties: Vec<&str> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let template = |what: &str, text: &str| -> Result<Template, String> {
        let template = Template::parse(text).map_err(|e| format!("{what}: {e}"))?;
        if let Some(unknown) = template
            .settings()
            .find(|s| *s != PLUGIN_DIR && !properties.contains(s))
        {
            return Err(format!(
                "{what} uses `{{{unknown}}}`, which is not a property of its settings schema ({})",
                if properties.is_empty() {
                    "it has none".to_owned()
                } else {
                    format!("it has {}", properties.join(", "))
                }
            ));
        }
        Ok(template)
    };
    let run = match form {
        PluginForm::Command => {
            if raw.component.is_some() {
                return Err(
                    "`component` is for wasm plugins; a command plugin has a `command`".to_owned(),
                );
            }
            let command = raw
                .command
                .as_deref()
                .ok_or_else(|| "a command plugin's type needs a `command`".to_owned())?;
            Run::Command {
                command: template("command", command)?,
                args: raw
                    .args
                    .iter()
                    .enumerate()
                    .map(|(i, arg)| template(&format!("args[{i}]"), arg))
                    .collect::<Result<_, _>>()?,
                env: raw
                    .env
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), template(&format!("env.{key}"), value)?)))
                    .collect::<Result<_, String>>()?,
                cwd: raw
                    .cwd
                    .as_deref()
                    .map(|cwd| template("cwd", cwd))
                    .transpose()?,
            }
        }
        PluginForm::Wasm => {
            if raw.command.is_some()
                || !raw.args.is_empty()
                || !raw.env.is_empty()
                || raw.cwd.is_some()
            {
                return Err("`command`, `args`, `env` and `cwd` are for command plugins; a wasm plugin names its `component`".to_owned());
            }
            let component = raw.component.ok_or_else(|| {
                "a wasm plugin's type needs a `component` (a .wasm file in its folder)".to_owned()
            })?;
            Run::Wasm {
                component: dir.join(component),
            }
        }
    };
    Ok(TypeManifest {
        name: name.to_owned(),
        description: raw.description,
        aliases: raw.aliases,
        capabilities,
        schema,
        validator: std::sync::Arc::new(validator),
        run,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const UVX: &str = r#"
name = "python-tools"
version = "1.0.0"
api = "2.1"
kind = "command"

[types.uvx]
command = "uvx"
args = ["{package}", "{args}"]
capabilities = ["instances"]
settings = { type = "object", required = ["package"], properties = { package = { type = "string" }, args = { type = "array", items = { type = "string" } } } }
"#;

    fn parse(text: &str) -> Result<Manifest, Error> {
        Manifest::parse(text, Path::new("/plugins/p"))
    }

    #[test]
    fn a_command_manifest_is_read() {
        let manifest = parse(UVX).unwrap();
        assert_eq!(manifest.name, "python-tools");
        assert_eq!(manifest.api, ApiVersion::new(2, 1));
        assert_eq!(manifest.form, PluginForm::Command);
        let ty = &manifest.types[0];
        assert_eq!(ty.name, "uvx");
        assert_eq!(
            ty.capabilities,
            [Capability::ChildProcess, Capability::Instances]
        );
        assert_eq!(ty.schema["required"], serde_json::json!(["package"]));
    }

    #[test]
    fn what_is_wrong_is_named() {
        let cases = [
            (
                UVX.replace("api = \"2.1\"", "api = \"two\""),
                "is not a plugin API version",
            ),
            (
                UVX.replace("kind = \"command\"", "kind = \"dll\""),
                "is not a kind of plugin",
            ),
            (
                UVX.replace("{args}", "{argz}"),
                "uses `{argz}`, which is not a property",
            ),
            (UVX.replace("command = \"uvx\"\n", ""), "needs a `command`"),
            (
                UVX.replace("\"instances\"", "\"teleport\""),
                "is not a capability",
            ),
            (
                UVX.replace("type = \"object\"", "type = 5"),
                "not a valid JSON Schema",
            ),
            (
                UVX.replace("version = \"1.0.0\"", "version = \"1.0.0\"\nsurprise = 1"),
                "unknown field `surprise`",
            ),
            (
                format!("{UVX}\n[grants]\nenv = [\"HOME\"]\n"),
                "apply to wasm plugins only",
            ),
            ("name = \"x\"\n[".to_owned(), "line 2"),
        ];
        for (text, says) in cases {
            let error = parse(&text).unwrap_err();
            assert!(error.to_string().contains(says), "{says}: {error}");
            assert!(
                error.to_string().contains("/plugins/p/plugin.toml"),
                "{error}"
            );
        }
        let error = parse(&UVX.replace("{args}", "{argz}")).unwrap_err();
        assert!(
            error.to_string().contains("plugin `python-tools`"),
            "{error}"
        );
    }

    #[test]
    fn a_wasm_manifest_names_its_component_and_grants() {
        let text = r#"
name = "w"
version = "0.1.0"
api = "2.1"
kind = "wasm"
[types.w]
component = "w.wasm"
[grants]
fs = [{ path = "/srv", write = true }]
env = ["HOME"]
memory_mib = 32
"#;
        let manifest = parse(text).unwrap();
        assert_eq!(manifest.form, PluginForm::Wasm);
        assert_eq!(
            manifest.grants.describe(),
            ["fs /srv (read-write)", "env HOME", "memory 32 MiB"]
        );
        let error =
            parse(&text.replace("env = [", "http = [\"example.com\"]\nenv = [")).unwrap_err();
        assert!(
            error.to_string().contains("outgoing HTTP is not offered"),
            "{error}"
        );
        let limited = parse(&format!(
            "{text}[limits]\ntimeout_ms = 500\ninstances = 2\n"
        ))
        .unwrap();
        assert_eq!(limited.limits.describe(), ["timeout 500 ms", "instances 2"]);
        let error = parse(&format!("{text}[limits]\ninstances = 0\n")).unwrap_err();
        assert!(error.to_string().contains("at least 1"), "{error}");
        let error = parse(&format!("{UVX}\n[limits]\nfuel = 5\n")).unwrap_err();
        assert!(error.to_string().contains("wasm plugins only"), "{error}");
        let error = parse(&text.replace("/srv", "srv")).unwrap_err();
        assert!(
            error.to_string().contains("not an absolute path"),
            "{error}"
        );
    }
}
