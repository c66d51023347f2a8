//! Unit tests of the gateway's helpers.

use super::*;
use crate::notify::*;
use crate::route::*;

fn raw(value: &Value) -> Raw<'static> {
    Raw::from_value(value)
}

fn value(raw: &Raw<'_>) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

const V26: &str = "io.modelcontextprotocol/protocolVersion";

#[test]
fn stateless_requests_are_told_by_their_meta() {
    assert!(params_are_stateless(&raw(
        &json!({"name": "x", "_meta": {V26: "2026-07-28"}})
    )));
    assert!(!params_are_stateless(&raw(
        &json!({"name": "x", "_meta": {V26: "2025-11-25"}})
    )));
    assert!(!params_are_stateless(&raw(
        &json!({"name": "protocolVersion"})
    )));
}

#[test]
fn the_envelope_is_taken_off_and_the_rest_kept() {
    let params = raw(&json!({
        "name": "x",
        "_meta": {V26: "2026-07-28", "io.modelcontextprotocol/clientInfo": {}, "progressToken": 7}
    }));
    assert_eq!(
        value(&without_envelope(params)),
        json!({"name": "x", "_meta": {"progressToken": 7}})
    );
    let only = raw(&json!({"name": "x", "_meta": {V26: "2026-07-28"}}));
    assert_eq!(value(&without_envelope(only)), json!({"name": "x"}));
}

#[test]
fn results_for_stateless_clients_say_what_they_are() {
    let plain = raw(&json!({"content": []}));
    assert_eq!(
        value(&as_stateless_result("tools/call", plain)),
        json!({"content": [], "resultType": "complete"})
    );
    let asked = raw(&json!({"resultType": "input_required", "inputRequests": {}}));
    assert_eq!(
        value(&as_stateless_result("tools/call", asked.clone())),
        value(&asked)
    );
    let read = raw(&json!({"contents": [], "ttlMs": 5}));
    assert_eq!(
        value(&as_stateless_result("resources/read", read)),
        json!({"contents": [], "ttlMs": 5, "resultType": "complete", "cacheScope": "private"})
    );
}

#[test]
fn subscriptions_are_counted_per_session() {
    let a = &ServerId::new("a").unwrap();
    let b = &ServerId::new("b").unwrap();
    let mut subscriptions = Subscriptions::default();
    assert!(
        subscriptions.subscribe(1, a, "u"),
        "the first asks upstream"
    );
    assert!(!subscriptions.subscribe(1, a, "u"), "twice is once");
    assert!(!subscriptions.subscribe(2, a, "u"), "the second shares it");
    assert!(
        subscriptions.subscribe(2, b, "u"),
        "another backend's is its own"
    );
    assert!(
        !subscriptions.unsubscribe(3, a, "u"),
        "a stranger's changes nothing"
    );
    assert!(!subscriptions.unsubscribe(1, a, "u"), "2 still holds it");
    assert!(subscriptions.holds(2, a, "u") && !subscriptions.holds(1, a, "u"));
    let mut released = subscriptions.end_session(2);
    released.sort();
    assert_eq!(
        released,
        [(a.clone(), "u".to_owned()), (b.clone(), "u".to_owned())]
    );
    assert!(
        subscriptions.subscribe(1, a, "u"),
        "nobody held it any more"
    );
}

#[test]
fn a_server_that_leaves_takes_its_subscriptions() {
    let a = &ServerId::new("a").unwrap();
    let b = &ServerId::new("b").unwrap();
    let mut subscriptions = Subscriptions::default();
    subscriptions.subscribe(1, a, "u");
    subscriptions.subscribe(1, b, "u");
    subscriptions.forget_server(a);
    assert!(!subscriptions.holds(1, a, "u") && subscriptions.holds(1, b, "u"));
    assert!(subscriptions.subscribe(2, a, "u"), "asked upstream anew");
    assert_eq!(subscriptions.end_session(1), [(b.clone(), "u".to_owned())]);
}

#[test]
fn input_required_results_are_read() {
    let result = raw(&json!({
        "resultType": "input_required",
        "inputRequests": {"a": {"method": "roots/list"}},
        "requestState": "s1"
    }));
    let (requests, state) = input_required(&result).unwrap();
    assert_eq!(requests["a"]["method"], "roots/list");
    assert_eq!(state, Some(json!("s1")));
    assert!(input_required(&raw(&json!({"resultType": "complete"}))).is_none());
}
