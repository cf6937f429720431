//! The web console, served by the service itself under `/console` (`/` redirects
//! there).
//!
//! Pages are rendered on the server with askama templates (`templates/console/`) from
//! the same domain functions and store reads the `/v1` handlers use, and shown with
//! the API's own response types. The small hand-written script and style sheet are
//! compiled into the binary ([`assets`]); nothing is fetched from elsewhere.
//!
//! State changes are made by the console's script calling the `/v1` API with the
//! session cookie and the session's CSRF token ([`session`]); the only console forms
//! that post to the console itself are sign-in and sign-out. Every read is scoped to
//! the session's tenant, so another tenant's ids answer 404 here as in the API.

pub mod assets;
mod pages;
pub mod session;

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use jira_bridge_store::StoreError;
use serde::Deserialize;

use crate::connections::ConnectionError;
use crate::http::{ApiError, AppState};
pub use session::Session;

/// Content-Security-Policy of every console page: only the console's own script,
/// style sheet and images; no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes (no state attached yet).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/assets/{name}", get(assets::serve))
        .merge(pages::routes())
}

/// One entry of the navigation bar.
#[derive(Debug, Clone)]
pub struct NavItem {
    /// Link.
    pub href: &'static str,
    /// Text.
    pub label: &'static str,
    /// This page.
    pub current: bool,
}

const NAV: &[(&str, &str)] = &[
    ("/console/connections", "Connections"),
    ("/console/configs", "Configs"),
    ("/console/tickets", "Tickets"),
    ("/console/jobs", "Jobs"),
    ("/console/exports", "Exports"),
    ("/console/time-entries", "Time entries"),
    ("/console/releases", "Releases"),
    ("/console/sync-history", "Sync history"),
    ("/console/events", "Events"),
    ("/console/search", "Search"),
];

/// What the layout of every signed-in page needs.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The session's synchronizer token (for forms and the script).
    pub csrf: String,
    /// Navigation.
    pub nav: Vec<NavItem>,
    /// The tenant id (shown in the header).
    pub tenant: String,
}

impl Ctx {
    /// The layout for a page whose nav link is `active`.
    pub fn new(session: &Session, active: &str) -> Self {
        Self {
            csrf: session.csrf.clone(),
            nav: NAV
                .iter()
                .map(|(href, label)| NavItem {
                    href,
                    label,
                    current: *href == active,
                })
                .collect(),
            tenant: session.tenant.id.to_string(),
        }
    }
}

/// Why a console page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: go to the sign-in page.
    Login,
    /// Shown as an error page with this status.
    Status(StatusCode, String),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        if let ApiError::Internal(cause) = &e {
            tracing::error!(error = %cause, "console page failed");
        }
        let p = e.problem();
        Self::Status(e.status(), p.detail)
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<ConnectionError> for PageError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::Api(a) => a.into(),
            other => {
                let p = other.problem();
                Self::Status(
                    StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY),
                    p.detail,
                )
            }
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    status: u16,
    reason: String,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Login => Redirect::to("/console/login").into_response(),
            Self::Status(status, message) => {
                let page = ErrorPage {
                    status: status.as_u16(),
                    reason: status.canonical_reason().unwrap_or("Error").to_owned(),
                    message,
                };
                let mut res = html(&page);
                *res.status_mut() = status;
                res
            }
        }
    }
}

/// A rendered page with the console's security headers.
pub fn html<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(body) => {
            let mut res = Html(body).into_response();
            let h = res.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        session::from_headers(state, &parts.headers)
            .await?
            .ok_or(PageError::Login)
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, PageError> {
        Ok(session::from_headers(state, &parts.headers).await?)
    }
}

async fn home(session: Option<Session>) -> Redirect {
    match session {
        Some(_) => Redirect::to("/console/connections"),
        None => Redirect::to("/console/login"),
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
}

fn login_response(state: &AppState, status: StatusCode, error: Option<String>) -> Response {
    let token = session::random_token();
    let mut res = html(&LoginPage {
        csrf: token.clone(),
        error,
    });
    *res.status_mut() = status;
    res.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(state, session::LOGIN_COOKIE, &token, 3600),
    );
    res
}

async fn login_page(State(state): State<AppState>, session: Option<Session>) -> Response {
    if session.is_some() {
        return Redirect::to("/console/connections").into_response();
    }
    login_response(&state, StatusCode::OK, None)
}

/// The sign-in form.
#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = session::cookie(&headers, session::LOGIN_COOKIE);
    if !expected.is_some_and(|e| session::same_token(e, &form.csrf)) {
        return login_response(
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired; please try again.".into()),
        );
    }
    match session::open(&state, &form.api_key).await {
        Ok((id, s)) => {
            crate::audit::record(
                &state.store,
                crate::audit::Event::new(
                    &s.tenant.actor(),
                    "console.login",
                    jira_bridge_store::audit::Outcome::Success,
                )
                .tenant(&s.tenant.id),
            )
            .await;
            let mut res = Redirect::to("/console/connections").into_response();
            let max_age = session::SESSION_TTL.num_seconds();
            let h = res.headers_mut();
            h.append(
                header::SET_COOKIE,
                session::set_cookie(&state, session::SESSION_COOKIE, &id, max_age),
            );
            h.append(
                header::SET_COOKIE,
                session::set_cookie(&state, session::LOGIN_COOKIE, "", 0),
            );
            res
        }
        Err(ApiError::Unauthorized(m)) => login_response(&state, StatusCode::UNAUTHORIZED, Some(m)),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// A form that only carries the CSRF token.
#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

async fn logout(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref().filter(|c| !c.is_empty()))?;
    state.store.delete_console_session(&session.id_hash).await?;
    let mut res = Redirect::to("/console/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(&state, session::SESSION_COOKIE, "", 0),
    );
    Ok(res)
}
