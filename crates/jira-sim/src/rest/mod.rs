//! Jira REST API routes (Cloud v2/v3, Data Center v2).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use chrono_tz::Tz;
use serde_json::Value;

use crate::model::{Flavor, World};
use crate::server::{Ctx, Via};
use crate::util::{jerr, Query};
use crate::Sim;

pub(crate) mod fields;
pub(crate) mod hooks;
pub(crate) mod issues;
pub(crate) mod meta;
pub(crate) mod render;
pub(crate) mod search;
pub(crate) mod work;

type S = Arc<Sim>;

/// An authenticated REST call.
#[derive(Debug, Clone)]
pub struct Call {
    pub site: usize,
    pub flavor: Flavor,
    /// Cloud REST v3 (ADF rich text).
    pub v3: bool,
    pub user: String,
    pub tz: Tz,
    /// Site base URL through the prefix the request used.
    pub base: String,
    /// `{base}/rest/api/{2|3}`
    pub api: String,
    pub q: Query,
    /// Whether the call came through the OAuth gateway path.
    pub via: Via,
}

/// A REST call that may be anonymous (serverInfo).
pub struct MaybeCall(pub Option<Call>, pub Ctx);

fn version_of(path: &str) -> &'static str {
    if path.starts_with("/rest/api/3/") {
        "3"
    } else if path.starts_with("/rest/api/latest/") {
        "latest"
    } else {
        "2"
    }
}

fn unauthorized(flavor: Flavor) -> Response {
    let mut r = match flavor {
        Flavor::Cloud => jerr(
            401,
            &["Client must be authenticated to access this resource."],
            &[],
        ),
        Flavor::DataCenter => jerr(
            401,
            &["You are not authenticated. Authentication required to perform this operation."],
            &[],
        ),
    };
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"protected-by-jira\""),
    );
    r.headers_mut().insert(
        "X-Seraph-LoginReason",
        HeaderValue::from_static("AUTHENTICATED_FAILED"),
    );
    r
}

/// OAuth scopes (classic) an operation needs: alternatives of sets.
fn scopes_for(method: &axum::http::Method, path: &str) -> &'static [&'static [&'static str]] {
    let read = matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD)
        || [
            "/search/jql",
            "/bulkfetch",
            "/approximate-count",
            "/worklog/list",
            "/jql/parse",
        ]
        .iter()
        .any(|s| path.ends_with(s));
    if path.contains("/webhook") {
        &[&["manage:jira-webhook"]]
    } else if path.ends_with("/myself") || path.contains("/user") {
        &[&["read:jira-user"], &["read:me"]]
    } else if read {
        &[&["read:jira-work"]]
    } else {
        &[&["write:jira-work"]]
    }
}

/// Who sent the request, or a 401.
fn authenticate(sim: &Sim, parts: &Parts, ctx: &Ctx) -> Result<Option<String>, Response> {
    let flavor = sim.cfg.flavor;
    let Some(auth) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let auth = auth.to_str().map_err(|_| unauthorized(flavor))?.trim();
    let (scheme, cred) = auth.split_once(' ').unwrap_or((auth, ""));
    let cred = cred.trim();
    let w = sim.world.lock();
    if ctx.via == Via::OAuth {
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized(flavor));
        }
        let cloud_id = w
            .sites
            .get(ctx.site)
            .map(|s| s.cloud_id.clone())
            .unwrap_or_default();
        drop(w);
        let scopes = scopes_for(&parts.method, parts.uri.path());
        return match sim.ext.authenticate(cred, &cloud_id, scopes) {
            Ok(id) => Ok(Some(id)),
            Err(r) => Err(r),
        };
    }
    let found = if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(cred)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| unauthorized(flavor))?;
        let (login, secret) = decoded
            .split_once(':')
            .ok_or_else(|| unauthorized(flavor))?;
        w.users.iter().find(|u| {
            u.active
                && match flavor {
                    Flavor::Cloud => u.email.eq_ignore_ascii_case(login) && u.api_token == secret,
                    Flavor::DataCenter => u.name == login && u.password == secret,
                }
        })
    } else if scheme.eq_ignore_ascii_case("bearer") && flavor == Flavor::DataCenter {
        w.users.iter().find(|u| u.active && u.pat == cred)
    } else {
        None
    };
    match found {
        Some(u) => Ok(Some(u.account_id.clone())),
        None => Err(unauthorized(flavor)),
    }
}

fn build_call(sim: &Sim, parts: &Parts, ctx: &Ctx, user: String) -> Call {
    let path = parts.uri.path();
    let ver = version_of(path);
    let w = sim.world.lock();
    let tz = w.user(&user).map(|u| u.tz).unwrap_or(chrono_tz::UTC);
    Call {
        site: ctx.site,
        flavor: sim.cfg.flavor,
        v3: ver == "3" && sim.cfg.flavor == Flavor::Cloud,
        user,
        tz,
        base: ctx.base.clone(),
        api: format!("{}/rest/api/{}", ctx.base, ver),
        q: Query::parse(parts.uri.query()),
        via: ctx.via,
    }
}

fn ctx_of(sim: &Sim, parts: &Parts) -> Ctx {
    parts.extensions.get::<Ctx>().cloned().unwrap_or(Ctx {
        site: 0,
        via: Via::Direct,
        base: sim.base_url.clone(),
    })
}

fn check_version(sim: &Sim, parts: &Parts) -> Result<(), Response> {
    if sim.cfg.flavor == Flavor::DataCenter && parts.uri.path().starts_with("/rest/api/3/") {
        return Err(jerr(404, &["null for uri: /rest/api/3"], &[]));
    }
    Ok(())
}

impl FromRequestParts<S> for Call {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, sim: &S) -> Result<Self, Self::Rejection> {
        check_version(sim, parts)?;
        let ctx = ctx_of(sim, parts);
        match authenticate(sim, parts, &ctx)? {
            Some(user) => Ok(build_call(sim, parts, &ctx, user)),
            None => Err(unauthorized(sim.cfg.flavor)),
        }
    }
}

impl FromRequestParts<S> for MaybeCall {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, sim: &S) -> Result<Self, Self::Rejection> {
        check_version(sim, parts)?;
        let ctx = ctx_of(sim, parts);
        let user = authenticate(sim, parts, &ctx)?;
        Ok(MaybeCall(
            user.map(|u| build_call(sim, parts, &ctx, u)),
            ctx,
        ))
    }
}

/// Data Center has no such operation: Jira's 404 for an unknown REST path.
pub fn cloud_only(call: &Call) -> Option<Response> {
    (call.flavor == Flavor::DataCenter).then(|| jerr(404, &["null for uri: not found"], &[]))
}

/// Parses a JSON request body with Jira's error for malformed input.
pub fn json_body(bytes: &[u8]) -> Result<Value, Response> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(jerr(400, &["No content to map due to end-of-input"], &[]));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        jerr(
            400,
            &[&format!("Unexpected character in request body: {e}")],
            &[],
        )
    })
}

/// Whether `user` may see the issue.
pub fn visible(w: &World, user: &str, issue_id: u64) -> bool {
    w.issues
        .get(&issue_id)
        .is_some_and(|i| w.can_browse(user, i.project_id))
}

/// Resolves a visible issue of the call's site, or Jira's 404.
pub fn find_visible(w: &World, call: &Call, id_or_key: &str) -> Result<u64, Response> {
    match w.find_issue(call.site, id_or_key) {
        Some(id) if visible(w, &call.user, id) => Ok(id),
        _ => Err(crate::util::not_found_issue()),
    }
}

pub(crate) fn routes() -> Router<S> {
    let mut r = Router::new();
    for v in ["2", "3", "latest"] {
        let p = |s: &str| format!("/rest/api/{v}{s}");
        r = r
            .route(&p("/serverInfo"), get(meta::server_info))
            .route(&p("/myself"), get(meta::myself))
            .route(&p("/mypermissions"), get(meta::my_permissions))
            .route(&p("/project/search"), get(meta::project_search))
            .route(&p("/project"), get(meta::project_list))
            .route(&p("/project/{projectIdOrKey}"), get(meta::project_get))
            .route(
                &p("/project/{projectIdOrKey}/statuses"),
                get(meta::project_statuses),
            )
            .route(&p("/issuetype"), get(meta::issuetypes))
            .route(&p("/issuetype/project"), get(meta::issuetypes_for_project))
            .route(&p("/issuetype/{id}"), get(meta::issuetype_get))
            .route(&p("/issue/createmeta"), get(meta::createmeta_legacy))
            .route(
                &p("/issue/createmeta/{projectIdOrKey}/issuetypes"),
                get(meta::createmeta_types),
            )
            .route(
                &p("/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}"),
                get(meta::createmeta_fields),
            )
            .route(&p("/field"), get(meta::fields))
            .route(&p("/priority"), get(meta::priorities))
            .route(&p("/priority/search"), get(meta::priority_search))
            .route(&p("/priority/{id}"), get(meta::priority_get))
            .route(&p("/status"), get(meta::statuses))
            .route(&p("/status/{idOrName}"), get(meta::status_get))
            .route(&p("/statuscategory"), get(meta::status_categories))
            .route(&p("/user/search"), get(meta::user_search))
            .route(&p("/user"), get(meta::user_get))
            .route(&p("/user/assignable/search"), get(meta::assignable_search))
            .route(&p("/issue"), post(issues::create))
            .route(&p("/issue/bulk"), post(issues::bulk_create))
            .route(&p("/issue/bulkfetch"), post(search::bulk_fetch))
            .route(&p("/issue/picker"), get(search::picker))
            .route(
                &p("/issue/{issueIdOrKey}"),
                get(issues::get_issue)
                    .put(issues::edit)
                    .delete(issues::delete),
            )
            .route(
                &p("/issue/{issueIdOrKey}/changelog"),
                get(issues::changelog),
            )
            .route(
                &p("/issue/{issueIdOrKey}/properties"),
                get(issues::property_keys),
            )
            .route(
                &p("/issue/{issueIdOrKey}/properties/{propertyKey}"),
                get(issues::property_get)
                    .put(issues::property_put)
                    .delete(issues::property_delete),
            )
            .route(
                &p("/issue/{issueIdOrKey}/transitions"),
                get(issues::transitions).post(issues::do_transition),
            )
            .route(
                &p("/issue/{issueIdOrKey}/remotelink"),
                get(issues::remote_links)
                    .post(issues::remote_link_upsert)
                    .delete(issues::remote_link_delete_by_global),
            )
            .route(
                &p("/issue/{issueIdOrKey}/remotelink/{linkId}"),
                get(issues::remote_link_get)
                    .put(issues::remote_link_put)
                    .delete(issues::remote_link_delete),
            )
            .route(
                &p("/issue/{issueIdOrKey}/comment"),
                get(work::comments).post(work::comment_add),
            )
            .route(
                &p("/issue/{issueIdOrKey}/comment/{id}"),
                get(work::comment_get)
                    .put(work::comment_update)
                    .delete(work::comment_delete),
            )
            .route(
                &p("/issue/{issueIdOrKey}/worklog"),
                get(work::worklogs).post(work::worklog_add),
            )
            .route(
                &p("/issue/{issueIdOrKey}/worklog/{id}"),
                get(work::worklog_get)
                    .put(work::worklog_update)
                    .delete(work::worklog_delete),
            )
            .route(
                &p("/issue/{issueIdOrKey}/worklog/{worklogId}/properties"),
                get(work::worklog_property_keys),
            )
            .route(
                &p("/issue/{issueIdOrKey}/worklog/{worklogId}/properties/{propertyKey}"),
                get(work::worklog_property_get)
                    .put(work::worklog_property_put)
                    .delete(work::worklog_property_delete),
            )
            .route(&p("/worklog/updated"), get(work::worklogs_updated))
            .route(&p("/worklog/deleted"), get(work::worklogs_deleted))
            .route(&p("/worklog/list"), post(work::worklog_list))
            .route(
                &p("/search"),
                get(search::search_old).post(search::search_old_post),
            )
            .route(
                &p("/search/jql"),
                get(search::search_jql).post(search::search_jql_post),
            )
            .route(
                &p("/search/approximate-count"),
                post(search::approximate_count),
            )
            .route(&p("/jql/parse"), post(search::jql_parse))
            .route(
                &p("/webhook"),
                get(hooks::dynamic_list)
                    .post(hooks::dynamic_register)
                    .delete(hooks::dynamic_delete),
            )
            .route(
                &p("/webhook/refresh"),
                axum::routing::put(hooks::dynamic_refresh),
            )
            .route(&p("/webhook/failed"), get(hooks::dynamic_failed));
    }
    r = r
        .route(
            "/rest/webhooks/1.0/webhook",
            get(hooks::admin_list).post(hooks::admin_create),
        )
        .route(
            "/rest/webhooks/1.0/webhook/{id}",
            get(hooks::admin_get)
                .put(hooks::admin_update)
                .delete(hooks::admin_delete),
        );
    r
}
