//! Opaque tokens, checked by the authorization server's introspection
//! endpoint (RFC 7662); its answers kept for a minute at most.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcp_core::auth::Principal;
use mcp_core::config::{AuthConfig, Introspection};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::token::principal;
use crate::{Refused, json_body};

/// How long an answer is kept, at most.
const KEEP: Duration = Duration::from_secs(60);
/// How many answers are kept, at most.
const KEPT: usize = 4096;

pub(crate) struct Introspector {
    client: reqwest::Client,
    endpoint: String,
    client_id: String,
    client_secret: String,
    issuer: String,
    audience: String,
    leeway: u64,
    /// Active tokens by their SHA-256 (never the token itself), until when.
    known: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl Introspector {
    pub(crate) fn new(
        introspection: &Introspection,
        config: &AuthConfig,
        client: reqwest::Client,
    ) -> Self {
        Self {
            client,
            endpoint: introspection.endpoint().as_str().to_owned(),
            client_id: introspection.client_id().to_owned(),
            client_secret: introspection.client_secret().to_owned(),
            issuer: config.issuer().as_str().to_owned(),
            audience: config.audience().as_str().to_owned(),
            leeway: config.leeway().as_secs(),
            known: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) async fn check(&self, token: &str) -> Result<Principal, Refused> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(principal) = self.remembered(&key) {
            return Ok(principal);
        }
        let body = format!("token={}&token_type_hint=access_token", form_encode(token));
        let response = self
            .client
            .post(&self.endpoint)
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(&self.client_secret)),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|error| Refused::Unavailable(format!("introspection: {error}")))?;
        let answer = json_body(&self.endpoint, response)
            .await
            .map_err(Refused::Unavailable)?;
        let Value::Object(claims) = answer else {
            return Err(Refused::Unavailable(
                "introspection did not answer an object".to_owned(),
            ));
        };
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(Refused::Invalid("introspection says inactive".to_owned()));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let exp = claims.get("exp").and_then(Value::as_u64);
        if exp.is_some_and(|exp| exp.saturating_add(self.leeway) < now) {
            return Err(Refused::Invalid("introspection says expired".to_owned()));
        }
        if claims
            .get("nbf")
            .and_then(Value::as_u64)
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
        {
            return Err(Refused::Invalid(
                "introspection says not yet valid".to_owned(),
            ));
        }
        if let Some(iss) = claims.get("iss") {
            if iss.as_str() != Some(self.issuer.as_str()) {
                return Err(Refused::Invalid(format!("issued by {iss}")));
            }
        }
        if let Some(aud) = claims.get("aud") {
            let names = match aud {
                Value::String(one) => one == &self.audience,
                Value::Array(many) => many.iter().any(|a| a.as_str() == Some(&self.audience)),
                _ => false,
            };
            if !names {
                return Err(Refused::Invalid(format!("for the audience {aud}")));
            }
        }
        let principal = principal(claims);
        let keep = exp.map_or(KEEP, |exp| {
            Duration::from_secs(exp.saturating_sub(now)).min(KEEP)
        });
        self.remember(key, principal.clone(), keep);
        Ok(principal)
    }

    fn remembered(&self, key: &[u8; 32]) -> Option<Principal> {
        let known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (principal, until) = known.get(key)?;
        (*until > Instant::now()).then(|| principal.clone())
    }

    fn remember(&self, key: [u8; 32], principal: Principal, keep: Duration) {
        let now = Instant::now();
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() >= KEPT {
            known.retain(|_, (_, until)| *until > now);
        }
        if known.len() >= KEPT {
            known.clear();
        }
        known.insert(key, (principal, now + keep));
    }
}

/// `text` percent-encoded for a form body (and for HTTP Basic credentials,
/// as RFC 6749 2.3.1 asks).
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
