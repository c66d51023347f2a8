//! The endpoint of mcp-manager as an OAuth 2.1 resource server, as the
//! MCP authorization specification has it.
//!
//! [`OAuthResource`] is an [`Authenticator`] made from the config's
//! `mcpManager.auth` ([`AuthConfig`]):
//!
//! - it serves the protected resource metadata (RFC 9728) at
//!   `/.well-known/oauth-protected-resource` and at the same path followed
//!   by the resource's own path (`…/mcp`), naming the issuer as the
//!   authorization server;
//! - a request without a token is answered 401 with `WWW-Authenticate:
//!   Bearer resource_metadata="…"` (and the scopes needed);
//! - a JWT is checked against the issuer's keys (its JWKS, from `jwksUri`
//!   or the issuer's metadata, cached, fetched again for a `kid` it lacks
//!   at most every ten seconds and every fifteen minutes anyway): its
//!   algorithm in the allow-list (never `none`, and the key's own when the
//!   key names one), its signature, `iss`, `aud` (the gateway's own URL),
//!   `exp` and `nbf` with the configured leeway;
//! - any other token is checked by introspection (RFC 7662) when it is
//!   configured (answers kept for a minute at most), else refused;
//! - a valid token without the `requiredScopes` gets 403 with
//!   `error="insufficient_scope"` and the scopes needed;
//! - a token that fails gets 401 with `error="invalid_token"` and nothing
//!   more (why is logged at debug level); when the keys were never had and
//!   cannot be fetched, 503.
//!
//! The token stops here: nothing of it is passed on, only the
//! [`Principal`] it stands for.
//!
//! [`client`] is the other side: the authorization flow of a client of a
//! server that asks for OAuth (discovery, registration, PKCE, tokens);
//! [`tokens`] keeps a client's tokens and gets new ones when a server
//! refuses one (a [`TokenSource`](mcp_core::auth::TokenSource) for the
//! runtime's links); [`loopback`] is where the user's browser comes back
//! to after signing in.
//!
//! # Invariants
//!
//! Architecture invariant: it knows no MCP message and no server; it
//! answers "who is this" for an `Authorization` header. The keys are one
//! arc-swap snapshot read without a lock; fetching them is one task's job
//! (an actor fed by a bounded channel), so a flood of unknown `kid`s makes
//! one fetch per ten seconds, not one per request.

pub mod client;
mod error;
mod introspect;
mod jwks;
pub mod loopback;
mod metadata;
mod token;
pub mod tokens;

use std::sync::Arc;

use mcp_core::BoxFuture;
use mcp_core::auth::{Authenticator, Denial, Principal};
use mcp_core::config::AuthConfig;

pub use error::Error;

use introspect::Introspector;
use jwks::Keys;
use metadata::Metadata;

/// An endpoint's tokens, checked as `mcpManager.auth` says.
pub struct OAuthResource {
    config: AuthConfig,
    metadata: Metadata,
    keys: Keys,
    introspector: Option<Introspector>,
}

impl std::fmt::Debug for OAuthResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthResource")
            .field("issuer", &self.config.issuer().as_str())
            .field("audience", &self.config.audience())
            .finish_non_exhaustive()
    }
}

/// Why a token was refused, for the log (never for the client).
#[derive(Debug)]
pub(crate) enum Refused {
    /// The token is not valid: the reason.
    Invalid(String),
    /// The keys to check it with cannot be had: the reason.
    Unavailable(String),
}

impl OAuthResource {
    /// The resource server `config` describes. Must be called within a
    /// tokio runtime: the keys are fetched by a task of its own (first when
    /// a token needs them).
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when the HTTP client cannot be set up.
    pub fn new(config: &AuthConfig) -> Result<Arc<Self>, Error> {
        let client = http_client()?;
        let keys = Keys::start(config, client.clone());
        let introspector = config
            .introspection()
            .map(|introspection| Introspector::new(introspection, config, client));
        Ok(Arc::new(Self {
            metadata: Metadata::new(config),
            config: config.clone(),
            keys,
            introspector,
        }))
    }

    async fn check(&self, authorization: Option<&str>) -> Result<Principal, Denial> {
        let Some(token) = authorization.and_then(token::bearer) else {
            return Err(self.metadata.missing());
        };
        let checked = if token::looks_like_jwt(token) {
            token::check_jwt(&self.config, &self.keys, token).await
        } else if let Some(introspector) = &self.introspector {
            introspector.check(token).await
        } else {
            Err(Refused::Invalid(
                "not a JWT, and no introspection endpoint is configured".to_owned(),
            ))
        };
        let principal = match checked {
            Ok(principal) => principal,
            Err(Refused::Invalid(why)) => {
                tracing::debug!("access token refused: {why}");
                return Err(self.metadata.invalid());
            }
            Err(Refused::Unavailable(why)) => {
                tracing::warn!("access tokens cannot be checked: {why}");
                return Err(Denial {
                    status: 503,
                    www_authenticate: None,
                    error: "temporarily_unavailable",
                });
            }
        };
        let missing: Vec<&String> = self
            .config
            .required_scopes()
            .iter()
            .filter(|scope| !principal.has_scope(scope))
            .collect();
        if !missing.is_empty() {
            tracing::debug!(subject = %principal.subject, "access token lacks the scopes {missing:?}");
            return Err(self.metadata.insufficient());
        }
        Ok(principal)
    }
}

impl Authenticator for OAuthResource {
    fn authenticate<'a>(
        &'a self,
        authorization: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Principal, Denial>> {
        Box::pin(self.check(authorization))
    }

    fn well_known(&self, path: &str) -> Option<String> {
        self.metadata.document(path)
    }
}

/// The HTTP client for keys, metadata, introspection and the client's
/// flow: rustls on the ring provider, short timeouts, no redirects (a key
/// set must come from where it was asked; an authorization endpoint's
/// redirect is read, not followed).
///
/// # Errors
///
/// [`Error::Client`] when it cannot be set up.
pub fn http_client() -> Result<reqwest::Client, Error> {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // An error means another provider was installed first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mcp-manager/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| Error::Client(error.to_string()))
}

/// The body of a GET of `url`, at most 1 MiB, as JSON.
pub(crate) async fn get_json(
    client: &reqwest::Client,
    url: &str,
) -> Result<serde_json::Value, String> {
    let response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|error| format!("GET {url}: {}", source_of(&error)))?;
    json_body(url, response).await
}

/// A response's JSON body, at most 1 MiB, from a 2xx answer.
pub(crate) async fn json_body(
    url: &str,
    mut response: reqwest::Response,
) -> Result<serde_json::Value, String> {
    const LIMIT: usize = 1 << 20;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| format!("{url}: {}", source_of(&error)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > LIMIT {
            return Err(format!("{url} answered more than 1 MiB"));
        }
    }
    serde_json::from_slice(&body).map_err(|error| format!("{url} did not answer JSON: {error}"))
}

/// `text` percent-encoded for a form body (and for HTTP Basic credentials,
/// as RFC 6749 2.3.1 asks).
pub(crate) fn form_encode(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn source_of(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests;
