//! Problems specific to connections: each has its own stable `type` and a detail a
//! person can act on. Jira's own messages travel in `jira` when Jira refused something.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::{PROBLEM_JSON, PROBLEM_TYPE_PREFIX};
use crate::http::ApiError;

/// What Jira said when it refused a request.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, ToSchema)]
pub struct JiraMessages {
    /// HTTP status Jira answered.
    pub status: Option<u16>,
    /// `errorMessages`.
    #[serde(rename = "errorMessages")]
    pub error_messages: Vec<String>,
    /// `errors` (field → message).
    pub errors: BTreeMap<String, String>,
}

/// A problem document of the connections API (RFC 9457) with Jira's messages.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ConnectionProblem {
    /// Stable identifier, e.g. `urn:jira-bridge:problem:jira-credentials-rejected`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong and what to do.
    pub detail: String,
    /// Field → message, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, String>>,
    /// Jira's own answer, when Jira refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jira: Option<JiraMessages>,
}

/// Every error of the connections module.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// A generic API error (validation, not found, store).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Jira answered 401/403 to the credentials.
    #[error("{detail}")]
    CredentialsRejected {
        /// What to do.
        detail: String,
        /// Jira's answer.
        jira: JiraMessages,
    },
    /// Nothing answered at the address (DNS, refused, timeout, TLS).
    #[error("{0}")]
    Unreachable(String),
    /// Something answered, but it is not Jira.
    #[error("{0}")]
    NotJira(String),
    /// The host resolves to a private, loopback or link-local address.
    #[error("{0}")]
    PrivateAddress(String),
    /// A Data Center URL given as Cloud, or the other way round.
    #[error("{0}")]
    WrongDeployment(String),
    /// The connection's grant or token is gone: reconnect.
    #[error("{0}")]
    Expired(String),
    /// The connection's credentials were refused: replace them.
    #[error("{0}")]
    Invalid(String),
    /// The connection is disabled.
    #[error("{0}")]
    Disabled(String),
    /// OAuth is not configured on this server.
    #[error("{0}")]
    OAuthNotConfigured(String),
    /// The `state` of an OAuth callback is unknown, forged, or not for this server.
    #[error("{0}")]
    StateInvalid(String),
    /// The `state` was already used.
    #[error("{0}")]
    StateReplayed(String),
    /// The `state` is too old.
    #[error("{0}")]
    StateExpired(String),
    /// The user declined access on Atlassian's consent screen.
    #[error("{0}")]
    AccessDenied(String),
    /// Atlassian's token endpoint refused or failed.
    #[error("{0}")]
    OAuthExchange(String),
    /// The pending site selection is unknown, used or expired.
    #[error("{0}")]
    SelectionGone(String),
    /// Jira refused or failed an operation.
    #[error("{detail}")]
    Jira {
        /// Our status for it.
        status: StatusCode,
        /// Problem slug.
        slug: &'static str,
        /// What happened.
        detail: String,
        /// Jira's answer.
        jira: Option<JiraMessages>,
    },
}

impl ConnectionError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ConnectionError::*;
        match self {
            Api(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
            CredentialsRejected { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "jira-credentials-rejected",
                "Jira rejected the credentials",
            ),
            Unreachable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "jira-unreachable",
                "Jira could not be reached",
            ),
            NotJira(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-jira",
                "The URL is not a Jira site",
            ),
            PrivateAddress(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "private-address",
                "Private address not allowed",
            ),
            WrongDeployment(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong-deployment",
                "Wrong kind of Jira for this connection",
            ),
            Expired(_) => (
                StatusCode::CONFLICT,
                "connection-expired",
                "Connection expired: reconnect required",
            ),
            Invalid(_) => (
                StatusCode::CONFLICT,
                "connection-invalid",
                "Connection credentials are invalid",
            ),
            Disabled(_) => (
                StatusCode::CONFLICT,
                "connection-disabled",
                "Connection is disabled",
            ),
            OAuthNotConfigured(_) => (
                StatusCode::CONFLICT,
                "oauth-not-configured",
                "OAuth is not configured",
            ),
            StateInvalid(_) => (
                StatusCode::BAD_REQUEST,
                "oauth-state-invalid",
                "Invalid OAuth state",
            ),
            StateReplayed(_) => (
                StatusCode::BAD_REQUEST,
                "oauth-state-replayed",
                "OAuth state already used",
            ),
            StateExpired(_) => (
                StatusCode::BAD_REQUEST,
                "oauth-state-expired",
                "OAuth state expired",
            ),
            AccessDenied(_) => (
                StatusCode::FORBIDDEN,
                "oauth-access-denied",
                "Access to Jira was declined",
            ),
            OAuthExchange(_) => (
                StatusCode::BAD_GATEWAY,
                "oauth-exchange-failed",
                "Atlassian refused the authorization",
            ),
            SelectionGone(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Jira { status, slug, .. } => (*status, slug, "Jira refused or failed the request"),
        }
    }

    /// The stable slug of the problem type.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Api(e) => e.slug(),
            e => e.parts().1,
        }
    }

    /// The problem document.
    pub fn problem(&self) -> ConnectionProblem {
        if let Self::Api(e) = self {
            let p = e.problem();
            return ConnectionProblem {
                type_: p.type_,
                title: p.title,
                status: p.status,
                detail: p.detail,
                errors: p.errors,
                jira: None,
            };
        }
        let (status, slug, title) = self.parts();
        let jira = match self {
            Self::CredentialsRejected { jira, .. } => Some(jira.clone()),
            Self::Jira { jira, .. } => jira.clone(),
            _ => None,
        };
        ConnectionProblem {
            type_: format!("{PROBLEM_TYPE_PREFIX}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            errors: None,
            jira,
        }
    }

    /// A store failure.
    pub fn store(e: jira_bridge_store::StoreError) -> Self {
        Self::Api(ApiError::from(e))
    }
}

impl From<jira_bridge_store::StoreError> for ConnectionError {
    fn from(e: jira_bridge_store::StoreError) -> Self {
        Self::store(e)
    }
}

impl IntoResponse for ConnectionError {
    fn into_response(self) -> Response {
        if let Self::Api(e) = self {
            return e.into_response();
        }
        let problem = self.problem();
        tracing::debug!(
            status = problem.status,
            problem = self.slug(),
            "request refused"
        );
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

/// Jira's messages from a client error, if it carries any.
pub fn jira_messages(e: &jira_client::Error) -> Option<JiraMessages> {
    use jira_client::Error as E;
    match e {
        E::Unauthorized { messages, .. } => Some(JiraMessages {
            status: Some(401),
            error_messages: messages.clone(),
            errors: BTreeMap::new(),
        }),
        E::Forbidden { messages, .. } => Some(JiraMessages {
            status: Some(403),
            error_messages: messages.clone(),
            errors: BTreeMap::new(),
        }),
        E::NotFound { messages, .. } => Some(JiraMessages {
            status: Some(404),
            error_messages: messages.clone(),
            errors: BTreeMap::new(),
        }),
        E::Validation {
            status,
            messages,
            field_errors,
            ..
        } => Some(JiraMessages {
            status: Some(*status),
            error_messages: messages.clone(),
            errors: field_errors.clone(),
        }),
        E::Conflict { messages, .. } => Some(JiraMessages {
            status: Some(409),
            error_messages: messages.clone(),
            errors: BTreeMap::new(),
        }),
        E::Gone { messages, .. } => Some(JiraMessages {
            status: Some(410),
            error_messages: messages.clone(),
            errors: BTreeMap::new(),
        }),
        E::Server {
            status, messages, ..
        } => Some(JiraMessages {
            status: Some(*status),
            error_messages: messages.clone(),
            errors: BTreeMap::new(),
        }),
        _ => None,
    }
}

/// Map a Jira client error of an operation (not of verification) to a problem.
pub fn from_jira(e: &jira_client::Error) -> ConnectionError {
    use jira_client::Error as E;
    let jira = jira_messages(e);
    let (status, slug, detail) = match e {
        E::Unauthorized { .. } => (
            StatusCode::CONFLICT,
            "connection-expired",
            "Jira no longer accepts this connection's credentials; reconnect it or replace its token".to_owned(),
        ),
        E::Token { source, .. } => match source {
            jira_client::TokenError::Revoked(_) => {
                return ConnectionError::Expired(
                    "the Jira authorization of this connection was revoked or has expired; connect again".into(),
                )
            }
            jira_client::TokenError::Unavailable(m) => (
                StatusCode::BAD_GATEWAY,
                "jira-unavailable",
                format!("could not obtain an access token from Atlassian: {m}"),
            ),
        },
        E::Forbidden { .. } => (
            StatusCode::FORBIDDEN,
            "jira-forbidden",
            "Jira refused: the connected user lacks permission for this".to_owned(),
        ),
        E::NotFound { .. } => (
            StatusCode::NOT_FOUND,
            "jira-not-found",
            "Jira says it does not exist or is not visible to the connected user".to_owned(),
        ),
        E::Validation { .. } | E::Conflict { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "jira-rejected",
            "Jira rejected the request".to_owned(),
        ),
        E::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "jira-rate-limited",
            "Jira is rate limiting this site; try again later".to_owned(),
        ),
        other => (
            StatusCode::BAD_GATEWAY,
            "jira-unavailable",
            format!("Jira did not answer properly: {other}"),
        ),
    };
    ConnectionError::Jira {
        status,
        slug,
        detail,
        jira,
    }
}
