//! A bearer token read from its header, and a JWT checked.

use std::collections::HashSet;
use std::str::FromStr;

use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use mcp_core::auth::Principal;
use mcp_core::config::AuthConfig;
use serde_json::{Map, Value};

use crate::Refused;
use crate::jwks::{KeyError, Keys};

/// The token of `Authorization: Bearer <token>` (the scheme in any case),
/// when it has the form RFC 6750 gives a token.
pub(crate) fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    (!token.is_empty() && token.len() <= 16 * 1024 && token.chars().all(b64token)).then_some(token)
}

/// Whether `token` has the three parts of a JWS in compact form.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// Checks the JWT `token` against the issuer's keys and `config`.
pub(crate) async fn check_jwt(
    config: &AuthConfig,
    keys: &Keys,
    token: &str,
) -> Result<Principal, Refused> {
    let header = decode_header(token)
        .map_err(|error| Refused::Invalid(format!("unreadable header: {error}")))?;
    let allowed = config
        .algorithms()
        .iter()
        .filter_map(|name| Algorithm::from_str(name).ok())
        .any(|alg| alg == header.alg);
    if !allowed {
        return Err(Refused::Invalid(format!(
            "algorithm {:?} is not accepted",
            header.alg
        )));
    }
    let key = match keys.get(header.kid.as_deref(), header.alg).await {
        Ok(key) => key,
        Err(KeyError::Unknown(why)) => return Err(Refused::Invalid(why)),
        Err(KeyError::Unavailable(why)) => return Err(Refused::Unavailable(why)),
    };
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[config.audience()]);
    validation.set_issuer(&[config.issuer().as_str()]);
    validation.leeway = config.leeway().as_secs();
    validation.validate_nbf = true;
    validation.validate_exp = true;
    validation.required_spec_claims = ["exp", "iss", "aud"]
        .into_iter()
        .map(str::to_owned)
        .collect::<HashSet<_>>();
    let data = decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|error| Refused::Invalid(format!("{error}")))?;
    principal(data.claims).ok_or_else(|| Refused::Invalid("no sub, client_id or azp".to_owned()))
}

/// The caller of a token's (or an introspection answer's) claims: the
/// subject from `sub`, else `client_id` or `azp` (a token of a client
/// acting for itself); the scopes from `scope` (a space-separated string)
/// or `scp` (Entra ID: a string or an array). `None` without a subject:
/// callers that cannot be told apart are not served.
pub(crate) fn principal(claims: Map<String, Value>) -> Option<Principal> {
    let subject = ["sub", "client_id", "azp"]
        .iter()
        .find_map(|key| claims.get(*key).and_then(Value::as_str))
        .filter(|subject| !subject.is_empty())?
        .to_owned();
    let mut scopes: Vec<String> = Vec::new();
    for key in ["scope", "scp"] {
        match claims.get(key) {
            Some(Value::String(text)) => {
                scopes.extend(text.split_whitespace().map(str::to_owned));
            }
            Some(Value::Array(items)) => {
                scopes.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            _ => {}
        }
    }
    scopes.dedup();
    Some(Principal {
        subject,
        scopes,
        claims,
    })
}
