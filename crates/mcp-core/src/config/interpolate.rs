//! `${VAR}` interpolation of config strings.
//!
//! The accepted forms are documented with the config module.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where `${VAR}` references get their values.
///
/// [`ProcessEnv`] reads the process environment; closures
/// `Fn(&str) -> Option<String>` and string maps work too, so that tests and
/// embedders can supply their own.
pub trait EnvLookup {
    /// The value of `name`, or `None` when it is not set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The environment of the current process. Variables whose value is not
/// valid Unicode count as unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var_os(name).and_then(|value| value.into_string().ok())
    }
}

impl<F: Fn(&str) -> Option<String>> EnvLookup for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

impl<S: std::hash::BuildHasher> EnvLookup for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl EnvLookup for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpolationError {
    Undefined(String),
    Unterminated,
    EmptyName,
    InvalidName(String),
    InputPrompt(String),
}

impl fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Undefined(name) => write!(f, "environment variable `{name}` is not set"),
            Self::Unterminated => f.write_str("`${` without a closing `}`"),
            Self::EmptyName => f.write_str("`${}` names no variable"),
            Self::InvalidName(name) => write!(f, "`${{{name}}}` is not a valid variable name"),
            Self::InputPrompt(id) => {
                write!(
                    f,
                    "`${{input:{id}}}` asks VS Code to prompt for a value, which mcp-manager cannot do"
                )
            }
        }
    }
}

impl InterpolationError {
    pub(crate) fn hint(&self) -> String {
        match self {
            Self::Undefined(name) => {
                format!("set `{name}` in the environment, or give a fallback: `${{{name}:-value}}`")
            }
            Self::Unterminated => "close it with `}`, or write `$$` for a literal `$`".to_owned(),
            Self::EmptyName | Self::InvalidName(_) => {
                "names use letters, digits and `_`, e.g. `${API_KEY}`; write `$$` for a literal `$`"
                    .to_owned()
            }
            Self::InputPrompt(_) => {
                "put the value in an environment variable and write `${env:NAME}`".to_owned()
            }
        }
    }
}

/// The variables of one document: the environment plus the values derived
/// from where the document lives.
pub(crate) struct Vars<'a> {
    env: &'a dyn EnvLookup,
    workspace_folder: Option<String>,
}

impl<'a> Vars<'a> {
    pub(crate) fn new(env: &'a dyn EnvLookup, source: Option<&Path>) -> Self {
        Self {
            env,
            workspace_folder: source.and_then(workspace_folder),
        }
    }

    /// For a config that came from no file: `${workspaceFolder}` is `folder`.
    pub(crate) fn in_folder(env: &'a dyn EnvLookup, folder: &Path) -> Self {
        Self {
            env,
            workspace_folder: folder.to_str().map(str::to_owned),
        }
    }

    /// Expands every reference in `input`.
    pub(crate) fn expand(&self, input: &str) -> Result<String, InterpolationError> {
        let mut out = String::with_capacity(input.len());
        let mut rest = input;
        while let Some(dollar) = rest.find('$') {
            let (before, from_dollar) = rest.split_at(dollar);
            out.push_str(before);
            let after = from_dollar.get(1..).unwrap_or_default();
            rest = if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                tail
            } else if let Some(body) = after.strip_prefix('{') {
                let (reference, tail) = body
                    .split_once('}')
                    .ok_or(InterpolationError::Unterminated)?;
                out.push_str(&self.resolve(reference)?);
                tail
            } else {
                out.push('$');
                after
            };
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value of the text between `${` and `}`.
    fn resolve(&self, reference: &str) -> Result<String, InterpolationError> {
        let (name, fallback) = match reference.split_once(":-") {
            Some((name, fallback)) => (name, Some(fallback)),
            None => (reference, None),
        };
        if let Some(id) = name.strip_prefix("input:") {
            return Err(InterpolationError::InputPrompt(id.to_owned()));
        }
        let (name, env_only) = match name.strip_prefix("env:") {
            Some(name) => (name, true),
            None => (name, false),
        };
        if name.is_empty() {
            return Err(InterpolationError::EmptyName);
        }
        if !is_valid_name(name) {
            return Err(InterpolationError::InvalidName(reference.to_owned()));
        }
        let value = self
            .lookup(name, env_only)
            .filter(|v| !v.is_empty() || fallback.is_none());
        value
            .or_else(|| fallback.map(str::to_owned))
            .ok_or_else(|| InterpolationError::Undefined(name.to_owned()))
    }

    fn lookup(&self, name: &str, env_only: bool) -> Option<String> {
        match (&self.workspace_folder, name, env_only) {
            (Some(folder), "workspaceFolder", false) => Some(folder.clone()),
            _ => self.env.var(name),
        }
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The folder `${workspaceFolder}` stands for when the config is `file`.
fn workspace_folder(file: &Path) -> Option<String> {
    let folder = file.parent()?;
    let folder: PathBuf = if folder.file_name().is_some_and(|name| name == ".vscode") {
        folder.parent()?.to_path_buf()
    } else {
        folder.to_path_buf()
    };
    let folder = if folder.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        folder
    };
    folder.to_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            "TOKEN" => Some("s3cr$t".into()),
            _ => None,
        }
    }

    fn expand(input: &str) -> Result<String, InterpolationError> {
        Vars::new(&env, None).expand(input)
    }

    #[test]
    fn expands_all_reference_forms() {
        assert_eq!(expand("${HOME}/bin").unwrap(), "/home/me/bin");
        assert_eq!(expand("${env:HOME}").unwrap(), "/home/me");
        assert_eq!(expand("${NOPE:-/tmp}").unwrap(), "/tmp");
        assert_eq!(expand("${env:NOPE:-x}").unwrap(), "x");
        assert_eq!(expand("${NOPE:-}").unwrap(), "");
        assert_eq!(expand("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(expand("${EMPTY}").unwrap(), "");
        assert_eq!(expand("${HOME:-x}").unwrap(), "/home/me");
        assert_eq!(expand("Bearer ${TOKEN}").unwrap(), "Bearer s3cr$t");
    }

    #[test]
    fn dollar_escapes_and_plain_dollars() {
        assert_eq!(expand("$$").unwrap(), "$");
        assert_eq!(expand("$${HOME}").unwrap(), "${HOME}");
        assert_eq!(expand("cost: 5$ and $HOME").unwrap(), "cost: 5$ and $HOME");
        assert_eq!(expand("end$").unwrap(), "end$");
        assert_eq!(expand("$$$").unwrap(), "$$");
        assert_eq!(expand("no refs").unwrap(), "no refs");
    }

    #[test]
    fn reports_each_kind_of_error() {
        assert_eq!(
            expand("${MISSING}"),
            Err(InterpolationError::Undefined("MISSING".into()))
        );
        assert_eq!(expand("a ${HOME"), Err(InterpolationError::Unterminated));
        assert_eq!(expand("${}"), Err(InterpolationError::EmptyName));
        assert_eq!(expand("${env:}"), Err(InterpolationError::EmptyName));
        assert_eq!(expand("${:-x}"), Err(InterpolationError::EmptyName));
        assert_eq!(
            expand("${A B}"),
            Err(InterpolationError::InvalidName("A B".into()))
        );
        assert_eq!(
            expand("${1X}"),
            Err(InterpolationError::InvalidName("1X".into()))
        );
        assert_eq!(
            expand("${input:key}"),
            Err(InterpolationError::InputPrompt("key".into()))
        );
        let undefined = InterpolationError::Undefined("X".into());
        assert_eq!(undefined.to_string(), "environment variable `X` is not set");
        assert!(undefined.hint().contains("${X:-value}"));
    }

    #[test]
    fn workspace_folder_follows_the_file() {
        let vscode = Vars::new(&env, Some(Path::new("/proj/.vscode/mcp.json")));
        assert_eq!(
            vscode.expand("${workspaceFolder}/s.js").unwrap(),
            "/proj/s.js"
        );
        assert!(vscode.expand("${env:workspaceFolder}").is_err());
        let plain = Vars::new(&env, Some(Path::new("/etc/mcp/config.json")));
        assert_eq!(plain.expand("${workspaceFolder}").unwrap(), "/etc/mcp");
        let relative = Vars::new(&env, Some(Path::new("config.json")));
        assert_eq!(relative.expand("${workspaceFolder}").unwrap(), ".");
        assert!(Vars::new(&env, None).expand("${workspaceFolder}").is_err());
    }

    #[test]
    fn maps_and_process_env_are_lookups() {
        let map: BTreeMap<String, String> = [("A".to_owned(), "1".to_owned())].into();
        assert_eq!(Vars::new(&map, None).expand("${A}").unwrap(), "1");
        let hash: HashMap<String, String> = map.into_iter().collect();
        assert_eq!(Vars::new(&hash, None).expand("${A}${B:-2}").unwrap(), "12");
        assert_eq!(ProcessEnv.var("MCP_CORE_SURELY_UNSET_VARIABLE"), None);
    }

    proptest! {
        #[test]
        fn never_panics(input in any::<String>()) {
            let _ = expand(&input);
        }

        #[test]
        fn never_panics_on_dollar_heavy_text(input in "[${}:a-zA-Z_ -]{0,40}") {
            let _ = expand(&input);
        }

        #[test]
        fn text_without_dollars_is_unchanged(input in "[^$]*") {
            prop_assert_eq!(expand(&input).unwrap(), input);
        }
    }
}
