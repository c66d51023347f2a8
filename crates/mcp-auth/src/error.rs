//! The crate's one error type: what keeps a resource server from being
//! set up, or a tokens file from being used. Tokens are
//! never refused with it (see `Denial`).

/// Why an [`OAuthResource`](crate::OAuthResource) could not be made, or
/// a [`TokenFile`](crate::tokens::TokenFile) used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP client for keys and introspection could not be set up.
    #[error("cannot set up the HTTP client for access tokens: {0}")]
    Client(String),
    /// The file of a client's tokens cannot be read or written, or holds
    /// something else.
    #[error("{0}")]
    TokenFile(String),
}
