//! The console's pages: each reads through the same domain functions and store
//! queries as the matching `/v1` handler, scoped to the session's tenant, and shows
//! the API's response types.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use jira_bridge_store::configs::ConfigId;
use jira_bridge_store::events::SubscriptionId;
use jira_bridge_store::links::LinkFilter;
use jira_bridge_store::sync_history::SyncHistoryFilter;
use jira_bridge_store::time_entries::TimeEntryFilter;
use jira_bridge_store::{ConnectionId, PageRequest, Timestamp};
use serde::Deserialize;

use super::{html, Ctx, PageError, Session};
use crate::configs::api::ConfigResponse;
use crate::connections::api::ConnectionResponse;
use crate::connections::oauth::Site;
use crate::events::api::{DeliveryResponse, SubscriptionResponse};
use crate::exports::{ExportNode, ExportView};
use crate::http::{ApiError, AppState};
use crate::jobs::api::{JobItemResponse, JobResponse};
use crate::jobs::JobId;
use crate::releases::ReleaseView;
use crate::tickets::api::TicketResponse;
use crate::webhooks_in::api::WebhookHealth;
use crate::worklogs::api::{SyncAttemptResponse, TimeEntryResponse};
use jira_bridge_store::exports::ExportId;

/// Rows shown on one page of a list.
const PAGE: u32 = 50;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/connections", get(connections))
        .route("/console/connections/oauth", get(oauth_return))
        .route("/console/configs", get(configs))
        .route("/console/configs/new", get(config_new))
        .route("/console/configs/{id}", get(config_edit))
        .route("/console/tickets", get(tickets))
        .route("/console/jobs", get(jobs))
        .route("/console/jobs/{id}", get(job))
        .route("/console/time-entries", get(time_entries))
        .route("/console/sync-history", get(sync_history))
        .route("/console/events", get(events))
        .route("/console/events/{id}", get(subscription))
        .route("/console/search", get(search))
        .route("/console/exports", get(exports))
        .route("/console/exports/parse", axum::routing::post(parse_tree))
        .route("/console/exports/{id}", get(export))
        .route("/console/releases", get(releases))
}

type PageResult = Result<Response, PageError>;

fn not_found(what: &str) -> PageError {
    ApiError::NotFound(format!("no such {what}")).into()
}

/// Empty query values count as absent.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

async fn connection_list(
    state: &AppState,
    session: &Session,
) -> Result<Vec<ConnectionResponse>, PageError> {
    let page =
        crate::connections::list(state, &session.tenant.id, None, &PageRequest::first(500)).await?;
    Ok(page.items.into_iter().map(Into::into).collect())
}

// --- Connections -------------------------------------------------------------

struct ConnectionRow {
    c: ConnectionResponse,
    health: WebhookHealth,
}

#[derive(Template)]
#[template(path = "console/connections.html")]
struct ConnectionsPage {
    ctx: Ctx,
    rows: Vec<ConnectionRow>,
    oauth: bool,
}

async fn connections(State(state): State<AppState>, session: Session) -> PageResult {
    let mut rows = Vec::new();
    for c in connection_list(&state, &session).await? {
        let id: ConnectionId = c.id.parse().map_err(|_| not_found("connection"))?;
        let setup = state
            .store
            .get_webhook_setup(&session.tenant.id, &id)
            .await?;
        let counts = state.store.count_inbound(&id).await?;
        rows.push(ConnectionRow {
            health: crate::webhooks_in::api::health(setup.as_ref(), counts),
            c,
        });
    }
    Ok(html(&ConnectionsPage {
        ctx: Ctx::new(&session, "/console/connections"),
        rows,
        oauth: !state.config.oauth.client_id.trim().is_empty(),
    }))
}

#[derive(Deserialize)]
struct OAuthReturn {
    status: Option<String>,
    selection_id: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/oauth.html")]
struct OAuthPage {
    ctx: Ctx,
    selection_id: String,
    sites: Vec<Site>,
    error: Option<String>,
}

async fn oauth_return(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<OAuthReturn>,
) -> PageResult {
    let ctx = Ctx::new(&session, "/console/connections");
    if q.status.as_deref() == Some("connected") {
        return Ok(Redirect::to("/console/connections").into_response());
    }
    if let Some(error) = given(&q.error) {
        let message = match error.as_str() {
            "access_denied" => "Access was not granted on the Atlassian consent page.".to_owned(),
            other => format!("The OAuth connection failed ({other})."),
        };
        return Ok(html(&OAuthPage {
            ctx,
            selection_id: String::new(),
            sites: Vec::new(),
            error: Some(message),
        }));
    }
    let Some(id) = given(&q.selection_id) else {
        return Ok(Redirect::to("/console/connections").into_response());
    };
    let sel = crate::connections::get_selection(&state, &session.tenant.id, &id).await?;
    Ok(html(&OAuthPage {
        ctx,
        selection_id: sel.id,
        sites: serde_json::from_value(sel.sites).unwrap_or_default(),
        error: None,
    }))
}

// --- Configs -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/configs.html")]
struct ConfigsPage {
    ctx: Ctx,
    configs: Vec<ConfigResponse>,
    connections: Vec<ConnectionResponse>,
}

async fn configs(State(state): State<AppState>, session: Session) -> PageResult {
    let rows = state
        .store
        .list_ticket_configs(&session.tenant.id, &PageRequest::first(500))
        .await?;
    let configs = rows
        .items
        .into_iter()
        .map(ConfigResponse::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(html(&ConfigsPage {
        ctx: Ctx::new(&session, "/console/configs"),
        configs,
        connections: connection_list(&state, &session).await?,
    }))
}

#[derive(Template)]
#[template(path = "console/config_form.html")]
struct ConfigFormPage {
    ctx: Ctx,
    /// `None` for a new config.
    id: Option<String>,
    /// The config as JSON, for the form's script.
    config_json: String,
    connections: Vec<ConnectionResponse>,
}

async fn config_new(State(state): State<AppState>, session: Session) -> PageResult {
    Ok(html(&ConfigFormPage {
        ctx: Ctx::new(&session, "/console/configs"),
        id: None,
        config_json: "null".into(),
        connections: connection_list(&state, &session).await?,
    }))
}

async fn config_edit(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id: ConfigId = id.parse().map_err(|_| not_found("config"))?;
    let row = state
        .store
        .get_ticket_config(&session.tenant.id, &id)
        .await?
        .ok_or_else(|| not_found("config"))?;
    let config = ConfigResponse::from_row(row)?;
    Ok(html(&ConfigFormPage {
        ctx: Ctx::new(&session, "/console/configs"),
        id: Some(config.id.clone()),
        config_json: serde_json::to_string(&config).map_err(ApiError::internal)?,
        connections: connection_list(&state, &session).await?,
    }))
}

// --- Tickets -----------------------------------------------------------------

#[derive(Deserialize, Default)]
struct TicketFilters {
    source_kind: Option<String>,
    status_category: Option<String>,
    project: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "console/tickets.html")]
struct TicketsPage {
    ctx: Ctx,
    tickets: Vec<TicketResponse>,
    source_kind: String,
    status_category: String,
    project: String,
    next: Option<String>,
}

async fn tickets(
    State(state): State<AppState>,
    session: Session,
    Query(f): Query<TicketFilters>,
) -> PageResult {
    let filter = LinkFilter {
        source_kind: given(&f.source_kind),
        source_id: None,
        status_category: given(&f.status_category),
        project_key: given(&f.project).map(|p| p.to_uppercase()),
        connection_id: None,
    };
    let page = PageRequest::new(Some(PAGE), given(&f.cursor).as_deref())?;
    let rows = state
        .store
        .list_links(&session.tenant.id, &filter, &page)
        .await?;
    let next = rows.next_cursor.map(|c| {
        query_string(&[
            ("source_kind", filter.source_kind.as_deref()),
            ("status_category", filter.status_category.as_deref()),
            ("project", filter.project_key.as_deref()),
            ("cursor", Some(&c)),
        ])
    });
    Ok(html(&TicketsPage {
        ctx: Ctx::new(&session, "/console/tickets"),
        tickets: rows.items.into_iter().map(Into::into).collect(),
        source_kind: filter.source_kind.unwrap_or_default(),
        status_category: filter.status_category.unwrap_or_default(),
        project: filter.project_key.unwrap_or_default(),
        next,
    }))
}

/// `?a=1&b=2` of the present pairs.
fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            s.append_pair(k, v);
        }
    }
    format!("?{}", s.finish())
}

// --- Jobs --------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct Cursor {
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "console/jobs.html")]
struct JobsPage {
    ctx: Ctx,
    jobs: Vec<JobResponse>,
    next: Option<String>,
}

async fn jobs(
    State(state): State<AppState>,
    session: Session,
    Query(c): Query<Cursor>,
) -> PageResult {
    let page = PageRequest::new(Some(PAGE), given(&c.cursor).as_deref())?;
    let rows = state
        .store
        .list_jobs(&session.tenant.id, None, &page)
        .await?;
    Ok(html(&JobsPage {
        ctx: Ctx::new(&session, "/console/jobs"),
        jobs: rows.items.into_iter().map(Into::into).collect(),
        next: rows
            .next_cursor
            .map(|c| query_string(&[("cursor", Some(&c))])),
    }))
}

#[derive(Template)]
#[template(path = "console/job.html")]
struct JobPage {
    ctx: Ctx,
    job: JobResponse,
    percent: i64,
    items: Vec<JobItemResponse>,
    more_items: bool,
}

/// Share of a job's items that are settled (succeeded, failed or cancelled).
pub fn percent_done(j: &JobResponse) -> i64 {
    if j.total <= 0 {
        return 100;
    }
    (j.succeeded + j.failed + j.cancelled) * 100 / j.total
}

async fn job(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id: JobId = id.parse().map_err(|_| not_found("job"))?;
    let job: JobResponse = state
        .jobs
        .get(&session.tenant.id, &id)
        .await
        .map_err(ApiError::from)?
        .into();
    let items = state
        .store
        .list_job_items(&session.tenant.id, &id, None, &PageRequest::first(500))
        .await?;
    Ok(html(&JobPage {
        ctx: Ctx::new(&session, "/console/jobs"),
        percent: percent_done(&job),
        job,
        more_items: items.next_cursor.is_some(),
        items: items.items.into_iter().map(Into::into).collect(),
    }))
}

// --- Time entries ------------------------------------------------------------

#[derive(Deserialize, Default)]
struct EntryFilters {
    state: Option<String>,
    cursor: Option<String>,
}

struct EntryRow {
    e: TimeEntryResponse,
    /// The worklog's version in Jira, for a conflict: (started, seconds, comment).
    remote: Option<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "console/time_entries.html")]
struct EntriesPage {
    ctx: Ctx,
    rows: Vec<EntryRow>,
    state: String,
    next: Option<String>,
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn time_entries(
    State(state): State<AppState>,
    session: Session,
    Query(f): Query<EntryFilters>,
) -> PageResult {
    let filter = TimeEntryFilter {
        owner: None,
        state: given(&f.state),
        from: None,
        to: None,
    };
    let page = PageRequest::new(Some(PAGE), given(&f.cursor).as_deref())?;
    let rows = state
        .store
        .list_time_entries(&session.tenant.id, &filter, &page)
        .await?;
    let next = rows
        .next_cursor
        .map(|c| query_string(&[("state", filter.state.as_deref()), ("cursor", Some(&c))]));
    let rows = rows
        .items
        .into_iter()
        .map(|e| {
            let e = TimeEntryResponse::from(e);
            let remote = e
                .remote
                .as_ref()
                .filter(|_| e.state == "conflict")
                .map(|r| {
                    (
                        text_of(&r["started"]),
                        text_of(&r["time_spent_seconds"]),
                        text_of(&r["comment"]),
                    )
                });
            EntryRow { e, remote }
        })
        .collect();
    Ok(html(&EntriesPage {
        ctx: Ctx::new(&session, "/console/time-entries"),
        rows,
        state: filter.state.unwrap_or_default(),
        next,
    }))
}

// --- Sync history ------------------------------------------------------------

#[derive(Deserialize, Default)]
struct HistoryFilters {
    kind: Option<String>,
    state: Option<String>,
    /// `YYYY-MM-DD` (UTC), inclusive.
    from: Option<String>,
    /// `YYYY-MM-DD` (UTC), inclusive.
    to: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "console/sync_history.html")]
struct HistoryPage {
    ctx: Ctx,
    attempts: Vec<SyncAttemptResponse>,
    kind: String,
    state: String,
    from: String,
    to: String,
    next: Option<String>,
}

fn day(field: &str, v: &Option<String>, end: bool) -> Result<Option<Timestamp>, PageError> {
    let Some(v) = given(v) else {
        return Ok(None);
    };
    let d = NaiveDate::parse_from_str(&v, "%Y-%m-%d")
        .map_err(|_| ApiError::bad_field(field, "a date as YYYY-MM-DD"))?;
    let d = if end { d.succ_opt().unwrap_or(d) } else { d };
    let t: DateTime<Utc> = d.and_time(chrono::NaiveTime::MIN).and_utc();
    Ok(Some(Timestamp::from(t)))
}

async fn sync_history(
    State(state): State<AppState>,
    session: Session,
    Query(f): Query<HistoryFilters>,
) -> PageResult {
    let filter = SyncHistoryFilter {
        kind: given(&f.kind),
        state: given(&f.state),
        subject: None,
        from: day("from", &f.from, false)?,
        to: day("to", &f.to, true)?,
    };
    let page = PageRequest::new(Some(PAGE), given(&f.cursor).as_deref())?;
    let rows = state
        .store
        .list_sync_history(&session.tenant.id, &filter, &page)
        .await?;
    let (from, to) = (given(&f.from), given(&f.to));
    let next = rows.next_cursor.map(|c| {
        query_string(&[
            ("kind", filter.kind.as_deref()),
            ("state", filter.state.as_deref()),
            ("from", from.as_deref()),
            ("to", to.as_deref()),
            ("cursor", Some(&c)),
        ])
    });
    Ok(html(&HistoryPage {
        ctx: Ctx::new(&session, "/console/sync-history"),
        attempts: rows.items.into_iter().map(Into::into).collect(),
        kind: filter.kind.unwrap_or_default(),
        state: filter.state.unwrap_or_default(),
        from: from.unwrap_or_default(),
        to: to.unwrap_or_default(),
        next,
    }))
}

// --- Events & subscriptions --------------------------------------------------

#[derive(Template)]
#[template(path = "console/events.html")]
struct EventsPage {
    ctx: Ctx,
    subscriptions: Vec<SubscriptionResponse>,
    event_types: Vec<&'static str>,
}

async fn events(State(state): State<AppState>, session: Session) -> PageResult {
    let rows = state
        .store
        .list_subscriptions(&session.tenant.id, &PageRequest::first(500))
        .await?;
    Ok(html(&EventsPage {
        ctx: Ctx::new(&session, "/console/events"),
        subscriptions: rows
            .items
            .into_iter()
            .map(|s| SubscriptionResponse::new(s, None))
            .collect(),
        event_types: crate::events::EventType::ALL
            .iter()
            .map(|t| t.as_str())
            .collect(),
    }))
}

#[derive(Template)]
#[template(path = "console/subscription.html")]
struct SubscriptionPage {
    ctx: Ctx,
    sub: SubscriptionResponse,
    deliveries: Vec<DeliveryResponse>,
}

async fn subscription(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id: SubscriptionId = id.parse().map_err(|_| not_found("subscription"))?;
    let sub = crate::events::subscriptions::get(&state.store, &session.tenant.id, &id).await?;
    let page = crate::events::subscriptions::deliveries(
        &state.store,
        &session.tenant.id,
        &id,
        &PageRequest::first(100),
    )
    .await?;
    Ok(html(&SubscriptionPage {
        ctx: Ctx::new(&session, "/console/events"),
        sub: SubscriptionResponse::new(sub, None),
        deliveries: page
            .items
            .into_iter()
            .map(|(d, a)| DeliveryResponse::new(d, a))
            .collect(),
    }))
}

// --- Search ------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/search.html")]
struct SearchPage {
    ctx: Ctx,
    connections: Vec<ConnectionResponse>,
}

async fn search(State(state): State<AppState>, session: Session) -> PageResult {
    Ok(html(&SearchPage {
        ctx: Ctx::new(&session, "/console/search"),
        connections: connection_list(&state, &session).await?,
    }))
}

// --- Exports -------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/exports.html")]
struct ExportsPage {
    ctx: Ctx,
    exports: Vec<ExportView>,
    connections: Vec<ConnectionResponse>,
    next: Option<String>,
}

async fn exports(
    State(state): State<AppState>,
    session: Session,
    Query(c): Query<Cursor>,
) -> PageResult {
    let page = PageRequest::new(Some(PAGE), given(&c.cursor).as_deref())?;
    let rows = state.store.list_exports(&session.tenant.id, &page).await?;
    let mut exports = Vec::with_capacity(rows.items.len());
    for e in rows.items {
        exports.push(crate::exports::view(&state.store, e, false).await?);
    }
    Ok(html(&ExportsPage {
        ctx: Ctx::new(&session, "/console/exports"),
        exports,
        connections: connection_list(&state, &session).await?,
        next: rows
            .next_cursor
            .map(|c| query_string(&[("cursor", Some(&c))])),
    }))
}

#[derive(Template)]
#[template(path = "console/export.html")]
struct ExportPage {
    ctx: Ctx,
    export: ExportView,
    epics: Vec<ExportNode>,
}

async fn export(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id: ExportId = id.parse().map_err(|_| not_found("export"))?;
    let row = state
        .store
        .get_export(&session.tenant.id, &id)
        .await?
        .ok_or_else(|| not_found("export"))?;
    let mut export = crate::exports::view(&state.store, row, true).await?;
    let epics = export.epics.take().unwrap_or_default();
    Ok(html(&ExportPage {
        ctx: Ctx::new(&session, "/console/exports"),
        export,
        epics,
    }))
}

/// `POST /console/exports/parse`: a pasted or uploaded tree, JSON or YAML, as JSON
/// (for the preview, which the script then sends to `POST /v1/exports` as a dry run).
async fn parse_tree(
    session: Session,
    headers: axum::http::HeaderMap,
    body: String,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let token = headers
        .get(super::session::CSRF_HEADER)
        .and_then(|v| v.to_str().ok());
    session.check_csrf(token)?;
    let value: serde_json::Value = serde_yaml::from_str(&body)
        .map_err(|e| ApiError::invalid_field("tree", format!("neither JSON nor YAML: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid_field(
            "tree",
            "expected an object with `epics` (and optionally `project_key`)",
        ));
    }
    Ok(axum::Json(value))
}

// --- Releases ------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/releases.html")]
struct ReleasesPage {
    ctx: Ctx,
    releases: Vec<ReleaseView>,
    configs: Vec<ConfigResponse>,
    next: Option<String>,
}

async fn releases(
    State(state): State<AppState>,
    session: Session,
    Query(c): Query<Cursor>,
) -> PageResult {
    let page = PageRequest::new(Some(PAGE), given(&c.cursor).as_deref())?;
    let rows = state.store.list_releases(&session.tenant.id, &page).await?;
    let mut releases = Vec::with_capacity(rows.items.len());
    for r in rows.items {
        releases.push(crate::releases::view(&state.store, r).await?);
    }
    let configs = state
        .store
        .list_ticket_configs(&session.tenant.id, &PageRequest::first(500))
        .await?
        .items
        .into_iter()
        .map(ConfigResponse::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(html(&ReleasesPage {
        ctx: Ctx::new(&session, "/console/releases"),
        releases,
        configs,
        next: rows
            .next_cursor
            .map(|c| query_string(&[("cursor", Some(&c))])),
    }))
}

/// Template filters of the console.
mod filters {
    use std::fmt::Display;

    /// `not_synced` → `not synced`.
    pub fn human<T: Display>(s: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(s.to_string().replace('_', " "))
    }

    /// Percent-encoding for one path segment.
    pub fn pathseg<T: Display>(s: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(
            url::form_urlencoded::byte_serialize(s.to_string().as_bytes())
                .collect::<String>()
                .replace('+', "%20"),
        )
    }
}
