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
    /// `${file:PATH}` of a file that cannot be read: the path as written,
    /// and why (never the content).
    File(String, String),
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
            Self::File(path, reason) => write!(f, "`${{file:{path}}}`: {reason}"),
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
            Self::File(path, _) => format!(
                "a relative path is read from the config file's folder; give a fallback for a file that may be missing: `${{file:{path}:-value}}`"
            ),
        }
    }
}

/// The variables of one document: the environment plus the values derived
/// from where the document lives.
pub(crate) struct Vars<'a> {
    env: &'a dyn EnvLookup,
    workspace_folder: Option<String>,
    /// Where a relative `${file:PATH}` is read from: the config file's
    /// folder (none: the working directory).
    base: Option<PathBuf>,
}

/// The largest file `${file:PATH}` reads.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

impl<'a> Vars<'a> {
    pub(crate) fn new(env: &'a dyn EnvLookup, source: Option<&Path>) -> Self {
        Self {
            env,
            workspace_folder: source.and_then(workspace_folder),
            base: source.and_then(Path::parent).map(Path::to_path_buf),
        }
    }

    /// For a config that came from no file: `${workspaceFolder}` is `folder`.
    pub(crate) fn in_folder(env: &'a dyn EnvLookup, folder: &Path) -> Self {
        Self {
            env,
            workspace_folder: folder.to_str().map(str::to_owned),
            base: Some(folder.to_path_buf()),
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
        if let Some(path) = name.strip_prefix("file:") {
            return match (self.read_file(path), fallback) {
                (Ok(value), _) => Ok(value),
                (Err(Missing::NotFound), Some(fallback)) => Ok(fallback.to_owned()),
                (Err(Missing::NotFound), None) => Err(InterpolationError::File(
                    path.to_owned(),
                    "there is no such file".to_owned(),
                )),
                (Err(Missing::Unreadable(reason)), _) => {
                    Err(InterpolationError::File(path.to_owned(), reason))
                }
            };
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

    /// The text of the file at `path` (relative to the config file's
    /// folder), without one final line break.
    fn read_file(&self, path: &str) -> Result<String, Missing> {
        if path.is_empty() {
            return Err(Missing::Unreadable("no path is given".to_owned()));
        }
        let path = Path::new(path);
        let full = match &self.base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_path_buf(),
        };
        let unreadable = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => Missing::NotFound,
            _ => Missing::Unreadable(format!("the file cannot be read: {e}")),
        };
        let size = std::fs::metadata(&full).map_err(unreadable)?.len();
        if size > MAX_FILE_BYTES {
            return Err(Missing::Unreadable(format!(
                "the file is larger than {MAX_FILE_BYTES} bytes"
            )));
        }
        let bytes = std::fs::read(&full).map_err(unreadable)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Missing::Unreadable("the file is not UTF-8 text".to_owned()))?;
        let trimmed = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        Ok(trimmed.to_owned())
    }

    fn lookup(&self, name: &str, env_only: bool) -> Option<String> {
        match (&self.workspace_folder, name, env_only) {
            (Some(folder), "workspaceFolder", false) => Some(folder.clone()),
            _ => self.env.var(name),
        }
    }
}

/// Why `${file:PATH}` has no value.
enum Missing {
    /// There is no file at the path.
    NotFound,
    /// There is one, and it cannot be used; why.
    Unreadable(String),
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
    fn files_are_read_from_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "s3cr$t\n").unwrap();
        std::fs::write(dir.path().join("two-lines"), "a\r\nb\r\n").unwrap();
        std::fs::write(dir.path().join("binary"), [0xff, 0xfe]).unwrap();
        let config = dir.path().join("mcp.json");
        let vars = Vars::new(&env, Some(&config));
        assert_eq!(
            vars.expand("Bearer ${file:token}").unwrap(),
            "Bearer s3cr$t"
        );
        assert_eq!(vars.expand("${file:two-lines}").unwrap(), "a\r\nb");
        let absolute = format!("${{file:{}}}", dir.path().join("token").display());
        assert_eq!(Vars::new(&env, None).expand(&absolute).unwrap(), "s3cr$t");
        assert_eq!(vars.expand("${file:missing:-none}").unwrap(), "none");
        let missing = vars.expand("${file:missing}").unwrap_err();
        assert!(matches!(&missing, InterpolationError::File(path, _) if path == "missing"));
        assert!(missing.hint().contains("${file:missing:-value}"));
        // A file that is there and unusable is an error, fallback or not,
        // and no error shows a file's content.
        for bad in ["${file:binary}", "${file:binary:-x}", "${file:}"] {
            let error = vars.expand(bad).unwrap_err();
            assert!(matches!(error, InterpolationError::File(..)), "{bad}");
        }
        let folder = Vars::in_folder(&env, dir.path());
        assert_eq!(folder.expand("${file:token}").unwrap(), "s3cr$t");
        let error = vars.expand("${file:token}x${MISSING}").unwrap_err();
        assert!(!error.to_string().contains("s3cr"));
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
