//! The client's error type.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::config::TokenError;

/// The request an error belongs to: method and URL path (never the query, never headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestCtx {
    /// HTTP method.
    pub method: http::Method,
    /// URL path, e.g. `/rest/api/3/issue/ABC-1`.
    pub path: String,
}

impl fmt::Display for RequestCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Everything that can go wrong talking to Jira.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401: credentials missing, wrong, expired, or (OAuth) scope mismatch.
    #[error("{ctx}: unauthorized{}", fmt_msgs(messages))]
    Unauthorized {
        /// The request.
        ctx: RequestCtx,
        /// Messages from the body.
        messages: Vec<String>,
    },
    /// 403: authenticated but not allowed.
    #[error("{ctx}: forbidden{}", fmt_msgs(messages))]
    Forbidden {
        /// The request.
        ctx: RequestCtx,
        /// Messages from the body.
        messages: Vec<String>,
    },
    /// 404: does not exist or is not visible to the caller (Jira conflates both).
    #[error("{ctx}: not found{}", fmt_msgs(messages))]
    NotFound {
        /// The request.
        ctx: RequestCtx,
        /// Messages from the body.
        messages: Vec<String>,
    },
    /// 429 after the retries allowed for this request were used up.
    #[error("{ctx}: rate limited (retry after {retry_after:?}, reason {reason:?})")]
    RateLimited {
        /// The request.
        ctx: RequestCtx,
        /// `Retry-After`, when Jira sent one.
        retry_after: Option<Duration>,
        /// `RateLimit-Reason`, when Jira sent one.
        reason: Option<String>,
    },
    /// 400 / 413 / 422 and other client errors: Jira refused the input.
    #[error(
        "{ctx}: rejected ({status}){}{}",
        fmt_msgs(messages),
        fmt_fields(field_errors)
    )]
    Validation {
        /// The request.
        ctx: RequestCtx,
        /// HTTP status.
        status: u16,
        /// `errorMessages`.
        messages: Vec<String>,
        /// `errors` (field id → message).
        field_errors: BTreeMap<String, String>,
    },
    /// 409: conflicting update.
    #[error("{ctx}: conflict{}", fmt_msgs(messages))]
    Conflict {
        /// The request.
        ctx: RequestCtx,
        /// Messages from the body.
        messages: Vec<String>,
    },
    /// 410: the API was removed.
    #[error("{ctx}: gone{}", fmt_msgs(messages))]
    Gone {
        /// The request.
        ctx: RequestCtx,
        /// Messages from the body.
        messages: Vec<String>,
    },
    /// 5xx after retries (or on a request that may not be retried).
    #[error("{ctx}: server error {status}{}", fmt_msgs(messages))]
    Server {
        /// The request.
        ctx: RequestCtx,
        /// HTTP status.
        status: u16,
        /// Messages from the body, if any.
        messages: Vec<String>,
    },
    /// Connection failed (the request was not applied, or it was safe to retry).
    #[error("{ctx}: transport error: {message}")]
    Transport {
        /// The request.
        ctx: RequestCtx,
        /// What failed (no URL, no headers).
        message: String,
    },
    /// The request timed out (idempotent request, retries used up).
    #[error("{ctx}: timed out")]
    Timeout {
        /// The request.
        ctx: RequestCtx,
    },
    /// A non-idempotent request was sent but no answer arrived: Jira may or may not
    /// have applied it. The client never retries it; reconcile before repeating.
    #[error("{ctx}: outcome unknown ({reason}); the change may or may not have been applied")]
    OutcomeUnknown {
        /// The request.
        ctx: RequestCtx,
        /// Why (timeout, connection reset).
        reason: String,
    },
    /// The answer could not be decoded.
    #[error("{ctx}: could not decode the response: {message}")]
    Decode {
        /// The request.
        ctx: RequestCtx,
        /// Decoder message.
        message: String,
    },
    /// The token source could not supply a token.
    #[error("{ctx}: {source}")]
    Token {
        /// The request.
        ctx: RequestCtx,
        /// The token source's error.
        #[source]
        source: TokenError,
    },
    /// No sequence of transitions reaches the target.
    #[error("issue {issue}: cannot reach {target} from status {current:?}; available transitions: {}", available.join(", "))]
    NoTransitionPath {
        /// Issue key.
        issue: String,
        /// Requested target.
        target: String,
        /// Status the issue is in now.
        current: String,
        /// Transitions available from the current status (`name → status`).
        available: Vec<String>,
    },
    /// Invalid configuration or input detected before any request.
    #[error("configuration error: {0}")]
    Config(String),
}

fn fmt_msgs(m: &[String]) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(": {}", m.join("; "))
    }
}

fn fmt_fields(f: &BTreeMap<String, String>) -> String {
    if f.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = f.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!(" [{}]", parts.join("; "))
    }
}

impl Error {
    /// The HTTP status Jira answered, when the error came from an answer.
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            Error::Unauthorized { .. } => 401,
            Error::Forbidden { .. } => 403,
            Error::NotFound { .. } => 404,
            Error::RateLimited { .. } => 429,
            Error::Validation { status, .. } | Error::Server { status, .. } => *status,
            Error::Conflict { .. } => 409,
            Error::Gone { .. } => 410,
            _ => return None,
        })
    }

    /// The request this error belongs to.
    pub fn request(&self) -> Option<&RequestCtx> {
        match self {
            Error::Unauthorized { ctx, .. }
            | Error::Forbidden { ctx, .. }
            | Error::NotFound { ctx, .. }
            | Error::RateLimited { ctx, .. }
            | Error::Validation { ctx, .. }
            | Error::Conflict { ctx, .. }
            | Error::Gone { ctx, .. }
            | Error::Server { ctx, .. }
            | Error::Transport { ctx, .. }
            | Error::Timeout { ctx }
            | Error::OutcomeUnknown { ctx, .. }
            | Error::Decode { ctx, .. }
            | Error::Token { ctx, .. } => Some(ctx),
            Error::NoTransitionPath { .. } | Error::Config(_) => None,
        }
    }

    /// True when a later attempt may succeed without changing the input
    /// (rate limit, 5xx, transport, timeout).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. }
                | Error::Server { .. }
                | Error::Transport { .. }
                | Error::Timeout { .. }
                | Error::Token {
                    source: TokenError::Unavailable(_),
                    ..
                }
        )
    }

    /// True when a write may have been applied although no success was seen.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }

    /// True when a create (POST) may have been applied although it failed: an unknown
    /// outcome, or a 5xx (a gateway may answer 502/504 after Jira committed). Reconcile
    /// before creating again.
    pub fn write_may_have_applied(&self) -> bool {
        match self {
            Error::OutcomeUnknown { .. } => true,
            Error::Server { ctx, .. } => ctx.method == http::Method::POST,
            _ => false,
        }
    }

    /// Jira's `errorMessages` and `errors` values, flattened (for display to users).
    pub fn jira_messages(&self) -> Vec<String> {
        match self {
            Error::Validation {
                messages,
                field_errors,
                ..
            } => messages
                .iter()
                .cloned()
                .chain(field_errors.iter().map(|(k, v)| format!("{k}: {v}")))
                .collect(),
            Error::Unauthorized { messages, .. }
            | Error::Forbidden { messages, .. }
            | Error::NotFound { messages, .. }
            | Error::Conflict { messages, .. }
            | Error::Gone { messages, .. }
            | Error::Server { messages, .. } => messages.clone(),
            _ => Vec::new(),
        }
    }
}

/// Jira's error body `{"errorMessages":[…],"errors":{…}}`, also accepting the gateway
/// (`{"code","message"}`) and OAuth (`{"error","error_description"}`) shapes.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCollection {
    /// General messages.
    #[serde(default)]
    pub error_messages: Vec<String>,
    /// Field id → message.
    #[serde(default, deserialize_with = "lenient_map")]
    pub errors: BTreeMap<String, serde_json::Value>,
    /// Gateway / generic message.
    #[serde(default)]
    pub message: Option<String>,
    /// OAuth error code.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    /// OAuth error description.
    #[serde(default, rename = "error_description")]
    pub error_description: Option<String>,
}

fn lenient_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, serde_json::Value>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    })
}

impl ErrorCollection {
    /// Parse a body leniently (empty or non-JSON bodies give an empty collection).
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// All general messages.
    pub fn messages(&self) -> Vec<String> {
        let mut out = self.error_messages.clone();
        if let Some(m) = &self.message {
            out.push(m.clone());
        }
        if let Some(serde_json::Value::String(e)) = &self.error {
            match &self.error_description {
                Some(d) => out.push(format!("{e}: {d}")),
                None => out.push(e.clone()),
            }
        }
        out
    }

    /// Field errors as strings.
    pub fn field_errors(&self) -> BTreeMap<String, String> {
        self.errors
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    }
}

/// Map a non-success status and body to an [`Error`].
pub(crate) fn from_status(
    ctx: RequestCtx,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    reason: Option<String>,
) -> Error {
    let ec = ErrorCollection::parse(body);
    let messages = ec.messages();
    match status {
        401 => Error::Unauthorized { ctx, messages },
        403 => Error::Forbidden { ctx, messages },
        404 => Error::NotFound { ctx, messages },
        409 => Error::Conflict { ctx, messages },
        410 => Error::Gone { ctx, messages },
        429 => Error::RateLimited {
            ctx,
            retry_after,
            reason,
        },
        s if s >= 500 => Error::Server {
            ctx,
            status: s,
            messages,
        },
        s => Error::Validation {
            ctx,
            status: s,
            messages,
            field_errors: ec.field_errors(),
        },
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ctx() -> RequestCtx {
        RequestCtx {
            method: http::Method::POST,
            path: "/rest/api/3/issue".into(),
        }
    }

    #[test]
    fn jira_error_body_keeps_messages_and_field_errors() {
        let body = br#"{"errorMessages":["Field 'priority' is required"],"errors":{"summary":"You must specify a summary of the issue."}}"#;
        let e = from_status(ctx(), 400, body, None, None);
        match &e {
            Error::Validation {
                status,
                messages,
                field_errors,
                ..
            } => {
                assert_eq!(*status, 400);
                assert_eq!(messages, &vec!["Field 'priority' is required".to_string()]);
                assert_eq!(
                    field_errors.get("summary").map(String::as_str),
                    Some("You must specify a summary of the issue.")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = e.to_string();
        assert!(
            text.starts_with("POST /rest/api/3/issue: rejected (400)"),
            "{text}"
        );
        assert!(text.contains("summary: You must specify"), "{text}");
    }

    #[test]
    fn gateway_and_oauth_shapes_are_understood() {
        let e = from_status(
            ctx(),
            401,
            br#"{"code":401,"message":"Unauthorized; scope does not match"}"#,
            None,
            None,
        );
        assert_eq!(
            e.jira_messages(),
            vec!["Unauthorized; scope does not match".to_string()]
        );
        let e = from_status(
            ctx(),
            403,
            br#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#,
            None,
            None,
        );
        assert!(matches!(e, Error::Forbidden { .. }));
        assert_eq!(
            e.jira_messages(),
            vec!["invalid_grant: Unknown or invalid refresh token.".to_string()]
        );
    }

    #[test]
    fn status_mapping() {
        let cases = [
            (401, 401),
            (403, 403),
            (404, 404),
            (409, 409),
            (410, 410),
            (413, 413),
            (422, 422),
            (429, 429),
            (503, 503),
        ];
        for (s, expect) in cases {
            let e = from_status(ctx(), s, b"not json", Some(Duration::from_secs(3)), None);
            assert_eq!(e.status(), Some(expect));
            assert_eq!(e.request(), Some(&ctx()));
        }
        assert!(from_status(ctx(), 503, b"", None, None).is_transient());
        assert!(from_status(ctx(), 504, b"", None, None).write_may_have_applied());
        assert!(!from_status(ctx(), 400, b"", None, None).write_may_have_applied());
        let get = RequestCtx {
            method: http::Method::GET,
            path: "/x".into(),
        };
        assert!(!from_status(get, 503, b"", None, None).write_may_have_applied());
        assert!(!from_status(ctx(), 400, b"", None, None).is_transient());
    }
}
