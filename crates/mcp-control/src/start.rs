//! Starting a config's servers through the plugin registry, and checking
//! a config or one server entry against it.

use std::sync::Arc;

use mcp_auth::client::{Browser, ClientInfo, Registration};
use mcp_auth::tokens::{SignIn, TokenFile, Tokens};
use mcp_core::auth::TokenSource;
use mcp_core::config::{OAuthClientConfig, ProcessEnv};
use mcp_core::launch::Launch;
use mcp_core::state::Deployed;
use mcp_core::{ManagerConfig, ServerConfig};
use mcp_gateway::Backend;
use mcp_gateway::pins::{PinFile, Pinning};
use mcp_gateway::{Access, Audit};
use mcp_plugin_api::PluginRegistry;
use mcp_runtime::seal::ClusterKey;
use mcp_runtime::{McpRuntime, Server, ServerSpec};
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind};

/// Where the control actor reports what it did (one line each: a server
/// started, stopped, failed to start).
pub type Report = Arc<dyn Fn(&str) + Send + Sync>;

/// One server of a config and how starting it went.
#[derive(Debug)]
pub struct Started<'c> {
    /// Its config.
    pub config: &'c ServerConfig,
    /// `None` for a disabled server; otherwise the deployed server, or why
    /// it did not start.
    pub server: Option<Result<Server<Deployed>, String>>,
}

/// Starts the enabled servers among `servers` side by side through
/// `registry` and waits until each runs or has failed to start; sorted by
/// server id.
pub async fn start_servers<'c>(
    runtime: &McpRuntime,
    registry: &PluginRegistry,
    servers: impl Iterator<Item = &'c ServerConfig>,
) -> Vec<Started<'c>> {
    let mut started = Vec::new();
    let mut pending = Vec::new();
    for config in servers {
        if !config.is_enabled() {
            started.push(Started {
                config,
                server: None,
            });
            continue;
        }
        let spec = match spec(registry, config) {
            Ok(spec) => spec,
            Err(error) => {
                started.push(Started {
                    config,
                    server: Some(Err(error.to_string())),
                });
                continue;
            }
        };
        let server = Server::new(runtime.clone(), spec);
        pending.push((config, tokio::spawn(server.deploy())));
    }
    for (config, task) in pending {
        let server = match task.await {
            Ok(Ok(server)) => Ok(server),
            Ok(Err(failed)) => Err(failed.error().to_string()),
            Err(error) => Err(format!("starting it panicked: {error}")),
        };
        started.push(Started {
            config,
            server: Some(server),
        });
    }
    started.sort_by_key(|s| s.config.id().as_str().to_owned());
    started
}

/// The runtime's spec of a configured server, reached as its plugin in
/// `registry` says.
///
/// # Errors
///
/// The plugin's, when the server's type is unknown or its settings do not
/// fit.
pub fn spec(
    registry: &PluginRegistry,
    config: &ServerConfig,
) -> Result<ServerSpec, mcp_plugin_api::Error> {
    let launch = registry.launch(config)?;
    let credentials = credentials(config, &launch);
    Ok(ServerSpec::from_config(config, launch, credentials))
}

/// Where a remote server's link gets its access tokens: the server's
/// entry in the tokens file `mcp-manager login` writes, refreshed when it
/// expires; `None` for a server that never signs in (see
/// [`ServerConfig::oauth`]).
pub fn credentials(config: &ServerConfig, launch: &Launch) -> Option<Arc<dyn TokenSource>> {
    let oauth = config.oauth()?;
    let (Launch::StreamableHttp(remote) | Launch::Sse(remote)) = launch else {
        return None;
    };
    let sign_in = sign_in(config.id().as_str(), &remote.url, oauth, None);
    Some(Arc::new(Tokens::new(sign_in)))
}

/// How `server` at `url` signs in, as its `oauth` says: the client
/// registered beforehand if any, the tokens file of the user, and the
/// way back (`redirect_uri`) when a browser is to be sent to sign in.
pub fn sign_in(
    server: &str,
    url: &str,
    oauth: &OAuthClientConfig,
    browser: Option<(Box<dyn Browser>, String)>,
) -> SignIn {
    let registered = oauth.client_id().map(|id| Registration {
        client_id: id.to_owned(),
        client_secret: oauth.client_secret().map(str::to_owned),
        auth_method: if oauth.client_secret().is_some() {
            "client_secret_basic".to_owned()
        } else {
            "none".to_owned()
        },
    });
    let (browser, redirect_uri) = match browser {
        Some((browser, redirect_uri)) => (Some(browser), redirect_uri),
        None => (None, "http://127.0.0.1/callback".to_owned()),
    };
    SignIn {
        server: server.to_owned(),
        url: url.to_owned(),
        client: ClientInfo {
            name: "mcp-manager".to_owned(),
            redirect_uri,
            metadata_url: oauth.client_metadata_url().map(str::to_owned),
            registered,
        },
        scope: oauth.scope().map(str::to_owned),
        file: mcp_core::tokens_file().map(TokenFile::new),
        browser,
    }
}

/// `config` checked against the plugins of `registry` that will run its
/// servers (each server's plugin-specific settings), as every way of
/// loading a config does before starting anything.
///
/// # Errors
///
/// The config error naming every problem.
pub fn check_plugins(
    registry: &PluginRegistry,
    config: ManagerConfig,
) -> Result<ManagerConfig, mcp_core::Error> {
    config.check_servers(|server, warnings| registry.config_issues(server, warnings))
}

/// The gateway backend of a deployed server.
#[must_use]
pub fn backend(config: &ServerConfig, server: &Server<Deployed>) -> Backend {
    Backend {
        handle: server.handle().clone(),
        namespace: config.namespace().to_owned(),
        tools: config.tools().clone(),
        pinning: config.pinning(),
    }
}

/// The tool pins of `config`: its `mcpManager.pinning` mode, kept in its
/// pins file ([`ManagerConfig::pins_file`]; in memory only when there is
/// none), read now.
#[must_use]
pub fn pinning(config: &ManagerConfig) -> Arc<Pinning> {
    let file = config.pins_file().map(PinFile::new);
    Arc::new(Pinning::new(config.gateway().pinning(), file))
}

/// What the gateway holds each listed tool and each call against: the
/// tool pins, the access rules, the audit log.
#[derive(Debug, Default)]
pub struct Policies {
    /// The tool pins ([`pinning`]).
    pub pinning: Option<Arc<Pinning>>,
    /// Who may use what (`mcpManager.access`).
    pub access: Option<Access>,
    /// Where calls are written down (`mcpManager.audit`).
    pub audit: Option<Audit>,
    /// The key the gateway's replicas share (`mcpManager.cluster`).
    pub cluster_key: Option<ClusterKey>,
}

/// The policies of `config`: its pins, access rules and audit log (its
/// file opened now).
///
/// # Errors
///
/// [`ErrorKind::Invalid`] when the audit log cannot be opened.
pub fn policies(config: &ManagerConfig) -> Result<Policies, Error> {
    let audit = match (config.gateway().audit(), config.audit_file()) {
        (Some(audit), Some(file)) => {
            Some(Audit::open(&file, audit.arguments).map_err(|error| {
                Error::new(ErrorKind::Invalid, format!("mcpManager.audit: {error}"))
            })?)
        }
        _ => None,
    };
    Ok(Policies {
        pinning: Some(pinning(config)),
        access: config.gateway().access().cloned().map(Access::new),
        audit,
        cluster_key: config
            .gateway()
            .cluster()
            .map(|cluster| ClusterKey(*cluster.key())),
    })
}

/// Checks one `mcpServers` entry named `name` (as a config file's would be
/// checked, environment references resolved from this process's
/// environment) and gives its server config.
///
/// # Errors
///
/// [`ErrorKind::Invalid`] naming every problem.
pub fn server_entry(
    registry: &PluginRegistry,
    name: &str,
    entry: &Value,
) -> Result<ServerConfig, Error> {
    if !entry.is_object() {
        return Err(Error::new(
            ErrorKind::Invalid,
            format!("the config of `{name}` must be a JSON object (an mcpServers entry)"),
        ));
    }
    let text = json!({"mcpServers": {name: entry}}).to_string();
    ManagerConfig::from_json_str(&text, None, &ProcessEnv)
        .and_then(|config| check_plugins(registry, config))
        .map_err(|e| Error::new(ErrorKind::Invalid, format!("invalid server entry: {e}")))?
        .servers()
        .first()
        .cloned()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Invalid,
                format!("no server `{name}` in the entry"),
            )
        })
}
