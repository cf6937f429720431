//! Console sessions and CSRF protection.
//!
//! Signing in with an API key opens a session: a random 32-byte id in an HTTP-only,
//! `SameSite=Lax` cookie (`Secure` when the public URL is https); the store keeps only
//! its SHA-256, the tenant, the key (revoking it ends the session), the expiry and a
//! synchronizer token. Every state-changing request made with the cookie must carry
//! that token: console forms in a `csrf` field, the console's scripts in the
//! `X-CSRF-Token` header (the `/v1` API accepts the cookie in place of a Bearer key on
//! those terms). The sign-in form itself is protected by a double-submit token in a
//! short-lived cookie.

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use jira_bridge_store::console_sessions::{ConsoleSession, NewConsoleSession};
use jira_bridge_store::{Store, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::http::{ApiError, AppState};
use crate::tenancy::Tenant;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "jb_session";
/// Name of the sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "jb_login";
/// Header the console's scripts send the synchronizer token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::hours(12);

/// 32 random bytes, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 (hex) of a session id, as stored.
pub fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Constant-time equality of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn secure(state: &AppState) -> bool {
    state
        .config
        .server
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
}

/// A `Set-Cookie` value: HTTP-only, same-site, path `/`.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The tenant, as the API's handlers see it.
    pub tenant: Tenant,
    /// The synchronizer token of this session.
    pub csrf: String,
    /// Stored hash of the session id.
    pub id_hash: String,
    /// When it expires.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl Session {
    /// Refuse a state-changing request whose token is missing or not this session's.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), ApiError> {
        match given {
            Some(t) if same_token(t, &self.csrf) => Ok(()),
            Some(_) => Err(ApiError::Forbidden(
                "the CSRF token does not belong to this session; reload the page".into(),
            )),
            None => Err(ApiError::Forbidden(
                "missing CSRF token: send the session's token (X-CSRF-Token)".into(),
            )),
        }
    }
}

async fn load(store: &Store, row: ConsoleSession) -> Result<Session, ApiError> {
    let key = store
        .get_api_key(&row.tenant_id, &row.api_key_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the session's API key is gone".into()))?;
    Ok(Session {
        tenant: Tenant {
            id: row.tenant_id,
            key_id: row.api_key_id,
            scopes: key.scopes,
        },
        csrf: row.csrf_token,
        id_hash: row.id_hash,
        expires_at: row.expires_at,
    })
}

/// The live session named by the request's cookie, if any.
pub async fn from_headers(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, ApiError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    match state
        .store
        .find_console_session(&hash_id(id), Timestamp::now())
        .await?
    {
        Some(row) => Ok(Some(load(&state.store, row).await?)),
        None => Ok(None),
    }
}

/// The API's fallback when a request has no Bearer key: the console session, with
/// the synchronizer token required on every method but GET, HEAD and OPTIONS.
pub async fn api_tenant(parts: &Parts, state: &AppState) -> Result<Option<Tenant>, ApiError> {
    let Some(session) = from_headers(state, &parts.headers).await? else {
        return Ok(None);
    };
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let given = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        session.check_csrf(given)?;
    }
    Ok(Some(session.tenant))
}

/// Open a session for a valid, unrevoked API key. Answers the cookie's id (to set)
/// and the session.
pub async fn open(state: &AppState, api_key: &str) -> Result<(String, Session), ApiError> {
    let invalid = || ApiError::Unauthorized("that API key is not valid".into());
    let key = api_key.trim();
    if !key.starts_with(crate::tenancy::KEY_PREFIX) {
        return Err(invalid());
    }
    let found = state
        .store
        .find_api_key_by_hash(&crate::tenancy::hash_key(key))
        .await?
        .ok_or_else(invalid)?;
    if found.is_revoked() {
        return Err(ApiError::Unauthorized(
            "that API key has been revoked".into(),
        ));
    }
    let id = random_token();
    let row = NewConsoleSession {
        id_hash: hash_id(&id),
        tenant_id: found.tenant_id.clone(),
        api_key_id: found.id.clone(),
        csrf_token: random_token(),
        expires_at: Timestamp::from(Timestamp::now().as_datetime() + SESSION_TTL),
    };
    state.store.create_console_session(&row).await?;
    // Opportunistic clean-up of expired sessions.
    if let Err(e) = state
        .store
        .purge_expired_console_sessions(Timestamp::now())
        .await
    {
        tracing::warn!(error = ?e, "purging expired console sessions failed");
    }
    let session = Session {
        tenant: Tenant {
            id: found.tenant_id,
            key_id: found.id,
            scopes: found.scopes,
        },
        csrf: row.csrf_token,
        id_hash: row.id_hash,
        expires_at: row.expires_at.as_datetime(),
    };
    Ok((id, session))
}
