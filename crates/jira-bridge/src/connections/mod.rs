//! Jira connections: Cloud API tokens (`cloud_token`), Data Center personal access
//! tokens (`dc_pat`) and Cloud OAuth 2.0 3LO grants (`cloud_oauth`).
//!
//! What other modules use:
//! - [`connect`]: the client factory. It loads a tenant's connection, refuses
//!   disabled / expired / invalid ones with a specific problem, and builds a
//!   [`jira_client::JiraClient`] that shares the site's process-wide pacer and, for
//!   OAuth, takes its tokens from the store ([`tokens::StoreTokenSource`]: proactive
//!   and on-401 refresh, single-flight across threads and replicas).
//! - [`Connected::observe`]: pass every Jira result through it. A 401 (after the
//!   client's one refresh-and-retry) or a revoked grant marks the connection
//!   `expired` and emits `connection.expired` exactly once; the error comes back
//!   mapped to a problem with [`errors::from_jira`].
//!
//! Secrets are sealed (AES-256-GCM, bound to `connections.<id>.secret`) before they
//! reach the store and never leave this module except as `SecretString`s handed to
//! the client.

pub mod api;
pub mod errors;
pub mod metadata;
pub mod net;
pub mod oauth;
mod probe;
pub mod sweep;
pub mod tokens;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jira_bridge_store::audit::Outcome;
use jira_bridge_store::connections::{
    Connection, ConnectionUpdate, NewConnection, OAuthSelection, OAuthState, VerificationRecord,
};
use jira_bridge_store::events::NewEvent;
use jira_bridge_store::{ConnectionId, Page, PageRequest, Store, TenantId, Timestamp};
use jira_client::{ClientOptions, JiraClient, SiteConfig};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::audit::{self, Actor};
use crate::config::Config;
use crate::crypto::{KeyRing, SealContext, Sealed};
use crate::http::{ApiError, AppState};
pub use errors::ConnectionError;
use oauth::{OAuthApp, Site, TokenPair};
pub use probe::Probe;

/// Connection kinds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Jira Cloud, email + API token (Basic).
    CloudToken,
    /// Jira Data Center / Server, personal access token (Bearer).
    DcPat,
    /// Jira Cloud, OAuth 2.0 (3LO).
    CloudOauth,
}

impl Kind {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloudToken => "cloud_token",
            Self::DcPat => "dc_pat",
            Self::CloudOauth => "cloud_oauth",
        }
    }

    /// From stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cloud_token" => Some(Self::CloudToken),
            "dc_pat" => Some(Self::DcPat),
            "cloud_oauth" => Some(Self::CloudOauth),
            _ => None,
        }
    }
}

/// Process-wide state of the connections module: the OAuth app and the per-connection
/// refresh mutexes (one replica's share of single-flight refresh).
pub struct Runtime {
    pub(crate) oauth: Option<OAuthApp>,
    pub(crate) refresh_margin: i64,
    locks: parking_lot::Mutex<HashMap<ConnectionId, Arc<tokio::sync::Mutex<()>>>>,
    /// The HTTP transport every Jira client of this process shares (built on first
    /// use, inside the service's runtime): one connection pool, one TLS set-up.
    transport: parking_lot::Mutex<Option<reqwest::Client>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("oauth", &self.oauth)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// From the configuration.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            oauth: OAuthApp::from_config(&config.oauth)?,
            refresh_margin: i64::try_from(config.oauth.refresh_margin_seconds).unwrap_or(300),
            locks: parking_lot::Mutex::new(HashMap::new()),
            transport: parking_lot::Mutex::new(None),
        })
    }

    /// The shared transport for Jira clients (see [`jira_client::transport`]).
    /// Its host names resolve through the net guard, as every Jira client's do.
    fn transport(
        &self,
        options: &ClientOptions,
        config: &Config,
    ) -> Result<reqwest::Client, jira_client::Error> {
        let mut t = self.transport.lock();
        if let Some(http) = t.as_ref() {
            return Ok(http.clone());
        }
        let http = jira_client::transport_with_resolver(
            options,
            Some(crate::net_guard::resolver(
                crate::net_guard::UrlPolicy::from_config(config),
            )),
        )?;
        *t = Some(http.clone());
        Ok(http)
    }

    pub(crate) fn refresh_mutex(&self, id: &ConnectionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock();
        if locks.len() > 10_000 {
            locks.retain(|_, m| Arc::strong_count(m) > 1);
        }
        locks.entry(id.clone()).or_default().clone()
    }

    fn oauth(&self) -> Result<&OAuthApp, ConnectionError> {
        self.oauth.as_ref().ok_or_else(|| {
            ConnectionError::OAuthNotConfigured(
                "OAuth connections are off on this server: the operator sets JIRA_BRIDGE_OAUTH_CLIENT_ID, _CLIENT_SECRET and _REDIRECT_URI".into(),
            )
        })
    }
}

/// What the token source and background tasks need.
#[derive(Clone)]
pub(crate) struct Shared {
    pub store: Store,
    pub keys: Arc<KeyRing>,
    pub runtime: Arc<Runtime>,
    pub config: Arc<Config>,
}

impl From<&AppState> for Shared {
    fn from(s: &AppState) -> Self {
        Self {
            store: s.store.clone(),
            keys: s.keys.clone(),
            runtime: s.connections.clone(),
            config: s.config.clone(),
        }
    }
}

fn seal_ctx(id: &str) -> SealContext<'_> {
    SealContext {
        table: "connections",
        row_id: id,
        column: "secret",
    }
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ConnectionError {
    ConnectionError::Api(ApiError::internal(e))
}

pub(crate) fn seal_pair(
    keys: &KeyRing,
    id: &ConnectionId,
    pair: &TokenPair,
) -> Result<Sealed, ConnectionError> {
    let json = Zeroizing::new(serde_json::to_vec(pair).map_err(internal)?);
    keys.seal(&json, seal_ctx(id.as_str())).map_err(internal)
}

pub(crate) fn open_pair(keys: &KeyRing, row: &Connection) -> Result<TokenPair, ConnectionError> {
    let bytes = keys
        .open(&row.secret, seal_ctx(row.id.as_str()))
        .map_err(internal)?;
    serde_json::from_slice(&bytes).map_err(internal)
}

fn open_token(keys: &KeyRing, row: &Connection) -> Result<SecretString, ConnectionError> {
    keys.open_str(&row.secret, seal_ctx(row.id.as_str()))
        .map_err(internal)
}

fn client_options() -> ClientOptions {
    ClientOptions {
        user_agent: concat!("jira-bridge/", env!("CARGO_PKG_VERSION")).to_owned(),
        ..ClientOptions::default()
    }
}

/// A Jira client builder for `site` with the service's options and the SSRF guard's
/// resolver, so every connection (not only the first check of the URL) refuses
/// internal addresses unless the operator allows private hosts.
pub(crate) fn jira_client(site: SiteConfig, config: &Config) -> jira_client::ClientBuilder {
    JiraClient::builder(site)
        .options(client_options())
        .dns_resolver(crate::net_guard::resolver(
            crate::net_guard::UrlPolicy::from_config(config),
        ))
}

fn parse_url(s: &str) -> Result<url::Url, ConnectionError> {
    url::Url::parse(s).map_err(|e| internal(std::io::Error::other(format!("stored URL: {e}"))))
}

/// The client for a stored connection, whatever its status (verification uses it).
fn build_client(shared: &Shared, row: &Connection) -> Result<JiraClient, ConnectionError> {
    let base = parse_url(&row.base_url)?;
    let site = match Kind::parse(&row.kind) {
        Some(Kind::CloudToken) => SiteConfig::cloud_basic(
            base,
            row.email.clone().unwrap_or_default(),
            open_token(&shared.keys, row)?,
        ),
        Some(Kind::DcPat) => SiteConfig::data_center_pat(base, open_token(&shared.keys, row)?),
        Some(Kind::CloudOauth) => {
            let api = match &shared.runtime.oauth {
                Some(app) => app.api_url.clone(),
                None => parse_url(&shared.config.oauth.api_url)?,
            };
            SiteConfig::cloud_oauth(
                base,
                api,
                row.cloud_id.clone().unwrap_or_default(),
                tokens::source(shared.clone(), row.id.clone()),
            )
        }
        None => {
            return Err(internal(std::io::Error::other(format!(
                "unknown connection kind {:?}",
                row.kind
            ))))
        }
    };
    let options = client_options();
    let transport = shared
        .runtime
        .transport(&options, &shared.config)
        .map_err(|e| internal(std::io::Error::other(e.to_string())))?;
    jira_client(site, &shared.config)
        .transport(transport)
        .build()
        .map_err(|e| internal(std::io::Error::other(e.to_string())))
}

/// A usable connection and its Jira client.
#[derive(Clone)]
pub struct Connected {
    /// The connection row (secret sealed).
    pub connection: Connection,
    /// Client for the connection's site (shares the site's pacer).
    pub jira: JiraClient,
    shared: Shared,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl Connected {
    /// Pass a Jira result through: on a 401 or a revoked grant the connection is
    /// marked `expired` (and `connection.expired` emitted once); errors are mapped to
    /// problems.
    pub async fn observe<T>(&self, result: jira_client::Result<T>) -> Result<T, ConnectionError> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                report_jira_error(&self.shared, &self.connection, &e).await;
                Err(errors::from_jira(&e))
            }
        }
    }
}

/// Whether `e` is a 401 that a later attempt gets past: on an OAuth connection a
/// dead grant shows as a refused refresh, so a 401 to an access token (after the
/// client's own second chances) means the token was rotated or expired again while
/// the request was on its way, as happens when several replicas rotate one grant.
/// A 401 naming a missing scope is a refusal, not a race.
pub fn unauthorized_is_token_race(connection: &Connection, e: &jira_client::Error) -> bool {
    unauthorized_is_token_race_for(&connection.kind, e)
}

/// [`unauthorized_is_token_race`] for a connection of this kind.
pub fn unauthorized_is_token_race_for(kind: &str, e: &jira_client::Error) -> bool {
    match e {
        jira_client::Error::Unauthorized { messages, .. } => {
            kind == "cloud_oauth"
                && !messages
                    .iter()
                    .any(|m| m.to_ascii_lowercase().contains("scope"))
        }
        _ => false,
    }
}

/// Mark the connection after a failed Jira call, if the failure says its credentials
/// are gone (401, or a revoked OAuth grant). Other modules that hold a
/// [`Connected`] use [`Connected::observe`] instead.
pub async fn report_unauthorized(
    state: &AppState,
    connection: &Connection,
    error: &jira_client::Error,
) {
    report_jira_error(&Shared::from(state), connection, error).await
}

async fn report_jira_error(shared: &Shared, row: &Connection, e: &jira_client::Error) {
    let reason = match e {
        // An OAuth grant is dead only when Atlassian refuses its refresh token (the
        // token source marks it then). A 401 to a fresh access token is a race with
        // a rotation elsewhere or a missing permission: the grant still works.
        jira_client::Error::Unauthorized { .. } if row.kind == "cloud_oauth" => {
            tracing::warn!(connection = %row.id, "Jira answered 401 to a fresh OAuth access token; the connection stays usable");
            return;
        }
        jira_client::Error::Unauthorized { .. } => {
            "Jira answered 401 Unauthorized: the credentials are no longer accepted".to_owned()
        }
        jira_client::Error::Token {
            source: jira_client::TokenError::Revoked(m),
            ..
        } => m.clone(),
        _ => return,
    };
    mark_expired(shared, row, &reason, "operation").await;
}

/// Set `expired` (once across replicas), audit it and emit `connection.expired` in
/// the same transaction as the status change.
pub(crate) async fn mark_expired(shared: &Shared, row: &Connection, reason: &str, during: &str) {
    let result = async {
        let mut tx = shared.store.begin().await?;
        let Some(updated) = tx
            .transition_connection_status(&row.id, "expired", Some(reason))
            .await?
        else {
            return Ok::<_, jira_bridge_store::StoreError>(None);
        };
        tx.append_event(event_of(
            &updated,
            "connection.expired",
            serde_json::json!({"reason": reason}),
        ))
        .await?;
        tx.commit().await?;
        Ok(Some(updated))
    }
    .await;
    match result {
        Ok(Some(_)) => {
            tracing::warn!(connection = %row.id, during, "connection expired");
            audit::record(
                &shared.store,
                audit::Event::new(&Actor::System, "connection.expire", Outcome::Failure)
                    .tenant(&row.tenant_id)
                    .target("connection", row.id.as_str())
                    .detail(serde_json::json!({"reason": reason, "during": during})),
            )
            .await;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(connection = %row.id, error = ?e, "could not mark the connection expired")
        }
    }
}

fn event_of(row: &Connection, event_type: &str, extra: serde_json::Value) -> NewEvent {
    let mut data = serde_json::json!({
        "connection_id": row.id,
        "kind": row.kind,
        "owner": row.owner,
        "name": row.name,
        "verification_status": row.verification_status,
    });
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    NewEvent {
        tenant_id: row.tenant_id.clone(),
        event_type: event_type.to_owned(),
        subject: Some(row.id.to_string()),
        data,
    }
}

/// Append a domain event about a connection.
async fn emit(shared: &Shared, row: &Connection, event_type: &str, extra: serde_json::Value) {
    if let Err(e) = shared
        .store
        .append_event(event_of(row, event_type, extra))
        .await
    {
        tracing::error!(connection = %row.id, event = event_type, error = ?e, "could not append the event");
    }
}

/// The client factory: a tenant's usable connection and its Jira client.
pub async fn connect(
    state: &AppState,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<Connected, ConnectionError> {
    let shared = Shared::from(state);
    let row = get_row(&shared.store, tenant, id).await?;
    if !row.enabled {
        return Err(ConnectionError::Disabled(
            "this connection is disabled; enable it with PATCH {\"enabled\": true}".into(),
        ));
    }
    match row.verification_status.as_str() {
        "expired" => {
            return Err(ConnectionError::Expired(format!(
                "this connection needs to be connected again ({})",
                row.last_error.as_deref().unwrap_or("its credentials expired")
            )))
        }
        "invalid" => {
            return Err(ConnectionError::Invalid(
                "Jira rejected this connection's credentials; replace the token (PATCH) or verify again".into(),
            ))
        }
        _ => {}
    }
    let jira = build_client(&shared, &row)?;
    Ok(Connected {
        connection: row,
        jira,
        shared,
    })
}

async fn get_row(
    store: &Store,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<Connection, ConnectionError> {
    store
        .get_connection(tenant, id)
        .await?
        .ok_or_else(|| ConnectionError::Api(ApiError::NotFound("no such connection".into())))
}

/// Credentials for a token connection.
#[derive(Clone)]
pub struct TokenCredentials {
    /// `cloud_token` or `dc_pat`.
    pub kind: Kind,
    /// Base URL as given.
    pub base_url: String,
    /// Account email (Cloud).
    pub email: Option<String>,
    /// API token or PAT.
    pub token: SecretString,
}

/// Check credentials without storing them.
pub async fn verify_credentials(
    state: &AppState,
    tenant: &TenantId,
    actor: &Actor,
    creds: &TokenCredentials,
    request_id: Option<String>,
) -> Result<Probe, ConnectionError> {
    let result = probe::probe(&state.config, creds).await;
    audit::record(
        &state.store,
        audit::Event::new(
            actor,
            "connection.verify",
            if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        )
        .tenant(tenant)
        .detail(serde_json::json!({
            "kind": creds.kind.as_str(),
            "base_url": creds.base_url.trim(),
            "stored": false,
            "problem": result.as_ref().err().map(|e| e.slug()),
        }))
        .request_id(request_id),
    )
    .await;
    result
}

fn check_name(field: &str, name: &str) -> Result<String, ConnectionError> {
    let t = name.trim();
    if t.is_empty() || t.len() > 200 || t.chars().any(char::is_control) {
        return Err(ConnectionError::Api(ApiError::invalid_field(
            field,
            "must be 1 to 200 characters without control characters",
        )));
    }
    Ok(t.to_owned())
}

fn check_owner(owner: Option<&str>) -> Result<Option<String>, ConnectionError> {
    match owner.map(str::trim) {
        None | Some("") => Ok(None),
        Some(o) => check_name("owner", o).map(Some),
    }
}

fn verification_of(p: &Probe) -> VerificationRecord {
    VerificationRecord {
        status: "valid".into(),
        account_id: p.account_id.clone(),
        account_name: p.display_name.clone(),
        deployment: Some(p.deployment.clone()),
        server_version: p.version.clone(),
        last_error: None,
    }
}

/// Verify and store a token connection.
pub async fn create_token_connection(
    state: &AppState,
    tenant: &TenantId,
    actor: &Actor,
    name: &str,
    owner: Option<&str>,
    creds: &TokenCredentials,
    request_id: Option<String>,
) -> Result<Connection, ConnectionError> {
    let name = check_name("name", name)?;
    let owner = check_owner(owner)?;
    let probe = match probe::probe(&state.config, creds).await {
        Ok(p) => p,
        Err(e) => {
            audit::record(
                &state.store,
                audit::Event::new(actor, "connection.connect", Outcome::Failure)
                    .tenant(tenant)
                    .detail(serde_json::json!({
                        "kind": creds.kind.as_str(),
                        "base_url": creds.base_url.trim(),
                        "problem": e.slug(),
                    }))
                    .request_id(request_id),
            )
            .await;
            return Err(e);
        }
    };
    let id = ConnectionId::new();
    let sealed = state
        .keys
        .seal_str(&creds.token, seal_ctx(id.as_str()))
        .map_err(internal)?;
    let now = Timestamp::now();
    let row = state
        .store
        .insert_connection(NewConnection {
            id: id.clone(),
            tenant_id: tenant.clone(),
            kind: creds.kind.as_str().into(),
            owner,
            name,
            base_url: probe.base_url.clone(),
            cloud_id: None,
            site_name: probe.server_title.clone(),
            account_id: probe.account_id.clone(),
            secret: sealed.ciphertext,
            secret_key_id: sealed.key_id,
            scopes: vec![],
            token_expires_at: None,
            verification_status: "valid".into(),
            last_verified_at: Some(now),
            email: probe.email_for_auth.clone(),
            account_name: probe.display_name.clone(),
            deployment: Some(probe.deployment.clone()),
            server_version: probe.version.clone(),
        })
        .await?;
    audit::record(
        &state.store,
        audit::Event::new(actor, "connection.connect", Outcome::Success)
            .tenant(tenant)
            .target("connection", row.id.as_str())
            .detail(serde_json::json!({"kind": row.kind, "base_url": row.base_url, "account_id": row.account_id}))
            .request_id(request_id),
    )
    .await;
    emit(
        &Shared::from(state),
        &row,
        "connection.verified",
        serde_json::json!({"account_id": row.account_id}),
    )
    .await;
    Ok(row)
}

/// A tenant's connection.
pub async fn get(
    state: &AppState,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<Connection, ConnectionError> {
    get_row(&state.store, tenant, id).await
}

/// A tenant's connections.
pub async fn list(
    state: &AppState,
    tenant: &TenantId,
    owner: Option<&str>,
    page: &PageRequest,
) -> Result<Page<Connection>, ConnectionError> {
    Ok(state.store.list_connections(tenant, owner, page).await?)
}

/// Changes asked for with PATCH.
#[derive(Clone, Default)]
pub struct Patch {
    /// New name.
    pub name: Option<String>,
    /// New owner (`Some(None)` clears).
    pub owner: Option<Option<String>>,
    /// Enable / disable.
    pub enabled: Option<bool>,
    /// Replacement token (verified before it is stored).
    pub token: Option<SecretString>,
    /// Replacement email (Cloud API tokens).
    pub email: Option<String>,
}

/// Rename, re-own, enable/disable, or replace the token of a connection.
pub async fn update(
    state: &AppState,
    tenant: &TenantId,
    actor: &Actor,
    id: &ConnectionId,
    patch: Patch,
    request_id: Option<String>,
) -> Result<Connection, ConnectionError> {
    let row = get_row(&state.store, tenant, id).await?;
    let name = patch
        .name
        .as_deref()
        .map(|n| check_name("name", n))
        .transpose()?;
    let owner = match &patch.owner {
        Some(o) => Some(check_owner(o.as_deref())?),
        None => None,
    };
    if patch.token.is_some() || patch.email.is_some() {
        let kind = Kind::parse(&row.kind).unwrap_or(Kind::CloudToken);
        if kind == Kind::CloudOauth {
            return Err(ConnectionError::Api(ApiError::invalid_field(
                "token",
                "an OAuth connection's tokens are replaced by connecting again (POST /v1/oauth/start)",
            )));
        }
        let token = match &patch.token {
            Some(t) => t.clone(),
            None => open_token(&state.keys, &row)?,
        };
        let creds = TokenCredentials {
            kind,
            base_url: row.base_url.clone(),
            email: patch.email.clone().or_else(|| row.email.clone()),
            token,
        };
        let probe = match probe::probe(&state.config, &creds).await {
            Ok(p) => p,
            Err(e) => {
                audit::record(
                    &state.store,
                    audit::Event::new(actor, "connection.update", Outcome::Failure)
                        .tenant(tenant)
                        .target("connection", id.as_str())
                        .detail(serde_json::json!({"replaced": "token", "problem": e.slug()}))
                        .request_id(request_id.clone()),
                )
                .await;
                return Err(e);
            }
        };
        let sealed = state
            .keys
            .seal_str(&creds.token, seal_ctx(id.as_str()))
            .map_err(internal)?;
        let replaced = state
            .store
            .replace_connection_credentials(
                tenant,
                id,
                row.token_version,
                &sealed.ciphertext,
                &sealed.key_id,
                probe.email_for_auth.as_deref(),
                &verification_of(&probe),
                Timestamp::now(),
            )
            .await?;
        if replaced.is_none() {
            return Err(ConnectionError::Api(ApiError::Conflict(
                "the connection changed meanwhile; try again".into(),
            )));
        }
        state.store.clear_connection_metadata(tenant, id).await?;
    }
    let updated = state
        .store
        .update_connection(
            tenant,
            id,
            &ConnectionUpdate {
                name,
                owner,
                enabled: patch.enabled,
            },
        )
        .await?;
    audit::record(
        &state.store,
        audit::Event::new(actor, "connection.update", Outcome::Success)
            .tenant(tenant)
            .target("connection", id.as_str())
            .detail(serde_json::json!({
                "name": patch.name.is_some(),
                "owner": patch.owner.is_some(),
                "enabled": patch.enabled,
                "token_replaced": patch.token.is_some(),
            }))
            .request_id(request_id),
    )
    .await;
    Ok(updated)
}

/// Delete a connection.
pub async fn delete(
    state: &AppState,
    tenant: &TenantId,
    actor: &Actor,
    id: &ConnectionId,
    request_id: Option<String>,
) -> Result<(), ConnectionError> {
    if !state.store.delete_connection(tenant, id).await? {
        return Err(ConnectionError::Api(ApiError::NotFound(
            "no such connection".into(),
        )));
    }
    audit::record(
        &state.store,
        audit::Event::new(actor, "connection.delete", Outcome::Success)
            .tenant(tenant)
            .target("connection", id.as_str())
            .request_id(request_id),
    )
    .await;
    Ok(())
}

/// Verify a stored connection now and record the outcome (`valid`, `invalid`,
/// `expired`). Jira's refusal is the outcome, not an error; an unreachable Jira is
/// an error and leaves the status alone.
pub async fn reverify(
    state: &AppState,
    tenant: &TenantId,
    actor: &Actor,
    id: &ConnectionId,
    request_id: Option<String>,
) -> Result<Connection, ConnectionError> {
    let row = get_row(&state.store, tenant, id).await?;
    reverify_row(&Shared::from(state), row, actor, request_id).await
}

pub(crate) async fn reverify_row(
    shared: &Shared,
    row: Connection,
    actor: &Actor,
    request_id: Option<String>,
) -> Result<Connection, ConnectionError> {
    let tenant = row.tenant_id.clone();
    let id = row.id.clone();
    let was = row.verification_status.clone();
    let client = build_client(shared, &row)?;
    let outcome = client.myself().await;
    let record = match &outcome {
        Ok(me) => VerificationRecord {
            status: "valid".into(),
            account_id: me.account_id.clone().or_else(|| me.name.clone()),
            account_name: me.display_name.clone(),
            deployment: None,
            server_version: None,
            last_error: None,
        },
        Err(jira_client::Error::Unauthorized { .. }) => VerificationRecord {
            status: if row.kind == "cloud_oauth" || was == "valid" {
                "expired".into()
            } else {
                "invalid".into()
            },
            last_error: Some("Jira answered 401 Unauthorized to the stored credentials".into()),
            ..VerificationRecord::default()
        },
        Err(jira_client::Error::Token {
            source: jira_client::TokenError::Revoked(m),
            ..
        }) => VerificationRecord {
            status: "expired".into(),
            last_error: Some(m.clone()),
            ..VerificationRecord::default()
        },
        Err(e) => {
            audit::record(
                &shared.store,
                audit::Event::new(actor, "connection.verify", Outcome::Failure)
                    .tenant(&tenant)
                    .target("connection", id.as_str())
                    .detail(serde_json::json!({"error": e.to_string()}))
                    .request_id(request_id),
            )
            .await;
            return Err(errors::from_jira(e));
        }
    };
    let updated = shared
        .store
        .record_connection_verification(&tenant, &id, &record, Timestamp::now())
        .await?;
    audit::record(
        &shared.store,
        audit::Event::new(
            actor,
            "connection.verify",
            if record.status == "valid" {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        )
        .tenant(&tenant)
        .target("connection", id.as_str())
        .detail(serde_json::json!({"verification_status": record.status, "was": was}))
        .request_id(request_id),
    )
    .await;
    if was != updated.verification_status {
        match updated.verification_status.as_str() {
            "valid" => {
                emit(
                    shared,
                    &updated,
                    "connection.verified",
                    serde_json::json!({}),
                )
                .await
            }
            "expired" | "invalid" => {
                emit(
                    shared,
                    &updated,
                    "connection.expired",
                    serde_json::json!({"reason": record.last_error}),
                )
                .await
            }
            _ => {}
        }
    }
    Ok(updated)
}

// ---- OAuth ----

/// Answer of `POST /v1/oauth/start`.
#[derive(Debug, Clone)]
pub struct Started {
    /// Where to send the user.
    pub authorization_url: String,
    /// When the state stops working.
    pub expires_at: DateTime<Utc>,
}

/// Start an OAuth authorization for a tenant (and owner).
pub async fn oauth_start(
    state: &AppState,
    tenant: &TenantId,
    owner: Option<&str>,
    name: Option<&str>,
    return_to: Option<&str>,
) -> Result<Started, ConnectionError> {
    let app = state.connections.oauth()?;
    let owner = check_owner(owner)?;
    let name = name.map(|n| check_name("name", n)).transpose()?;
    let return_to = match return_to.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) if app.return_to_allowed(r) => Some(r.to_owned()),
        Some(_) => {
            return Err(ConnectionError::Api(ApiError::invalid_field(
                "return_to",
                "its origin is not allowed on this server (oauth.return_to_origins / JIRA_BRIDGE_OAUTH_RETURN_TO_ORIGINS); leave it out to get JSON from the callback",
            )))
        }
        None => None,
    };
    let now = Utc::now();
    let ttl = i64::try_from(state.config.oauth.state_ttl_seconds).unwrap_or(600);
    let expires_at = now + chrono::Duration::seconds(ttl);
    let (state_value, id) =
        app.new_state(tenant.as_str(), owner.as_deref(), expires_at.timestamp());
    state
        .store
        .insert_oauth_state(&OAuthState {
            id,
            tenant_id: tenant.clone(),
            owner,
            name,
            return_to,
            created_at: now,
            expires_at,
            used_at: None,
        })
        .await?;
    Ok(Started {
        authorization_url: app.authorization_url(&state_value).to_string(),
        expires_at,
    })
}

/// What the callback produced.
#[derive(Debug, Clone)]
pub enum CallbackOutcome {
    /// One site: connected.
    Connected(Box<Connection>),
    /// Several sites: the user picks one.
    Selection(Box<OAuthSelection>),
}

/// Outcome of a callback, with where to send the browser.
#[derive(Debug)]
pub struct Callback {
    /// `return_to` of the start call, if any.
    pub return_to: Option<String>,
    /// The result.
    pub result: Result<CallbackOutcome, ConnectionError>,
}

/// Handle `GET /v1/oauth/callback`.
pub async fn oauth_callback(
    state: &AppState,
    code: Option<&str>,
    state_param: Option<&str>,
    error: Option<&str>,
    error_description: Option<&str>,
) -> Result<Callback, ConnectionError> {
    let app = state.connections.oauth()?;
    let invalid = || {
        ConnectionError::StateInvalid(
            "the state parameter is missing, malformed or not from this server; start again with POST /v1/oauth/start".into(),
        )
    };
    let parsed = oauth::parse_state(state_param.unwrap_or_default()).ok_or_else(invalid)?;
    let stored = state
        .store
        .get_oauth_state(&parsed.id)
        .await?
        .ok_or_else(invalid)?;
    if !app.state_signature_ok(&parsed, stored.tenant_id.as_str(), stored.owner.as_deref())
        || parsed.expires != stored.expires_at.timestamp()
    {
        return Err(invalid());
    }
    let return_to = stored.return_to.clone();
    let fail = |e: ConnectionError| Callback {
        return_to: return_to.clone(),
        result: Err(e),
    };
    if stored.used_at.is_some() {
        return Ok(fail(ConnectionError::StateReplayed(
            "this authorization was already completed (each state works once); start again with POST /v1/oauth/start".into(),
        )));
    }
    if Utc::now() >= stored.expires_at {
        return Ok(fail(ConnectionError::StateExpired(
            "this authorization took too long and expired; start again with POST /v1/oauth/start"
                .into(),
        )));
    }
    if !state.store.consume_oauth_state(&stored.id).await? {
        return Ok(fail(ConnectionError::StateReplayed(
            "this authorization was already completed (each state works once); start again with POST /v1/oauth/start".into(),
        )));
    }
    let tenant = stored.tenant_id.clone();
    let actor = Actor::System;
    let audit_failure = |slug: &str, detail: serde_json::Value| {
        audit::Event::new(&actor, "connection.connect", Outcome::Failure)
            .tenant(&tenant)
            .detail(serde_json::json!({"kind": "cloud_oauth", "problem": slug, "detail": detail}))
    };
    if let Some(err) = error {
        let e = if err == "access_denied" {
            ConnectionError::AccessDenied(
                "the Jira user declined access on Atlassian's consent screen; nothing was connected".into(),
            )
        } else {
            ConnectionError::OAuthExchange(format!(
                "Atlassian answered {err}: {}",
                error_description.unwrap_or("no description")
            ))
        };
        audit::record(
            &state.store,
            audit_failure(e.slug(), serde_json::json!(err)),
        )
        .await;
        return Ok(fail(e));
    }
    let Some(code) = code.filter(|c| !c.is_empty()) else {
        return Ok(fail(ConnectionError::Api(ApiError::bad_field(
            "code",
            "missing authorization code",
        ))));
    };
    let granted = match app.exchange_code(code).await {
        Ok(g) => g,
        Err(e) => {
            let err = ConnectionError::OAuthExchange(format!(
                "exchanging the authorization code failed: {e}"
            ));
            audit::record(
                &state.store,
                audit_failure(err.slug(), serde_json::json!(e.to_string())),
            )
            .await;
            return Ok(fail(err));
        }
    };
    let Some(refresh) = granted.refresh_token.clone() else {
        let err = ConnectionError::OAuthExchange(
            "Atlassian issued no refresh token: the app must ask for the offline_access scope"
                .into(),
        );
        audit::record(
            &state.store,
            audit_failure(err.slug(), serde_json::Value::Null),
        )
        .await;
        return Ok(fail(err));
    };
    let sites = match app.accessible_resources(&granted.access_token).await {
        Ok(s) => s,
        Err(e) => {
            let err = ConnectionError::OAuthExchange(format!(
                "listing the sites of the grant failed: {e}"
            ));
            audit::record(
                &state.store,
                audit_failure(err.slug(), serde_json::Value::Null),
            )
            .await;
            return Ok(fail(err));
        }
    };
    let now = Utc::now();
    let lifetime = granted.expires_in.map(|d| d.as_secs() as i64);
    let pair = TokenPair {
        access_token: granted.access_token.expose_secret().to_owned(),
        refresh_token: refresh.expose_secret().to_owned(),
        refresh_after: lifetime
            .map(|l| now.timestamp() + tokens::refresh_delay(l, state.connections.refresh_margin)),
    };
    let expires_at = lifetime.map(|l| now + chrono::Duration::seconds(l));
    let scopes = granted.scopes.clone().unwrap_or_default();
    let pending = PendingGrant {
        tenant: tenant.clone(),
        owner: stored.owner.clone(),
        name: stored.name.clone(),
        pair,
        expires_at,
        scopes,
    };
    let result = match sites.len() {
        0 => Err(ConnectionError::OAuthExchange(
            "the grant reaches no Jira site: the user must pick a site on the consent screen"
                .into(),
        )),
        1 => create_oauth_connection(state, &pending, &sites[0], None)
            .await
            .map(|c| CallbackOutcome::Connected(Box::new(c))),
        _ => create_selection(state, &pending, &sites, stored.return_to.clone())
            .await
            .map(|s| CallbackOutcome::Selection(Box::new(s))),
    };
    if let Err(e) = &result {
        audit::record(
            &state.store,
            audit_failure(e.slug(), serde_json::Value::Null),
        )
        .await;
    }
    Ok(Callback { return_to, result })
}

struct PendingGrant {
    tenant: TenantId,
    owner: Option<String>,
    name: Option<String>,
    pair: TokenPair,
    expires_at: Option<DateTime<Utc>>,
    scopes: Vec<String>,
}

async fn create_oauth_connection(
    state: &AppState,
    g: &PendingGrant,
    site: &Site,
    request_id: Option<String>,
) -> Result<Connection, ConnectionError> {
    let id = ConnectionId::new();
    let sealed = seal_pair(&state.keys, &id, &g.pair)?;
    let base_url = probe::normalise_site_url(&site.url);
    let scopes = if site.scopes.is_empty() {
        g.scopes.clone()
    } else {
        site.scopes.clone()
    };
    let row = state
        .store
        .insert_connection(NewConnection {
            id: id.clone(),
            tenant_id: g.tenant.clone(),
            kind: Kind::CloudOauth.as_str().into(),
            owner: g.owner.clone(),
            name: g.name.clone().unwrap_or_else(|| {
                if site.name.is_empty() {
                    base_url.clone()
                } else {
                    site.name.clone()
                }
            }),
            base_url,
            cloud_id: Some(site.cloud_id.clone()),
            site_name: Some(site.name.clone()),
            account_id: None,
            secret: sealed.ciphertext,
            secret_key_id: sealed.key_id,
            scopes,
            token_expires_at: g.expires_at.map(Timestamp::from),
            verification_status: "not_verified".into(),
            last_verified_at: None,
            email: None,
            account_name: None,
            deployment: Some("Cloud".into()),
            server_version: None,
        })
        .await?;
    audit::record(
        &state.store,
        audit::Event::new(&Actor::System, "connection.connect", Outcome::Success)
            .tenant(&g.tenant)
            .target("connection", row.id.as_str())
            .detail(serde_json::json!({"kind": "cloud_oauth", "cloud_id": site.cloud_id, "site": site.url}))
            .request_id(request_id.clone()),
    )
    .await;
    // Who is connected, and does the token work on the site?
    match reverify_row(
        &Shared::from(state),
        row.clone(),
        &Actor::System,
        request_id,
    )
    .await
    {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::warn!(connection = %row.id, problem = e.slug(), "first verification of a new OAuth connection failed");
            Ok(row)
        }
    }
}

async fn create_selection(
    state: &AppState,
    g: &PendingGrant,
    sites: &[Site],
    return_to: Option<String>,
) -> Result<OAuthSelection, ConnectionError> {
    let id = jira_bridge_store::ids::new_prefixed("sel");
    let json = Zeroizing::new(serde_json::to_vec(&g.pair).map_err(internal)?);
    let sealed = state
        .keys
        .seal(
            &json,
            SealContext {
                table: "oauth_selections",
                row_id: &id,
                column: "secret",
            },
        )
        .map_err(internal)?;
    let now = Utc::now();
    let ttl = i64::try_from(state.config.oauth.state_ttl_seconds).unwrap_or(600);
    let sel = OAuthSelection {
        id,
        tenant_id: g.tenant.clone(),
        owner: g.owner.clone(),
        name: g.name.clone(),
        return_to,
        sites: serde_json::to_value(sites).map_err(internal)?,
        scopes: g.scopes.clone(),
        secret: sealed.ciphertext,
        secret_key_id: sealed.key_id,
        token_expires_at: g.expires_at,
        created_at: now,
        expires_at: now + chrono::Duration::seconds(ttl.max(600)),
        used_at: None,
        connection_id: None,
    };
    state.store.insert_oauth_selection(&sel).await?;
    Ok(sel)
}

fn selection_gone() -> ConnectionError {
    ConnectionError::SelectionGone(
        "no such site selection: it was completed, expired, or belongs to another tenant".into(),
    )
}

/// A tenant's pending selection.
pub async fn get_selection(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
) -> Result<OAuthSelection, ConnectionError> {
    let sel = state
        .store
        .get_oauth_selection(tenant, id)
        .await?
        .ok_or_else(selection_gone)?;
    if Utc::now() >= sel.expires_at {
        return Err(selection_gone());
    }
    Ok(sel)
}

/// Complete a selection with the site the user picked.
pub async fn complete_selection(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
    cloud_id: &str,
    request_id: Option<String>,
) -> Result<Connection, ConnectionError> {
    let sel = get_selection(state, tenant, id).await?;
    let sites: Vec<Site> = serde_json::from_value(sel.sites.clone()).map_err(internal)?;
    let Some(site) = sites.iter().find(|s| s.cloud_id == cloud_id) else {
        return Err(ConnectionError::Api(ApiError::invalid_field(
            "cloud_id",
            "not one of the sites of this selection",
        )));
    };
    let bytes = state
        .keys
        .open(
            &sel.secret,
            SealContext {
                table: "oauth_selections",
                row_id: &sel.id,
                column: "secret",
            },
        )
        .map_err(internal)?;
    let pair: TokenPair = serde_json::from_slice(&bytes).map_err(internal)?;
    if !state.store.complete_oauth_selection(tenant, id).await? {
        return Err(selection_gone());
    }
    let g = PendingGrant {
        tenant: tenant.clone(),
        owner: sel.owner.clone(),
        name: sel.name.clone(),
        pair,
        expires_at: sel.token_expires_at,
        scopes: sel.scopes.clone(),
    };
    create_oauth_connection(state, &g, site, request_id).await
}

/// How long to wait between polls of something in the background.
pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n.max(1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;

    fn config(allow_private: bool) -> Config {
        let env = BTreeMap::from([(
            "JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS".to_owned(),
            allow_private.to_string(),
        )]);
        Config::load_with_env(None, &env).unwrap().config
    }

    /// The Jira client resolves through the SSRF guard: a name that resolves to
    /// loopback is refused at connection time, not only when the URL was checked.
    #[tokio::test]
    async fn jira_clients_resolve_through_the_guard() {
        let sim = jira_sim::spawn(jira_sim::SimConfig::data_center())
            .await
            .unwrap();
        let pat = sim.scenario()["users"][0]["pat"]
            .as_str()
            .unwrap()
            .to_owned();
        let port = url::Url::parse(sim.base_url()).unwrap().port().unwrap();
        let url = url::Url::parse(&format!("http://localhost:{port}/")).unwrap();
        let site = || SiteConfig::data_center_pat(url.clone(), SecretString::from(pat.clone()));

        let allowed = jira_client(site(), &config(true)).build().unwrap();
        allowed.myself().await.unwrap();

        let guarded = jira_client(site(), &config(false)).build().unwrap();
        let err = guarded.myself().await.unwrap_err().to_string();
        assert!(err.contains("localhost"), "{err}");
    }
}
