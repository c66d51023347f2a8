//! The registry: which plugin serves which `type`, and how a server's
//! config is launched through it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcp_core::config::TransportConfig;
use mcp_core::{ConfigIssue, Launch, ServerConfig};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};
use crate::{ApiVersion, Capability, DynamicPlugin, McpServerPlugin, PLUGIN_API_VERSION};

/// Where a plugin comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginOrigin {
    /// Compiled into this program.
    BuiltIn,
    /// Loaded at run time from a plugin's folder.
    Loaded {
        /// The plugin's name (one plugin may add several types).
        plugin: String,
        /// The plugin's own version.
        version: String,
        /// How its servers run: `command` or `wasm`.
        form: String,
        /// Its manifest file.
        manifest: PathBuf,
    },
}

impl PluginOrigin {
    /// How its servers run, for listings: `built-in`, `command` or `wasm`.
    #[must_use]
    pub fn form(&self) -> &str {
        match self {
            Self::BuiltIn => "built-in",
            Self::Loaded { form, .. } => form,
        }
    }
}

/// What a registered plugin is, for listings.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PluginInfo {
    /// The `type` it serves.
    pub kind: String,
    /// Other spellings of that `type`.
    pub aliases: Vec<String>,
    /// The API version it was built for.
    pub api_version: ApiVersion,
    /// What its servers are and can do.
    pub capabilities: Vec<Capability>,
    /// Where it comes from.
    pub origin: PluginOrigin,
    /// What it is, when it says.
    pub description: Option<String>,
    /// What it may touch beyond its own memory, each as a short phrase
    /// (`fs /srv/data (read-only)`); empty for a plugin that is granted
    /// nothing, or that runs with the user's rights (built-in and
    /// command plugins: see [`Capability`]).
    pub grants: Vec<String>,
    /// The JSON Schema of its settings, when it publishes one.
    pub settings_schema: Option<Value>,
}

impl PluginInfo {
    /// A plugin serving `kind`, built for this API version, with no
    /// aliases, capabilities, description, grants or schema yet.
    #[must_use]
    pub fn new(kind: impl Into<String>, origin: PluginOrigin) -> Self {
        Self {
            kind: kind.into(),
            aliases: Vec::new(),
            api_version: PLUGIN_API_VERSION,
            capabilities: Vec::new(),
            origin,
            description: None,
            grants: Vec::new(),
            settings_schema: None,
        }
    }

    /// Built for `version`.
    #[must_use]
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.api_version = version;
        self
    }

    /// With these aliases.
    #[must_use]
    pub fn aliases(mut self, aliases: Vec<String>) -> Self {
        self.aliases = aliases;
        self
    }

    /// With these capabilities.
    #[must_use]
    pub fn capabilities(mut self, capabilities: Vec<Capability>) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// With this description.
    #[must_use]
    pub fn description(mut self, description: Option<String>) -> Self {
        self.description = description;
        self
    }

    /// With these grants.
    #[must_use]
    pub fn grants(mut self, grants: Vec<String>) -> Self {
        self.grants = grants;
        self
    }

    /// With this settings schema.
    #[must_use]
    pub fn settings_schema(mut self, schema: Value) -> Self {
        self.settings_schema = Some(schema);
        self
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.kind.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// A plugin with its `Config` type erased, so plugins of different config
/// types (and plugins loaded at run time) can share one registry.
trait ErasedPlugin: Send + Sync {
    fn keys(&self) -> Option<&'static [&'static str]> {
        None
    }
    /// Every problem of a server's settings, each at its path; empty when
    /// the plugin judges them only in `launch_erased`.
    fn issues(&self, _server: &ServerConfig) -> Vec<ConfigIssue> {
        Vec::new()
    }
    fn launch_erased(&self, server: &ServerConfig) -> Result<Launch, Error>;
}

struct Compiled<P>(P);

impl<P: McpServerPlugin> ErasedPlugin for Compiled<P> {
    fn keys(&self) -> Option<&'static [&'static str]> {
        self.0.settings_keys()
    }

    fn launch_erased(&self, server: &ServerConfig) -> Result<Launch, Error> {
        let mut settings = plugin_settings(server);
        if let Some(keys) = self.0.settings_keys() {
            settings.retain(|key, _| keys.contains(&key.as_str()));
        }
        let config: P::Config = serde_json::from_value(Value::Object(settings)).map_err(|e| {
            Error::invalid_config(format!(
                "server `{}`: its settings do not fit the `{}` server type: {e}",
                server.id(),
                self.0.kind()
            ))
        })?;
        self.0.launch(server, config)
    }
}

struct Loaded(Arc<dyn DynamicPlugin>);

impl ErasedPlugin for Loaded {
    fn issues(&self, server: &ServerConfig) -> Vec<ConfigIssue> {
        self.0.settings_issues(server)
    }

    fn launch_erased(&self, server: &ServerConfig) -> Result<Launch, Error> {
        self.0.launch(server)
    }
}

/// The `type` a server's config names.
#[must_use]
pub fn plugin_kind(server: &ServerConfig) -> &str {
    server.transport().name()
}

/// The plugin's own members of a server's entry; empty for the built-in
/// transport types, whose settings the config model reads itself.
fn plugin_settings(server: &ServerConfig) -> Map<String, Value> {
    match server.transport() {
        TransportConfig::Plugin(plugin) => plugin.settings().clone(),
        _ => Map::new(),
    }
}

#[derive(Clone)]
struct Entry {
    info: PluginInfo,
    plugin: Arc<dyn ErasedPlugin>,
}

/// The plugins this manager knows, by the `type` they serve. Cloning it is
/// cheap (the plugins are shared), so a host can try additions on a copy.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    entries: Vec<Entry>,
    plugins_dir: Option<PathBuf>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.info.kind))
            .finish()
    }
}

impl PluginRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a plugin compiled into the program.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Incompatible`] when the plugin was built for an API
    /// version this host cannot run, [`ErrorKind::Duplicate`] when its
    /// `type` (or an alias) is taken.
    pub fn register<P: McpServerPlugin>(&mut self, plugin: P) -> Result<(), Error> {
        let info = PluginInfo::new(plugin.kind(), PluginOrigin::BuiltIn)
            .api_version(plugin.api_version())
            .aliases(plugin.aliases().iter().map(|&a| a.to_owned()).collect())
            .capabilities(plugin.capabilities().to_vec());
        self.add(info, Arc::new(Compiled(plugin)))
    }

    /// Adds a plugin loaded at run time.
    ///
    /// # Errors
    ///
    /// As [`PluginRegistry::register`].
    pub fn register_dynamic(&mut self, plugin: Arc<dyn DynamicPlugin>) -> Result<(), Error> {
        let info = plugin.info();
        self.add(info, Arc::new(Loaded(plugin)))
    }

    fn add(&mut self, info: PluginInfo, plugin: Arc<dyn ErasedPlugin>) -> Result<(), Error> {
        if !info.api_version.runs_on(PLUGIN_API_VERSION) {
            return Err(Error::new(
                ErrorKind::Incompatible,
                format!(
                    "the `{}` plugin was built for plugin API {}, but this mcp-manager has {}",
                    info.kind, info.api_version, PLUGIN_API_VERSION
                ),
            )
            .with_hint(if info.api_version.major == PLUGIN_API_VERSION.major {
                "it needs a newer mcp-manager, or a plugin built for this one"
            } else {
                "it needs a plugin built for this version of the plugin API"
            }));
        }
        for name in info.names() {
            if let Some(taken) = self.find(name) {
                return Err(Error::new(
                    ErrorKind::Duplicate,
                    format!(
                        "the `{}` plugin claims `{name}`, which the `{}` plugin serves already",
                        info.kind, taken.info.kind
                    ),
                ));
            }
        }
        self.entries.push(Entry { info, plugin });
        Ok(())
    }

    /// Says where run-time plugins are looked up, for the hint an unknown
    /// type gets.
    pub fn set_plugins_dir(&mut self, dir: impl Into<PathBuf>) {
        self.plugins_dir = Some(dir.into());
    }

    /// Where run-time plugins are looked up, when said.
    #[must_use]
    pub fn plugins_dir(&self) -> Option<&Path> {
        self.plugins_dir.as_deref()
    }

    fn find(&self, kind: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|entry| entry.info.names().any(|name| name == kind))
    }

    /// Every plugin, in registration order.
    #[must_use]
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.entries.iter().map(|e| e.info.clone()).collect()
    }

    /// The plugin serving `kind`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownKind`], naming the known types and the closest one.
    pub fn plugin(&self, kind: &str) -> Result<PluginInfo, Error> {
        self.find(kind)
            .map(|e| e.info.clone())
            .ok_or_else(|| self.unknown(kind))
    }

    fn unknown(&self, kind: &str) -> Error {
        let known: Vec<&str> = self.entries.iter().flat_map(|e| e.info.names()).collect();
        let mut hint = match mcp_core::config::closest_name(kind, &known) {
            Some(close) => format!("did you mean \"{close}\"?"),
            None => format!("the known types are {}", quoted(&known)),
        };
        if let Some(dir) = &self.plugins_dir {
            hint.push_str(&format!(
                " (plugins are looked up in {}; `mcp-manager plugins` lists every type)",
                dir.display()
            ));
        }
        Error::new(
            ErrorKind::UnknownKind,
            format!("unknown server type \"{kind}\""),
        )
        .with_hint(hint)
    }

    /// Checks that a server's type is known and its settings fit its
    /// plugin, without starting anything.
    ///
    /// # Errors
    ///
    /// As [`PluginRegistry::launch`].
    pub fn check(&self, server: &ServerConfig) -> Result<(), Error> {
        self.launch(server).map(drop)
    }

    /// [`PluginRegistry::check`] as config issues, for
    /// [`mcp_core::ManagerConfig::check_servers`]: at the server's `type`
    /// when no plugin serves it, at the path of each setting that does not
    /// fit when its plugin publishes a schema, else at the server's entry.
    /// Members of the entry that its plugin does not read (when it lists
    /// its settings, see [`McpServerPlugin::settings_keys`]) are pushed
    /// onto `warnings`.
    pub fn config_issues(
        &self,
        server: &ServerConfig,
        warnings: &mut Vec<ConfigIssue>,
    ) -> Vec<ConfigIssue> {
        let entry = self.find(plugin_kind(server));
        if let Some(keys) = entry.and_then(|entry| entry.plugin.keys()) {
            warnings.extend(
                plugin_settings(server)
                    .keys()
                    .filter(|key| !keys.contains(&key.as_str()))
                    .map(|key| mcp_core::config::unknown_setting(server, key, keys)),
            );
        }
        if let Some(entry) = entry {
            let issues = entry.plugin.issues(server);
            if !issues.is_empty() {
                return issues;
            }
        }
        let Some(error) = self.check(server).err() else {
            return Vec::new();
        };
        let path = match error.kind() {
            ErrorKind::UnknownKind => format!("{}.type", server.path()),
            _ => server.path().to_owned(),
        };
        let issue = ConfigIssue::new(path, error.message());
        vec![match error.hint() {
            Some(hint) => issue.with_hint(hint),
            None => issue,
        }]
    }

    /// How to reach a server, as its plugin says.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownKind`] for a type no plugin serves,
    /// [`ErrorKind::InvalidConfig`] for settings that do not fit, or several
    /// instances of a type that cannot run more than one.
    pub fn launch(&self, server: &ServerConfig) -> Result<Launch, Error> {
        let kind = plugin_kind(server);
        let entry = self.find(kind).ok_or_else(|| self.unknown(kind))?;
        if server.instances().get() > 1 && !entry.info.capabilities.contains(&Capability::Instances)
        {
            return Err(Error::invalid_config(format!(
                "server `{}` asks for {} instances, but `{}` servers run one at a time",
                server.id(),
                server.instances(),
                entry.info.kind
            ))
            .with_hint("remove `instances`, or set it to 1"));
        }
        entry.plugin.launch_erased(server)
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use mcp_core::ManagerConfig;
    use serde::Deserialize;

    use super::*;
    use crate::NoSettings;

    fn server(entry: &str) -> ServerConfig {
        let text = format!(r#"{{"mcpServers": {{"s": {entry}}}}}"#);
        let env = |_: &str| None;
        let config = ManagerConfig::from_json_str(&text, None, &env).unwrap();
        config.servers()[0].clone()
    }

    struct Echo;

    impl mcp_core::McpServer for Echo {
        fn handle_request(
            &self,
            _: mcp_protocol::Request<'static>,
            _: mcp_core::RequestContext,
        ) -> mcp_core::BoxFuture<'_, mcp_core::HandlerResult> {
            Box::pin(async { Err(mcp_protocol::ErrorObject::new(-32601, "none")) })
        }
        fn handle_notification(
            &self,
            _: mcp_protocol::Notification<'static>,
            _: mcp_core::RequestContext,
        ) -> mcp_core::BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WidgetConfig {
        size: u32,
    }

    /// A plugin of a made-up type, as a downstream crate would add one.
    struct Widget(ApiVersion);

    impl McpServerPlugin for Widget {
        type Config = WidgetConfig;
        fn kind(&self) -> &'static str {
            "widget"
        }
        fn aliases(&self) -> &'static [&'static str] {
            &["gadget"]
        }
        fn api_version(&self) -> ApiVersion {
            self.0
        }
        fn capabilities(&self) -> &'static [Capability] {
            &[Capability::InProcess]
        }
        fn launch(&self, server: &ServerConfig, config: WidgetConfig) -> Result<Launch, Error> {
            if config.size == 0 {
                return Err(Error::invalid_config(format!(
                    "server `{}`: `size` must not be 0",
                    server.id()
                )));
            }
            Ok(Launch::in_process("widget", Arc::new(Echo)))
        }
    }

    struct Plain;

    impl McpServerPlugin for Plain {
        type Config = NoSettings;
        fn kind(&self) -> &'static str {
            "stdio"
        }
        fn capabilities(&self) -> &'static [Capability] {
            &[]
        }
        fn launch(&self, _: &ServerConfig, _: NoSettings) -> Result<Launch, Error> {
            Ok(Launch::in_process("plain", Arc::new(Echo)))
        }
    }

    /// A plugin that lists its settings: other keys are warned about.
    struct Listed;

    impl McpServerPlugin for Listed {
        type Config = WidgetConfig;
        fn kind(&self) -> &'static str {
            "listed"
        }
        fn settings_keys(&self) -> Option<&'static [&'static str]> {
            Some(&["size"])
        }
        fn capabilities(&self) -> &'static [Capability] {
            &[Capability::InProcess]
        }
        fn launch(&self, _: &ServerConfig, config: WidgetConfig) -> Result<Launch, Error> {
            assert_eq!(config.size, 2);
            Ok(Launch::in_process("listed", Arc::new(Echo)))
        }
    }

    fn registry() -> PluginRegistry {
        let mut registry = PluginRegistry::new();
        registry.register(Widget(PLUGIN_API_VERSION)).unwrap();
        registry.register(Plain).unwrap();
        registry
    }

    #[test]
    fn keys_a_plugin_does_not_list_are_warnings() {
        let mut registry = registry();
        registry.register(Listed).unwrap();
        let listed = server(r#"{"type": "listed", "size": 2, "sise": 3, "timeoutMS": 1}"#);
        let mut warnings = Vec::new();
        assert_eq!(registry.config_issues(&listed, &mut warnings), []);
        let shown: Vec<String> = warnings
            .iter()
            .map(|w| format!("{w} ({})", w.hint().unwrap_or("-")))
            .collect();
        assert_eq!(
            shown,
            [
                "mcpServers.s.sise: unknown key `sise` is ignored (did you mean `size`?)",
                "mcpServers.s.timeoutMS: unknown key `timeoutMS` is ignored (did you mean `timeoutMs`?)",
            ]
        );
        registry.launch(&listed).unwrap();
        // A plugin that lists nothing judges every key itself.
        let mut none = Vec::new();
        let widget = server(r#"{"type": "widget", "size": 1, "colour": "red"}"#);
        assert_eq!(registry.config_issues(&widget, &mut none).len(), 1);
        assert!(none.is_empty());
    }

    #[test]
    fn a_new_type_is_one_more_plugin() {
        let registry = registry();
        let launch = registry
            .launch(&server(
                r#"{"type": "widget", "size": 3, "timeoutMs": 1234}"#,
            ))
            .unwrap();
        assert_eq!(launch.describe(), "in-process `widget`");
        // An alias reaches the same plugin.
        registry
            .check(&server(r#"{"type": "gadget", "size": 1}"#))
            .unwrap();
        assert_eq!(registry.plugin("gadget").unwrap().kind, "widget");
    }

    #[test]
    fn settings_that_do_not_fit_are_refused_with_the_reason() {
        let registry = registry();
        let missing = registry
            .check(&server(r#"{"type": "widget"}"#))
            .unwrap_err();
        assert_eq!(*missing.kind(), ErrorKind::InvalidConfig);
        assert!(
            missing.message().contains("missing field `size`"),
            "{missing}"
        );
        let unknown = registry
            .check(&server(r#"{"type": "widget", "size": 1, "colour": "red"}"#))
            .unwrap_err();
        assert!(
            unknown.message().contains("unknown field `colour`"),
            "{unknown}"
        );
        let zero = registry
            .check(&server(r#"{"type": "widget", "size": 0}"#))
            .unwrap_err();
        assert_eq!(zero.message(), "server `s`: `size` must not be 0");
        let instances = registry
            .check(&server(r#"{"type": "widget", "size": 1, "instances": 2}"#))
            .unwrap_err();
        assert!(
            instances.message().contains("asks for 2 instances"),
            "{instances}"
        );
    }

    #[test]
    fn unknown_types_get_a_suggestion() {
        let registry = registry();
        let error = registry
            .check(&server(r#"{"type": "widgat", "size": 1}"#))
            .unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::UnknownKind);
        assert_eq!(error.message(), "unknown server type \"widgat\"");
        assert_eq!(error.hint(), Some("did you mean \"widget\"?"));
        let error = registry.plugin("zzzzzzzz").unwrap_err();
        assert_eq!(
            error.hint(),
            Some("the known types are \"widget\", \"gadget\", \"stdio\"")
        );
    }

    #[test]
    fn incompatible_and_duplicate_plugins_are_refused() {
        let mut registry = registry();
        let newer = Widget(ApiVersion::new(
            PLUGIN_API_VERSION.major,
            PLUGIN_API_VERSION.minor + 1,
        ));
        let error = PluginRegistry::new().register(newer).unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::Incompatible);
        assert!(
            error
                .message()
                .contains("built for plugin API 2.2, but this mcp-manager has 2.1"),
            "{error}"
        );
        let older_major = Widget(ApiVersion::new(1, 0));
        assert_eq!(
            *PluginRegistry::new()
                .register(older_major)
                .unwrap_err()
                .kind(),
            ErrorKind::Incompatible
        );
        let error = registry.register(Widget(PLUGIN_API_VERSION)).unwrap_err();
        assert_eq!(*error.kind(), ErrorKind::Duplicate);
        assert_eq!(registry.plugins().len(), 2);
    }

    #[test]
    fn versions_are_compatible_within_a_major() {
        assert!(ApiVersion::new(1, 0).runs_on(ApiVersion::new(1, 3)));
        assert!(!ApiVersion::new(1, 4).runs_on(ApiVersion::new(1, 3)));
        assert!(!ApiVersion::new(2, 0).runs_on(ApiVersion::new(1, 9)));
    }

    /// A type loaded at run time, with its own settings check.
    struct Loaded(ApiVersion);

    impl DynamicPlugin for Loaded {
        fn info(&self) -> PluginInfo {
            let origin = PluginOrigin::Loaded {
                plugin: "pack".into(),
                version: "1.2.0".into(),
                form: "command".into(),
                manifest: "/plugins/pack/plugin.toml".into(),
            };
            PluginInfo::new("loaded", origin)
                .api_version(self.0)
                .aliases(vec!["ld".into()])
                .capabilities(vec![Capability::ChildProcess])
        }

        fn settings_issues(&self, server: &ServerConfig) -> Vec<ConfigIssue> {
            plugin_settings(server)
                .keys()
                .filter(|key| key.starts_with("bad"))
                .map(|key| ConfigIssue::new(format!("{}.{key}", server.path()), "is bad"))
                .collect()
        }

        fn launch(&self, server: &ServerConfig) -> Result<Launch, Error> {
            if let Some(issue) = self.settings_issues(server).first() {
                return Err(Error::invalid_config(issue.message()));
            }
            Ok(Launch::Stdio(Launch::stdio("loaded-server")))
        }
    }

    #[test]
    fn a_type_loaded_at_run_time_serves_lists_and_judges_its_settings() {
        let mut registry = registry();
        registry
            .register_dynamic(Arc::new(Loaded(PLUGIN_API_VERSION)))
            .unwrap();
        let info = registry.plugin("ld").unwrap();
        assert_eq!(info.kind, "loaded");
        assert_eq!(info.origin.form(), "command");
        assert_eq!(registry.plugin("widget").unwrap().origin.form(), "built-in");
        let launch = registry.launch(&server(r#"{"type": "loaded"}"#)).unwrap();
        assert_eq!(
            launch.describe(),
            Launch::Stdio(Launch::stdio("loaded-server")).describe()
        );
        let mut warnings = Vec::new();
        let issues = registry.config_issues(
            &server(r#"{"type": "ld", "bad1": 1, "bad2": 2, "good": 3}"#),
            &mut warnings,
        );
        let paths: Vec<&str> = issues.iter().map(ConfigIssue::path).collect();
        assert_eq!(paths, ["mcpServers.s.bad1", "mcpServers.s.bad2"]);
        assert!(warnings.is_empty());
        // Taken names and other API versions are refused as for any plugin.
        let again = registry.register_dynamic(Arc::new(Loaded(PLUGIN_API_VERSION)));
        assert_eq!(*again.unwrap_err().kind(), ErrorKind::Duplicate);
        let newer = PluginRegistry::new().register_dynamic(Arc::new(Loaded(ApiVersion::new(3, 0))));
        assert_eq!(*newer.unwrap_err().kind(), ErrorKind::Incompatible);
    }

    #[test]
    fn an_unknown_type_says_where_plugins_are_looked_up() {
        let mut registry = registry();
        registry.set_plugins_dir("/data/plugins");
        let error = registry.plugin("widgat").unwrap_err();
        assert_eq!(
            error.hint(),
            Some(
                "did you mean \"widget\"? (plugins are looked up in /data/plugins; `mcp-manager plugins` lists every type)"
            )
        );
    }
}
