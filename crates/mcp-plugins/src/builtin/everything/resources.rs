//! Resources: `resources/list`, `resources/templates/list`,
//! `resources/read`, `resources/subscribe` and `resources/unsubscribe`.

use mcp_protocol::ErrorObject;
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::mcp::{PaginatedParams, ResourceRequestParams};
use serde_json::{Value, json};

use super::call::{Call, Reply, error_with_data, invalid_params};
use super::media;
use super::state::{Shared, State};

/// A text resource.
pub(crate) const STATIC_TEXT: &str = "test://static-text";
/// A binary resource.
pub(crate) const STATIC_BINARY: &str = "test://static-binary";
/// A resource whose content changes with `test_trigger_resource_update`.
pub(crate) const WATCHED: &str = "test://watched-resource";
/// The resource `test_trigger_resource_list_change` adds and removes.
pub(crate) const DYNAMIC: &str = "test://dynamic-resource";
/// The one resource template.
pub(crate) const TEMPLATE: &str = "test://template/{id}/data";

/// The text of [`STATIC_TEXT`].
const STATIC_TEXT_CONTENT: &str = "This is the content of the static text resource.";

/// A listed resource: URI, name, description, MIME type.
type Listed = (&'static str, &'static str, &'static str, &'static str);

/// The resources every list has.
const FIXED: [Listed; 3] = [
    (
        STATIC_TEXT,
        "static-text",
        "A plain text resource with fixed content.",
        "text/plain",
    ),
    (
        STATIC_BINARY,
        "static-binary",
        "A binary resource: a 1x1 red PNG image.",
        media::PNG,
    ),
    (
        WATCHED,
        "watched-resource",
        "A text resource that test_trigger_resource_update changes; subscribe to it to hear of changes.",
        "text/plain",
    ),
];

/// The resource that comes and goes.
const DYNAMIC_LISTED: Listed = (
    DYNAMIC,
    "dynamic-resource",
    "A resource that test_trigger_resource_list_change adds and removes.",
    "text/plain",
);

/// The resources listed now, in a fixed order.
fn listed(state: &State) -> Vec<Listed> {
    let mut resources = FIXED.to_vec();
    if state.dynamic_resource {
        resources.push(DYNAMIC_LISTED);
    }
    resources
}

/// Fails for a list request with a cursor: every list is one page, so no
/// cursor is ever valid.
pub(crate) fn check_no_cursor(call: &Call) -> Result<(), ErrorObject<'static>> {
    let params: PaginatedParams<'static> = call.view()?;
    match params.cursor {
        Some(_) => Err(invalid_params(
            "unknown `cursor`: this server returns every list in one page",
        )),
        None => Ok(()),
    }
}

/// `resources/list`.
pub(crate) fn list(shared: &Shared, call: &Call) -> Result<Reply, ErrorObject<'static>> {
    check_no_cursor(call)?;
    let resources: Vec<Value> = listed(&shared.lock())
        .into_iter()
        .map(|(uri, name, description, mime)| {
            json!({ "uri": uri, "name": name, "description": description, "mimeType": mime })
        })
        .collect();
    Ok(Reply::Complete(json!({ "resources": resources })))
}

/// `resources/templates/list`.
pub(crate) fn templates(call: &Call) -> Result<Reply, ErrorObject<'static>> {
    check_no_cursor(call)?;
    Ok(Reply::Complete(json!({
        "resourceTemplates": [{
            "uriTemplate": TEMPLATE,
            "name": "template",
            "description": "A JSON document for any id: test://template/{id}/data.",
            "mimeType": "application/json",
        }],
    })))
}

/// The `{id}` of a URI that matches [`TEMPLATE`].
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// The contents of the resource at `uri`, if there is one.
fn contents(state: &State, uri: &str) -> Option<Value> {
    let (mime, text) = match uri {
        STATIC_TEXT => ("text/plain", STATIC_TEXT_CONTENT.to_owned()),
        STATIC_BINARY => {
            return Some(
                json!({ "uri": uri, "mimeType": media::PNG, "blob": media::RED_PIXEL_PNG }),
            );
        }
        WATCHED => (
            "text/plain",
            format!("Watched resource, revision {}.", state.watched_revision),
        ),
        DYNAMIC if state.dynamic_resource => (
            "text/plain",
            "This resource was added by test_trigger_resource_list_change.".to_owned(),
        ),
        _ => {
            // Written by hand to keep the members in this order; `Value`'s
            // display quotes and escapes the strings.
            let id = template_id(uri)?;
            let data = Value::from(format!("Data for ID: {id}"));
            let id = Value::from(id);
            (
                "application/json",
                format!(r#"{{"id":{id},"templateTest":true,"data":{data}}}"#),
            )
        }
    };
    Some(json!({ "uri": uri, "mimeType": mime, "text": text }))
}

/// Whether there is a resource at `uri`.
pub(crate) fn exists(state: &State, uri: &str) -> bool {
    contents(state, uri).is_some()
}

/// The error for a URI with no resource: `-32602` with the URI in `data`
/// (2026-07-28), `-32002` before.
fn not_found(call: &Call, uri: &str) -> ErrorObject<'static> {
    let code = if call.mode.is_stateless() {
        error_code::INVALID_PARAMS
    } else {
        error_code::RESOURCE_NOT_FOUND
    };
    error_with_data(code, "Resource not found", &json!({ "uri": uri }))
}

/// `resources/read`.
pub(crate) fn read(shared: &Shared, call: &Call) -> Result<Reply, ErrorObject<'static>> {
    let params: ResourceRequestParams<'static> = call.view()?;
    let found = contents(&shared.lock(), &params.uri);
    match found {
        Some(contents) => Ok(Reply::Complete(json!({ "contents": [contents] }))),
        None => Err(not_found(call, &params.uri)),
    }
}

/// `resources/subscribe` and `resources/unsubscribe`.
pub(crate) fn subscribe(
    shared: &Shared,
    call: &Call,
    on: bool,
) -> Result<Reply, ErrorObject<'static>> {
    let params: ResourceRequestParams<'static> = call.view()?;
    let uri = params.uri.into_owned();
    let mut state = shared.lock();
    if on {
        if !exists(&state, &uri) {
            drop(state);
            return Err(not_found(call, &uri));
        }
        state.subscriptions.insert(uri, call.context.clone());
    } else {
        state.subscriptions.remove(&uri);
    }
    Ok(Reply::Complete(json!({})))
}
