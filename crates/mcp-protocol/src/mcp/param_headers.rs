//! Tool arguments mirrored in HTTP headers (2026-07-28, Streamable HTTP):
//! a property of a tool's input schema annotated `"x-mcp-header": "Name"`
//! has its argument's value sent in the header `Mcp-Param-Name` of a
//! `tools/call`, so that intermediaries can route on it without reading
//! the body. A client writes the value as [`header_value`] does; a server
//! that reads the body checks each annotated argument against its header
//! ([`check`]): an argument given without its header, a header without its
//! argument, a value that is not the argument's, or a `=?base64?…?=` value
//! that is not canonical base64 is `-32020` (HTTP 400).
//!
//! An annotation must be a non-empty header-name token, unique in the
//! schema regardless of case, on a property of a primitive type; a tool
//! whose annotations break these rules is one a client must not call
//! ([`param_headers`] says why).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::stateless::{Refusal, decode_header_value, encode_header_value};

/// The prefix of the headers that mirror arguments.
pub const PREFIX: &str = "Mcp-Param-";

/// The schema annotation that names an argument's header.
pub const ANNOTATION: &str = "x-mcp-header";

/// One argument mirrored in a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamHeader {
    /// The header's name after [`PREFIX`], as the annotation gives it.
    pub header: String,
    /// The argument (the property of the input schema).
    pub argument: String,
}

impl ParamHeader {
    /// The full header name, `Mcp-Param-<header>`.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{PREFIX}{}", self.header)
    }
}

/// The arguments a tool's input schema mirrors in headers; none for a
/// schema without annotations.
///
/// # Errors
///
/// Why the annotations are invalid: one that is not a string, is empty,
/// has a character a header name cannot have, repeats another (ignoring
/// case), or sits on a property that is not of a primitive type.
pub fn param_headers(input_schema: &Value) -> Result<Vec<ParamHeader>, Cow<'static, str>> {
    let Some(properties) = input_schema.get("properties").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<ParamHeader> = Vec::new();
    for (argument, property) in properties {
        let Some(annotation) = property.get(ANNOTATION) else {
            continue;
        };
        let Some(header) = annotation.as_str() else {
            return Err(format!("`{ANNOTATION}` of `{argument}` must be a string").into());
        };
        if header.is_empty() {
            return Err(format!("`{ANNOTATION}` of `{argument}` is empty").into());
        }
        if !header.bytes().all(is_token_byte) {
            return Err(format!(
                "`{ANNOTATION}` of `{argument}` ({header:?}) has a character a header name cannot have"
            )
            .into());
        }
        if found
            .iter()
            .any(|other| other.header.eq_ignore_ascii_case(header))
        {
            return Err(format!("`{ANNOTATION}` {header:?} is given twice").into());
        }
        let primitive = match property.get("type") {
            None => true,
            Some(Value::String(kind)) => {
                matches!(kind.as_str(), "string" | "integer" | "number" | "boolean")
            }
            Some(_) => false,
        };
        if !primitive {
            return Err(
                format!("`{argument}` has `{ANNOTATION}` but is not of a primitive type").into(),
            );
        }
        found.push(ParamHeader {
            header: header.to_owned(),
            argument: argument.clone(),
        });
    }
    Ok(found)
}

/// Whether a byte may be in a header name (an RFC 9110 token).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// An argument's value as its header carries it: a string as
/// [`encode_header_value`] writes it, a number or boolean as its JSON
/// text; none for null and for what has no header form (objects, arrays).
#[must_use]
pub fn header_value(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(text) => Some(encode_header_value(text)),
        Value::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
        Value::Number(number) => Some(Cow::Owned(number.to_string())),
        _ => None,
    }
}

/// Checks the headers of a `tools/call` against its `arguments`, for the
/// arguments `mirrored` names; `header` looks a header up by its full name
/// (case-insensitively, as HTTP does).
///
/// # Errors
///
/// [`Refusal::HeaderMismatch`] for the first argument whose header is
/// missing, undecodable, unexpected or different.
pub fn check<'h>(
    mirrored: &[ParamHeader],
    arguments: Option<&Map<String, Value>>,
    header: &dyn Fn(&str) -> Option<&'h str>,
) -> Result<(), Refusal> {
    for param in mirrored {
        let name = param.name();
        let body = arguments
            .and_then(|arguments| arguments.get(&param.argument))
            .filter(|value| !value.is_null());
        let sent = header(&name).map(str::trim);
        let mismatch = |why: String| Err(Refusal::HeaderMismatch(why.into()));
        match (body, sent) {
            (None, None) => {}
            (Some(_), None) => {
                return mismatch(format!(
                    "the {name} header is missing: argument `{}` is given",
                    param.argument
                ));
            }
            (None, Some(_)) => {
                return mismatch(format!(
                    "the {name} header is given but argument `{}` is not",
                    param.argument
                ));
            }
            (Some(value), Some(sent)) => {
                let Some(decoded) = decode_header_value(sent) else {
                    return mismatch(format!("the {name} header is not valid base64"));
                };
                if !same_value(value, &decoded) {
                    return mismatch(format!(
                        "the {name} header does not match argument `{}`",
                        param.argument
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether a header's decoded text stands for `value`.
fn same_value(value: &Value, text: &str) -> bool {
    match value {
        Value::String(expected) => expected == text,
        Value::Bool(flag) => text == if *flag { "true" } else { "false" },
        Value::Number(number) => match (number.as_f64(), text.parse::<f64>()) {
            (Some(expected), Ok(sent)) => (expected - sent).abs() <= 1e-9,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "region": { "type": "string", ANNOTATION: "Region" },
                "priority": { "type": "integer", ANNOTATION: "Priority" },
                "verbose": { "type": "boolean", ANNOTATION: "Verbose" },
                "query": { "type": "string" },
            },
        })
    }

    #[test]
    fn annotations_are_read_and_checked() {
        let mirrored = param_headers(&schema()).unwrap();
        let mut names: Vec<String> = mirrored.iter().map(ParamHeader::name).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "Mcp-Param-Priority",
                "Mcp-Param-Region",
                "Mcp-Param-Verbose"
            ]
        );
        assert!(
            param_headers(&json!({ "type": "object" }))
                .unwrap()
                .is_empty()
        );
        for bad in [
            json!({ "properties": { "a": { ANNOTATION: "" } } }),
            json!({ "properties": { "a": { ANNOTATION: 5 } } }),
            json!({ "properties": { "a": { ANNOTATION: "Has Space" } } }),
            json!({ "properties": { "a": { ANNOTATION: "Colon:" } } }),
            json!({ "properties": { "a": { ANNOTATION: "Ünï" } } }),
            json!({ "properties": { "a": { ANNOTATION: "X" }, "b": { ANNOTATION: "x" } } }),
            json!({ "properties": { "a": { "type": "object", ANNOTATION: "X" } } }),
        ] {
            assert!(param_headers(&bad).is_err(), "{bad}");
        }
    }

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        }
    }

    #[test]
    fn headers_must_match_the_arguments() {
        let mirrored = param_headers(&schema()).unwrap();
        let arguments = json!({ "region": "Hello", "priority": 42, "verbose": null, "query": "q" });
        let arguments = arguments.as_object();
        let check_with = |pairs: &[(&str, &str)]| check(&mirrored, arguments, &headers(pairs));
        assert!(
            check_with(&[
                ("mcp-param-region", " Hello "),
                ("Mcp-Param-Priority", "42")
            ])
            .is_ok()
        );
        assert!(
            check_with(&[
                ("Mcp-Param-Region", "=?base64?SGVsbG8=?="),
                ("Mcp-Param-Priority", "42.0")
            ])
            .is_ok()
        );
        for bad in [
            // Missing, undecodable, different, or for a null argument.
            &[("Mcp-Param-Priority", "42")][..],
            &[
                ("Mcp-Param-Region", "=?base64?SGVsbG8?="),
                ("Mcp-Param-Priority", "42"),
            ],
            &[
                ("Mcp-Param-Region", "=?base64?SGVs!!!bG8=?="),
                ("Mcp-Param-Priority", "42"),
            ],
            &[("Mcp-Param-Region", "hello"), ("Mcp-Param-Priority", "42")],
            &[("Mcp-Param-Region", "Hello"), ("Mcp-Param-Priority", "43")],
            &[
                ("Mcp-Param-Region", "Hello"),
                ("Mcp-Param-Priority", "42"),
                ("Mcp-Param-Verbose", "false"),
            ],
        ] {
            let refused = check_with(bad).unwrap_err();
            assert!(matches!(refused, Refusal::HeaderMismatch(_)), "{bad:?}");
        }
        // A value that only looks like base64 is taken literally.
        let literal = json!({ "region": "=?base64?SGVsbG8=", "priority": 1 });
        let pairs = [
            ("Mcp-Param-Region", "=?base64?SGVsbG8="),
            ("Mcp-Param-Priority", "1"),
        ];
        assert!(check(&mirrored, literal.as_object(), &headers(&pairs)).is_ok());
    }

    #[test]
    fn values_are_written_as_headers_carry_them() {
        assert_eq!(header_value(&json!("us-west1")).unwrap(), "us-west1");
        assert_eq!(
            header_value(&json!(" padded ")).unwrap(),
            "=?base64?IHBhZGRlZCA=?="
        );
        assert_eq!(header_value(&json!(42)).unwrap(), "42");
        assert_eq!(header_value(&json!(false)).unwrap(), "false");
        assert_eq!(header_value(&json!(null)), None);
        assert_eq!(header_value(&json!({})), None);
    }
}
