//! Opaque tokens, checked by the authorization server's introspection
//! endpoint (RFC 7662): answers kept for a minute at most, refusals for
//! ten seconds, and at most [`AT_ONCE`] requests to the server at a time,
//! so that a client repeating a bad token costs the server nothing more.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use mcp_core::auth::Principal;
use mcp_core::config::{AuthConfig, Introspection};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::token::principal;
use crate::{Refused, form_encode, json_body, unix_now};

/// How long an answer is kept, at most.
const KEEP: Duration = Duration::from_secs(60);
/// How long a refusal is kept.
const KEEP_REFUSED: Duration = Duration::from_secs(10);
/// How many answers (and refusals) are kept, at most.
const KEPT: usize = 4096;
/// How many introspection requests run at once, at most.
const AT_ONCE: usize = 16;

/// Answers by the SHA-256 of their token, each with when it stops being
/// kept.
type Kept<T> = Mutex<HashMap<[u8; 32], (T, Instant)>>;

pub(crate) struct Introspector {
    client: reqwest::Client,
    endpoint: String,
    client_id: String,
    client_secret: String,
    issuer: String,
    audience: String,
    leeway: u64,
    /// Active tokens by their SHA-256 (never the token itself), until when.
    known: Kept<Principal>,
    /// Refused tokens by their SHA-256, until when.
    refused: Kept<()>,
    /// Bounds the introspection requests in flight.
    slots: Semaphore,
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
            audience: config.audience().to_owned(),
            leeway: config.leeway().as_secs(),
            known: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            slots: Semaphore::new(AT_ONCE),
        }
    }

    pub(crate) async fn check(&self, token: &str) -> Result<Principal, Refused> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(principal) = kept(&self.known, &key) {
            return Ok(principal);
        }
        if kept(&self.refused, &key).is_some() {
            return Err(Refused::Invalid(
                "refused by introspection lately".to_owned(),
            ));
        }
        let checked = self.introspect(token).await;
        match &checked {
            Ok(principal) => {
                let keep = principal
                    .claims
                    .get("exp")
                    .and_then(Value::as_u64)
                    .map_or(KEEP, |exp| {
                        Duration::from_secs(exp.saturating_sub(unix_now())).min(KEEP)
                    });
                keep_bounded(&self.known, key, principal.clone(), keep);
            }
            Err(Refused::Invalid(_)) => keep_bounded(&self.refused, key, (), KEEP_REFUSED),
            Err(Refused::Unavailable(_)) => {}
        }
        checked
    }

    async fn introspect(&self, token: &str) -> Result<Principal, Refused> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| Refused::Unavailable("introspection is closed".to_owned()))?;
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
        let now = unix_now();
        let number = |key: &str| claims.get(key).and_then(Value::as_u64);
        if number("exp").is_some_and(|exp| exp.saturating_add(self.leeway) < now) {
            return Err(Refused::Invalid("introspection says expired".to_owned()));
        }
        if number("nbf").is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(Refused::Invalid(
                "introspection says not yet valid".to_owned(),
            ));
        }
        if let Some(iss) = claims.get("iss") {
            if iss.as_str() != Some(self.issuer.as_str()) {
                return Err(Refused::Invalid(format!("issued by {iss}")));
            }
        }
        // A token without an audience could be meant for any service.
        let ours = match claims.get("aud") {
            Some(Value::String(one)) => one == &self.audience,
            Some(Value::Array(many)) => many.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => false,
        };
        if !ours {
            return Err(Refused::Invalid(format!(
                "not for this audience: {:?}",
                claims.get("aud")
            )));
        }
        principal(claims).ok_or_else(|| Refused::Invalid("no sub or client_id".to_owned()))
    }
}

/// What `map` keeps for `key`, if it is still to be kept.
fn kept<T: Clone>(map: &Kept<T>, key: &[u8; 32]) -> Option<T> {
    let map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (value, until) = map.get(key)?;
    (*until > Instant::now()).then(|| value.clone())
}

/// Keeps `value` under `key` for `keep`, in a map of at most [`KEPT`]
/// entries: the expired ones go first, then all.
fn keep_bounded<T>(map: &Kept<T>, key: [u8; 32], value: T, keep: Duration) {
    let now = Instant::now();
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if map.len() >= KEPT {
        map.retain(|_, (_, until)| *until > now);
    }
    if map.len() >= KEPT {
        map.clear();
    }
    map.insert(key, (value, now + keep));
}
