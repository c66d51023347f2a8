//! `mcp-manager plugins`: every server type this manager knows, built in
//! or loaded from the plugins directory, with its version, kind,
//! capabilities and grants, and the plugins that could not be loaded.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use mcp_plugin_api::PluginInfo;
use serde_json::{Value, json};

use crate::cli::launch::INVALID;
use crate::cli::registries::Plugins;

/// Arguments of `plugins`.
#[derive(Debug, Args)]
pub(crate) struct PluginsArgs {
    /// A config whose `mcpManager.pluginsDir` says where plugins are.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How to print the list.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Print the WIT world wasm plugins are built against, instead of
    /// the list.
    #[arg(long, conflicts_with_all = ["config", "format"])]
    wit: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table for people; problems on stderr.
    Text,
    /// One JSON object on stdout: `types`, `pluginsDir`, `problems`.
    Json,
}

pub(crate) fn run(args: &PluginsArgs, plugins: &Plugins) -> anyhow::Result<ExitCode> {
    if args.wit {
        return Ok(print_wit());
    }
    let config = match &args.config {
        Some(path) => match mcp_core::ManagerConfig::load(path) {
            Ok(config) => Some(config),
            Err(error) => {
                eprintln!("error: {error}");
                return Ok(ExitCode::from(INVALID));
            }
        },
        None => None,
    };
    let loaded = plugins.load(config.as_ref());
    let types = loaded.registry.plugins();
    match args.format {
        Format::Text => {
            print!("{}", table(&types));
            match &loaded.dir {
                Some(dir) => println!("\nplugins are looked up in {}", dir.display()),
                None => println!("\nno plugins directory (set --plugins-dir or XDG_DATA_HOME)"),
            }
            for problem in &loaded.problems {
                eprintln!("warning: {problem}");
            }
        }
        Format::Json => {
            let out = json!({
                "pluginsDir": loaded.dir.as_ref().map(|d| d.display().to_string()),
                "types": types.iter().map(mcp_control::describe_plugin).collect::<Vec<_>>(),
                "problems": loaded.problems.iter().map(|p| json!({
                    "plugin": p.plugin(),
                    "path": p.path().display().to_string(),
                    "message": p.message(),
                })).collect::<Vec<_>>(),
            });
            println!("{out:#}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "wasm")]
fn print_wit() -> ExitCode {
    println!("// {}", mcp_plugin_host::WORLD);
    print!("{}", mcp_plugin_host::WIT);
    ExitCode::SUCCESS
}

#[cfg(not(feature = "wasm"))]
fn print_wit() -> ExitCode {
    eprintln!(
        "error: this mcp-manager was built without the `wasm` feature: it runs no wasm plugins"
    );
    ExitCode::from(INVALID)
}

fn table(types: &[PluginInfo]) -> String {
    let rows: Vec<[String; 6]> = types
        .iter()
        .map(|info| {
            let described = mcp_control::describe_plugin(info);
            let text = |key: &str| {
                described
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("-")
                    .to_owned()
            };
            let mut name = info.kind.clone();
            if !info.aliases.is_empty() {
                name = format!("{name} ({})", info.aliases.join(", "));
            }
            let join = |items: &[String]| {
                if items.is_empty() {
                    "-".to_owned()
                } else {
                    items.join(", ")
                }
            };
            let capabilities: Vec<String> = info
                .capabilities
                .iter()
                .map(|c| c.name().to_owned())
                .collect();
            [
                name,
                text("kind"),
                text("plugin"),
                text("version"),
                join(&capabilities),
                join(&info.grants),
            ]
        })
        .collect();
    let header = [
        "TYPE",
        "KIND",
        "PLUGIN",
        "VERSION",
        "CAPABILITIES",
        "GRANTS",
    ];
    let mut lines = vec![header.map(str::to_owned).to_vec()];
    lines.extend(rows.into_iter().map(Vec::from));
    crate::cli::table::aligned(&lines)
}
