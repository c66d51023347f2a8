//! The protected resource metadata (RFC 9728) and the `WWW-Authenticate`
//! challenges that point to it.

use mcp_core::auth::Denial;
use mcp_core::config::AuthConfig;
use serde_json::json;

/// The well-known path of protected resource metadata.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata document and where it is.
pub(crate) struct Metadata {
    document: String,
    /// The paths it is served at: the well-known path followed by the
    /// resource's own path, then the well-known path alone.
    paths: Vec<String>,
    /// Its URL, as clients reach the gateway.
    url: String,
    /// `scope="…"` of the challenges, when scopes are required.
    scope: Option<String>,
}

impl Metadata {
    pub(crate) fn new(config: &AuthConfig) -> Self {
        let resource = config.resource().as_str();
        let (origin, path) = split_origin(resource);
        let path = path.trim_end_matches('/');
        let mut paths = vec![format!("{WELL_KNOWN}{path}")];
        if !path.is_empty() {
            paths.push(WELL_KNOWN.to_owned());
        }
        let mut document = json!({
            "resource": resource,
            "authorization_servers": [config.issuer().as_str()],
            "bearer_methods_supported": ["header"],
            "resource_name": "mcp-manager",
        });
        let scopes = config.required_scopes();
        if let (false, Some(members)) = (scopes.is_empty(), document.as_object_mut()) {
            members.insert("scopes_supported".to_owned(), json!(scopes));
        }
        Self {
            document: document.to_string(),
            url: format!("{origin}{WELL_KNOWN}{path}"),
            paths,
            scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        }
    }

    pub(crate) fn document(&self, path: &str) -> Option<String> {
        self.paths
            .iter()
            .any(|p| p == path)
            .then(|| self.document.clone())
    }

    /// No token: where to learn how to get one.
    pub(crate) fn missing(&self) -> Denial {
        let mut challenge = format!("Bearer resource_metadata=\"{}\"", self.url);
        if let Some(scope) = &self.scope {
            challenge.push_str(&format!(", scope=\"{scope}\""));
        }
        Denial {
            status: 401,
            www_authenticate: Some(challenge),
            error: "invalid_request",
        }
    }

    /// A token that is not valid: nothing more than that.
    pub(crate) fn invalid(&self) -> Denial {
        Denial {
            status: 401,
            www_authenticate: Some(format!(
                "Bearer error=\"invalid_token\", resource_metadata=\"{}\"",
                self.url
            )),
            error: "invalid_token",
        }
    }

    /// A valid token without the scopes needed: which they are.
    pub(crate) fn insufficient(&self) -> Denial {
        let scope = self.scope.as_deref().unwrap_or_default();
        Denial {
            status: 403,
            www_authenticate: Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{}\"",
                self.url
            )),
            error: "insufficient_scope",
        }
    }
}

/// `https://host:port` and `/path` of a URL (without query or fragment).
pub(crate) fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let rest = url.get(after_scheme..).unwrap_or_default();
    let end = url.find(['?', '#']).unwrap_or(url.len());
    match rest.find('/') {
        Some(slash) => {
            let at = after_scheme + slash;
            (
                url.get(..at).unwrap_or(url),
                url.get(at..end).unwrap_or_default(),
            )
        }
        None => (url.get(..end).unwrap_or(url), ""),
    }
}
