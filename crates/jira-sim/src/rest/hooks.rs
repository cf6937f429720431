//! Webhook registration endpoints: dynamic (`/rest/api/3/webhook`, OAuth apps) and admin
//! (`/rest/webhooks/1.0/webhook`, administrators).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;

use super::{json_body, Call, S};
use crate::server::Via;
use crate::util::{jerr, no_content, ok_json};
use crate::webhooks::SimReject;

fn rejected((status, body): SimReject) -> Response {
    ok_json(status, body)
}

/// The OAuth client of a dynamic-webhook call, or Jira's 403.
fn app(sim: &S, call: &Call) -> Result<String, Response> {
    if let Some(r) = super::cloud_only(call) {
        return Err(r);
    }
    match (call.via, sim.ext.client_id()) {
        (Via::OAuth, Some(c)) => Ok(c.to_string()),
        _ => Err(jerr(
            403,
            &["Only Connect and OAuth 2.0 apps can use this operation."],
            &[],
        )),
    }
}

fn hub(sim: &S, site: usize) -> Result<std::sync::Arc<crate::webhooks::WebhookHub>, Response> {
    sim.ext
        .hub(site)
        .cloned()
        .ok_or_else(|| jerr(404, &["Site not found."], &[]))
}

pub async fn dynamic_list(State(sim): State<S>, call: Call) -> Response {
    let client = match app(&sim, &call) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let start = call.q.int("startAt", 0).unwrap_or(0).max(0) as u64;
    let max = call.q.int("maxResults", 100).unwrap_or(100).clamp(0, 100) as u64;
    match hub(&sim, call.site) {
        Ok(h) => ok_json(200, h.dynamic_list(&client, start, max)),
        Err(r) => r,
    }
}

pub async fn dynamic_register(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    let client = match app(&sim, &call) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match hub(&sim, call.site) {
        Ok(h) => match h.dynamic_register(&client, &call.user, &b) {
            Ok(v) => ok_json(200, v),
            Err(e) => rejected(e),
        },
        Err(r) => r,
    }
}

pub async fn dynamic_delete(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    let client = match app(&sim, &call) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match hub(&sim, call.site) {
        Ok(h) => match h.dynamic_delete(&client, &b) {
            Ok(()) => axum::response::IntoResponse::into_response(crate::util::code(202)),
            Err(e) => rejected(e),
        },
        Err(r) => r,
    }
}

pub async fn dynamic_refresh(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    let client = match app(&sim, &call) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match hub(&sim, call.site) {
        Ok(h) => match h.dynamic_refresh(&client, &b) {
            Ok(v) => ok_json(200, v),
            Err(e) => rejected(e),
        },
        Err(r) => r,
    }
}

pub async fn dynamic_failed(State(sim): State<S>, call: Call) -> Response {
    let client = match app(&sim, &call) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let max = call.q.int("maxResults", 100).unwrap_or(100).clamp(1, 100) as u64;
    let after = call.q.get("after").and_then(|a| a.parse::<i64>().ok());
    match hub(&sim, call.site) {
        Ok(h) => ok_json(200, h.dynamic_failed(&client, max, after)),
        Err(r) => r,
    }
}

fn admin_only(
    sim: &S,
    call: &Call,
) -> Result<std::sync::Arc<crate::webhooks::WebhookHub>, Response> {
    let is_admin = sim.world.lock().user(&call.user).is_some_and(|u| u.admin);
    if !is_admin {
        return Err(jerr(
            403,
            &["You are not authorized to perform this operation. Administrator privileges are required."],
            &[],
        ));
    }
    hub(sim, call.site)
}

pub async fn admin_list(State(sim): State<S>, call: Call) -> Response {
    match admin_only(&sim, &call) {
        Ok(h) => ok_json(200, h.admin_list()),
        Err(r) => r,
    }
}

pub async fn admin_create(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    let h = match admin_only(&sim, &call) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match h.admin_create(&b) {
        Ok(v) => ok_json(201, v),
        Err(e) => rejected(e),
    }
}

fn parse_id(id: &str) -> Result<u64, Response> {
    id.parse()
        .map_err(|_| jerr(404, &["Webhook not found."], &[]))
}

pub async fn admin_get(State(sim): State<S>, call: Call, Path(id): Path<String>) -> Response {
    let (h, id) = match admin_only(&sim, &call).and_then(|h| parse_id(&id).map(|i| (h, i))) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match h.admin_get(id) {
        Ok(v) => ok_json(200, v),
        Err(e) => rejected(e),
    }
}

pub async fn admin_update(
    State(sim): State<S>,
    call: Call,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (h, id) = match admin_only(&sim, &call).and_then(|h| parse_id(&id).map(|i| (h, i))) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let b: Value = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match h.admin_update(id, &b) {
        Ok(v) => ok_json(200, v),
        Err(e) => rejected(e),
    }
}

pub async fn admin_delete(State(sim): State<S>, call: Call, Path(id): Path<String>) -> Response {
    let (h, id) = match admin_only(&sim, &call).and_then(|h| parse_id(&id).map(|i| (h, i))) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match h.admin_delete(id) {
        Ok(()) => no_content(),
        Err(e) => rejected(e),
    }
}
