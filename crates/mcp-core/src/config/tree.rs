//! A JSON value tree that keeps every member of an object, duplicates
//! included, so that duplicate keys can be reported instead of silently
//! collapsing to the last one as `serde_json::Value` does.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::path::JsonPath;
use super::report::Report;
use crate::error::{ConfigIssue, TextPosition};

/// A JSON number as written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Unsigned(u64),
    Negative(i64),
    Float(f64),
}

impl Number {
    /// The value as a whole number, if it is one (`3.0` counts).
    pub(crate) fn as_integer(self) -> Option<i128> {
        match self {
            Self::Unsigned(n) => Some(i128::from(n)),
            Self::Negative(n) => Some(i128::from(n)),
            Self::Float(f) => float_to_integer(f),
        }
    }
}

fn float_to_integer(f: f64) -> Option<i128> {
    // Integral floats below this bound convert to i128 exactly.
    const LIMIT: f64 = 1.0e30;
    if f.fract() == 0.0 && f.abs() < LIMIT {
        Some(f as i128)
    } else {
        None
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsigned(n) => n.fmt(f),
            Self::Negative(n) => n.fmt(f),
            Self::Float(x) => x.fmt(f),
        }
    }
}

/// A JSON value whose objects keep all members in document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// "a string", "an object", ... for messages like "expected X, found Y".
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Number(_) => "a number",
            Self::String(_) => "a string",
            Self::Array(_) => "an array",
            Self::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(match u64::try_from(v) {
            Ok(u) => Number::Unsigned(u),
            Err(_) => Number::Negative(v),
        }))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(Number::Unsigned(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Number(Number::Float(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

/// Parses `text` (JSON, tolerating comments and trailing commas, see
/// [`strip_jsonc`]) into a tree, or describes the syntax error.
pub(crate) fn parse(text: &str) -> Result<Json, ConfigIssue> {
    if text.trim().is_empty() {
        return Err(ConfigIssue::new("", "the file is empty")
            .with_hint(r#"a minimal config is {"mcpServers": {}}"#));
    }
    let plain = strip_jsonc(text);
    serde_json::from_str(&plain).map_err(|err| syntax_issue(&err))
}

fn syntax_issue(err: &serde_json::Error) -> ConfigIssue {
    let full = err.to_string();
    let reason = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(reason, _)| reason);
    ConfigIssue::new("", format!("invalid JSON: {reason}")).at(TextPosition {
        line: err.line(),
        column: err.column(),
    })
}

/// Reports every key that occurs more than once in the same object.
pub(crate) fn report_duplicates(value: &Json, path: &JsonPath, report: &mut Report) {
    match value {
        Json::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                report_duplicates(item, &path.index(index), report);
            }
        }
        Json::Object(members) => {
            let mut seen = HashSet::new();
            let mut reported = HashSet::new();
            for (key, member) in members {
                let member_path = path.key(key);
                if !seen.insert(key.as_str()) && reported.insert(key.as_str()) {
                    report.error(
                        ConfigIssue::new(member_path.as_str(), format!("duplicate key `{key}`"))
                            .with_hint("JSON keeps only the last of them; remove the others"),
                    );
                }
                report_duplicates(member, &member_path, report);
            }
        }
        Json::Null | Json::Bool(_) | Json::Number(_) | Json::String(_) => {}
    }
}

/// Blanks out `//` and `/* */` comments and trailing commas before `}` or
/// `]`, as VS Code's JSON-with-comments allows. Blanked bytes become spaces
/// (newlines are kept), so line and column numbers of errors stay right.
pub(crate) fn strip_jsonc(text: &str) -> String {
    let without_comments = blank_comments(text.as_bytes());
    let clean = blank_trailing_commas(without_comments);
    // Only ASCII bytes outside strings were replaced by ASCII spaces, and
    // whole comments were blanked, so the bytes are still UTF-8.
    String::from_utf8(clean).unwrap_or_else(|_| text.to_owned())
}

#[derive(Clone, Copy, PartialEq)]
enum Scan {
    Code,
    Str,
    StrEscape,
    LineComment,
    BlockComment,
}

fn blank_comments(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut state = Scan::Code;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        let (new_state, blank) = step(state, b, next);
        if blank > 0 {
            blank_range(&mut out, i, blank);
        }
        state = new_state;
        i += blank.max(1);
    }
    out
}

/// One step of the comment scanner: the next state and how many bytes from
/// the current one to blank (0 = keep this byte and advance by one).
fn step(state: Scan, b: u8, next: Option<u8>) -> (Scan, usize) {
    match (state, b, next) {
        (Scan::Code, b'"', _) => (Scan::Str, 0),
        (Scan::Code, b'/', Some(b'/')) => (Scan::LineComment, 2),
        (Scan::Code, b'/', Some(b'*')) => (Scan::BlockComment, 2),
        (Scan::Str, b'\\', _) => (Scan::StrEscape, 0),
        (Scan::Str, b'"', _) => (Scan::Code, 0),
        (Scan::StrEscape, _, _) => (Scan::Str, 0),
        (Scan::LineComment, b'\n', _) => (Scan::Code, 0),
        (Scan::BlockComment, b'*', Some(b'/')) => (Scan::Code, 2),
        (Scan::LineComment | Scan::BlockComment, _, _) => (state, 1),
        (Scan::Code | Scan::Str, _, _) => (state, 0),
    }
}

fn blank_range(out: &mut [u8], start: usize, len: usize) {
    for byte in out.iter_mut().skip(start).take(len) {
        if *byte != b'\n' && *byte != b'\r' {
            *byte = b' ';
        }
    }
}

fn blank_trailing_commas(mut bytes: Vec<u8>) -> Vec<u8> {
    let mut in_string = false;
    let mut escaped = false;
    // The last significant byte outside strings, and a comma that may turn
    // out to be trailing.
    let mut previous = b' ';
    let mut pending_comma: Option<usize> = None;
    for i in 0..bytes.len() {
        let Some(&b) = bytes.get(i) else { break };
        if in_string {
            (in_string, escaped) = match (escaped, b) {
                (true, _) => (true, false),
                (false, b'\\') => (true, true),
                (false, b'"') => (false, false),
                (false, _) => (true, false),
            };
            continue;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => continue,
            b',' if !matches!(previous, b'[' | b'{' | b',') => pending_comma = Some(i),
            b'}' | b']' => {
                if let Some(comma) = pending_comma.take() {
                    blank_range(&mut bytes, comma, 1);
                }
            }
            b'"' => {
                in_string = true;
                pending_comma = None;
            }
            _ => pending_comma = None,
        }
        previous = b;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(members: &[(&str, Json)]) -> Json {
        Json::Object(
            members
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn keeps_duplicate_members_in_order() {
        let tree = parse(r#"{"a": 1, "b": [true, null], "a": "x"}"#).unwrap();
        let expected = obj(&[
            ("a", Json::Number(Number::Unsigned(1))),
            ("b", Json::Array(vec![Json::Bool(true), Json::Null])),
            ("a", Json::String("x".into())),
        ]);
        assert_eq!(tree, expected);
    }

    #[test]
    fn reads_numbers() {
        let tree = parse("[-3, 18446744073709551615, 1.5, 2.0]").unwrap();
        let Json::Array(items) = tree else { panic!() };
        let ints: Vec<Option<i128>> = items
            .iter()
            .map(|v| match v {
                Json::Number(n) => n.as_integer(),
                _ => None,
            })
            .collect();
        assert_eq!(ints, [Some(-3), Some(i128::from(u64::MAX)), None, Some(2)]);
    }

    #[test]
    fn reports_each_duplicate_once_with_its_path() {
        let tree =
            parse(r#"{"s": {"x": {"k": 1, "k": 2, "k": 3}}, "l": [{"a":1,"a":2}]}"#).unwrap();
        let mut report = Report::default();
        report_duplicates(&tree, &JsonPath::root(), &mut report);
        let paths: Vec<&str> = report.errors().iter().map(ConfigIssue::path).collect();
        assert_eq!(paths, ["s.x.k", "l[0].a"]);
        assert_eq!(report.errors()[0].message(), "duplicate key `k`");
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let issue = parse("{\n  \"a\": 1,\n  \"b\" 2\n}").unwrap_err();
        assert_eq!(issue.position(), Some(TextPosition { line: 3, column: 7 }));
        assert_eq!(issue.message(), "invalid JSON: expected `:`");
        let empty = parse("  \n").unwrap_err();
        assert_eq!(empty.message(), "the file is empty");
    }

    #[test]
    fn comments_and_trailing_commas_are_tolerated() {
        let text =
            "{\n // note \"quoted\"\n \"a\": \"//not a comment\", /* b\n c */ \"d\": [1, 2,],\n}";
        let tree = parse(text).unwrap();
        let expected = obj(&[
            ("a", Json::String("//not a comment".into())),
            (
                "d",
                Json::Array(vec![
                    Json::Number(Number::Unsigned(1)),
                    Json::Number(Number::Unsigned(2)),
                ]),
            ),
        ]);
        assert_eq!(tree, expected);
    }

    #[test]
    fn blanking_keeps_positions() {
        let text = "{/* é */\"a\":1, \"s\":\"\\\",]\" ,}";
        let plain = strip_jsonc(text);
        assert_eq!(plain.len(), text.len());
        assert_eq!(plain, "{        \"a\":1, \"s\":\"\\\",]\"  }");
        let err = parse("// c\n{\"a\" 1}").unwrap_err();
        assert_eq!(err.position(), Some(TextPosition { line: 2, column: 6 }));
    }

    #[test]
    fn a_lone_comma_is_still_an_error() {
        assert!(parse("[,]").is_err());
        assert!(parse("{,}").is_err());
    }
}
