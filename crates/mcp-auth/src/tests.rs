//! Unit tests of the parts that need no authorization server; the whole
//! is tested against a real one in mcp-manager's `oauth` tests.

use mcp_core::ManagerConfig;
use mcp_core::config::AuthConfig;
use serde_json::json;

use crate::metadata::{Metadata, split_origin};
use crate::token::{bearer, looks_like_jwt, principal};

fn config(auth: &serde_json::Value) -> AuthConfig {
    let text = json!({"mcpServers": {}, "mcpManager": {"auth": auth}}).to_string();
    let config = ManagerConfig::from_json_str(&text, None, &|_: &str| None).unwrap();
    config.gateway().auth().unwrap().clone()
}

#[test]
fn bearer_tokens_are_read_strictly() {
    assert_eq!(
        bearer("Bearer abc.def-ghi_j~k+l/m="),
        Some("abc.def-ghi_j~k+l/m=")
    );
    assert_eq!(bearer("bearer  abc "), Some("abc"));
    for refused in [
        "Basic abc",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a\"b",
        "abc",
        "",
    ] {
        assert_eq!(bearer(refused), None, "{refused:?}");
    }
    assert_eq!(bearer(&format!("Bearer {}", "a".repeat(20_000))), None);
    assert!(looks_like_jwt("a.b.c"));
    assert!(!looks_like_jwt("a.b"));
    assert!(!looks_like_jwt("opaque"));
}

#[test]
fn the_metadata_and_the_challenges_point_to_each_other() {
    let metadata = Metadata::new(&config(&json!({
        "issuer": "https://idp.example.com/realms/team",
        "audience": "https://gateway.example.com/mcp",
        "requiredScopes": ["mcp:tools", "mcp:read"],
    })));
    let document: serde_json::Value = serde_json::from_str(
        &metadata
            .document("/.well-known/oauth-protected-resource/mcp")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        document,
        json!({
            "resource": "https://gateway.example.com/mcp",
            "authorization_servers": ["https://idp.example.com/realms/team"],
            "bearer_methods_supported": ["header"],
            "resource_name": "mcp-manager",
            "scopes_supported": ["mcp:tools", "mcp:read"],
        })
    );
    assert!(
        metadata
            .document("/.well-known/oauth-protected-resource")
            .is_some()
    );
    assert!(
        metadata
            .document("/.well-known/oauth-protected-resource/other")
            .is_none()
    );
    let url = "https://gateway.example.com/.well-known/oauth-protected-resource/mcp";
    let missing = metadata.missing();
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.www_authenticate.unwrap(),
        format!("Bearer resource_metadata=\"{url}\", scope=\"mcp:tools mcp:read\"")
    );
    let invalid = metadata.invalid();
    assert_eq!(
        invalid.www_authenticate.unwrap(),
        format!("Bearer error=\"invalid_token\", resource_metadata=\"{url}\"")
    );
    let insufficient = metadata.insufficient();
    assert_eq!(insufficient.status, 403);
    assert_eq!(
        insufficient.www_authenticate.unwrap(),
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:tools mcp:read\", resource_metadata=\"{url}\""
        )
    );
    assert_eq!(
        split_origin("http://127.0.0.1:9/a/b?x#y"),
        ("http://127.0.0.1:9", "/a/b")
    );
    assert_eq!(split_origin("https://h"), ("https://h", ""));
}

#[test]
fn the_caller_is_read_from_the_claims_of_each_provider() {
    let of = |claims: serde_json::Value| principal(claims.as_object().unwrap().clone());
    // Keycloak and Auth0: `scope` as one string.
    let keycloak = of(json!({"sub": "u1", "scope": "openid mcp:tools"})).unwrap();
    assert_eq!(keycloak.subject, "u1");
    assert_eq!(keycloak.scopes, ["openid", "mcp:tools"]);
    // Entra ID: `scp`; an app token has `azp` and no `sub` of a user.
    let entra = of(json!({"azp": "app-1", "scp": "mcp.tools"})).unwrap();
    assert_eq!(entra.subject, "app-1");
    assert!(entra.has_scope("mcp.tools"));
    let listed = of(json!({"client_id": "c", "scp": ["a", "b"]})).unwrap();
    assert_eq!((listed.subject.as_str(), listed.scopes.len()), ("c", 2));
    // Callers that cannot be told apart are not served.
    assert_eq!(of(json!({})), None);
    assert_eq!(of(json!({"sub": ""})), None);
}

#[test]
fn auth_configs_are_checked() {
    let error = |auth: serde_json::Value| {
        let text = json!({"mcpServers": {}, "mcpManager": {"auth": auth}}).to_string();
        ManagerConfig::from_json_str(&text, None, &|_: &str| None)
            .unwrap_err()
            .to_string()
    };
    assert!(error(json!({"issuer": "https://i"})).contains("`audience` is missing"));
    assert!(
        error(json!({"issuer": "http://idp.example.com", "audience": "https://g/mcp"}))
            .contains("is not https")
    );
    assert!(
        error(json!({"issuer": "https://i", "audience": "https://g", "algorithms": ["none"]}))
            .contains("unknown or refused algorithm \"none\"")
    );
    assert!(error(json!({"issuer": "https://i", "audience": "https://g", "introspection": {"endpoint": "https://i/x"}})).contains("`clientId` is missing"));
    let loopback =
        config(&json!({"issuer": "http://127.0.0.1:9/", "audience": "http://localhost:8931/mcp"}));
    assert_eq!(
        loopback.algorithms().len(),
        mcp_core::config::DEFAULT_ALGORITHMS.len()
    );
    assert_eq!(loopback.leeway().as_secs(), 60);
    assert_eq!(loopback.resource().as_str(), "http://localhost:8931/mcp");
    // An audience that is not a URL (Entra ID's `api://...`) takes the
    // gateway's URL as `resource`.
    assert!(error(json!({"issuer": "https://i", "audience": "api://mcp-gateway"}))
        .contains("`resource` is missing, and the audience \"api://mcp-gateway\" is not the gateway's https URL"));
    let entra = config(
        &json!({"issuer": "https://i", "audience": "api://mcp-gateway", "resource": "https://mcp.example.com/mcp"}),
    );
    assert_eq!(entra.audience(), "api://mcp-gateway");
    assert_eq!(entra.resource().as_str(), "https://mcp.example.com/mcp");
    let document = Metadata::new(&entra)
        .document("/.well-known/oauth-protected-resource/mcp")
        .unwrap();
    assert!(
        document.contains("\"resource\":\"https://mcp.example.com/mcp\""),
        "{document}"
    );
}
