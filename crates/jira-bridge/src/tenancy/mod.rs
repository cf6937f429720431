//! Tenants and API keys, and the extractors that authenticate requests.
//!
//! An API key is `jbk_` + 43 characters of base64url (32 random bytes). It is shown
//! once; the store keeps its SHA-256 (hex) — enough for a key of that entropy — and
//! a 12-character prefix for display. [`Tenant`] authenticates a tenant's Bearer key;
//! [`Admin`] the operator's key from the configuration.

pub mod api;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{header, Method};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use jira_bridge_store::audit::Outcome;
use jira_bridge_store::tenants::{ApiKey, NewApiKey, Tenant as TenantRow};
use jira_bridge_store::{ApiKeyId, Store, StoreError, TenantId, Timestamp};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{self, Actor};
use crate::http::{ApiError, AppState};

/// Prefix of every API key.
pub const KEY_PREFIX: &str = "jbk_";
const DISPLAY_PREFIX_LEN: usize = 12;
/// Scope granted when none is asked for: everything.
pub const ALL_SCOPES: &str = "*";
/// Scope of a read-only key: `GET`/`HEAD` requests (and requests that only compute,
/// see [`READ_ONLY_POSTS`]).
pub const SCOPE_READ: &str = "read";
/// Scope of a key that may also change state (implies [`SCOPE_READ`]).
pub const SCOPE_WRITE: &str = "write";
/// Every scope a key may carry.
pub const KNOWN_SCOPES: [&str; 3] = [ALL_SCOPES, SCOPE_READ, SCOPE_WRITE];
/// `POST` routes that change nothing and so are open to read-only keys.
pub const READ_ONLY_POSTS: [&str; 1] = ["/v1/keys/extract"];

/// Whether a key with `scopes` may send `method` to the route template `route`.
pub fn scopes_permit(scopes: &[String], method: &Method, route: &str) -> bool {
    let has = |name: &str| scopes.iter().any(|s| s == name);
    if has(ALL_SCOPES) || has(SCOPE_WRITE) {
        return true;
    }
    let reads = method == Method::GET
        || method == Method::HEAD
        || (method == Method::POST && READ_ONLY_POSTS.contains(&route));
    reads && has(SCOPE_READ)
}

/// A freshly made API key: the secret (show it once) and what is stored.
pub struct IssuedKey {
    /// The full key.
    pub secret: SecretString,
    /// Stored form.
    pub stored: NewApiKey,
}

/// Hash of an API key as stored.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Make a new random key.
pub fn issue_key(name: &str, scopes: Vec<String>) -> IssuedKey {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let stored = NewApiKey {
        name: name.to_owned(),
        prefix: key[..DISPLAY_PREFIX_LEN].to_owned(),
        key_hash: hash_key(&key),
        scopes: if scopes.is_empty() {
            vec![ALL_SCOPES.to_owned()]
        } else {
            scopes
        },
    };
    IssuedKey {
        secret: SecretString::from(key),
        stored,
    }
}

/// Check scope names: each one of [`KNOWN_SCOPES`].
pub fn validate_scopes(scopes: &[String]) -> Result<(), ApiError> {
    for s in scopes {
        if !KNOWN_SCOPES.contains(&s.as_str()) {
            return Err(ApiError::invalid_field(
                "scopes",
                format!("{s:?} is not a scope: use `*` (everything), `write` (read and change) or `read` (read only)"),
            ));
        }
    }
    Ok(())
}

fn validate_name(field: &str, name: &str) -> Result<(), ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.len() > 200 || trimmed.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            "must be 1 to 200 characters without control characters",
        ));
    }
    Ok(())
}

/// Create a tenant with its first key. A duplicate name is a conflict.
pub async fn create_tenant(
    store: &Store,
    actor: &Actor,
    name: &str,
    key_name: &str,
    scopes: Vec<String>,
    request_id: Option<String>,
) -> Result<(TenantRow, ApiKey, SecretString), ApiError> {
    validate_name("name", name)?;
    validate_name("key_name", key_name)?;
    validate_scopes(&scopes)?;
    let issued = issue_key(key_name, scopes);
    let (tenant, key) = match store
        .create_tenant_with_key(name.trim(), issued.stored)
        .await
    {
        Ok(v) => v,
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::Conflict(format!(
                "a tenant named {:?} already exists",
                name.trim()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        store,
        audit::Event::new(actor, "tenant.create", Outcome::Success)
            .tenant(&tenant.id)
            .target("tenant", tenant.id.as_str())
            .detail(serde_json::json!({"name": tenant.name, "key_id": key.id}))
            .request_id(request_id),
    )
    .await;
    Ok((tenant, key, issued.secret))
}

/// Add a key to a tenant.
pub async fn create_key(
    store: &Store,
    actor: &Actor,
    tenant: &TenantId,
    name: &str,
    scopes: Vec<String>,
    request_id: Option<String>,
) -> Result<(ApiKey, SecretString), ApiError> {
    validate_name("name", name)?;
    validate_scopes(&scopes)?;
    let issued = issue_key(name, scopes);
    let key = match store.create_api_key(tenant, issued.stored).await {
        Ok(k) => k,
        Err(StoreError::NotFound) => return Err(ApiError::NotFound("no such tenant".into())),
        Err(e) => return Err(e.into()),
    };
    audit::record(
        store,
        audit::Event::new(actor, "api_key.create", Outcome::Success)
            .tenant(tenant)
            .target("api_key", key.id.as_str())
            .detail(
                serde_json::json!({"name": key.name, "prefix": key.prefix, "scopes": key.scopes}),
            )
            .request_id(request_id),
    )
    .await;
    Ok((key, issued.secret))
}

/// Revoke a tenant's key.
pub async fn revoke_key(
    store: &Store,
    actor: &Actor,
    tenant: &TenantId,
    key: &ApiKeyId,
    request_id: Option<String>,
) -> Result<ApiKey, ApiError> {
    let revoked = match store.revoke_api_key(tenant, key).await {
        Ok(k) => k,
        Err(StoreError::NotFound) => {
            return Err(ApiError::NotFound("no such API key for this tenant".into()))
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        store,
        audit::Event::new(actor, "api_key.revoke", Outcome::Success)
            .tenant(tenant)
            .target("api_key", key.as_str())
            .request_id(request_id),
    )
    .await;
    Ok(revoked)
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The tenant a request acts for, authenticated by its Bearer API key (or, for the
/// console's scripts, by a console session cookie plus its CSRF token).
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The tenant.
    pub id: TenantId,
    /// The key used.
    pub key_id: ApiKeyId,
    /// The key's scopes.
    pub scopes: Vec<String>,
}

impl Tenant {
    /// The audit actor for this request.
    pub fn actor(&self) -> Actor {
        Actor::ApiKey(self.key_id.clone())
    }
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer(parts) else {
            // The console's scripts use the session cookie (and its CSRF token).
            if let Some(tenant) = crate::console::session::api_tenant(parts, state).await? {
                return Ok(tenant);
            }
            return Err(ApiError::Unauthorized(
                "missing API key: send `Authorization: Bearer <key>`".into(),
            ));
        };
        if !token.starts_with(KEY_PREFIX) {
            return Err(ApiError::Unauthorized("invalid API key".into()));
        }
        let key = state
            .store
            .find_api_key_by_hash(&hash_key(token))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("invalid API key".into()))?;
        if key.is_revoked() {
            return Err(ApiError::Unauthorized(
                "this API key has been revoked".into(),
            ));
        }
        let now = Timestamp::now();
        let since = Timestamp::from(now.as_datetime() - Duration::seconds(60));
        if let Err(e) = state.store.touch_api_key(&key.id, now, since).await {
            tracing::warn!(error = ?e, "could not record API key use");
        }
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path(), MatchedPath::as_str);
        if !scopes_permit(&key.scopes, &parts.method, route) {
            return Err(ApiError::Forbidden(format!(
                "this API key's scopes ({}) do not allow {} {route}",
                key.scopes.join(", "),
                parts.method
            )));
        }
        Ok(Self {
            id: key.tenant_id,
            key_id: key.id,
            scopes: key.scopes,
        })
    }
}

/// The operator, authenticated by the configured admin key.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(admin_key) = &state.config.admin.key else {
            return Err(ApiError::Unauthorized(
                "admin endpoints are disabled: no admin key is configured (JIRA_BRIDGE_ADMIN_KEY)"
                    .into(),
            ));
        };
        let token = bearer(parts).ok_or_else(|| {
            ApiError::Unauthorized(
                "missing admin key: send `Authorization: Bearer <admin key>`".into(),
            )
        })?;
        let given = Sha256::digest(token.as_bytes());
        let expected = Sha256::digest(admin_key.expose_secret().trim().as_bytes());
        if bool::from(given.ct_eq(&expected)) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized("invalid admin key".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn issued_keys_are_random_prefixed_and_hashed() {
        let a = issue_key("k", vec![]);
        let b = issue_key("k", vec![]);
        let secret = a.secret.expose_secret();
        assert!(secret.starts_with(KEY_PREFIX));
        assert_eq!(secret.len(), 4 + 43);
        assert_ne!(secret, b.secret.expose_secret());
        assert_eq!(a.stored.key_hash, hash_key(secret));
        assert!(!a.stored.key_hash.contains(&secret[4..]));
        assert_eq!(a.stored.prefix, &secret[..12]);
        assert_eq!(a.stored.scopes, vec!["*"]);
    }

    #[test]
    fn scope_names_are_checked() {
        assert!(validate_scopes(&["read".into(), "write".into(), "*".into()]).is_ok());
        assert!(validate_scopes(&["tickets:write".into()]).is_err());
        assert!(validate_scopes(&["Bad Scope".into()]).is_err());
        assert!(validate_scopes(&["".into()]).is_err());
    }

    #[test]
    fn read_only_keys_only_read() {
        let read = vec!["read".to_owned()];
        let write = vec!["write".to_owned()];
        let all = vec!["*".to_owned()];
        assert!(scopes_permit(&read, &Method::GET, "/v1/tickets"));
        assert!(scopes_permit(&read, &Method::POST, "/v1/keys/extract"));
        assert!(!scopes_permit(&read, &Method::POST, "/v1/tickets"));
        assert!(!scopes_permit(&read, &Method::DELETE, "/v1/configs/{id}"));
        assert!(!scopes_permit(&read, &Method::PATCH, "/v1/configs/{id}"));
        assert!(!scopes_permit(
            &read,
            &Method::PUT,
            "/v1/time-entries/{source_id}"
        ));
        assert!(scopes_permit(&write, &Method::POST, "/v1/tickets"));
        assert!(scopes_permit(&all, &Method::DELETE, "/v1/configs/{id}"));
        assert!(!scopes_permit(&[], &Method::GET, "/v1/tickets"));
    }
}
