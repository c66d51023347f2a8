//! `mcp-manager serve`: every server of a config behind one MCP endpoint.
//!
//! Without `--config` it serves a built-in default: the reference server
//! `everything` in-process (namespace `everything`) and the same server as a
//! child process of this very binary (namespace `child`), so it runs on a
//! fresh machine with nothing else installed. What starts and what fails is
//! reported on stderr; with `--stdio`, stdout carries the MCP stream.
//!
//! Otherwise (`--http ADDR`, or nothing: 127.0.0.1:8931) the gateway is
//! served over Streamable HTTP at `http://ADDR/mcp`, optionally behind a
//! bearer token
//! (`--auth-token`, or `MCP_MANAGER_AUTH_TOKEN`), until Ctrl-C or SIGTERM.
//!
//! `--frame-socket PATH` also serves the gateway on a Unix socket with
//! binary framing (mode 0600, in a directory that belongs to the user), for
//! local clients, beside stdio or HTTP.
//!
//! `--admin [ADDR]` (default 127.0.0.1:8932) adds the admin listener:
//! Prometheus metrics at `/metrics` and the JSON admin API (see
//! [`crate::cli::admin`]), behind `--admin-token` (or
//! `MCP_MANAGER_ADMIN_TOKEN`) when set.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use mcp_core::ManagerConfig;
use mcp_core::auth::Authenticator;
use mcp_core::config::GatewayLimits;
use mcp_observability::metrics::Metrics;
use mcp_plugin_api::PluginRegistry;
use mcp_runtime::McpRuntime;
use mcp_runtime::observe::{NoObserver, Observer};
use mcp_serve::HttpServeOptions;

use crate::cli::signal::signalled;
use crate::cli::{launch, reload};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The config file; without it, a built-in default.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve MCP over stdin and stdout (for clients that start the gateway
    /// as a child process, like Claude Desktop).
    #[arg(long, conflicts_with = "http")]
    stdio: bool,
    /// Serve MCP over Streamable HTTP at `http://ADDR/mcp`.
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = DEFAULT_HTTP
    )]
    http: Option<SocketAddr>,
    /// With `--http`: the bearer token every client must send (default:
    /// the environment variable `MCP_MANAGER_AUTH_TOKEN`).
    #[arg(long, value_name = "TOKEN", requires = "http")]
    auth_token: Option<String>,
    /// Also serve MCP on a frame socket (binary frames over a Unix socket)
    /// at PATH, beside stdio or HTTP; created 0600, removed at the end.
    #[arg(long, value_name = "PATH")]
    frame_socket: Option<PathBuf>,
    /// Serve metrics (`/metrics`) and the admin API (`/api/servers`) on
    /// their own address, never the MCP one.
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = crate::cli::admin::DEFAULT_ADDR
    )]
    admin: Option<SocketAddr>,
    /// With `--admin`: the bearer token the admin API requires (default:
    /// the environment variable `MCP_MANAGER_ADMIN_TOKEN`); metrics and
    /// health stay open.
    #[arg(long, value_name = "TOKEN", requires = "admin")]
    admin_token: Option<String>,
    /// Do not watch the config file and the plugins directory: their
    /// changes apply at the next start only (by default they apply at
    /// once, and on SIGHUP).
    #[arg(long)]
    no_watch: bool,
}

/// Where the admin listener goes, and its token.
struct AdminOptions {
    addr: SocketAddr,
    token: Option<String>,
}

/// Where `serve` listens when told neither `--stdio` nor an address.
const DEFAULT_HTTP: &str = "127.0.0.1:8931";

/// Where the gateway is served.
enum Downstream {
    Stdio,
    Http(SocketAddr, Option<String>),
}

/// The config served when none is given.
fn default_config() -> anyhow::Result<ManagerConfig> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    let text = serde_json::json!({
        "mcpServers": {
            "everything": {"type": "builtin", "server": "everything"},
            "child": {"command": exe, "args": ["builtin", "everything", "--stdio"]}
        }
    })
    .to_string();
    let env = |_: &str| None;
    Ok(ManagerConfig::from_json_str(&text, None, &env)?)
}

pub(crate) fn run(
    args: &ServeArgs,
    plugins: &crate::cli::registries::Plugins,
) -> anyhow::Result<ExitCode> {
    let token = || {
        args.auth_token.clone().or_else(|| {
            std::env::var("MCP_MANAGER_AUTH_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
        })
    };
    let downstream = match (args.stdio, args.http) {
        (true, _) => Downstream::Stdio,
        (false, Some(addr)) => Downstream::Http(addr, token()),
        (false, None) => {
            let addr = DEFAULT_HTTP.parse().context("the default address")?;
            Downstream::Http(addr, token())
        }
    };
    let admin = args.admin.map(|addr| AdminOptions {
        addr,
        token: args.admin_token.clone().or_else(|| {
            std::env::var("MCP_MANAGER_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
        }),
    });
    let (config, registry) = match &args.config {
        Some(path) => match launch::load(plugins, path) {
            Ok(loaded) => loaded,
            Err(code) => return Ok(ExitCode::from(code)),
        },
        None => (default_config()?, plugins.registry(None)),
    };
    if let (Some(_), Downstream::Http(_, Some(_))) = (config.gateway().auth(), &downstream) {
        eprintln!(
            "error: the config's `mcpManager.auth` and a shared token (--auth-token or MCP_MANAGER_AUTH_TOKEN) both guard the endpoint; keep one"
        );
        return Ok(ExitCode::from(launch::INVALID));
    }
    // The config file and the plugins are watched, unless told not to.
    let watch = (!args.no_watch).then(|| Watch {
        source: args.config.clone(),
        plugins: plugins.clone(),
    });
    let downstream = Downstreams {
        main: downstream,
        frame_socket: args.frame_socket.clone(),
    };
    launch::run_async(serve(&registry, &config, watch, downstream, admin))?
}

/// What is watched for changes: the config file, if there is one, and the
/// plugins directory.
struct Watch {
    source: Option<PathBuf>,
    plugins: crate::cli::registries::Plugins,
}

/// Where the gateway is served: stdio or HTTP, and maybe a frame socket.
struct Downstreams {
    main: Downstream,
    frame_socket: Option<PathBuf>,
}

async fn serve(
    registry: &Arc<PluginRegistry>,
    config: &ManagerConfig,
    watch: Option<Watch>,
    downstreams: Downstreams,
    admin: Option<AdminOptions>,
) -> anyhow::Result<ExitCode> {
    let Downstreams {
        main: downstream,
        frame_socket,
    } = downstreams;
    // The socket first: a path that cannot hold it fails before anything starts.
    let frames = match frame_socket {
        Some(path) => {
            let listener = mcp_serve::bind_frame_socket(&path)
                .with_context(|| format!("creating the frame socket {}", path.display()))?;
            Some((listener, path))
        }
        None => None,
    };
    let policies = match mcp_control::policies(config) {
        Ok(policies) => policies,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(launch::INVALID));
        }
    };
    if config.gateway().access().is_some() && config.gateway().auth().is_none() {
        eprintln!(
            "mcp-manager: `access` rules apply without `auth`: only the rules without subjects, scopes or claims can hold"
        );
    }
    // Metrics are kept when something can read them.
    let metrics = admin.as_ref().map(|_| Metrics::new());
    let observer = metrics.as_ref().map_or_else(
        || Arc::new(NoObserver) as Arc<dyn Observer>,
        Metrics::observer,
    );
    let mcp = McpRuntime::start_with(observer.clone());
    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    // The admin API is up while the servers start; it can change them once
    // the gateway runs.
    let (control_tx, control_rx) = tokio::sync::watch::channel(None);
    let admin_task = match (admin, metrics) {
        (Some(options), Some(metrics)) => {
            let admin = crate::cli::admin::Admin {
                runtime: mcp.clone(),
                metrics,
                token: options.token,
                control: control_rx,
                draining: std::sync::atomic::AtomicBool::new(false),
            };
            let stop = async move {
                let _ = admin_stopped.await;
            };
            match crate::cli::admin::serve(admin, options.addr, stop).await {
                Ok(task) => Some(task),
                Err(error) => {
                    mcp.shutdown().await;
                    return Err(error);
                }
            }
        }
        _ => None,
    };
    let started = mcp_control::start_servers(&mcp, registry, config.servers().iter()).await;
    let mut running = Vec::new();
    let mut failed = Vec::new();
    for server in started {
        let id = server.config.id();
        match server.server {
            None => eprintln!("mcp-manager: {id}: disabled"),
            Some(Err(reason)) => {
                eprintln!("mcp-manager: {id}: failed to start: {reason}");
                failed.push(mcp_control::FailedStart {
                    config: server.config.clone(),
                    reason,
                });
            }
            Some(Ok(deployed)) => {
                let about = deployed.handle().session().map_or_else(String::new, |s| {
                    format!(
                        " ({} {}, protocol {})",
                        s.server_info.name, s.server_info.version, s.protocol_version
                    )
                });
                eprintln!("mcp-manager: {id}: running{about}");
                running.push((server.config.clone(), deployed));
            }
        }
    }
    let where_ = match &downstream {
        Downstream::Stdio => "stdio".to_owned(),
        Downstream::Http(addr, _) => format!("http://{addr}/mcp"),
    };
    eprintln!(
        "mcp-manager: serving {} server(s) on {where_}, names joined with {:?}",
        running.len(),
        config.gateway().separator()
    );
    let report: mcp_control::Report = Arc::new(|line: &str| eprintln!("mcp-manager: {line}"));
    let (control, gateway) = mcp_control::Control::start(
        mcp.clone(),
        registry.clone(),
        config.gateway().separator(),
        policies,
        running,
        failed,
        report,
    );
    let _ = control_tx.send(Some(control.clone()));
    let (frames_stop, frames_stopped) = tokio::sync::oneshot::channel::<()>();
    let frames_task = frames.map(|(listener, path)| {
        eprintln!(
            "mcp-manager: also serving on the frame socket unix:{}",
            path.display()
        );
        let limits = config.gateway().limits();
        let default = mcp_serve::FrameServeOptions::default();
        let options = mcp_serve::FrameServeOptions {
            max_message: limits.max_request_bytes.unwrap_or(default.max_message),
            // A connection is one session.
            max_connections: limits.max_sessions.unwrap_or(default.max_connections),
            max_in_flight_per_connection: limits
                .max_in_flight_per_session
                .unwrap_or(default.max_in_flight_per_connection),
            drain: limits.drain_timeout.unwrap_or(default.drain),
            ..default
        };
        // It stops with the main endpoint, or at once on a signal, so that
        // both drain together.
        let stop = async move {
            tokio::select! {
                _ = frames_stopped => {}
                () = signalled() => {}
            }
        };
        tokio::spawn(mcp_serve::serve_frames(
            gateway.clone(),
            listener,
            Some(path),
            options,
            stop,
        ))
    });
    let (reload_stop, reload_stopped) = tokio::sync::oneshot::channel::<()>();
    let reloader = watch.map(|Watch { source, plugins }| {
        if let Some(path) = &source {
            eprintln!(
                "mcp-manager: watching {} for changes (or SIGHUP)",
                path.display()
            );
        }
        if let Some(dir) = control.registry().plugins_dir() {
            eprintln!("mcp-manager: watching the plugins in {}", dir.display());
        }
        tokio::spawn(reload::watch(
            source,
            plugins,
            control,
            config.clone(),
            async move {
                let _ = reload_stopped.await;
            },
        ))
    });
    let served = match downstream {
        Downstream::Stdio => {
            let (input, output) = mcp_serve::process_stdio();
            mcp_serve::serve_stdio(
                gateway.clone(),
                input,
                output,
                mcp_runtime::transport::MAX_MESSAGE,
            )
            .await
            .context("serving stdio")
        }
        Downstream::Http(addr, auth_token) => {
            let authenticator = match config.gateway().auth() {
                Some(auth) => Some(mcp_auth::OAuthResource::new(auth)? as Arc<dyn Authenticator>),
                None => None,
            };
            if let Some(auth) = config.gateway().auth() {
                eprintln!(
                    "mcp-manager: access tokens of {} for {} are required",
                    auth.issuer().as_str(),
                    auth.audience()
                );
            }
            let options = HttpServeOptions {
                observer,
                authenticator,
                session_key: config
                    .gateway()
                    .cluster()
                    .map(|cluster| mcp_runtime::seal::ClusterKey(*cluster.key())),
                session_peers: config
                    .gateway()
                    .cluster()
                    .map(|cluster| cluster.peers().to_vec())
                    .unwrap_or_default(),
                ..http_options(config.gateway().limits(), auth_token)
            };
            serve_http(gateway.clone(), addr, options).await
        }
    };
    let _ = frames_stop.send(());
    if let Some(task) = frames_task {
        if let Ok(Err(error)) = task.await {
            eprintln!("mcp-manager: the frame socket failed: {error}");
        }
    }
    let _ = reload_stop.send(());
    if let Some(task) = reloader {
        let _ = task.await;
    }
    mcp.shutdown().await;
    let _ = admin_stop.send(());
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

/// The HTTP endpoint's options: the config's limits over the defaults.
fn http_options(limits: &GatewayLimits, auth_token: Option<String>) -> HttpServeOptions {
    let default = HttpServeOptions::default();
    HttpServeOptions {
        auth_token,
        max_body: limits.max_request_bytes.unwrap_or(default.max_body),
        max_sessions: limits.max_sessions.unwrap_or(default.max_sessions),
        max_sessions_per_client: limits
            .max_sessions_per_client
            .unwrap_or(default.max_sessions_per_client),
        max_in_flight_per_session: limits
            .max_in_flight_per_session
            .unwrap_or(default.max_in_flight_per_session),
        max_in_flight_per_client: limits
            .max_in_flight_per_client
            .unwrap_or(default.max_in_flight_per_client),
        session_idle_timeout: limits
            .session_idle_timeout
            .unwrap_or(default.session_idle_timeout),
        drain: limits.drain_timeout.unwrap_or(default.drain),
        ..default
    }
}

/// Serves `server` over Streamable HTTP on `addr` until Ctrl-C or SIGTERM.
pub(crate) async fn serve_http(
    server: Arc<dyn mcp_core::McpServer>,
    addr: SocketAddr,
    options: HttpServeOptions,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    eprintln!("mcp-manager: listening on http://{bound}/mcp");
    mcp_serve::serve_http(server, listener, options, stop_signal())
        .await
        .context("serving http")
}

/// Resolves on Ctrl-C or SIGTERM, and says so.
async fn stop_signal() {
    signalled().await;
    // Not eprintln!: stderr may be closed by now, and that must not panic.
    let _ = writeln!(std::io::stderr(), "mcp-manager: stopping");
}
