//! Command templates: the strings of a `command` plugin's manifest
//! (`command`, `args`, `env`, `cwd`) with `{setting}` placeholders filled
//! from a server entry's settings.
//!
//! - `{name}` is replaced by the setting's value: a string as it is, a
//!   number or a boolean as its JSON text.
//! - An argument (or env value, or `cwd`) that is exactly one placeholder
//!   follows its value: an array gives one argument per item, an absent
//!   setting no argument (no variable, no directory). Inside a longer
//!   string an absent setting is an error.
//! - `{{` and `}}` are a literal `{` and `}`.
//! - `{plugin_dir}` is the plugin's own folder (for scripts it ships).

use serde_json::{Map, Value};

/// The placeholder for the plugin's folder.
pub(crate) const PLUGIN_DIR: &str = "plugin_dir";

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Text as it is.
    Text(String),
    /// The value of a setting.
    Setting(String),
}

/// A parsed template string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

/// What filling a template gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Filled {
    /// Nothing: the template was one placeholder for an absent setting.
    Absent,
    /// One string.
    One(String),
    /// Several: the template was one placeholder for an array.
    Many(Vec<String>),
}

impl Template {
    /// Parses `text`.
    ///
    /// # Errors
    ///
    /// A `{` that is not closed, a `}` that is not doubled, or an empty or
    /// malformed placeholder name, described.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, n) in chars.by_ref() {
                        if n == '}' {
                            closed = true;
                            break;
                        }
                        name.push(n);
                    }
                    if !closed {
                        return Err(format!(
                            "`{text}`: the `{{` at byte {at} is not closed (write `{{{{` for a brace)"
                        ));
                    }
                    if name.is_empty()
                        || !name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        return Err(format!(
                            "`{text}`: `{{{name}}}` is not a setting's name (letters, digits, `_` and `-`)"
                        ));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Setting(name));
                }
                '}' => {
                    return Err(format!(
                        "`{text}`: the `}}` at byte {at} closes nothing (write `}}}}` for a brace)"
                    ));
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self { pieces })
    }

    /// The names of the settings it uses.
    pub(crate) fn settings(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Setting(name) => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Fills the placeholders from `settings` (and `plugin_dir`).
    ///
    /// # Errors
    ///
    /// A setting that is absent inside a longer string, or whose value
    /// cannot be written into one (an object, a null, an array inside a
    /// longer string or of something other than strings, numbers and
    /// booleans), described.
    pub(crate) fn fill(
        &self,
        settings: &Map<String, Value>,
        plugin_dir: &str,
    ) -> Result<Filled, String> {
        if let [Piece::Setting(name)] = self.pieces.as_slice() {
            if name != PLUGIN_DIR {
                return match settings.get(name) {
                    None => Ok(Filled::Absent),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|item| scalar(name, item))
                        .collect::<Result<_, _>>()
                        .map(Filled::Many),
                    Some(value) => scalar(name, value).map(Filled::One),
                };
            }
        }
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Setting(name) if name == PLUGIN_DIR => out.push_str(plugin_dir),
                Piece::Setting(name) => match settings.get(name) {
                    Some(value) => out.push_str(&scalar(name, value)?),
                    None => return Err(format!("the setting `{name}` is needed and not set")),
                },
            }
        }
        Ok(Filled::One(out))
    }
}

/// A setting's value as text.
fn scalar(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => Err(format!(
            "the setting `{name}` is {}, which cannot be written into a command line",
            match value {
                Value::Null => "null",
                Value::Array(_) =>
                    "a list here (only an argument that is exactly `{name}` spreads a list)",
                _ => "an object",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn settings(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn placeholders_are_filled_and_lists_spread() {
        let s = settings(
            json!({"package": "mcp-server-time", "args": ["--tz", "UTC"], "port": 8, "on": true}),
        );
        let fill = |t: &str| Template::parse(t).unwrap().fill(&s, "/p").unwrap();
        assert_eq!(fill("{package}"), Filled::One("mcp-server-time".into()));
        assert_eq!(
            fill("{args}"),
            Filled::Many(vec!["--tz".into(), "UTC".into()])
        );
        assert_eq!(
            fill("--port={port}/{on}"),
            Filled::One("--port=8/true".into())
        );
        assert_eq!(fill("{missing}"), Filled::Absent);
        assert_eq!(
            fill("{plugin_dir}/server.py"),
            Filled::One("/p/server.py".into())
        );
        assert_eq!(fill("{plugin_dir}"), Filled::One("/p".into()));
        assert_eq!(fill("{{literal}}"), Filled::One("{literal}".into()));
        let error = Template::parse("x{missing}")
            .unwrap()
            .fill(&s, "/p")
            .unwrap_err();
        assert!(error.contains("`missing` is needed"), "{error}");
        let error = Template::parse("x{args}")
            .unwrap()
            .fill(&s, "/p")
            .unwrap_err();
        assert!(error.contains("a list"), "{error}");
    }

    #[test]
    fn malformed_templates_are_refused_with_the_reason() {
        for (text, says) in [
            ("{open", "is not closed"),
            ("close}", "closes nothing"),
            ("{}", "is not a setting's name"),
            ("{a b}", "is not a setting's name"),
        ] {
            let error = Template::parse(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    proptest! {
        /// Text with its braces doubled comes back as it was, with no
        /// placeholder in it.
        #[test]
        fn escaped_text_round_trips(text in ".*") {
            let escaped = text.replace('{', "{{").replace('}', "}}");
            let template = Template::parse(&escaped).unwrap();
            prop_assert_eq!(template.settings().count(), 0);
            let filled = template.fill(&Map::new(), "/p").unwrap();
            prop_assert_eq!(filled, Filled::One(text));
        }

        /// Parsing never panics, whatever the text.
        #[test]
        fn any_text_parses_or_is_refused(text in ".*") {
            let _ = Template::parse(&text);
        }
    }
}
