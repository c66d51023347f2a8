//! The other side: a client of an MCP server that asks for OAuth, doing
//! the authorization flow of the MCP specification.
//!
//! [`discover`] reads the server's challenge (`WWW-Authenticate`), its
//! protected resource metadata (from the challenge's `resource_metadata`,
//! else the well-known paths, path-based first) and its authorization
//! server's metadata (RFC 8414, then OpenID discovery, path-based first).
//! [`authorize`] registers the client when it must (pre-registered
//! credentials, else a client ID metadata document when the server takes
//! them, else dynamic registration), sends the user to the authorization
//! endpoint with PKCE (S256), a state and the resource (RFC 8707), and
//! trades the code for a token with the client authentication the server
//! takes (`client_secret_basic`, `client_secret_post`, `none`).
//! [`refresh`] trades a refresh token for a new one.
//!
//! Where the user goes is the caller's business ([`Browser`]): a person's
//! browser and a listener on loopback for `mcp-manager login`, or a plain
//! GET that reads the redirect for a test's authorization server that
//! approves at once.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::metadata::split_origin;
use crate::{form_encode, get_json, json_body, unix_now};

/// What a server said when it asked for a token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    /// `resource_metadata`: where its protected resource metadata is.
    pub resource_metadata: Option<String>,
    /// `scope`: the scopes it wants.
    pub scope: Option<String>,
    /// `error`: `invalid_token`, `insufficient_scope`, ...
    pub error: Option<String>,
}

/// The parameters of a `Bearer` challenge in a `WWW-Authenticate` header;
/// `None` when there is no `Bearer` challenge.
#[must_use]
pub fn challenge(header: &str) -> Option<Challenge> {
    let at = header.to_ascii_lowercase().find("bearer")?;
    let mut rest = header.get(at + "bearer".len()..)?;
    let mut found = Challenge::default();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (
                quoted.get(..end).unwrap_or_default(),
                quoted.get(end + 1..).unwrap_or_default(),
            )
        } else {
            let end = after.find([',', ' ']).unwrap_or(after.len());
            (
                after.get(..end).unwrap_or_default(),
                after.get(end..).unwrap_or_default(),
            )
        };
        match name.as_str() {
            "resource_metadata" => found.resource_metadata = Some(value.to_owned()),
            "scope" => found.scope = Some(value.to_owned()),
            "error" => found.error = Some(value.to_owned()),
            _ => {}
        }
        rest = after;
    }
    Some(found)
}

/// What was found about a protected server.
#[derive(Clone, Debug)]
pub struct Discovery {
    /// The resource the tokens are for (the metadata's `resource`, else
    /// the server's URL): sent as `resource` with every request.
    pub resource: String,
    /// The protected resource metadata.
    pub resource_metadata: Value,
    /// Where it was read.
    pub resource_metadata_url: String,
    /// The authorization server's issuer identifier.
    pub issuer: String,
    /// The authorization server's metadata.
    pub server_metadata: Value,
    /// The scopes to ask for: the challenge's, else the metadata's
    /// `scopes_supported`; `None` to ask for none in particular.
    pub scope: Option<String>,
}

/// How the client is known to the authorization server. Its `Debug`
/// output leaves the secret out.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    /// Its `client_id`.
    pub client_id: String,
    /// Its secret, for a confidential client.
    pub client_secret: Option<String>,
    /// How it authenticates at the token endpoint: `client_secret_basic`,
    /// `client_secret_post` or `none`.
    pub auth_method: String,
}

/// Who this client is and where the user comes back to.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    /// The name shown to the user (`client_name`).
    pub name: String,
    /// Where the authorization server sends the user back.
    pub redirect_uri: String,
    /// The URL of this client's metadata document, used as its
    /// `client_id` where the server takes those.
    pub metadata_url: Option<String>,
    /// Credentials registered beforehand: used as they are.
    pub registered: Option<Registration>,
}

/// A token, and what it takes to refresh it. Its `Debug` output leaves
/// the tokens out.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    /// The access token.
    pub access_token: String,
    /// The refresh token, if one came.
    pub refresh_token: Option<String>,
    /// When the access token expires, in seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// The scopes granted, as the server said (else as asked).
    pub scope: Option<String>,
    /// The token endpoint, the resource and the registration, for
    /// refreshing.
    pub token_endpoint: String,
    /// The resource the token is for.
    pub resource: String,
    /// How the client is known.
    pub registration: Registration,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("auth_method", &self.auth_method)
            .finish()
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("access_token", &"…")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("token_endpoint", &self.token_endpoint)
            .field("resource", &self.resource)
            .field("registration", &self.registration)
            .finish()
    }
}

/// Sends the user to an authorization URL and gives back the query of the
/// redirect to the client's redirect URI.
pub trait Browser: Send + Sync {
    /// Opens `url` for the user; the query string the authorization server
    /// sent back (`code=...&state=...`).
    fn visit(&mut self, url: &str) -> mcp_core::BoxFuture<'_, Result<String, String>>;
}

/// Finds the authorization server of the MCP server at `url`, from its
/// `challenge` (the `WWW-Authenticate` of its 401, when there was one).
///
/// # Errors
///
/// A message naming what could not be found or read.
pub async fn discover(
    client: &reqwest::Client,
    url: &str,
    challenge: Option<&Challenge>,
) -> Result<Discovery, String> {
    let (origin, path) = split_origin(url);
    let path = path.trim_end_matches('/');
    let mut candidates = Vec::new();
    if let Some(given) = challenge.and_then(|c| c.resource_metadata.clone()) {
        candidates.push(given);
    }
    if !path.is_empty() {
        candidates.push(format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        ));
    }
    candidates.push(format!("{origin}/.well-known/oauth-protected-resource"));
    let (resource_metadata, tried) = first_json(client, &candidates).await;
    let (resource_metadata_url, resource_metadata) = resource_metadata
        .ok_or_else(|| format!("no protected resource metadata: {}", tried.join("; ")))?;
    let issuer = resource_metadata
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|servers| servers.first())
        .and_then(Value::as_str)
        .ok_or("the protected resource metadata names no authorization server")?
        .to_owned();
    let resource = resource_metadata
        .get("resource")
        .and_then(Value::as_str)
        .unwrap_or(url)
        .to_owned();
    // RFC 9728 3.3: the metadata must be the server's own. A resource of
    // another origin, or beside the server's path, would have the user
    // sign in for (and hand a token to) a server other than this one.
    if !covers(&resource, url) {
        return Err(format!(
            "the protected resource metadata names the resource {resource}, which is not {url}: refused"
        ));
    }
    let issuer_trimmed = issuer.trim_end_matches('/');
    let (as_origin, as_path) = split_origin(issuer_trimmed);
    let candidates = if as_path.is_empty() {
        vec![
            format!("{as_origin}/.well-known/oauth-authorization-server"),
            format!("{as_origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{as_origin}/.well-known/oauth-authorization-server{as_path}"),
            format!("{as_origin}/.well-known/openid-configuration{as_path}"),
            format!("{issuer_trimmed}/.well-known/openid-configuration"),
        ]
    };
    let (server_metadata, tried) = first_json(client, &candidates).await;
    let (_, server_metadata) = server_metadata
        .ok_or_else(|| format!("no authorization server metadata: {}", tried.join("; ")))?;
    // RFC 8414 3.3: the metadata names the issuer it was asked for.
    let named = server_metadata.get("issuer").and_then(Value::as_str);
    if named.is_some_and(|named| named.trim_end_matches('/') != issuer_trimmed) {
        return Err(format!(
            "the authorization server metadata of {issuer} names another issuer, {}: refused",
            named.unwrap_or_default()
        ));
    }
    let scope = challenge.and_then(|c| c.scope.clone()).or_else(|| {
        let supported = resource_metadata.get("scopes_supported")?.as_array()?;
        let words: Vec<&str> = supported.iter().filter_map(Value::as_str).collect();
        (!words.is_empty()).then(|| words.join(" "))
    });
    Ok(Discovery {
        resource,
        resource_metadata,
        resource_metadata_url,
        issuer,
        server_metadata,
        scope,
    })
}

/// Whether the resource identifier `resource` is the server at `url`, or
/// a part of the same origin above it (`https://h` or `https://h/api` for
/// `https://h/api/mcp`).
fn covers(resource: &str, url: &str) -> bool {
    let (resource_origin, resource_path) = split_origin(resource);
    let (origin, path) = split_origin(url);
    let resource_path = resource_path.trim_end_matches('/');
    resource_origin.eq_ignore_ascii_case(origin)
        && (resource_path.is_empty()
            || path == resource_path
            || path
                .strip_prefix(resource_path)
                .is_some_and(|rest| rest.starts_with('/')))
}

/// The first of `urls` that answers a JSON object, with that URL, and why
/// the others did not.
async fn first_json(
    client: &reqwest::Client,
    urls: &[String],
) -> (Option<(String, Value)>, Vec<String>) {
    let mut tried = Vec::new();
    for url in urls {
        match get_json(client, url).await {
            Ok(value) if value.is_object() => return (Some((url.clone(), value)), tried),
            Ok(_) => tried.push(format!("{url} is not an object")),
            Err(error) => tried.push(error),
        }
    }
    (None, tried)
}

fn endpoint(metadata: &Value, name: &str) -> Option<String> {
    metadata
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// How this client is known to the server of `discovery`: registered
/// beforehand, a metadata document, or registered now.
///
/// # Errors
///
/// When the server takes none of these, or refuses the registration.
pub async fn register(
    client: &reqwest::Client,
    discovery: &Discovery,
    info: &ClientInfo,
) -> Result<Registration, String> {
    let metadata = &discovery.server_metadata;
    let supported: Vec<&str> = metadata
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array)
        .map(|methods| methods.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| vec!["client_secret_basic"]);
    if let Some(registered) = &info.registered {
        let mut registered = registered.clone();
        if registered.client_secret.is_some()
            && !supported.contains(&registered.auth_method.as_str())
        {
            if let Some(method) = ["client_secret_basic", "client_secret_post"]
                .into_iter()
                .find(|m| supported.contains(m))
            {
                method.clone_into(&mut registered.auth_method);
            }
        }
        return Ok(registered);
    }
    let documents = metadata
        .get("client_id_metadata_document_supported")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let (true, Some(url)) = (documents, &info.metadata_url) {
        return Ok(Registration {
            client_id: url.clone(),
            client_secret: None,
            auth_method: "none".to_owned(),
        });
    }
    let Some(registration_endpoint) = endpoint(metadata, "registration_endpoint") else {
        return Err("the authorization server takes no dynamic registration and no client is registered for it: register one and give its client_id".to_owned());
    };
    let wanted = if supported.contains(&"none") {
        "none"
    } else if supported.contains(&"client_secret_basic") {
        "client_secret_basic"
    } else {
        "client_secret_post"
    };
    let body = json!({
        "client_name": info.name,
        "redirect_uris": [info.redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": wanted,
        "application_type": "native",
    });
    let response = client
        .post(&registration_endpoint)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|error| format!("registering at {registration_endpoint}: {error}"))?;
    let registered = json_body(&registration_endpoint, response).await?;
    let client_id = registered
        .get("client_id")
        .and_then(Value::as_str)
        .ok_or("the registration answer has no client_id")?
        .to_owned();
    let client_secret = registered
        .get("client_secret")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let auth_method = registered
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if client_secret.is_some() && wanted == "none" {
                "client_secret_basic".to_owned()
            } else {
                wanted.to_owned()
            }
        });
    Ok(Registration {
        client_id,
        client_secret,
        auth_method,
    })
}

/// The whole flow for the server of `discovery`: registration, the user's
/// visit to the authorization endpoint (through `browser`), the token.
/// `scope` replaces the discovered scopes when given (a step-up).
///
/// # Errors
///
/// A message naming the step that failed.
pub async fn authorize(
    client: &reqwest::Client,
    discovery: &Discovery,
    info: &ClientInfo,
    scope: Option<&str>,
    browser: &mut dyn Browser,
) -> Result<Grant, String> {
    let metadata = &discovery.server_metadata;
    let authorization_endpoint = endpoint(metadata, "authorization_endpoint")
        .ok_or("the authorization server metadata has no authorization_endpoint")?;
    let token_endpoint = endpoint(metadata, "token_endpoint")
        .ok_or("the authorization server metadata has no token_endpoint")?;
    let registration = register(client, discovery, info).await?;
    let verifier = random_token(48);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let state = random_token(24);
    let scope = scope.map(str::to_owned).or_else(|| discovery.scope.clone());
    let mut query = vec![
        ("response_type", "code".to_owned()),
        ("client_id", registration.client_id.clone()),
        ("redirect_uri", info.redirect_uri.clone()),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256".to_owned()),
        ("state", state.clone()),
        ("resource", discovery.resource.clone()),
    ];
    if let Some(scope) = &scope {
        query.push(("scope", scope.clone()));
    }
    let separator = if authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!("{authorization_endpoint}{separator}{}", form(&query));
    let returned = browser.visit(&url).await?;
    let answer = parse_form(&returned);
    let get = |name: &str| {
        answer
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if let Some(error) = get("error") {
        return Err(format!(
            "the authorization server refused: {error} {}",
            get("error_description").unwrap_or_default()
        ));
    }
    if get("state").as_deref() != Some(state.as_str()) {
        return Err("the redirect's state is not the one sent: refused".to_owned());
    }
    let advertised = metadata
        .get("authorization_response_iss_parameter_supported")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match get("iss") {
        Some(iss) if iss != discovery.issuer => {
            return Err(format!(
                "the redirect names the issuer {iss}, not {}",
                discovery.issuer
            ));
        }
        None if advertised => {
            return Err(
                "the authorization server promised `iss` in its redirect and sent none".to_owned(),
            );
        }
        _ => {}
    }
    let code = get("code").ok_or("the redirect carries no code")?;
    let mut form_fields = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", info.redirect_uri.clone()),
        ("code_verifier", verifier),
        ("resource", discovery.resource.clone()),
    ];
    let grant = token_request(client, &token_endpoint, &registration, &mut form_fields).await?;
    Ok(Grant {
        scope: grant.scope.or(scope),
        token_endpoint,
        resource: discovery.resource.clone(),
        registration,
        ..grant
    })
}

/// A new access token for `grant`'s refresh token.
///
/// # Errors
///
/// When there is no refresh token, or the server refuses it.
pub async fn refresh(client: &reqwest::Client, grant: &Grant) -> Result<Grant, String> {
    let refresh_token = grant
        .refresh_token
        .clone()
        .ok_or("no refresh token: sign in again")?;
    let mut fields = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.clone()),
        ("resource", grant.resource.clone()),
    ];
    let renewed = token_request(
        client,
        &grant.token_endpoint,
        &grant.registration,
        &mut fields,
    )
    .await?;
    Ok(Grant {
        refresh_token: renewed.refresh_token.or(Some(refresh_token)),
        scope: renewed.scope.or_else(|| grant.scope.clone()),
        token_endpoint: grant.token_endpoint.clone(),
        resource: grant.resource.clone(),
        registration: grant.registration.clone(),
        ..renewed
    })
}

/// POSTs `fields` to the token endpoint, authenticated as `registration`
/// says; the token (its endpoint, resource and registration left empty).
async fn token_request(
    client: &reqwest::Client,
    token_endpoint: &str,
    registration: &Registration,
    fields: &mut Vec<(&str, String)>,
) -> Result<Grant, String> {
    let mut request = client
        .post(token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json");
    match (
        registration.auth_method.as_str(),
        &registration.client_secret,
    ) {
        ("client_secret_basic", Some(secret)) => {
            request = request.basic_auth(
                form_encode(&registration.client_id),
                Some(form_encode(secret)),
            );
        }
        ("client_secret_post", Some(secret)) => {
            fields.push(("client_id", registration.client_id.clone()));
            fields.push(("client_secret", secret.clone()));
        }
        _ => fields.push(("client_id", registration.client_id.clone())),
    }
    let response = request
        .body(form(fields))
        .send()
        .await
        .map_err(|error| format!("the token request to {token_endpoint}: {error}"))?;
    let answer = json_body(token_endpoint, response).await?;
    let access_token = answer
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or("the token answer has no access_token")?
        .to_owned();
    let now = unix_now();
    Ok(Grant {
        access_token,
        refresh_token: answer
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_owned),
        expires_at: answer
            .get("expires_in")
            .and_then(Value::as_u64)
            .map(|seconds| now.saturating_add(seconds)),
        scope: answer
            .get("scope")
            .and_then(Value::as_str)
            .map(str::to_owned),
        token_endpoint: String::new(),
        resource: String::new(),
        registration: registration.clone(),
    })
}

/// `count` random bytes (from the system's generator) as URL-safe base64.
fn random_token(count: usize) -> String {
    let mut bytes = vec![0_u8; count];
    if let Ok(mut random) = std::fs::File::open("/dev/urandom") {
        use std::io::Read as _;
        let _ = random.read_exact(&mut bytes);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Fields as `application/x-www-form-urlencoded`.
fn form(fields: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        let _ = write!(out, "{}={}", form_encode(name), form_encode(value));
    }
    out
}

/// The fields of a query string, decoded.
#[must_use]
pub fn parse_form(query: &str) -> Vec<(String, String)> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(decoded) => {
                        out.push(decoded);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_with_or_without_quotes() {
        let read = challenge(r#"Bearer error="insufficient_scope", scope="a b", resource_metadata="https://x/.well-known/oauth-protected-resource/mcp""#).unwrap();
        assert_eq!(read.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(read.scope.as_deref(), Some("a b"));
        assert_eq!(
            read.resource_metadata.as_deref(),
            Some("https://x/.well-known/oauth-protected-resource/mcp")
        );
        let bare = challenge("Bearer realm=x, error=invalid_token").unwrap();
        assert_eq!(bare.error.as_deref(), Some("invalid_token"));
        assert_eq!(challenge("Basic realm=\"x\""), None);
        assert_eq!(challenge("Bearer"), Some(Challenge::default()));
    }

    #[test]
    fn a_resource_is_the_server_or_above_it_on_its_origin() {
        assert!(covers("https://h/mcp", "https://h/mcp"));
        assert!(covers("https://h", "https://h/mcp"));
        assert!(covers("https://h/api/", "https://h/api/mcp"));
        assert!(!covers("https://evil/mcp", "https://h/mcp"));
        assert!(!covers("https://h/other", "https://h/mcp"));
        assert!(!covers("https://h/mc", "https://h/mcp"));
        assert!(!covers("http://h/mcp", "https://h/mcp"));
    }

    #[test]
    fn forms_round_trip() {
        let fields = vec![("a b", "c&d=e/ü".to_owned()), ("x", String::new())];
        let text = form(&fields);
        assert_eq!(text, "a%20b=c%26d%3De%2F%C3%BC&x=");
        assert_eq!(
            parse_form(&format!("?{text}")),
            vec![
                ("a b".to_owned(), "c&d=e/ü".to_owned()),
                ("x".to_owned(), String::new())
            ]
        );
        assert_eq!(
            parse_form("code=1+2&bad=%zz"),
            vec![
                ("code".to_owned(), "1 2".to_owned()),
                ("bad".to_owned(), "%zz".to_owned())
            ]
        );
        assert_ne!(random_token(16), random_token(16));
    }
}
