//! Extractors whose rejections are problem documents.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;

/// JSON body (requires `Content-Type: application/json`); as a response, JSON.
///
/// Text holding the NUL character (`\u0000`) is refused with 422 naming the field:
/// no database keeps it in text, and Jira refuses it too.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| match r.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::PayloadTooLarge { limit: None }
                }
                _ => ApiError::BadRequest {
                    detail: r.body_text(),
                    errors: std::collections::BTreeMap::new(),
                },
            })?;
        if let Some(field) = field_with_nul(&bytes) {
            let message = "text may not contain the NUL character (U+0000)";
            return Err(ApiError::Validation {
                detail: format!("{field}: {message}"),
                errors: std::collections::BTreeMap::from([(field, message.to_owned())]),
            });
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Self(value))
    }
}

/// `application/json` or `application/*+json`.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The path (`a.b[2].c`) of the first key or string holding NUL, if any.
fn field_with_nul(body: &[u8]) -> Option<String> {
    // JSON can carry NUL only escaped; skip the walk for the usual body.
    if !body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    fn walk(v: &serde_json::Value, path: &str) -> Option<String> {
        let here = || {
            if path.is_empty() {
                "body".to_owned()
            } else {
                path.to_owned()
            }
        };
        match v {
            serde_json::Value::String(s) if s.contains('\0') => Some(here()),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| walk(item, &format!("{path}[{i}]"))),
            serde_json::Value::Object(map) => map.iter().find_map(|(k, item)| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k.contains('\0') {
                    return Some(p);
                }
                walk(item, &p)
            }),
            _ => None,
        }
    }
    walk(&value, "")
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::field_with_nul;

    #[test]
    fn nul_is_found_in_values_and_keys_with_its_path() {
        assert_eq!(
            field_with_nul(br#"{"description": "O\u0000m"}"#).as_deref(),
            Some("description")
        );
        assert_eq!(
            field_with_nul(br#"{"items": [{"a": "x"}, {"b": ["y", "\u0000"]}]}"#).as_deref(),
            Some("items[1].b[1]")
        );
        assert_eq!(
            field_with_nul(br#"{"k\u0000": 1}"#).as_deref(),
            Some("k\u{0}")
        );
        assert_eq!(field_with_nul(br#"{"text": "no nul \\u0000 here"}"#), None);
        assert_eq!(field_with_nul(br#"{"text": "plain"}"#), None);
    }
}

/// Query string.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Path parameters.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// The request id (`X-Request-Id`, honoured from the client or generated).
#[derive(Debug, Clone, Default)]
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get(super::REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ))
    }
}
