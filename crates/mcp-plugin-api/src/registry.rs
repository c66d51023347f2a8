//! The registry: which plugin serves which `type`, and how a server's
//! config is launched through it.

use std::sync::Arc;

use mcp_core::config::TransportConfig;
use mcp_core::{ConfigIssue, Launch, ServerConfig};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};
use crate::{ApiVersion, Capability, McpServerPlugin, PLUGIN_API_VERSION};

/// What a registered plugin is, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// The `type` it serves.
    pub kind: &'static str,
    /// Other spellings of that `type`.
    pub aliases: &'static [&'static str],
    /// The API version it was built for.
    pub api_version: ApiVersion,
    /// What its servers are and can do.
    pub capabilities: &'static [Capability],
}

/// A plugin with its `Config` type erased, so plugins of different config
/// types can share one registry.
trait ErasedPlugin: Send + Sync {
    fn info(&self) -> PluginInfo;
    fn keys(&self) -> Option<&'static [&'static str]>;
    fn launch_erased(&self, server: &ServerConfig) -> Result<Launch, Error>;
}

impl<P: McpServerPlugin> ErasedPlugin for P {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            kind: self.kind(),
            aliases: self.aliases(),
            api_version: self.api_version(),
            capabilities: self.capabilities(),
        }
    }

    fn keys(&self) -> Option<&'static [&'static str]> {
        self.settings_keys()
    }

    fn launch_erased(&self, server: &ServerConfig) -> Result<Launch, Error> {
        let mut settings = plugin_settings(server);
        if let Some(keys) = self.settings_keys() {
            settings.retain(|key, _| keys.contains(&key.as_str()));
        }
        let config: P::Config = serde_json::from_value(Value::Object(settings)).map_err(|e| {
            Error::invalid_config(format!(
                "server `{}`: its settings do not fit the `{}` server type: {e}",
                server.id(),
                self.kind()
            ))
        })?;
        self.launch(server, config)
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

/// The plugins this manager knows, by the `type` they serve.
#[derive(Default)]
pub struct PluginRegistry {
    plugins: Vec<Arc<dyn ErasedPlugin>>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.info().kind))
            .finish()
    }
}

impl PluginRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a plugin.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Incompatible`] when the plugin was built for an API
    /// version this host cannot run, [`ErrorKind::Duplicate`] when its
    /// `type` (or an alias) is taken.
    pub fn register<P: McpServerPlugin>(&mut self, plugin: P) -> Result<(), Error> {
        let info = ErasedPlugin::info(&plugin);
        if !info.api_version.runs_on(PLUGIN_API_VERSION) {
            return Err(Error::new(
                ErrorKind::Incompatible,
                format!(
                    "the `{}` plugin was built for plugin API {}, but this mcp-manager has {}",
                    info.kind, info.api_version, PLUGIN_API_VERSION
                ),
            )
            .with_hint("rebuild the plugin against this version of mcp-plugin-api"));
        }
        for name in std::iter::once(info.kind).chain(info.aliases.iter().copied()) {
            if let Some(taken) = self.find(name) {
                return Err(Error::new(
                    ErrorKind::Duplicate,
                    format!(
                        "the `{}` plugin claims `{name}`, which the `{}` plugin serves already",
                        info.kind,
                        taken.info().kind
                    ),
                ));
            }
        }
        self.plugins.push(Arc::new(plugin));
        Ok(())
    }

    fn find(&self, kind: &str) -> Option<&Arc<dyn ErasedPlugin>> {
        self.plugins.iter().find(|p| {
            let info = p.info();
            info.kind == kind || info.aliases.contains(&kind)
        })
    }

    /// Every plugin, in registration order.
    #[must_use]
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.plugins.iter().map(|p| p.info()).collect()
    }

    /// The plugin serving `kind`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownKind`], naming the known types and the closest one.
    pub fn plugin(&self, kind: &str) -> Result<PluginInfo, Error> {
        self.find(kind)
            .map(|p| p.info())
            .ok_or_else(|| self.unknown(kind))
    }

    fn unknown(&self, kind: &str) -> Error {
        let known: Vec<&str> = self
            .plugins()
            .iter()
            .flat_map(|info| std::iter::once(info.kind).chain(info.aliases.iter().copied()))
            .collect();
        let hint = match mcp_core::config::closest_name(kind, &known) {
            Some(close) => format!("did you mean \"{close}\"?"),
            None => format!("the known types are {}", quoted(&known)),
        };
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

    /// [`PluginRegistry::check`] as a config issue at the server's entry (at
    /// its `type` when no plugin serves it), for
    /// [`mcp_core::ManagerConfig::check_servers`]; members of the entry
    /// that its plugin does not read (when it lists its settings, see
    /// [`McpServerPlugin::settings_keys`]) are pushed onto `warnings`.
    pub fn config_issue(
        &self,
        server: &ServerConfig,
        warnings: &mut Vec<ConfigIssue>,
    ) -> Option<ConfigIssue> {
        let keys = self
            .find(plugin_kind(server))
            .and_then(|plugin| plugin.keys());
        if let Some(keys) = keys {
            warnings.extend(
                plugin_settings(server)
                    .keys()
                    .filter(|key| !keys.contains(&key.as_str()))
                    .map(|key| mcp_core::config::unknown_setting(server, key, keys)),
            );
        }
        let error = self.check(server).err()?;
        let path = match error.kind() {
            ErrorKind::UnknownKind => format!("{}.type", server.path()),
            _ => server.path().to_owned(),
        };
        let issue = ConfigIssue::new(path, error.message());
        Some(match error.hint() {
            Some(hint) => issue.with_hint(hint),
            None => issue,
        })
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
        let plugin = self.find(kind).ok_or_else(|| self.unknown(kind))?;
        let info = plugin.info();
        if server.instances().get() > 1 && !info.capabilities.contains(&Capability::Instances) {
            return Err(Error::invalid_config(format!(
                "server `{}` asks for {} instances, but `{}` servers run one at a time",
                server.id(),
                server.instances(),
                info.kind
            ))
            .with_hint("remove `instances`, or set it to 1"));
        }
        plugin.launch_erased(server)
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
        assert_eq!(registry.config_issue(&listed, &mut warnings), None);
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
        assert!(registry.config_issue(&widget, &mut none).is_some());
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
                .contains("built for plugin API 2.1, but this mcp-manager has 2.0"),
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
}
