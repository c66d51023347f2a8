//! `mcpManager.auth`: the gateway's endpoint as an OAuth 2.1 resource
//! server.

use std::time::Duration;

use super::expand;
use super::interpolate::Vars;
use super::reader::{Field, Object, Schema};
use super::report::Report;
use super::url::HttpUrl;
use crate::error::ConfigIssue;

const AUTH_SCHEMA: Schema = Schema {
    known: &[
        "issuer",
        "audience",
        "resource",
        "jwksUri",
        "requiredScopes",
        "algorithms",
        "leewaySeconds",
        "introspection",
    ],
    foreign: &[],
    synonyms: &[
        ("aud", "audience"),
        ("jwks_uri", "jwksUri"),
        ("jwks", "jwksUri"),
        ("scopes", "requiredScopes"),
        ("leeway", "leewaySeconds"),
    ],
};

const INTROSPECTION_SCHEMA: Schema = Schema {
    known: &["endpoint", "clientId", "clientSecret"],
    foreign: &[],
    synonyms: &[
        ("url", "endpoint"),
        ("client_id", "clientId"),
        ("client_secret", "clientSecret"),
    ],
};

/// The JWS algorithms accepted unless `algorithms` says: the asymmetric
/// ones identity providers sign access tokens with. Never `none`, and no
/// shared-secret (`HS*`) algorithm unless asked.
pub const DEFAULT_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Every algorithm `algorithms` may name.
const KNOWN_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// How the endpoint checks access tokens: `mcpManager.auth`.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub(crate) issuer: HttpUrl,
    pub(crate) audience: String,
    pub(crate) resource: HttpUrl,
    pub(crate) jwks_uri: Option<HttpUrl>,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) algorithms: Vec<String>,
    pub(crate) leeway: Duration,
    pub(crate) introspection: Option<Introspection>,
}

/// Where opaque tokens are checked (RFC 7662), and as whom.
#[derive(Clone, PartialEq, Eq)]
pub struct Introspection {
    pub(crate) endpoint: HttpUrl,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("issuer", &self.issuer.as_str())
            .field("audience", &self.audience)
            .field("resource", &self.resource.as_str())
            .field("jwks_uri", &self.jwks_uri.as_ref().map(HttpUrl::as_str))
            .field("required_scopes", &self.required_scopes)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("introspection", &self.introspection)
            .finish()
    }
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret is never shown.
        f.debug_struct("Introspection")
            .field("endpoint", &self.endpoint.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// `issuer`: the authorization server whose tokens are accepted (their
    /// `iss`), and where its metadata is found.
    pub fn issuer(&self) -> &HttpUrl {
        &self.issuer
    }

    /// `audience`: what tokens must name in `aud`; usually the gateway's
    /// own URL (`https://gateway.example.com/mcp`), or the identifier the
    /// identity provider gives the gateway's API (Entra ID's `api://...`).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// `resource`: the gateway's URL as clients reach it, named in its
    /// protected resource metadata; default: `audience`, which must then
    /// be an `https` URL.
    pub fn resource(&self) -> &HttpUrl {
        &self.resource
    }

    /// `jwksUri`: where the signing keys are; `None` to find it in the
    /// issuer's metadata.
    pub fn jwks_uri(&self) -> Option<&HttpUrl> {
        self.jwks_uri.as_ref()
    }

    /// `requiredScopes`: scopes every token must grant.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// `algorithms`: the JWS algorithms accepted (default
    /// [`DEFAULT_ALGORITHMS`]).
    pub fn algorithms(&self) -> &[String] {
        &self.algorithms
    }

    /// `leewaySeconds`: how far `exp` and `nbf` may be off (default 60 s).
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// `introspection`: where tokens that are not JWTs are checked.
    pub fn introspection(&self) -> Option<&Introspection> {
        self.introspection.as_ref()
    }
}

impl Introspection {
    /// `endpoint`: the introspection endpoint.
    pub fn endpoint(&self) -> &HttpUrl {
        &self.endpoint
    }

    /// `clientId`: the gateway's client id at the authorization server.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `clientSecret`: its secret (from `${file:...}` or the environment,
    /// best).
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }
}

/// Whether `url` is `https`, or `http` on a loopback host (for tests and
/// sidecars).
fn secure(url: &HttpUrl) -> bool {
    url.is_https() || matches!(url.host(), "localhost" | "127.0.0.1" | "[::1]")
}

/// An `https` URL, or `http` on a loopback host.
fn secure_url(field: &Field<'_>, vars: &Vars<'_>, report: &mut Report) -> Option<HttpUrl> {
    let raw = field.non_empty_string(report)?;
    let text = expand::expand(vars, &field.path, raw, report)?;
    let url = match HttpUrl::parse(&text) {
        Ok(url) => url,
        Err(reason) => {
            report.error(ConfigIssue::new(field.path.as_str(), reason));
            return None;
        }
    };
    if !secure(&url) {
        report.error(
            ConfigIssue::new(field.path.as_str(), format!("\"{text}\" is not https")).with_hint(
                "tokens and keys travel over it: use https (http is accepted on loopback only)",
            ),
        );
        return None;
    }
    Some(url)
}

pub(crate) fn parse(
    section: &Object<'_>,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<AuthConfig> {
    let field = section.get("auth")?;
    let auth = field.object(report)?;
    auth.report_unknown(&AUTH_SCHEMA, report);
    let required = |key: &str, report: &mut Report| {
        let Some(field) = auth.get(key) else {
            report.error(
                ConfigIssue::new(auth.path().as_str(), format!("`{key}` is missing"))
                    .with_hint("`auth` needs at least `issuer` (the authorization server) and `audience` (this gateway's URL)"),
            );
            return None;
        };
        secure_url(&field, vars, report)
    };
    let issuer = required("issuer", report);
    let audience = match auth.get("audience") {
        Some(field) => field
            .non_empty_string(report)
            .and_then(|raw| expand::expand(vars, &field.path, raw, report)),
        None => {
            report.error(
                ConfigIssue::new(auth.path().as_str(), "`audience` is missing")
                    .with_hint("`auth` needs at least `issuer` (the authorization server) and `audience` (what its tokens name in `aud`: this gateway's URL, or its API's identifier)"),
            );
            None
        }
    };
    let resource = match (auth.get("resource"), &audience) {
        (Some(field), _) => secure_url(&field, vars, report),
        (None, Some(audience)) => match HttpUrl::parse(audience) {
            Ok(url) if secure(&url) => Some(url),
            _ => {
                report.error(
                    ConfigIssue::new(auth.path().as_str(), format!("`resource` is missing, and the audience \"{audience}\" is not the gateway's https URL"))
                        .with_hint("give `resource`: the gateway's URL as clients reach it, e.g. \"https://mcp.example.com/mcp\""),
                );
                None
            }
        },
        (None, None) => None,
    };
    let jwks_uri = auth
        .get("jwksUri")
        .and_then(|f| secure_url(&f, vars, report));
    let words = |key: &str, report: &mut Report| -> Option<Vec<(String, String)>> {
        let field = auth.get(key)?;
        let items = field.strings(report)?;
        Some(
            items
                .into_iter()
                .map(|(path, word)| (path.as_str().to_owned(), word.to_owned()))
                .collect(),
        )
    };
    let required_scopes = words("requiredScopes", report)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(path, scope)| {
            if !scope.is_empty()
                && scope
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
            {
                return Some(scope);
            }
            report.error(
                ConfigIssue::new(path, format!("\"{scope}\" is not a scope"))
                    .with_hint("a scope is one word of printable ASCII, without `\"` or `\\`"),
            );
            None
        })
        .collect();
    let algorithms = match words("algorithms", report) {
        None => DEFAULT_ALGORITHMS.iter().map(|a| (*a).to_owned()).collect(),
        Some(listed) => listed
            .into_iter()
            .filter_map(|(path, name)| {
                if KNOWN_ALGORITHMS.contains(&name.as_str()) {
                    return Some(name);
                }
                let hint = if name.eq_ignore_ascii_case("none") {
                    "an unsigned token proves nothing: `none` is never accepted".to_owned()
                } else {
                    format!("use some of {}", KNOWN_ALGORITHMS.join(", "))
                };
                report.error(
                    ConfigIssue::new(path, format!("unknown or refused algorithm \"{name}\""))
                        .with_hint(hint),
                );
                None
            })
            .collect(),
    };
    let leeway = auth
        .get("leewaySeconds")
        .and_then(|f| f.integer(0, 600, report))
        .and_then(|s| u64::try_from(s).ok())
        .map_or(Duration::from_secs(60), Duration::from_secs);
    let introspection = auth.get("introspection").and_then(|field| {
        let object = field.object(report)?;
        object.report_unknown(&INTROSPECTION_SCHEMA, report);
        let endpoint = match object.get("endpoint") {
            Some(field) => secure_url(&field, vars, report),
            None => {
                report.error(ConfigIssue::new(
                    object.path().as_str(),
                    "`endpoint` is missing",
                ));
                None
            }
        };
        let text = |key: &str, report: &mut Report| {
            let Some(field) = object.get(key) else {
                report.error(ConfigIssue::new(
                    object.path().as_str(),
                    format!("`{key}` is missing"),
                ));
                return None;
            };
            let raw = field.non_empty_string(report)?;
            expand::expand(vars, &field.path, raw, report)
        };
        let client_id = text("clientId", report);
        let client_secret = text("clientSecret", report);
        Some(Introspection {
            endpoint: endpoint?,
            client_id: client_id?,
            client_secret: client_secret?,
        })
    });
    Some(AuthConfig {
        issuer: issuer?,
        audience: audience?,
        resource: resource?,
        jwks_uri,
        required_scopes,
        algorithms,
        leeway,
        introspection,
    })
}
