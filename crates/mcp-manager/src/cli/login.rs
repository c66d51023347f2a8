//! `mcp-manager login SERVER --config FILE`: signs in to a remote server
//! of a config that asks for OAuth, once. It asks the server where to sign
//! in (its challenge, its protected resource metadata, its authorization
//! server's metadata), registers the client when it must, prints the URL
//! to open and waits on `127.0.0.1` for the browser to come back with the
//! code, then keeps the token (and its refresh token) in the user's tokens
//! file, readable by the user only. `serve`, `list` and `call` send it to
//! that server from then on, and refresh it when it expires; a running
//! gateway takes the new token at the server's next refusal.
//! `--forget` removes the server's token instead.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use mcp_auth::loopback::Loopback;
use mcp_auth::tokens::{TokenFile, Tokens};
use mcp_core::Launch;

use crate::cli::launch::{self, INVALID};
use crate::cli::registries::Plugins;

/// Arguments of `login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The config file.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// The server to sign in to: its name in the config.
    server: String,
    /// The scopes to ask for, space-separated; default: the server's
    /// `oauth.scope`, else those the server names.
    #[arg(long, value_name = "SCOPES")]
    scope: Option<String>,
    /// The loopback port the browser comes back to; default: the server's
    /// `oauth.callbackPort`, else any free port.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// How long to wait for the browser, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    wait: u64,
    /// Remove the server's token instead of signing in.
    #[arg(long)]
    forget: bool,
}

pub(crate) fn run(args: &LoginArgs, plugins: &Plugins) -> anyhow::Result<ExitCode> {
    let (config, registry) = match launch::load(plugins, &args.config) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(ExitCode::from(code)),
    };
    let Some(server) = config.server(&args.server) else {
        let names: Vec<&str> = config.servers().iter().map(|s| s.id().as_str()).collect();
        eprintln!(
            "error: the config has no server `{}` (it has: {})",
            args.server,
            names.join(", ")
        );
        return Ok(ExitCode::from(INVALID));
    };
    let Some(oauth) = server.oauth() else {
        eprintln!(
            "error: `{}` does not sign in with OAuth: it is not reached over HTTP, its `headers` send an `Authorization`, or its entry says `\"oauth\": false`",
            args.server
        );
        return Ok(ExitCode::from(INVALID));
    };
    let url = match registry.launch(server) {
        Ok(Launch::StreamableHttp(remote) | Launch::Sse(remote)) => remote.url,
        Ok(_) => {
            eprintln!("error: `{}` is not reached over HTTP", args.server);
            return Ok(ExitCode::from(INVALID));
        }
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(INVALID));
        }
    };
    let Some(path) = mcp_core::tokens_file() else {
        eprintln!("error: no place for tokens: set HOME or XDG_DATA_HOME");
        return Ok(ExitCode::from(INVALID));
    };
    if args.forget {
        return Ok(match TokenFile::new(&path).remove(&args.server) {
            Ok(true) => {
                println!("Forgot the token of `{}`.", args.server);
                ExitCode::SUCCESS
            }
            Ok(false) => {
                println!("There was no token for `{}`.", args.server);
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        });
    }
    let server_name = args.server.clone();
    let port = args.port.or(oauth.callback_port()).unwrap_or(0);
    let wait = Duration::from_secs(args.wait);
    let scope = args.scope.clone();
    let oauth = oauth.clone();
    launch::run_async(async move {
        let announce = {
            let server = server_name.clone();
            Box::new(move |url: &str| {
                eprintln!("Open this URL in a browser to sign in to `{server}`:");
                println!("{url}");
                eprintln!("Waiting for the browser to come back…");
            })
        };
        let loopback = match Loopback::bind(port, wait, announce).await {
            Ok(loopback) => loopback,
            Err(error) => {
                eprintln!("error: cannot listen on 127.0.0.1:{port} for the browser: {error}");
                return ExitCode::from(INVALID);
            }
        };
        let redirect_uri = loopback.redirect_uri();
        let mut sign_in = mcp_control::sign_in(
            &server_name,
            &url,
            &oauth,
            Some((Box::new(loopback), redirect_uri)),
        );
        if scope.is_some() {
            sign_in.scope = scope;
        }
        let tokens = Tokens::new(sign_in);
        match tokens.sign_in().await {
            Ok(grant) => {
                let scope = grant.scope.as_deref().unwrap_or("as the server chose");
                eprintln!(
                    "Signed in to `{server_name}` (scope: {scope}); the token is kept in {}.",
                    path.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: signing in to `{server_name}` failed: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
