//! Typed access to the JSON tree that reports every mismatch as an issue
//! with its path, and reports the keys nobody asked for.

use std::collections::HashSet;

use super::path::JsonPath;
use super::report::Report;
use super::suggest;
use super::tree::Json;
use crate::error::ConfigIssue;

/// One value in the tree together with its path.
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    pub(crate) value: &'a Json,
    pub(crate) path: JsonPath,
}

impl<'a> Field<'a> {
    pub(crate) fn new(value: &'a Json, path: JsonPath) -> Self {
        Self { value, path }
    }

    fn mismatch(&self, expected: &str) -> ConfigIssue {
        ConfigIssue::new(
            self.path.as_str(),
            format!("expected {expected}, found {}", self.value.kind()),
        )
    }

    pub(crate) fn string(&self, report: &mut Report) -> Option<&'a str> {
        match self.value {
            Json::String(s) => Some(s),
            Json::Number(n) => {
                report.error(
                    self.mismatch("a string")
                        .with_hint(format!("write it in quotes: \"{n}\"")),
                );
                None
            }
            Json::Bool(b) => {
                report.error(
                    self.mismatch("a string")
                        .with_hint(format!("write it in quotes: \"{b}\"")),
                );
                None
            }
            _ => {
                report.error(self.mismatch("a string"));
                None
            }
        }
    }

    /// A string that must not be empty.
    pub(crate) fn non_empty_string(&self, report: &mut Report) -> Option<&'a str> {
        let s = self.string(report)?;
        if s.is_empty() {
            report.error(ConfigIssue::new(self.path.as_str(), "must not be empty"));
            return None;
        }
        Some(s)
    }

    pub(crate) fn bool(&self, report: &mut Report) -> Option<bool> {
        match self.value {
            Json::Bool(b) => Some(*b),
            Json::String(s) if s == "true" || s == "false" => {
                report.error(
                    self.mismatch("true or false")
                        .with_hint(format!("write it without quotes: {s}")),
                );
                None
            }
            _ => {
                report.error(self.mismatch("true or false"));
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub(crate) fn integer(&self, min: i64, max: i64, report: &mut Report) -> Option<i64> {
        let number = match self.value {
            Json::Number(n) => *n,
            Json::String(s) if s.trim().parse::<i64>().is_ok() => {
                report.error(
                    self.mismatch("a whole number")
                        .with_hint(format!("write it without quotes: {}", s.trim())),
                );
                return None;
            }
            _ => {
                report.error(self.mismatch("a whole number"));
                return None;
            }
        };
        let Some(value) = number.as_integer() else {
            report.error(ConfigIssue::new(
                self.path.as_str(),
                format!("expected a whole number, found {number}"),
            ));
            return None;
        };
        let issue = if value < i128::from(min) {
            format!("must be at least {min}, found {value}")
        } else if value > i128::from(max) {
            format!("must be at most {max}, found {value}")
        } else {
            return i64::try_from(value).ok();
        };
        report.error(ConfigIssue::new(self.path.as_str(), issue));
        None
    }

    pub(crate) fn object(&self, report: &mut Report) -> Option<Object<'a>> {
        match self.value {
            Json::Object(members) => Some(Object {
                members,
                path: self.path.clone(),
            }),
            _ => {
                report.error(self.mismatch("an object"));
                None
            }
        }
    }

    /// The elements of an array, each with its path.
    pub(crate) fn array(&self, report: &mut Report) -> Option<Vec<Field<'a>>> {
        match self.value {
            Json::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Field::new(item, self.path.index(i)))
                    .collect(),
            ),
            Json::String(s) => {
                report.error(
                    self.mismatch("an array")
                        .with_hint(format!("write a list, even of one element: [{}]", quote(s))),
                );
                None
            }
            _ => {
                report.error(self.mismatch("an array"));
                None
            }
        }
    }

    /// An array of strings, each with its path. Every element that is not a
    /// string is reported; the result then holds only the valid ones.
    pub(crate) fn strings(&self, report: &mut Report) -> Option<Vec<(JsonPath, &'a str)>> {
        let items = self.array(report)?;
        Some(
            items
                .into_iter()
                .filter_map(|item| item.string(report).map(|s| (item.path, s)))
                .collect(),
        )
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The keys an object may have, for reporting the others.
pub(crate) struct Schema {
    /// The keys this program reads.
    pub(crate) known: &'static [&'static str],
    /// Keys other MCP clients use that are ignored here, each with a note on
    /// what to do instead.
    pub(crate) foreign: &'static [(&'static str, &'static str)],
    /// Other words people use for known keys: `(word, key)`.
    pub(crate) synonyms: &'static [(&'static str, &'static str)],
}

impl Schema {
    fn suggestion(&self, key: &str) -> Option<&'static str> {
        let mut candidates = suggest::plain(self.known);
        candidates.extend_from_slice(self.synonyms);
        suggest::closest(key, &candidates)
    }
}

/// A JSON object with its path.
#[derive(Debug, Clone)]
pub(crate) struct Object<'a> {
    members: &'a [(String, Json)],
    path: JsonPath,
}

impl<'a> Object<'a> {
    pub(crate) fn path(&self) -> &JsonPath {
        &self.path
    }

    /// The member `key`; when it occurs more than once, the last (as JSON
    /// parsers do; the duplicate itself is reported elsewhere).
    pub(crate) fn get(&self, key: &str) -> Option<Field<'a>> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(k, value)| Field::new(value, self.path.key(k)))
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.members.iter().any(|(k, _)| k == key)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every member in document order (duplicates included).
    pub(crate) fn members(&self) -> impl Iterator<Item = (&'a str, Field<'a>)> + '_ {
        self.members
            .iter()
            .map(|(key, value)| (key.as_str(), Field::new(value, self.path.key(key))))
    }

    /// Warns about each key the schema does not know, once per key.
    pub(crate) fn report_unknown(&self, schema: &Schema, report: &mut Report) {
        let mut seen = HashSet::new();
        for (key, field) in self.members() {
            if schema.known.contains(&key) || !seen.insert(key) {
                continue;
            }
            report.warn(unknown_key(schema, key, &field.path));
        }
    }
}

fn unknown_key(schema: &Schema, key: &str, path: &JsonPath) -> ConfigIssue {
    if let Some((_, note)) = schema.foreign.iter().find(|(k, _)| *k == key) {
        return ConfigIssue::new(
            path.as_str(),
            format!("`{key}` is a setting of other MCP clients; mcp-manager ignores it"),
        )
        .with_hint(*note);
    }
    let hint = schema
        .suggestion(key)
        .map(|known| format!("did you mean `{known}`?"));
    ConfigIssue::new(path.as_str(), format!("unknown key `{key}` is ignored"))
        .with_optional_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse;

    fn field(json: &str) -> (Json, JsonPath) {
        (parse(json).unwrap(), JsonPath::root().key("x"))
    }

    fn first_error(report: &Report) -> String {
        let issue = &report.errors()[0];
        format!(
            "{}: {} | {}",
            issue.path(),
            issue.message(),
            issue.hint().unwrap_or("-")
        )
    }

    #[test]
    fn strings_and_type_mismatches() {
        let mut report = Report::default();
        let (value, path) = field("8080");
        assert_eq!(Field::new(&value, path).string(&mut report), None);
        assert_eq!(
            first_error(&report),
            "x: expected a string, found a number | write it in quotes: \"8080\""
        );

        let mut report = Report::default();
        let (value, path) = field("\"\"");
        assert_eq!(Field::new(&value, path).non_empty_string(&mut report), None);
        assert_eq!(first_error(&report), "x: must not be empty | -");
    }

    #[test]
    fn integers_check_type_fraction_and_range() {
        let cases = [
            ("0", "x: must be at least 1, found 0 | -"),
            ("70000", "x: must be at most 65535, found 70000 | -"),
            ("1.5", "x: expected a whole number, found 1.5 | -"),
            (
                "\"5\"",
                "x: expected a whole number, found a string | write it without quotes: 5",
            ),
            ("null", "x: expected a whole number, found null | -"),
            (
                "-99999999999999999999",
                "x: must be at least 1, found -100000000000000000000 | -",
            ),
        ];
        for (json, expected) in cases {
            let mut report = Report::default();
            let (value, path) = field(json);
            assert_eq!(
                Field::new(&value, path).integer(1, 65535, &mut report),
                None,
                "{json}"
            );
            assert_eq!(first_error(&report), expected);
        }
        let mut report = Report::default();
        let (value, path) = field("2.0");
        assert_eq!(Field::new(&value, path).integer(1, 5, &mut report), Some(2));
    }

    #[test]
    fn booleans_and_arrays() {
        let mut report = Report::default();
        let (value, path) = field("\"false\"");
        assert_eq!(Field::new(&value, path).bool(&mut report), None);
        assert_eq!(
            first_error(&report),
            "x: expected true or false, found a string | write it without quotes: false"
        );

        let mut report = Report::default();
        let (value, path) = field("\"--stdio\"");
        assert!(Field::new(&value, path).array(&mut report).is_none());
        assert_eq!(
            first_error(&report),
            "x: expected an array, found a string | write a list, even of one element: [\"--stdio\"]"
        );

        let mut report = Report::default();
        let (value, path) = field("[\"a\", 1, \"b\", {}]");
        let strings = Field::new(&value, path).strings(&mut report).unwrap();
        let values: Vec<&str> = strings.iter().map(|(_, s)| *s).collect();
        assert_eq!(values, ["a", "b"]);
        let paths: Vec<&str> = report.errors().iter().map(ConfigIssue::path).collect();
        assert_eq!(paths, ["x[1]", "x[3]"]);
    }

    #[test]
    fn unknown_keys_get_suggestions_and_notes() {
        const SCHEMA: Schema = Schema {
            known: &["args", "env"],
            foreign: &[("autoApprove", "the gateway does not prompt")],
            synonyms: &[("environment", "env")],
        };
        let value = parse(
            r#"{"args": [], "arg": 1, "enviroment": {}, "autoApprove": [], "zzz": 0, "zzz": 1}"#,
        )
        .unwrap();
        let mut report = Report::default();
        let object = Field::new(&value, JsonPath::root().key("s"))
            .object(&mut report)
            .unwrap();
        object.report_unknown(&SCHEMA, &mut report);
        let (errors, warnings) = report.into_parts();
        assert!(errors.is_empty());
        let text: Vec<String> = warnings
            .iter()
            .map(|w| {
                format!(
                    "{}: {} | {}",
                    w.path(),
                    w.message(),
                    w.hint().unwrap_or("-")
                )
            })
            .collect();
        assert_eq!(
            text,
            [
                "s.arg: unknown key `arg` is ignored | did you mean `args`?",
                "s.enviroment: unknown key `enviroment` is ignored | did you mean `env`?",
                "s.autoApprove: `autoApprove` is a setting of other MCP clients; mcp-manager ignores it | the gateway does not prompt",
                "s.zzz: unknown key `zzz` is ignored | -",
            ]
        );
    }

    #[test]
    fn get_returns_the_last_duplicate() {
        let value = parse(r#"{"a": 1, "a": 2}"#).unwrap();
        let mut report = Report::default();
        let object = Field::new(&value, JsonPath::root())
            .object(&mut report)
            .unwrap();
        assert_eq!(object.get("a").unwrap().integer(0, 9, &mut report), Some(2));
        assert!(object.has("a"));
        assert!(!object.has("b"));
        assert!(!object.is_empty());
    }
}
