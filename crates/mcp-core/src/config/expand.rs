//! `${VAR}` references expanded in one config string, a failure reported
//! at the string's path: what every reader of a config value that may hold
//! references uses.

use super::interpolate::Vars;
use super::path::JsonPath;
use super::report::Report;
use crate::error::ConfigIssue;

/// Expands `${VAR}` references, reporting a failure at `path`.
pub(crate) fn expand(
    vars: &Vars<'_>,
    path: &JsonPath,
    raw: &str,
    report: &mut Report,
) -> Option<String> {
    match vars.expand(raw) {
        Ok(value) => Some(value),
        Err(err) => {
            report.error(ConfigIssue::new(path.as_str(), err.to_string()).with_hint(err.hint()));
            None
        }
    }
}
