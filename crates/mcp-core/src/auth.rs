//! Who is calling: what an endpoint that checks access tokens hands the
//! layers above ([`Principal`]), and the interface of whatever checks
//! them ([`Authenticator`]); and the other way round, where a link to a
//! remote server gets the tokens it sends ([`TokenSource`]). No HTTP or
//! crypto library is named.

use std::fmt;

use serde_json::{Map, Value};

use crate::BoxFuture;

/// The caller an access token stands for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Principal {
    /// The token's subject (`sub`; else its `client_id`).
    pub subject: String,
    /// The scopes it grants (`scope`, or `scp`).
    pub scopes: Vec<String>,
    /// Every claim of the token (or the introspection answer).
    pub claims: Map<String, Value>,
}

impl Principal {
    /// Whether the token grants `scope`.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a request is turned away, as the HTTP endpoint answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// 401 (no valid token), 403 (a valid token without the scopes
    /// needed) or 503 (the keys to check it with cannot be had).
    pub status: u16,
    /// The `WWW-Authenticate` header, when there is one.
    pub www_authenticate: Option<String>,
    /// The OAuth error code (`invalid_token`, `insufficient_scope`,
    /// `temporarily_unavailable`), for the body; no detail past it.
    pub error: &'static str,
}

/// Checks the access token of each request to an endpoint.
pub trait Authenticator: Send + Sync + 'static {
    /// The caller `authorization` (the `Authorization` header, as sent)
    /// stands for, or why the request is turned away.
    fn authenticate<'a>(
        &'a self,
        authorization: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Principal, Denial>>;

    /// The document served at `path` without a token (the protected
    /// resource metadata of RFC 9728, at its well-known path), as JSON.
    fn well_known(&self, path: &str) -> Option<String>;
}

impl fmt::Debug for dyn Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authenticator")
    }
}

/// Where a client's link to a remote server gets the access token it
/// sends, for a server that asks for one (an OAuth 2.1 protected
/// resource). The link sends [`token`](Self::token) with every request;
/// when the server refuses it (401, or 403 `insufficient_scope`) it asks
/// [`refused`](Self::refused) for another and sends the request again.
pub trait TokenSource: Send + Sync + 'static {
    /// The token to send now, if there is one; cheap, called per request.
    fn token(&self) -> Option<std::sync::Arc<str>>;

    /// The server answered `status` (401 or 403) to a request that carried
    /// `sent` (`None`: no token), with the `WWW-Authenticate` header
    /// `challenge`: a token to try again with (refreshed, or signed in
    /// anew with the scopes asked for), or why there is none, in words
    /// that tell the user what to do.
    fn refused<'a>(
        &'a self,
        sent: Option<&'a str>,
        status: u16,
        challenge: Option<&'a str>,
    ) -> BoxFuture<'a, Result<std::sync::Arc<str>, String>>;
}

impl fmt::Debug for dyn TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSource")
    }
}
