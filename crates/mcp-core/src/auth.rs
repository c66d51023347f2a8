//! Who is calling: what an endpoint that checks access tokens hands the
//! layers above ([`Principal`]), and the interface of whatever checks
//! them ([`Authenticator`]), with no HTTP or crypto library named.

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
