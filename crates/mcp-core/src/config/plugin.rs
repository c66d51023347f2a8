//! Reading a server entry whose `type` names a plugin's server type: its
//! settings are kept for the plugin, with `${VAR}` references expanded.

use serde_json::{Map, Value};

use super::expand::expand;
use super::interpolate::Vars;
use super::reader::{Field, Object};
use super::report::Report;
use super::server::PluginTransport;
use super::tree::{Json, Number};

/// The keys mcp-manager reads from every entry, whatever its transport.
/// The other members of a plugin entry are the plugin's settings.
pub(crate) const COMMON_OPTIONS: &[&str] = &[
    "type",
    "transportType",
    "enabled",
    "disabled",
    "namespace",
    "tags",
    "priority",
    "instances",
    "timeoutMs",
    "startupTimeoutMs",
    "restart",
    "maxConcurrency",
    "resilience",
    "tools",
    "disabledTools",
    "protocol",
    "sessions",
    "pinning",
    "sandbox",
    "required",
];

/// The plugin entry `obj` of kind `kind`: every member that is not one of
/// mcp-manager's common options. `None` when a string could not be
/// expanded; every such failure is reported.
pub(crate) fn parse(
    obj: &Object<'_>,
    kind: &str,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<PluginTransport> {
    let settings = members(
        obj.members()
            .filter(|(key, _)| !COMMON_OPTIONS.contains(key)),
        vars,
        report,
    )?;
    Some(PluginTransport {
        kind: kind.to_owned(),
        settings,
    })
}

/// `field` as a `serde_json` value with every string expanded, or `None`
/// when any string in it could not be.
fn value(field: &Field<'_>, vars: &Vars<'_>, report: &mut Report) -> Option<Value> {
    match field.value {
        Json::Null => Some(Value::Null),
        Json::Bool(b) => Some(Value::Bool(*b)),
        Json::Number(n) => Some(number(*n)),
        Json::String(raw) => expand(vars, &field.path, raw, report).map(Value::String),
        Json::Array(_) => {
            let items = field.array(report)?;
            let mut failed = false;
            let mut values = Vec::with_capacity(items.len());
            for item in &items {
                match value(item, vars, report) {
                    Some(v) => values.push(v),
                    None => failed = true,
                }
            }
            (!failed).then_some(Value::Array(values))
        }
        Json::Object(_) => {
            let object = field.object(report)?;
            members(object.members(), vars, report).map(Value::Object)
        }
    }
}

/// The object of `members`, each expanded; a key given twice keeps its
/// last value (duplicates are reported as errors elsewhere).
fn members<'a>(
    members: impl Iterator<Item = (&'a str, Field<'a>)>,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<Map<String, Value>> {
    let mut failed = false;
    let mut map = Map::new();
    for (key, field) in members {
        match value(&field, vars, report) {
            Some(v) => {
                map.insert(key.to_owned(), v);
            }
            None => failed = true,
        }
    }
    (!failed).then_some(map)
}

fn number(n: Number) -> Value {
    match n {
        Number::Unsigned(u) => Value::from(u),
        Number::Negative(i) => Value::from(i),
        // JSON text has no NaN or infinity, so every float parsed from it is
        // finite and converts.
        Number::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
    }
}
