//! OAuth 2.0 (3LO) authorization server of the simulator.
//!
//! Behaves like Atlassian's authorization server (`auth.atlassian.com`) and the
//! `api.atlassian.com` gateway as far as an integration can observe:
//!
//! * `GET /authorize` validates `audience=api.atlassian.com`, `client_id`, a registered
//!   `redirect_uri`, `scope` (space separated, known scopes only), `response_type=code`,
//!   `state` (required) and `prompt=consent`, then auto-consents as the configured user
//!   and answers `302` to `redirect_uri?code=…&state=…` (or `error=access_denied` when the
//!   control API asked to deny the next authorization). Problems with the client or the
//!   redirect URI answer `400` without redirecting, as an authorization server must.
//! * `POST /oauth/token` (JSON or form body; client credentials in the body or as HTTP
//!   Basic) for `authorization_code` (single-use, short-lived codes bound to the redirect
//!   URI) and `refresh_token` with **rotating refresh tokens**: every refresh answers a new
//!   refresh token; the one just used keeps working for `refresh_grace`; reusing it later
//!   answers `403 {"error":"invalid_grant","error_description":"Unknown or invalid refresh
//!   token."}` and invalidates the whole token family (the grant). Refresh tokens are only
//!   issued when `offline_access` was granted, and expire after 90 days of inactivity.
//! * `GET /oauth/token/accessible-resources` lists the sites of the grant.
//!
//! Time is the process clock plus an offset the control API can advance
//! (`POST /_sim/oauth/advance`), so tests never sleep to expire a token.
//!
//! Additions to the documented interface: [`OAuthServer::router_for`],
//! [`OAuthServer::control_router_for`], [`OAuthServer::authenticate_scoped`],
//! [`OAuthServer::gateway_error`], [`OAuthServer::expire_access_tokens`],
//! [`OAuthServer::revoke_account`], [`OAuthServer::advance_clock`],
//! [`OAuthServer::client_id`], [`OAuthServer::client_secret`] and the fields
//! `refresh_requests`, `token_rejected` of [`OAuthStats`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde_json::{json, Value};

/// The audience Atlassian's authorization URL requires.
pub const AUDIENCE: &str = "api.atlassian.com";
/// Lifetime of an authorization code.
pub const CODE_TTL: Duration = Duration::from_secs(300);
/// Largest single clock advance the control API accepts (100 years).
const MAX_ADVANCE_SECS: u64 = 3_153_600_000;
/// Refresh tokens expire after this much inactivity (Atlassian: 90 days).
pub const REFRESH_INACTIVITY: Duration = Duration::from_secs(90 * 24 * 3600);

const CLASSIC_SCOPES: &[&str] = &[
    "offline_access",
    "read:me",
    "read:account",
    "read:jira-user",
    "read:jira-work",
    "write:jira-work",
    "manage:jira-project",
    "manage:jira-configuration",
    "manage:jira-webhook",
    "manage:jira-data-provider",
];

/// A Jira Cloud site an OAuth grant can reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthSite {
    pub cloud_id: String,
    pub name: String,
    pub url: String,
    /// The scopes the site grants to the app. Empty: whatever the user consented to.
    /// Otherwise the grant's scopes on this site are the intersection.
    pub scopes: Vec<String>,
}

/// The registered OAuth app and the server's behaviour.
#[derive(Clone)]
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    /// Default 3600 s.
    pub access_token_ttl: Duration,
    /// Reuse leeway of a rotated refresh token, default 600 s.
    pub refresh_grace: Duration,
    /// `/authorize` auto-consents as this user.
    pub consent_account_id: String,
    /// What accessible-resources lists for a grant (unless the control API chose
    /// other sites for the next grant).
    pub sites: Vec<OAuthSite>,
    pub seed: u64,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_grace", &self.refresh_grace)
            .field("consent_account_id", &self.consent_account_id)
            .field("sites", &self.sites)
            .field("seed", &self.seed)
            .finish()
    }
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            client_id: "sim-oauth-client".into(),
            client_secret: "sim-oauth-secret".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            access_token_ttl: Duration::from_secs(3600),
            refresh_grace: Duration::from_secs(600),
            consent_account_id: "5b10a2844c20165700ede21g".into(),
            sites: vec![OAuthSite {
                cloud_id: "11111111-1111-4111-8111-111111111111".into(),
                name: "sim".into(),
                url: "https://sim.atlassian.net".into(),
                scopes: Vec::new(),
            }],
            seed: 0,
        }
    }
}

/// Who an access token acts for, and with which scopes on the site asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthPrincipal {
    pub account_id: String,
    pub scopes: Vec<String>,
}

/// Why an access token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthAuthError {
    /// Unknown or revoked token.
    Invalid,
    /// The token's lifetime is over.
    Expired,
    /// The grant does not include the site asked for.
    WrongSite,
    /// The grant lacks a scope the operation needs.
    ScopeMismatch,
}

/// Counters, so that tests can prove e.g. "exactly one refresh".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OAuthStats {
    /// Successful authorizations (codes issued).
    pub authorize: u64,
    /// Successful `authorization_code` exchanges.
    pub code_exchanges: u64,
    /// Successful `refresh_token` grants.
    pub refreshes: u64,
    /// Rejected `refresh_token` grants (`invalid_grant`).
    pub refresh_rejected: u64,
    /// Every `refresh_token` grant request that reached the server (addition).
    pub refresh_requests: u64,
    /// Rejected token requests of any grant type (addition).
    pub token_rejected: u64,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    account_id: String,
    site_ids: Vec<String>,
    created: Instant,
    used: bool,
    grant: Option<u64>,
}

struct Grant {
    account_id: String,
    client_id: String,
    scopes: Vec<String>,
    site_ids: Vec<String>,
    revoked: bool,
}

struct AccessToken {
    grant: u64,
    expires: Instant,
}

struct RefreshToken {
    grant: u64,
    last_used: Instant,
    rotated_at: Option<Instant>,
}

struct Settings {
    access_token_ttl: Duration,
    refresh_grace: Duration,
    consent_account_id: String,
    sites: Vec<OAuthSite>,
    deny_next: bool,
    next_sites: Option<Vec<String>>,
    clock_offset: Duration,
}

impl Settings {
    fn from_cfg(cfg: &OAuthConfig) -> Self {
        Self {
            access_token_ttl: cfg.access_token_ttl,
            refresh_grace: cfg.refresh_grace,
            consent_account_id: cfg.consent_account_id.clone(),
            sites: cfg.sites.clone(),
            deny_next: false,
            next_sites: None,
            clock_offset: Duration::ZERO,
        }
    }
}

struct Inner {
    settings: Settings,
    rng: StdRng,
    codes: HashMap<String, Code>,
    grants: HashMap<u64, Grant>,
    next_grant: u64,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    stats: OAuthStats,
}

impl Inner {
    fn new(cfg: &OAuthConfig) -> Self {
        Self {
            settings: Settings::from_cfg(cfg),
            rng: StdRng::seed_from_u64(cfg.seed),
            codes: HashMap::new(),
            grants: HashMap::new(),
            next_grant: 1,
            access: HashMap::new(),
            refresh: HashMap::new(),
            stats: OAuthStats::default(),
        }
    }

    fn now(&self) -> Instant {
        Instant::now() + self.settings.clock_offset
    }

    fn token(&mut self, len: usize) -> String {
        let mut buf = vec![0u8; len];
        self.rng.fill_bytes(&mut buf);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    }

    fn revoke_grant(&mut self, grant: u64) {
        if let Some(g) = self.grants.get_mut(&grant) {
            g.revoked = true;
        }
        self.access.retain(|_, t| t.grant != grant);
        self.refresh.retain(|_, t| t.grant != grant);
    }

    /// Issues an access token (and a refresh token with `offline_access`) for a grant.
    fn issue(&mut self, grant_id: u64) -> Value {
        let now = self.now();
        let ttl = self.settings.access_token_ttl;
        let access = self.token(48);
        self.access.insert(
            access.clone(),
            AccessToken {
                grant: grant_id,
                expires: now + ttl,
            },
        );
        let scopes = self
            .grants
            .get(&grant_id)
            .map(|g| g.scopes.clone())
            .unwrap_or_default();
        let mut body = json!({
            "access_token": access,
            "expires_in": ttl.as_secs(),
            "token_type": "Bearer",
            "scope": scopes.join(" "),
        });
        if scopes.iter().any(|s| s == "offline_access") {
            let refresh = self.token(32);
            self.refresh.insert(
                refresh.clone(),
                RefreshToken {
                    grant: grant_id,
                    last_used: now,
                    rotated_at: None,
                },
            );
            body["refresh_token"] = Value::String(refresh);
        }
        body
    }

    fn site_scopes(&self, site: &OAuthSite, grant: &Grant) -> Vec<String> {
        grant
            .scopes
            .iter()
            .filter(|s| s.as_str() != "offline_access")
            .filter(|s| site.scopes.is_empty() || site.scopes.contains(s))
            .cloned()
            .collect()
    }
}

/// The simulated Atlassian OAuth 2.0 (3LO) authorization server and gateway check.
pub struct OAuthServer {
    cfg: OAuthConfig,
    inner: Mutex<Inner>,
}

type Reply = (StatusCode, Json<Value>);

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
}

fn invalid_refresh() -> Reply {
    oauth_error(
        StatusCode::FORBIDDEN,
        "invalid_grant",
        "Unknown or invalid refresh token.",
    )
}

fn scope_known(scope: &str) -> bool {
    if CLASSIC_SCOPES.contains(&scope) {
        return true;
    }
    // Granular scopes: `<verb>:<entity>:<product>`.
    let parts: Vec<&str> = scope.split(':').collect();
    parts.len() == 3
        && ["read", "write", "delete", "manage"].contains(&parts[0])
        && !parts[1].is_empty()
        && parts[1]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && ["jira", "jira-software", "jira-service-management"].contains(&parts[2])
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = base.to_string();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&urlencoding::encode(v));
        sep = '&';
    }
    out
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid redirect_uri",
        )
        .into_response(),
    }
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        return Some(url::form_urlencoded::parse(body).into_owned().collect());
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    Some(
        obj.iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.clone(), s.clone())),
                Value::Number(n) => Some((k.clone(), n.to_string())),
                _ => None,
            })
            .collect(),
    )
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = raw
        .strip_prefix("Basic ")
        .or_else(|| raw.strip_prefix("basic "))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((
        urlencoding::decode(id).ok()?.into_owned(),
        urlencoding::decode(secret).ok()?.into_owned(),
    ))
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    raw.strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .map(|s| s.trim().to_string())
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl OAuthServer {
    pub fn new(cfg: OAuthConfig) -> Arc<Self> {
        let inner = Inner::new(&cfg);
        Arc::new(Self {
            cfg,
            inner: Mutex::new(inner),
        })
    }

    /// The registered app's client id (addition).
    pub fn client_id(&self) -> &str {
        &self.cfg.client_id
    }

    /// The registered app's client secret (addition; the webhook hub signs dynamic
    /// webhook deliveries with it).
    pub fn client_secret(&self) -> &str {
        &self.cfg.client_secret
    }

    /// `/authorize`, `/oauth/token`, `/oauth/token/accessible-resources`.
    pub fn router(self: &Arc<Self>) -> Router {
        self.router_for()
    }

    /// [`router`](Self::router) for a parent router with state `S` (addition), so the
    /// core can `merge` it into its `Router<S>` directly.
    pub fn router_for<S: Clone + Send + Sync + 'static>(self: &Arc<Self>) -> Router<S> {
        Router::new()
            .route("/authorize", get(authorize))
            .route("/oauth/token", post(token))
            .route(
                "/oauth/token/accessible-resources",
                get(accessible_resources),
            )
            .with_state(self.clone())
    }

    /// Control routes, mounted by the core at `/_sim/oauth`:
    ///
    /// * `GET /` — settings, sites, stats and grants (never token values);
    /// * `GET /stats` — the counters of [`OAuthStats`];
    /// * `PUT /settings` — any of `{"access_token_ttl_secs", "refresh_grace_secs",
    ///   "consent_account_id", "sites": [{"id","name","url","scopes"}]}`;
    /// * `POST /revoke` — `{"account_id"}`: revokes every grant of the account;
    /// * `POST /deny-next` — the next `/authorize` answers `error=access_denied`
    ///   (body `{"deny": false}` cancels);
    /// * `PUT /next-sites` — `{"cloud_ids": [...]}`: sites of the next grant only;
    /// * `POST /expire-access-tokens` — every current access token expires now
    ///   (optional `{"account_id"}`);
    /// * `POST /advance` — `{"seconds": n}`: moves the server clock forward;
    /// * `POST /reset` — forgets codes, grants, tokens and counters.
    pub fn control_router(self: &Arc<Self>) -> Router {
        self.control_router_for()
    }

    /// [`control_router`](Self::control_router) for a parent router with state `S`
    /// (addition): `nest("/_sim/oauth", oauth.control_router_for())`.
    pub fn control_router_for<S: Clone + Send + Sync + 'static>(self: &Arc<Self>) -> Router<S> {
        Router::new()
            .route("/", get(ctl_overview))
            .route("/stats", get(ctl_stats))
            .route("/settings", put(ctl_settings))
            .route("/revoke", post(ctl_revoke))
            .route("/deny-next", post(ctl_deny_next))
            .route("/next-sites", put(ctl_next_sites))
            .route("/expire-access-tokens", post(ctl_expire))
            .route("/advance", post(ctl_advance))
            .route("/reset", post(ctl_reset))
            .with_state(self.clone())
    }

    /// Checks a bearer access token for a request to `/ex/jira/{cloud_id}/...`.
    /// `bearer` is the token (a leading `Bearer ` is tolerated).
    pub fn authenticate(
        &self,
        bearer: &str,
        cloud_id: &str,
    ) -> Result<OAuthPrincipal, OAuthAuthError> {
        let token = bearer.strip_prefix("Bearer ").unwrap_or(bearer).trim();
        let inner = self.inner.lock();
        let at = inner.access.get(token).ok_or(OAuthAuthError::Invalid)?;
        let grant = inner.grants.get(&at.grant).ok_or(OAuthAuthError::Invalid)?;
        if grant.revoked {
            return Err(OAuthAuthError::Invalid);
        }
        if inner.now() >= at.expires {
            return Err(OAuthAuthError::Expired);
        }
        if !grant.site_ids.iter().any(|s| s == cloud_id) {
            return Err(OAuthAuthError::WrongSite);
        }
        let site = inner
            .settings
            .sites
            .iter()
            .find(|s| s.cloud_id == cloud_id)
            .ok_or(OAuthAuthError::WrongSite)?;
        Ok(OAuthPrincipal {
            account_id: grant.account_id.clone(),
            scopes: inner.site_scopes(site, grant),
        })
    }

    /// [`authenticate`](Self::authenticate) plus a scope check (addition): passes when
    /// the token's scopes on the site contain every scope of at least one of
    /// `alternatives` (e.g. the classic and the granular scope set of an operation).
    /// An empty `alternatives` needs no scope.
    pub fn authenticate_scoped(
        &self,
        bearer: &str,
        cloud_id: &str,
        alternatives: &[&[&str]],
    ) -> Result<OAuthPrincipal, OAuthAuthError> {
        let p = self.authenticate(bearer, cloud_id)?;
        if alternatives.is_empty()
            || alternatives
                .iter()
                .any(|set| set.iter().all(|s| p.scopes.iter().any(|g| g == s)))
        {
            Ok(p)
        } else {
            Err(OAuthAuthError::ScopeMismatch)
        }
    }

    /// The gateway's answer for a refused token (addition): status and body as
    /// `api.atlassian.com` sends them (`{"code":401,"message":"Unauthorized"}`, or
    /// `"Unauthorized; scope does not match"` for a missing scope).
    pub fn gateway_error(err: OAuthAuthError) -> (u16, Value) {
        match err {
            OAuthAuthError::ScopeMismatch => (
                401,
                json!({"code": 401, "message": "Unauthorized; scope does not match"}),
            ),
            OAuthAuthError::Invalid | OAuthAuthError::Expired | OAuthAuthError::WrongSite => {
                (401, json!({"code": 401, "message": "Unauthorized"}))
            }
        }
    }

    /// The client id/secret, redirect URIs, sites: merged into `GET /_sim/scenario`
    /// under `"oauth"`.
    pub fn scenario_json(&self) -> Value {
        let inner = self.inner.lock();
        json!({
            "client_id": self.cfg.client_id,
            "client_secret": self.cfg.client_secret,
            "redirect_uris": self.cfg.redirect_uris,
            "audience": AUDIENCE,
            "authorize_path": "/authorize",
            "token_path": "/oauth/token",
            "accessible_resources_path": "/oauth/token/accessible-resources",
            "consent_account_id": inner.settings.consent_account_id,
            "access_token_ttl_secs": inner.settings.access_token_ttl.as_secs(),
            "refresh_grace_secs": inner.settings.refresh_grace.as_secs(),
            "sites": inner.settings.sites.iter().map(site_json).collect::<Vec<_>>(),
        })
    }

    pub fn stats(&self) -> OAuthStats {
        self.inner.lock().stats
    }

    /// Back to the configuration given to [`new`](Self::new): settings, tokens, grants
    /// and counters.
    pub fn reset(&self) {
        *self.inner.lock() = Inner::new(&self.cfg);
    }

    /// Revokes every grant of an account (addition); its access tokens stop working and
    /// its refresh tokens answer `invalid_grant`. Returns the number of grants revoked.
    pub fn revoke_account(&self, account_id: &str) -> usize {
        let mut inner = self.inner.lock();
        let ids: Vec<u64> = inner
            .grants
            .iter()
            .filter(|(_, g)| g.account_id == account_id && !g.revoked)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            inner.revoke_grant(*id);
        }
        ids.len()
    }

    /// Makes current access tokens expire now (addition); `None` = all accounts.
    /// Returns how many tokens were affected.
    pub fn expire_access_tokens(&self, account_id: Option<&str>) -> usize {
        let mut inner = self.inner.lock();
        let now = inner.now();
        let grants: Vec<u64> = inner
            .grants
            .iter()
            .filter(|(_, g)| account_id.is_none_or(|a| g.account_id == a))
            .map(|(id, _)| *id)
            .collect();
        let mut n = 0;
        for t in inner.access.values_mut() {
            if grants.contains(&t.grant) && t.expires > now {
                t.expires = now;
                n += 1;
            }
        }
        n
    }

    /// Moves the server clock forward (addition): tokens, codes and grace periods age
    /// without waiting.
    pub fn advance_clock(&self, by: Duration) {
        let mut inner = self.inner.lock();
        inner.settings.clock_offset = inner
            .settings
            .clock_offset
            .saturating_add(by)
            .min(Duration::from_secs(MAX_ADVANCE_SECS));
    }

    fn check_client(&self, params: &HashMap<String, String>, headers: &HeaderMap) -> bool {
        let (id, secret) = match (params.get("client_id"), params.get("client_secret")) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => match basic_credentials(headers) {
                Some(c) => c,
                None => return false,
            },
        };
        id == self.cfg.client_id && constant_time_eq(&secret, &self.cfg.client_secret)
    }
}

fn site_json(s: &OAuthSite) -> Value {
    json!({"id": s.cloud_id, "name": s.name, "url": s.url, "scopes": s.scopes})
}

async fn authorize(
    State(srv): State<Arc<OAuthServer>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let bad = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d).into_response();
    match q.get("client_id") {
        None => return bad("Missing required parameter: client_id"),
        Some(c) if *c != srv.cfg.client_id => return bad("Unknown client."),
        _ => {}
    }
    let redirect_uri = match q.get("redirect_uri") {
        None => return bad("Missing required parameter: redirect_uri"),
        Some(r) if !srv.cfg.redirect_uris.contains(r) => {
            return bad("The redirect_uri is not registered for this app.")
        }
        Some(r) => r.clone(),
    };
    // From here on errors go back to the app through the redirect URI.
    let state = match q.get("state") {
        Some(s) if !s.is_empty() => s.clone(),
        _ => return bad("Missing required parameter: state"),
    };
    let back = |error: &str, desc: &str| {
        redirect(&with_query(
            &redirect_uri,
            &[
                ("error", error),
                ("error_description", desc),
                ("state", &state),
            ],
        ))
    };
    if q.get("audience").map(String::as_str) != Some(AUDIENCE) {
        return back("invalid_request", "audience must be api.atlassian.com");
    }
    if q.get("response_type").map(String::as_str) != Some("code") {
        return back(
            "unsupported_response_type",
            "Unsupported response type: only code is supported",
        );
    }
    if q.get("prompt").map(String::as_str) != Some("consent") {
        return back("invalid_request", "prompt must be consent");
    }
    let scopes: Vec<String> = q
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if scopes.is_empty() {
        return back("invalid_scope", "Missing required parameter: scope");
    }
    if let Some(unknown) = scopes.iter().find(|s| !scope_known(s)) {
        return back("invalid_scope", &format!("Unknown scope: {unknown}"));
    }
    let mut inner = srv.inner.lock();
    if inner.settings.deny_next {
        inner.settings.deny_next = false;
        drop(inner);
        return back("access_denied", "User did not authorize the request");
    }
    let site_ids = match inner.settings.next_sites.take() {
        Some(ids) => ids,
        None => inner
            .settings
            .sites
            .iter()
            .map(|s| s.cloud_id.clone())
            .collect(),
    };
    let code = inner.token(24);
    let now = inner.now();
    let account_id = inner.settings.consent_account_id.clone();
    inner.codes.insert(
        code.clone(),
        Code {
            client_id: srv.cfg.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            scopes,
            account_id,
            site_ids,
            created: now,
            used: false,
            grant: None,
        },
    );
    inner.stats.authorize += 1;
    drop(inner);
    redirect(&with_query(
        &redirect_uri,
        &[("code", &code), ("state", &state)],
    ))
}

async fn token(State(srv): State<Arc<OAuthServer>>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = token_counted(&srv, &headers, &body);
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        reply,
    )
        .into_response()
}

fn token_counted(srv: &OAuthServer, headers: &HeaderMap, body: &[u8]) -> Reply {
    let Some(params) = parse_body(headers, body) else {
        srv.inner.lock().stats.token_rejected += 1;
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Malformed request body",
        );
    };
    let grant_type = params.get("grant_type").cloned().unwrap_or_default();
    if grant_type == "refresh_token" {
        srv.inner.lock().stats.refresh_requests += 1;
    }
    let reply = token_inner(srv, headers, &params, &grant_type);
    let mut inner = srv.inner.lock();
    if reply.0.is_success() {
        match grant_type.as_str() {
            "authorization_code" => inner.stats.code_exchanges += 1,
            _ => inner.stats.refreshes += 1,
        }
    } else {
        inner.stats.token_rejected += 1;
        if grant_type == "refresh_token" {
            inner.stats.refresh_rejected += 1;
        }
    }
    reply
}

fn token_inner(
    srv: &OAuthServer,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    grant_type: &str,
) -> Reply {
    match grant_type {
        "authorization_code" | "refresh_token" => {}
        "" => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: grant_type",
            )
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant type",
            )
        }
    }
    if !srv.check_client(params, headers) {
        return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
    }
    let mut inner = srv.inner.lock();
    let now = inner.now();
    if grant_type == "authorization_code" {
        let Some(code) = params.get("code") else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: code",
            );
        };
        let Some(c) = inner.codes.get_mut(code) else {
            return oauth_error(
                StatusCode::FORBIDDEN,
                "invalid_grant",
                "Invalid authorization code",
            );
        };
        if c.used {
            // A replayed code revokes what it produced (RFC 6749 §4.1.2).
            let grant = c.grant;
            if let Some(g) = grant {
                inner.revoke_grant(g);
            }
            return oauth_error(
                StatusCode::FORBIDDEN,
                "invalid_grant",
                "Invalid authorization code",
            );
        }
        if now.duration_since(c.created) > CODE_TTL {
            return oauth_error(
                StatusCode::FORBIDDEN,
                "invalid_grant",
                "Invalid authorization code",
            );
        }
        if params.get("redirect_uri") != Some(&c.redirect_uri) {
            return oauth_error(
                StatusCode::FORBIDDEN,
                "invalid_grant",
                "Invalid redirect_uri: it does not match the authorization request",
            );
        }
        if c.client_id != srv.cfg.client_id {
            return oauth_error(
                StatusCode::FORBIDDEN,
                "invalid_grant",
                "Invalid authorization code",
            );
        }
        c.used = true;
        let grant = Grant {
            account_id: c.account_id.clone(),
            client_id: c.client_id.clone(),
            scopes: c.scopes.clone(),
            site_ids: c.site_ids.clone(),
            revoked: false,
        };
        let id = inner.next_grant;
        inner.next_grant += 1;
        if let Some(c) = inner.codes.get_mut(code) {
            c.grant = Some(id);
        }
        inner.grants.insert(id, grant);
        return (StatusCode::OK, Json(inner.issue(id)));
    }
    // refresh_token
    let Some(rt) = params.get("refresh_token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: refresh_token",
        );
    };
    let grace = inner.settings.refresh_grace;
    let Some(t) = inner.refresh.get(rt) else {
        return invalid_refresh();
    };
    let grant_id = t.grant;
    let usable = match inner.grants.get(&grant_id) {
        Some(g) => !g.revoked && g.client_id == srv.cfg.client_id,
        None => false,
    };
    if !usable {
        return invalid_refresh();
    }
    if now.duration_since(t.last_used) > REFRESH_INACTIVITY {
        inner.refresh.remove(rt);
        return invalid_refresh();
    }
    if let Some(rotated) = t.rotated_at {
        if now.duration_since(rotated) > grace {
            // Reuse of a rotated token outside the leeway: the whole family dies.
            inner.revoke_grant(grant_id);
            return invalid_refresh();
        }
    }
    if let Some(t) = inner.refresh.get_mut(rt) {
        if t.rotated_at.is_none() {
            t.rotated_at = Some(now);
        }
    }
    (StatusCode::OK, Json(inner.issue(grant_id)))
}

async fn accessible_resources(State(srv): State<Arc<OAuthServer>>, headers: HeaderMap) -> Reply {
    let unauthorized = || {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 401, "message": "Unauthorized"})),
        )
    };
    let Some(token) = bearer(&headers) else {
        return unauthorized();
    };
    let inner = srv.inner.lock();
    let Some(at) = inner.access.get(&token) else {
        return unauthorized();
    };
    if inner.now() >= at.expires {
        return unauthorized();
    }
    let Some(grant) = inner.grants.get(&at.grant).filter(|g| !g.revoked) else {
        return unauthorized();
    };
    let list: Vec<Value> = inner
        .settings
        .sites
        .iter()
        .filter(|s| grant.site_ids.contains(&s.cloud_id))
        .map(|s| {
            json!({
                "id": s.cloud_id,
                "url": s.url,
                "name": s.name,
                "scopes": inner.site_scopes(s, grant),
                "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png",
            })
        })
        .collect();
    (StatusCode::OK, Json(Value::Array(list)))
}

// ---- control ----

fn ctl_ok(v: Value) -> Reply {
    (StatusCode::OK, Json(v))
}

fn ctl_bad(msg: &str) -> Reply {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"errorMessages": [msg], "errors": {}})),
    )
}

fn stats_json(s: &OAuthStats) -> Value {
    json!({
        "authorize": s.authorize,
        "code_exchanges": s.code_exchanges,
        "refreshes": s.refreshes,
        "refresh_rejected": s.refresh_rejected,
        "refresh_requests": s.refresh_requests,
        "token_rejected": s.token_rejected,
    })
}

async fn ctl_overview(State(srv): State<Arc<OAuthServer>>) -> Reply {
    let inner = srv.inner.lock();
    let mut grants: Vec<(&u64, &Grant)> = inner.grants.iter().collect();
    grants.sort_by_key(|(id, _)| **id);
    let grants: Vec<Value> = grants
        .into_iter()
        .map(|(id, g)| {
            json!({
                "id": id,
                "account_id": g.account_id,
                "scopes": g.scopes,
                "sites": g.site_ids,
                "revoked": g.revoked,
                "live_refresh_tokens": inner.refresh.values()
                    .filter(|t| t.grant == *id && t.rotated_at.is_none()).count(),
            })
        })
        .collect();
    ctl_ok(json!({
        "access_token_ttl_secs": inner.settings.access_token_ttl.as_secs(),
        "refresh_grace_secs": inner.settings.refresh_grace.as_secs(),
        "consent_account_id": inner.settings.consent_account_id,
        "deny_next": inner.settings.deny_next,
        "next_sites": inner.settings.next_sites,
        "clock_offset_secs": inner.settings.clock_offset.as_secs(),
        "sites": inner.settings.sites.iter().map(site_json).collect::<Vec<_>>(),
        "stats": stats_json(&inner.stats),
        "grants": grants,
    }))
}

async fn ctl_stats(State(srv): State<Arc<OAuthServer>>) -> Reply {
    ctl_ok(stats_json(&srv.stats()))
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

async fn ctl_settings(State(srv): State<Arc<OAuthServer>>, Json(body): Json<Value>) -> Reply {
    let mut inner = srv.inner.lock();
    if let Some(v) = body.get("access_token_ttl_secs") {
        let Some(n) = v.as_u64() else {
            return ctl_bad("access_token_ttl_secs must be a non-negative integer");
        };
        inner.settings.access_token_ttl = Duration::from_secs(n);
    }
    if let Some(v) = body.get("refresh_grace_secs") {
        let Some(n) = v.as_u64() else {
            return ctl_bad("refresh_grace_secs must be a non-negative integer");
        };
        inner.settings.refresh_grace = Duration::from_secs(n);
    }
    if let Some(v) = body.get("consent_account_id") {
        let Some(s) = v.as_str() else {
            return ctl_bad("consent_account_id must be a string");
        };
        inner.settings.consent_account_id = s.to_string();
    }
    if let Some(v) = body.get("sites") {
        let Some(arr) = v.as_array() else {
            return ctl_bad("sites must be an array");
        };
        let mut sites = Vec::new();
        for s in arr {
            let (Some(id), Some(url)) = (
                s.get("id").and_then(Value::as_str),
                s.get("url").and_then(Value::as_str),
            ) else {
                return ctl_bad("each site needs id and url");
            };
            sites.push(OAuthSite {
                cloud_id: id.to_string(),
                url: url.to_string(),
                name: s
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(id)
                    .to_string(),
                scopes: s.get("scopes").and_then(str_list).unwrap_or_default(),
            });
        }
        inner.settings.sites = sites;
    }
    ctl_ok(json!({
        "access_token_ttl_secs": inner.settings.access_token_ttl.as_secs(),
        "refresh_grace_secs": inner.settings.refresh_grace.as_secs(),
        "consent_account_id": inner.settings.consent_account_id,
        "sites": inner.settings.sites.iter().map(site_json).collect::<Vec<_>>(),
    }))
}

async fn ctl_revoke(State(srv): State<Arc<OAuthServer>>, Json(body): Json<Value>) -> Reply {
    let Some(account) = body.get("account_id").and_then(Value::as_str) else {
        return ctl_bad("account_id is required");
    };
    let n = srv.revoke_account(account);
    ctl_ok(json!({"revoked_grants": n}))
}

async fn ctl_deny_next(State(srv): State<Arc<OAuthServer>>, body: Bytes) -> Reply {
    let deny = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("deny").and_then(Value::as_bool))
        .unwrap_or(true);
    srv.inner.lock().settings.deny_next = deny;
    ctl_ok(json!({"deny_next": deny}))
}

async fn ctl_next_sites(State(srv): State<Arc<OAuthServer>>, Json(body): Json<Value>) -> Reply {
    let Some(ids) = body.get("cloud_ids").and_then(str_list) else {
        return ctl_bad("cloud_ids must be an array of strings");
    };
    let mut inner = srv.inner.lock();
    if let Some(unknown) = ids
        .iter()
        .find(|id| !inner.settings.sites.iter().any(|s| &s.cloud_id == *id))
    {
        return ctl_bad(&format!("unknown cloud id {unknown}"));
    }
    inner.settings.next_sites = Some(ids.clone());
    ctl_ok(json!({"next_sites": ids}))
}

async fn ctl_expire(State(srv): State<Arc<OAuthServer>>, body: Bytes) -> Reply {
    let account = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("account_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let n = srv.expire_access_tokens(account.as_deref());
    ctl_ok(json!({"expired": n}))
}

async fn ctl_advance(State(srv): State<Arc<OAuthServer>>, Json(body): Json<Value>) -> Reply {
    let Some(secs) = body
        .get("seconds")
        .and_then(Value::as_u64)
        .filter(|s| *s <= MAX_ADVANCE_SECS)
    else {
        return ctl_bad("seconds must be an integer between 0 and 3153600000");
    };
    srv.advance_clock(Duration::from_secs(secs));
    let offset = srv.inner.lock().settings.clock_offset.as_secs();
    ctl_ok(json!({"clock_offset_secs": offset}))
}

async fn ctl_reset(State(srv): State<Arc<OAuthServer>>) -> Reply {
    srv.reset();
    ctl_ok(json!({"reset": true}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const CLIENT: &str = "client-abc";
    const SECRET: &str = "secret-xyz";
    const REDIRECT: &str = "http://127.0.0.1:9/callback";
    const SITE_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const SITE_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
    const SCOPES: &str = "read:jira-work write:jira-work read:jira-user offline_access";

    fn config() -> OAuthConfig {
        OAuthConfig {
            client_id: CLIENT.into(),
            client_secret: SECRET.into(),
            redirect_uris: vec![REDIRECT.into()],
            consent_account_id: "acc-1".into(),
            sites: vec![
                OAuthSite {
                    cloud_id: SITE_A.into(),
                    name: "alpha".into(),
                    url: "https://alpha.atlassian.net".into(),
                    scopes: Vec::new(),
                },
                OAuthSite {
                    cloud_id: SITE_B.into(),
                    name: "beta".into(),
                    url: "https://beta.atlassian.net".into(),
                    scopes: vec!["read:jira-work".into()],
                },
            ],
            seed: 7,
            ..OAuthConfig::default()
        }
    }

    struct Env {
        srv: Arc<OAuthServer>,
        base: String,
        http: reqwest::Client,
    }

    async fn start(cfg: OAuthConfig) -> Env {
        let srv = OAuthServer::new(cfg);
        // Mounted the way the core mounts it: into a router with its own state.
        let app: Router<Arc<String>> = Router::new()
            .route(
                "/core",
                get(|State(s): State<Arc<String>>| async move { s.to_string() }),
            )
            .merge(srv.router_for())
            .nest("/_sim/oauth", srv.control_router_for());
        let app = app.with_state(Arc::new("core".to_string()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        Env {
            srv,
            base: format!("http://{addr}"),
            http,
        }
    }

    fn query_of(location: &str) -> HashMap<String, String> {
        let u = url::Url::parse(location).unwrap();
        u.query_pairs().into_owned().collect()
    }

    impl Env {
        async fn authorize_with(&self, pairs: &[(&str, &str)]) -> reqwest::Response {
            self.http
                .get(format!("{}/authorize", self.base))
                .query(pairs)
                .send()
                .await
                .unwrap()
        }

        /// A complete, valid authorization request; answers the redirect's query.
        async fn authorize(&self, scope: &str, state: &str) -> HashMap<String, String> {
            let resp = self
                .authorize_with(&[
                    ("audience", AUDIENCE),
                    ("client_id", CLIENT),
                    ("scope", scope),
                    ("redirect_uri", REDIRECT),
                    ("state", state),
                    ("response_type", "code"),
                    ("prompt", "consent"),
                ])
                .await;
            assert_eq!(resp.status(), StatusCode::FOUND);
            let loc = resp.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_string();
            assert!(loc.starts_with(REDIRECT), "{loc}");
            query_of(&loc)
        }

        async fn token(&self, body: Value) -> (StatusCode, Value) {
            let resp = self
                .http
                .post(format!("{}/oauth/token", self.base))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json().await.unwrap())
        }

        async fn exchange(&self, code: &str) -> (StatusCode, Value) {
            self.token(json!({
                "grant_type": "authorization_code",
                "client_id": CLIENT,
                "client_secret": SECRET,
                "code": code,
                "redirect_uri": REDIRECT,
            }))
            .await
        }

        async fn refresh(&self, rt: &str) -> (StatusCode, Value) {
            self.token(json!({
                "grant_type": "refresh_token",
                "client_id": CLIENT,
                "client_secret": SECRET,
                "refresh_token": rt,
            }))
            .await
        }

        async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
            let resp = self
                .http
                .request(method, format!("{}/_sim/oauth{path}", self.base))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            resp.json().await.unwrap()
        }

        async fn resources(&self, at: &str) -> (StatusCode, Value) {
            let resp = self
                .http
                .get(format!("{}/oauth/token/accessible-resources", self.base))
                .bearer_auth(at)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json().await.unwrap())
        }

        async fn tokens(&self) -> (String, String) {
            let q = self.authorize(SCOPES, "st").await;
            let (status, body) = self.exchange(&q["code"]).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            (
                body["access_token"].as_str().unwrap().to_string(),
                body["refresh_token"].as_str().unwrap().to_string(),
            )
        }
    }

    #[tokio::test]
    async fn code_token_refresh_then_stale_reuse_after_grace_burns_the_family() {
        let env = start(config()).await;
        let q = env.authorize(SCOPES, "state-123").await;
        assert_eq!(q["state"], "state-123");
        let (status, tok) = env.exchange(&q["code"]).await;
        assert_eq!(status, StatusCode::OK, "{tok}");
        assert_eq!(tok["token_type"], "Bearer");
        assert_eq!(tok["expires_in"], 3600);
        assert_eq!(tok["scope"], SCOPES);
        let at1 = tok["access_token"].as_str().unwrap().to_string();
        let rt1 = tok["refresh_token"].as_str().unwrap().to_string();

        let p = env.srv.authenticate(&at1, SITE_A).unwrap();
        assert_eq!(p.account_id, "acc-1");
        assert!(p.scopes.contains(&"write:jira-work".to_string()));
        assert!(!p.scopes.contains(&"offline_access".to_string()));

        let (status, tok2) = env.refresh(&rt1).await;
        assert_eq!(status, StatusCode::OK, "{tok2}");
        let at2 = tok2["access_token"].as_str().unwrap().to_string();
        let rt2 = tok2["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(rt1, rt2, "refresh tokens rotate");
        assert_ne!(at1, at2);
        assert!(env.srv.authenticate(&at2, SITE_A).is_ok());

        // Past the reuse leeway the rotated token is refused and the family is revoked.
        env.control(reqwest::Method::POST, "/advance", json!({"seconds": 601}))
            .await;
        let (status, err) = env.refresh(&rt1).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            err,
            json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
        );
        let (status, err) = env.refresh(&rt2).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "the newest token died too");
        assert_eq!(err["error"], "invalid_grant");
        assert_eq!(
            env.srv.authenticate(&at2, SITE_A),
            Err(OAuthAuthError::Invalid)
        );

        let stats = env.control(reqwest::Method::GET, "/stats", json!({})).await;
        assert_eq!(stats["authorize"], 1);
        assert_eq!(stats["code_exchanges"], 1);
        assert_eq!(stats["refreshes"], 1);
        assert_eq!(stats["refresh_rejected"], 2);
        assert_eq!(stats["refresh_requests"], 3);
        assert_eq!(env.srv.stats().refreshes, 1);
    }

    #[tokio::test]
    async fn rotated_refresh_token_still_works_within_grace() {
        let env = start(config()).await;
        let (_, rt1) = env.tokens().await;
        let (s, first) = env.refresh(&rt1).await;
        assert_eq!(s, StatusCode::OK);
        env.control(reqwest::Method::POST, "/advance", json!({"seconds": 599}))
            .await;
        let (s, again) = env.refresh(&rt1).await;
        assert_eq!(s, StatusCode::OK, "{again}");
        // Both descendants are usable: the family is intact.
        let (s, _) = env.refresh(first["refresh_token"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = env.refresh(again["refresh_token"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(env.srv.stats().refreshes, 4);
        assert_eq!(env.srv.stats().refresh_rejected, 0);
    }

    #[tokio::test]
    async fn grace_zero_makes_any_reuse_fatal() {
        let env = start(config()).await;
        env.control(
            reqwest::Method::PUT,
            "/settings",
            json!({"refresh_grace_secs": 0}),
        )
        .await;
        let (_, rt1) = env.tokens().await;
        assert_eq!(env.refresh(&rt1).await.0, StatusCode::OK);
        env.srv.advance_clock(Duration::from_secs(1));
        assert_eq!(env.refresh(&rt1).await.0, StatusCode::FORBIDDEN);
        assert_eq!(env.srv.stats().refresh_rejected, 1);
    }

    #[tokio::test]
    async fn code_is_single_use_short_lived_and_bound_to_client_and_redirect() {
        let env = start(config()).await;
        let code = env.authorize(SCOPES, "s").await["code"].clone();
        let (s, e) = env
            .token(
                json!({"grant_type": "authorization_code", "client_id": CLIENT,
                "client_secret": "wrong", "code": code, "redirect_uri": REDIRECT}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(e["error"], "access_denied");
        let (s, e) = env
            .token(
                json!({"grant_type": "authorization_code", "client_id": CLIENT,
                "client_secret": SECRET, "code": code, "redirect_uri": "http://127.0.0.1:9/other"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(e["error"], "invalid_grant");

        // Token answers are never cached.
        let q = env.authorize(SCOPES, "s").await;
        let resp = env
            .http
            .post(format!("{}/oauth/token", env.base))
            .json(
                &json!({"grant_type": "authorization_code", "client_id": CLIENT,
                "client_secret": SECRET, "code": q["code"], "redirect_uri": REDIRECT}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(
            env.http
                .get(format!("{}/core", env.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "core"
        );

        // Form-encoded bodies work too.
        let resp = env
            .http
            .post(format!("{}/oauth/token", env.base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let at = resp.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(env.srv.authenticate(&at, SITE_A).is_ok());

        // Replaying the code fails and revokes what it produced.
        let (s, e) = env.exchange(&code).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(e["error"], "invalid_grant");
        assert_eq!(
            env.srv.authenticate(&at, SITE_A),
            Err(OAuthAuthError::Invalid)
        );

        // An unused code expires.
        let code2 = env.authorize(SCOPES, "s").await["code"].clone();
        env.srv.advance_clock(CODE_TTL + Duration::from_secs(1));
        assert_eq!(env.exchange(&code2).await.0, StatusCode::FORBIDDEN);

        let (s, e) = env
            .token(json!({"grant_type": "password", "client_id": CLIENT, "client_secret": SECRET}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(e["error"], "unsupported_grant_type");
        assert_eq!(env.srv.stats().code_exchanges, 2);
    }

    #[tokio::test]
    async fn no_refresh_token_without_offline_access() {
        let env = start(config()).await;
        let q = env.authorize("read:jira-work", "s").await;
        let (s, tok) = env.exchange(&q["code"]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(tok.get("refresh_token").is_none(), "{tok}");
        assert_eq!(tok["scope"], "read:jira-work");
    }

    #[tokio::test]
    async fn accessible_resources_lists_every_granted_site_with_its_scopes() {
        let env = start(config()).await;
        let (at, _) = env.tokens().await;
        let (s, list) = env.resources(&at).await;
        assert_eq!(s, StatusCode::OK);
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 2);
        let beta = list.iter().find(|s| s["id"] == SITE_B).unwrap();
        assert_eq!(beta["url"], "https://beta.atlassian.net");
        assert_eq!(beta["name"], "beta");
        assert_eq!(beta["scopes"], json!(["read:jira-work"]));
        assert!(beta["avatarUrl"].is_string());
        let alpha = list.iter().find(|s| s["id"] == SITE_A).unwrap();
        assert_eq!(
            alpha["scopes"],
            json!(["read:jira-work", "write:jira-work", "read:jira-user"])
        );
        // Site B only granted read:jira-work.
        assert_eq!(
            env.srv
                .authenticate_scoped(&at, SITE_B, &[&["write:jira-work"]])
                .unwrap_err(),
            OAuthAuthError::ScopeMismatch
        );
        assert!(env
            .srv
            .authenticate_scoped(
                &at,
                SITE_A,
                &[&["manage:jira-webhook"], &["write:jira-work"]]
            )
            .is_ok());
        assert_eq!(
            env.srv
                .authenticate(&at, "cccccccc-0000-4000-8000-000000000003"),
            Err(OAuthAuthError::WrongSite)
        );

        // The control API narrows the next grant to one site.
        env.control(
            reqwest::Method::PUT,
            "/next-sites",
            json!({"cloud_ids": [SITE_B]}),
        )
        .await;
        let (at2, _) = env.tokens().await;
        let (_, list) = env.resources(&at2).await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["id"], SITE_B);
        assert_eq!(
            env.srv.authenticate(&at2, SITE_A),
            Err(OAuthAuthError::WrongSite)
        );
        // ...and only the next one.
        let (at3, _) = env.tokens().await;
        assert_eq!(env.resources(&at3).await.1.as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn access_token_expires_after_its_ttl() {
        let env = start(config()).await;
        env.control(
            reqwest::Method::PUT,
            "/settings",
            json!({"access_token_ttl_secs": 60}),
        )
        .await;
        let q = env.authorize(SCOPES, "s").await;
        let (_, tok) = env.exchange(&q["code"]).await;
        assert_eq!(tok["expires_in"], 60);
        let at = tok["access_token"].as_str().unwrap().to_string();
        assert!(env.srv.authenticate(&at, SITE_A).is_ok());
        env.control(reqwest::Method::POST, "/advance", json!({"seconds": 61}))
            .await;
        assert_eq!(
            env.srv.authenticate(&at, SITE_A),
            Err(OAuthAuthError::Expired)
        );
        let (s, body) = env.resources(&at).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(body, json!({"code": 401, "message": "Unauthorized"}));
        // A refresh brings a working token.
        let (s, tok2) = env.refresh(tok["refresh_token"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        assert!(env
            .srv
            .authenticate(tok2["access_token"].as_str().unwrap(), SITE_A)
            .is_ok());
        assert_eq!(
            env.srv.authenticate("nope", SITE_A),
            Err(OAuthAuthError::Invalid)
        );
        assert_eq!(
            OAuthServer::gateway_error(OAuthAuthError::ScopeMismatch).1["message"],
            "Unauthorized; scope does not match"
        );
    }

    #[tokio::test]
    async fn expire_access_tokens_control_expires_current_tokens_only() {
        let env = start(config()).await;
        let (at, _) = env.tokens().await;
        let r = env
            .control(reqwest::Method::POST, "/expire-access-tokens", json!({}))
            .await;
        assert_eq!(r["expired"], 1);
        assert_eq!(
            env.srv.authenticate(&at, SITE_A),
            Err(OAuthAuthError::Expired)
        );
        let (at2, _) = env.tokens().await;
        assert!(env.srv.authenticate(&at2, SITE_A).is_ok());
    }

    #[tokio::test]
    async fn denied_consent_redirects_with_access_denied_and_state() {
        let env = start(config()).await;
        env.control(reqwest::Method::POST, "/deny-next", json!({}))
            .await;
        let q = env.authorize(SCOPES, "xyz").await;
        assert_eq!(q["error"], "access_denied");
        assert_eq!(q["state"], "xyz");
        assert!(!q.contains_key("code"));
        // Only the next one is denied.
        assert!(env.authorize(SCOPES, "xyz").await.contains_key("code"));
        assert_eq!(env.srv.stats().authorize, 1);
    }

    #[tokio::test]
    async fn authorize_validates_its_parameters() {
        let env = start(config()).await;
        let good = [
            ("audience", AUDIENCE),
            ("client_id", CLIENT),
            ("scope", SCOPES),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
            ("response_type", "code"),
            ("prompt", "consent"),
        ];
        let with = |k: &str, v: Option<&'static str>| -> Vec<(&'static str, &'static str)> {
            good.iter()
                .filter_map(|(gk, gv)| {
                    if *gk == k {
                        v.map(|v| (*gk, v))
                    } else {
                        Some((*gk, *gv))
                    }
                })
                .collect()
        };
        // Client or redirect problems: no redirect at all.
        for (k, v) in [
            ("client_id", Some("someone-else")),
            ("client_id", None),
            ("redirect_uri", Some("http://127.0.0.1:9/evil")),
            ("state", None),
        ] {
            let resp = env.authorize_with(&with(k, v)).await;
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{k}={v:?}");
        }
        // Other problems go back to the app.
        for (k, v, err) in [
            ("audience", None, "invalid_request"),
            ("audience", Some("example.com"), "invalid_request"),
            ("response_type", Some("token"), "unsupported_response_type"),
            ("prompt", None, "invalid_request"),
            (
                "scope",
                Some("read:jira-work fly:to-the-moon"),
                "invalid_scope",
            ),
            ("scope", None, "invalid_scope"),
        ] {
            let resp = env.authorize_with(&with(k, v)).await;
            assert_eq!(resp.status(), StatusCode::FOUND, "{k}={v:?}");
            let q = query_of(resp.headers()[header::LOCATION].to_str().unwrap());
            assert_eq!(q["error"], err, "{k}={v:?}");
            assert_eq!(q["state"], "s");
        }
        assert_eq!(env.srv.stats().authorize, 0);
        // Granular scopes are accepted.
        let q = env
            .authorize(
                "read:issue-details:jira write:webhook:jira offline_access",
                "g",
            )
            .await;
        assert!(q.contains_key("code"));
    }

    #[tokio::test]
    async fn revoking_an_account_kills_its_refresh_tokens() {
        let env = start(config()).await;
        let (at, rt) = env.tokens().await;
        let r = env
            .control(
                reqwest::Method::POST,
                "/revoke",
                json!({"account_id": "acc-1"}),
            )
            .await;
        assert_eq!(r["revoked_grants"], 1);
        let (s, e) = env.refresh(&rt).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(e["error"], "invalid_grant");
        assert_eq!(
            env.srv.authenticate(&at, SITE_A),
            Err(OAuthAuthError::Invalid)
        );
        let overview = env.control(reqwest::Method::GET, "", json!({})).await;
        assert_eq!(overview["grants"][0]["revoked"], true);
        assert!(
            !overview.to_string().contains(&rt),
            "no token values in control output"
        );
    }

    #[tokio::test]
    async fn tokens_are_deterministic_under_a_seed_and_reset_restores_config() {
        let a = start(config()).await;
        let b = start(config()).await;
        let (at_a, rt_a) = a.tokens().await;
        let (at_b, rt_b) = b.tokens().await;
        assert_eq!((at_a.clone(), rt_a), (at_b, rt_b));
        a.control(
            reqwest::Method::PUT,
            "/settings",
            json!({"access_token_ttl_secs": 5}),
        )
        .await;
        a.control(reqwest::Method::POST, "/reset", json!({})).await;
        assert_eq!(a.srv.stats(), OAuthStats::default());
        assert_eq!(
            a.srv.authenticate(&at_a, SITE_A),
            Err(OAuthAuthError::Invalid)
        );
        assert_eq!(a.srv.scenario_json()["access_token_ttl_secs"], 3600);
        assert_eq!(a.srv.scenario_json()["client_id"], CLIENT);
        assert!(!format!("{:?}", config()).contains(SECRET));
    }
}
