//! A remote server entry's `oauth`: how the manager signs in to a server
//! that asks for an OAuth access token.

use super::expand;
use super::interpolate::Vars;
use super::reader::{Object, Schema};
use super::report::Report;
use crate::error::ConfigIssue;

const OAUTH_SCHEMA: Schema = Schema {
    known: &[
        "clientId",
        "clientSecret",
        "clientMetadataUrl",
        "scope",
        "callbackPort",
    ],
    foreign: &[],
    synonyms: &[
        ("client_id", "clientId"),
        ("client_secret", "clientSecret"),
        ("scopes", "scope"),
        ("redirectPort", "callbackPort"),
    ],
};

/// How the manager signs in to a remote server that answers 401 with an
/// OAuth challenge (the MCP authorization flow): `mcp-manager login
/// SERVER` signs in once, the runtime sends the token and refreshes it.
/// Every Streamable HTTP and HTTP+SSE server has one unless its entry
/// sets an `Authorization` header or says `"oauth": false`; the entry's
/// `oauth` object gives a client registered beforehand, the scopes to ask
/// for and the loopback port to come back to. Its `Debug` output leaves
/// the secret out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OAuthClientConfig {
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    pub(crate) client_metadata_url: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) callback_port: Option<u16>,
}

impl OAuthClientConfig {
    /// `clientId`: a client registered beforehand with the server's
    /// authorization server; without it, the client registers itself
    /// (a client ID metadata document or dynamic registration).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// `clientSecret`: that client's secret, for a confidential client.
    pub fn client_secret(&self) -> Option<&str> {
        self.client_secret.as_deref()
    }

    /// `clientMetadataUrl`: the `https` URL of this client's metadata
    /// document (its `client_name`, `redirect_uris` with
    /// `http://127.0.0.1/callback`, ...), used as its `client_id` by
    /// authorization servers that take client ID metadata documents.
    pub fn client_metadata_url(&self) -> Option<&str> {
        self.client_metadata_url.as_deref()
    }

    /// `scope`: the scopes to ask for, space-separated; default: those the
    /// server's challenge names, else all it lists in its metadata.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// `callbackPort`: the loopback port `mcp-manager login` waits on for
    /// the redirect (a registered redirect URI names one); default: any
    /// free port.
    pub fn callback_port(&self) -> Option<u16> {
        self.callback_port
    }
}

impl std::fmt::Debug for OAuthClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("client_metadata_url", &self.client_metadata_url)
            .field("scope", &self.scope)
            .field("callback_port", &self.callback_port)
            .finish()
    }
}

/// The `oauth` of the entry `obj`: `None` for `"oauth": false`, a remote
/// server with an `Authorization` header of its own, or any other server;
/// `http` says whether the entry's server is reached over HTTP, and
/// `authorization` whether its headers hold an `Authorization`.
pub(crate) fn parse(
    obj: &Object<'_>,
    http: bool,
    authorization: bool,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<OAuthClientConfig> {
    let Some(field) = obj.get("oauth") else {
        return (http && !authorization).then(OAuthClientConfig::default);
    };
    if let super::tree::Json::Bool(enabled) = field.value {
        return (*enabled && http && !authorization).then(OAuthClientConfig::default);
    }
    let section = field.object(report)?;
    section.report_unknown(&OAUTH_SCHEMA, report);
    if !http {
        report.error(
            ConfigIssue::new(
                field.path.as_str(),
                "`oauth` applies only to servers reached over HTTP (`url`)",
            )
            .with_hint("remove `oauth`"),
        );
    } else if authorization {
        report.error(
            ConfigIssue::new(
                field.path.as_str(),
                "the server's `headers` already send an `Authorization`",
            )
            .with_hint("keep either the header (a token of your own) or `oauth` (a token the manager gets and refreshes)"),
        );
    }
    let text = |key: &str, report: &mut Report| {
        let field = section.get(key)?;
        let raw = field.non_empty_string(report)?;
        expand::expand(vars, &field.path, raw, report)
    };
    let client_id = text("clientId", report);
    let client_secret = text("clientSecret", report);
    if client_secret.is_some() && client_id.is_none() {
        report.error(
            ConfigIssue::new(
                section.path().key("clientSecret").as_str(),
                "a client secret needs the `clientId` it belongs to",
            )
            .with_hint("add `clientId`, the id the authorization server gave the client"),
        );
    }
    let client_metadata_url = text("clientMetadataUrl", report);
    if let Some(url) = &client_metadata_url {
        let https_with_path = url
            .strip_prefix("https://")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(host, path)| !host.is_empty() && !path.is_empty());
        if !https_with_path {
            report.error(
                ConfigIssue::new(
                    section.path().key("clientMetadataUrl").as_str(),
                    format!("\"{url}\" is not an https URL with a path"),
                )
                .with_hint("a client ID metadata document is served over https, e.g. \"https://example.com/mcp-manager/client.json\""),
            );
        }
    }
    let scope = text("scope", report);
    let callback_port = section
        .get("callbackPort")
        .and_then(|field| field.integer(1, i64::from(u16::MAX), report))
        .and_then(|port| u16::try_from(port).ok());
    Some(OAuthClientConfig {
        client_id,
        client_secret,
        client_metadata_url,
        scope,
        callback_port,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::load_entry as load;

    #[test]
    fn every_http_server_signs_in_unless_it_sends_a_token_of_its_own_or_says_no() {
        let config = load(r#"{"url": "https://h/mcp"}"#).unwrap();
        assert!(config.server("s").unwrap().oauth().is_some());
        let config = load(r#"{"url": "https://h/sse", "type": "sse"}"#).unwrap();
        assert!(config.server("s").unwrap().oauth().is_some());
        let config =
            load(r#"{"url": "https://h/mcp", "headers": {"authorization": "Bearer x"}}"#).unwrap();
        assert!(config.server("s").unwrap().oauth().is_none());
        let config = load(r#"{"url": "https://h/mcp", "oauth": false}"#).unwrap();
        assert!(config.server("s").unwrap().oauth().is_none());
        let config = load(r#"{"command": "x"}"#).unwrap();
        assert!(config.server("s").unwrap().oauth().is_none());
    }

    #[test]
    fn a_registered_client_is_read_and_its_secret_never_shown() {
        let config = load(
            r#"{"url": "https://h/mcp", "oauth": {"clientId": "gw", "clientSecret": "${SECRET}", "scope": "a b", "callbackPort": 8765, "clientMetadataUrl": "https://me.example/c.json"}}"#,
        )
        .unwrap();
        let oauth = config.server("s").unwrap().oauth().unwrap();
        assert_eq!(oauth.client_id(), Some("gw"));
        assert_eq!(oauth.client_secret(), Some("s3cret"));
        assert_eq!(oauth.scope(), Some("a b"));
        assert_eq!(oauth.callback_port(), Some(8765));
        assert_eq!(
            oauth.client_metadata_url(),
            Some("https://me.example/c.json")
        );
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn misplaced_or_incomplete_settings_are_refused() {
        let error = load(r#"{"command": "x", "oauth": {}}"#).unwrap_err();
        assert!(
            error.contains("only to servers reached over HTTP"),
            "{error}"
        );
        let error = load(
            r#"{"url": "https://h/mcp", "headers": {"Authorization": "Bearer x"}, "oauth": {}}"#,
        )
        .unwrap_err();
        assert!(error.contains("already send an `Authorization`"), "{error}");
        let error =
            load(r#"{"url": "https://h/mcp", "oauth": {"clientSecret": "x"}}"#).unwrap_err();
        assert!(error.contains("needs the `clientId`"), "{error}");
        let error =
            load(r#"{"url": "https://h/mcp", "oauth": {"callbackPort": 70000}}"#).unwrap_err();
        assert!(error.contains("oauth.callbackPort"), "{error}");
        let error = load(
            r#"{"url": "https://h/mcp", "oauth": {"clientMetadataUrl": "http://me.example/c.json"}}"#,
        )
        .unwrap_err();
        assert!(error.contains("not an https URL"), "{error}");
        let error = load(r#"{"url": "https://h/mcp", "oauth": "yes"}"#).unwrap_err();
        assert!(error.contains("expected an object"), "{error}");
    }
}
