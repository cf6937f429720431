//! `Idempotency-Key` on POST requests.
//!
//! The first authenticated POST with a given key runs; its response (status, content
//! type, body) is sealed with the key ring — it may hold a secret shown once, such as
//! a new API key — and kept for 24 hours. A retry with the same key and the same
//! request gets the same response with `Idempotency-Replayed: true`; with a different
//! request, 422; while the first is still running, 409. Keys are scoped by a hash of
//! the `Authorization` header, so one client cannot see another's responses.
//! Responses with status 5xx, 401 or 429 are not kept: retrying those should run again.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jira_bridge_store::idempotency::{Begin, IdempotencyId};
use jira_bridge_store::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;
use crate::crypto::SealContext;

/// Request header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Response header set on replayed responses.
pub const REPLAYED_HEADER: &str = "idempotency-replayed";
/// How long a key is remembered.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_KEPT_RESPONSE: usize = 4 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct KeptResponse {
    status: u16,
    content_type: Option<String>,
    body_b64: String,
}

fn ctx(id: &IdempotencyId) -> SealContext<'_> {
    SealContext {
        table: "idempotency_keys",
        row_id: id.as_str(),
        column: "response",
    }
}

/// The middleware.
pub(crate) async fn idempotency(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return next.run(req).await;
    };
    let key = match raw_key.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) => k.to_owned(),
        _ => {
            return ApiError::bad_field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
            .into_response()
        }
    };
    let Some(auth) = req.headers().get(header::AUTHORIZATION) else {
        // Unauthenticated: the handler refuses it; nothing to remember.
        return next.run(req).await;
    };
    let scope = hex::encode(Sha256::digest(auth.as_bytes()));

    let (parts, body) = req.into_parts();
    let limit = usize::try_from(state.config.server.body_limit_bytes).unwrap_or(usize::MAX);
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return ApiError::PayloadTooLarge {
            limit: Some(state.config.server.body_limit_bytes),
        }
        .into_response();
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("")
            .as_bytes(),
    );
    hasher.update([0]);
    hasher.update(&bytes);
    let request_hash = hex::encode(hasher.finalize());

    let stale_after = chrono::Duration::seconds(
        i64::try_from(state.config.server.request_timeout_seconds).unwrap_or(i64::MAX / 2) + 30,
    );
    let mut attempts = 0;
    let id = loop {
        attempts += 1;
        let now = Timestamp::now();
        let expires = Timestamp::from(
            now.as_datetime()
                + chrono::Duration::from_std(KEY_TTL).unwrap_or(chrono::Duration::days(1)),
        );
        match state
            .store
            .begin_idempotent(&scope, &key, &request_hash, now, expires)
            .await
        {
            Err(e) => return ApiError::from(e).into_response(),
            Ok(Begin::Started(id)) => break id,
            Ok(Begin::Existing(record)) => {
                if record.request_hash != request_hash {
                    return ApiError::invalid_field(
                        "Idempotency-Key",
                        "was already used with a different request; use a new key for a new request",
                    )
                    .into_response();
                }
                match &record.response {
                    Some(sealed) => return replay(&state, &record.id, sealed),
                    None if record.created_at + stale_after < now.as_datetime() && attempts < 3 => {
                        // The first request died (timeout, crash): let this one run.
                        if let Err(e) = state.store.abandon_idempotent(&record.id).await {
                            return ApiError::from(e).into_response();
                        }
                    }
                    None => {
                        return ApiError::Conflict(
                            "a request with this Idempotency-Key is still in progress; retry later"
                                .into(),
                        )
                        .into_response()
                    }
                }
            }
        }
    };

    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = res.status();
    if status.is_server_error()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        if let Err(e) = state.store.abandon_idempotent(&id).await {
            tracing::warn!(error = ?e, "could not release an idempotency key");
        }
        return res;
    }
    let (res_parts, res_body) = res.into_parts();
    let body = match axum::body::to_bytes(res_body, MAX_KEPT_RESPONSE).await {
        Ok(b) => b,
        Err(e) => {
            let _ = state.store.abandon_idempotent(&id).await;
            return ApiError::Internal(format!("response could not be buffered: {e}").into())
                .into_response();
        }
    };
    let kept = KeptResponse {
        status: status.as_u16(),
        content_type: res_parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body_b64: STANDARD.encode(&body),
    };
    let stored = serde_json::to_vec(&kept)
        .map_err(|e| e.to_string())
        .and_then(|json| state.keys.seal(&json, ctx(&id)).map_err(|e| e.to_string()));
    match stored {
        Ok(sealed) => {
            if let Err(e) = state
                .store
                .complete_idempotent(&id, &sealed.ciphertext, &sealed.key_id, Timestamp::now())
                .await
            {
                tracing::warn!(error = ?e, "could not keep the response of an idempotent request");
                let _ = state.store.abandon_idempotent(&id).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not seal the response of an idempotent request");
            let _ = state.store.abandon_idempotent(&id).await;
        }
    }
    Response::from_parts(res_parts, Body::from(body))
}

fn replay(state: &AppState, id: &IdempotencyId, sealed: &[u8]) -> Response {
    let kept: Result<KeptResponse, String> = state
        .keys
        .open(sealed, ctx(id))
        .map_err(|e| e.to_string())
        .and_then(|json| serde_json::from_slice(&json).map_err(|e| e.to_string()));
    let kept = match kept {
        Ok(k) => k,
        Err(e) => {
            return ApiError::Internal(format!("kept response unreadable: {e}").into())
                .into_response()
        }
    };
    let Ok(body) = STANDARD.decode(&kept.body_b64) else {
        return ApiError::Internal("kept response body unreadable".into()).into_response();
    };
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    if let Some(ct) = kept
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        res.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    res.headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    res
}
