//! One error type for the whole API, answered as RFC 9457 `application/problem+json`
//! with a stable `type` URI per kind of problem.

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jira_bridge_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type`.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:jira-bridge:problem:";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `urn:jira-bridge:problem:not-found`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Field → message, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, String>>,
}

/// Every error the API answers.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: bad JSON syntax, bad query string, bad cursor.
    #[error("{detail}")]
    BadRequest {
        /// What is wrong.
        detail: String,
        /// Field → message.
        errors: BTreeMap<String, String>,
    },
    /// Well-formed but invalid input.
    #[error("{detail}")]
    Validation {
        /// Summary.
        detail: String,
        /// Field → message.
        errors: BTreeMap<String, String>,
    },
    /// Missing, unknown or revoked credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the key's scopes do not allow the request, or a console
    /// request comes without its CSRF token.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource (or another tenant's).
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Conflicts with existing state (duplicate name, …).
    #[error("{0}")]
    Conflict(String),
    /// Body over the configured limit.
    #[error("request body is larger than {} bytes", limit.map_or_else(|| "the configured limit of".to_owned(), |l| l.to_string()))]
    PayloadTooLarge {
        /// The limit in bytes, when known.
        limit: Option<u64>,
    },
    /// Body not sent as `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Over a rate limit; `Retry-After` says when to come back.
    #[error("{detail}")]
    TooManyRequests {
        /// What was limited.
        detail: String,
        /// Seconds to wait (sent as `Retry-After`).
        retry_after_seconds: u64,
    },
    /// The request took too long.
    #[error("the request took too long")]
    Timeout,
    /// A dependency (the database) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// Anything unexpected. The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A validation error on one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Validation {
            detail: format!("{field}: {message}"),
            errors: BTreeMap::from([(field.to_owned(), message)]),
        }
    }

    /// A bad-request error on one field (e.g. a query parameter).
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::BadRequest {
            detail: format!("{field}: {message}"),
            errors: BTreeMap::from([(field.to_owned(), message)]),
        }
    }

    /// Wrap an unexpected error.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable slug of the problem type.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad-request",
            Self::Validation { .. } => "validation",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::TooManyRequests { .. } => "rate-limited",
            Self::Timeout => "timeout",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "Malformed request",
            Self::Validation { .. } => "Invalid input",
            Self::Unauthorized(_) => "Not authenticated",
            Self::Forbidden(_) => "Not allowed",
            Self::NotFound(_) => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict(_) => "Conflict",
            Self::PayloadTooLarge { .. } => "Request body too large",
            Self::UnsupportedMediaType(_) => "Unsupported media type",
            Self::TooManyRequests { .. } => "Too many requests",
            Self::Timeout => "Request timed out",
            Self::Unavailable(_) => "Service unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        let errors = match self {
            Self::BadRequest { errors, .. } | Self::Validation { errors, .. }
                if !errors.is_empty() =>
            {
                Some(errors.clone())
            }
            _ => None,
        };
        Problem {
            type_: format!("{PROBLEM_TYPE_PREFIX}{}", self.slug()),
            title: self.title().to_owned(),
            status: self.status().as_u16(),
            detail: match self {
                Self::Internal(_) => "an unexpected error occurred; it has been logged".to_owned(),
                e => e.to_string(),
            },
            errors,
        }
    }
}

/// A problem response for a bare status code (used for errors produced outside the
/// handlers, e.g. by middleware).
pub fn problem_for_status(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::NotFound("no such route".into()),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: None },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("unsupported content type".into())
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ApiError::Timeout,
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized("not authenticated".into()),
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable("service unavailable".into()),
        s if s.is_client_error() => ApiError::BadRequest {
            detail: s.canonical_reason().unwrap_or("bad request").to_owned(),
            errors: BTreeMap::new(),
        },
        _ => ApiError::Internal("unexpected status from a middleware".into()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(e) => tracing::error!(error = ?e, "request failed"),
            Self::Unavailable(d) => tracing::warn!(detail = %d, "dependency unavailable"),
            _ => tracing::debug!(
                status = self.status().as_u16(),
                problem = self.slug(),
                "request refused"
            ),
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::TooManyRequests {
            retry_after_seconds,
            ..
        } = &self
        {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("not found".into()),
            StoreError::Conflict { .. } => {
                Self::Conflict("conflicts with an existing resource".into())
            }
            StoreError::InvalidCursor => {
                Self::bad_field("cursor", "not a cursor from a previous page of this list")
            }
            e if e.is_unavailable() => Self::Unavailable("the database is unavailable".into()),
            e => Self::internal(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge { limit: None },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY => Self::Validation {
                detail: r.body_text(),
                errors: BTreeMap::new(),
            },
            _ => Self::BadRequest {
                detail: r.body_text(),
                errors: BTreeMap::new(),
            },
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest {
            detail: r.body_text(),
            errors: BTreeMap::new(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::BadRequest {
            detail: r.body_text(),
            errors: BTreeMap::new(),
        }
    }
}
