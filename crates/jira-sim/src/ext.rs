//! Glue between the core and the OAuth / webhook modules.

use axum::response::Response;
use axum::Router;
use serde_json::Value;

use crate::model::World;
use crate::{Sim, SimConfig};
use std::sync::Arc;

/// OAuth server and webhook hub of one simulator.
pub(crate) struct Ext {}

impl Ext {
    pub fn new(_cfg: &SimConfig, _world: &World, _base_url: &str) -> Self {
        Ext {}
    }

    /// Routes outside `/rest` (OAuth endpoints).
    pub fn public_router(&self) -> Router<Arc<Sim>> {
        Router::new()
    }

    /// Control routes of the extensions (mounted under `/_sim`).
    pub fn control_router(&self) -> Router<Arc<Sim>> {
        Router::new()
    }

    /// Account id of a valid OAuth bearer token for this cloud id.
    pub fn authenticate(&self, _bearer: &str, _cloud_id: &str) -> Result<String, Response> {
        Err(crate::util::ok_json(
            401,
            serde_json::json!({"code": 401, "message": "Unauthorized"}),
        ))
    }

    pub fn scenario_json(&self) -> Value {
        Value::Null
    }

    /// Publishes a webhook event; `matches` evaluates a webhook's JQL against the issue.
    pub fn publish(&self, _event: &str, _body: Value, _matches: &dyn Fn(&str) -> bool) {}

    /// OAuth counters for `GET /_sim/stats`.
    pub fn stats_json(&self) -> Value {
        Value::Null
    }

    pub fn reset(&self) {}
}
