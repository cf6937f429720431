//! Glue between the core and the OAuth server / webhook hubs (one hub per site).

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use crate::model::{Flavor, World};
use crate::oauth::{OAuthConfig, OAuthServer, OAuthSite};
use crate::webhooks::{WebhookEvent, WebhookHub};
use crate::{Sim, SimConfig};

/// Default OAuth client of the simulator (also in `GET /_sim/scenario` under `oauth`).
pub const OAUTH_CLIENT_ID: &str = "jira-sim-oauth-client";

/// OAuth server and webhook hubs of one simulator.
pub(crate) struct Ext {
    /// `None` on Data Center.
    pub oauth: Option<Arc<OAuthServer>>,
    /// One hub per site, in site order.
    pub hubs: Vec<Arc<WebhookHub>>,
    slugs: Vec<String>,
}

impl Ext {
    pub fn new(cfg: &SimConfig, world: &World, base_url: &str) -> Self {
        let site_url = |i: usize| {
            if i == 0 || world.flavor == Flavor::DataCenter {
                base_url.to_string()
            } else {
                format!("{base_url}/site/{}", world.sites[i].slug)
            }
        };
        let oauth = (world.flavor == Flavor::Cloud).then(|| {
            let mut redirect_uris = vec![
                "http://127.0.0.1/callback".to_string(),
                format!("{base_url}/callback"),
            ];
            redirect_uris.extend(cfg.oauth_redirect_uris.iter().cloned());
            OAuthServer::new(OAuthConfig {
                client_id: OAUTH_CLIENT_ID.into(),
                client_secret: format!("jira-sim-oauth-secret-{:016x}", cfg.seed),
                redirect_uris,
                access_token_ttl: Duration::from_secs(3600),
                refresh_grace: Duration::from_secs(600),
                consent_account_id: world
                    .users
                    .iter()
                    .find(|u| u.admin)
                    .map(|u| u.account_id.clone())
                    .unwrap_or_default(),
                sites: world
                    .sites
                    .iter()
                    .enumerate()
                    .map(|(i, s)| OAuthSite {
                        cloud_id: s.cloud_id.clone(),
                        name: s.slug.clone(),
                        url: site_url(i),
                        scopes: vec![],
                    })
                    .collect(),
                seed: cfg.seed,
            })
        });
        let hubs = world
            .sites
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let hub = WebhookHub::new();
                hub.set_site(&site_url(i), &s.cloud_id);
                if let Some(o) = &oauth {
                    hub.register_app(o.client_id(), o.client_secret());
                }
                hub
            })
            .collect();
        Ext {
            oauth,
            hubs,
            slugs: world.sites.iter().map(|s| s.slug.clone()).collect(),
        }
    }

    /// Routes outside `/rest` (the OAuth endpoints, Cloud only).
    pub fn public_router(&self) -> Router<Arc<Sim>> {
        match &self.oauth {
            Some(o) => o.router_for(),
            None => Router::new(),
        }
    }

    /// Control routes of the extensions, mounted under `/_sim`: `/oauth/...`,
    /// `/webhooks/...` (first site) and `/sites/{slug}/webhooks/...` (every site).
    pub fn control_router(&self) -> Router<Arc<Sim>> {
        let mut r = Router::new();
        if let Some(o) = &self.oauth {
            r = r.nest("/oauth", o.control_router_for());
        }
        if let Some(h) = self.hubs.first() {
            r = r.nest("/webhooks", h.control_router_for());
        }
        for (h, slug) in self.hubs.iter().zip(&self.slugs) {
            r = r.nest(&format!("/sites/{slug}/webhooks"), h.control_router_for());
        }
        r
    }

    /// Account id of a valid OAuth bearer token for this cloud id, or the gateway's 401.
    /// `scopes`: alternatives of scope sets the operation needs.
    pub fn authenticate(
        &self,
        bearer: &str,
        cloud_id: &str,
        scopes: &[&[&str]],
    ) -> Result<String, Response> {
        let Some(o) = &self.oauth else {
            return Err(gateway(OAuthServer::gateway_error(
                crate::oauth::OAuthAuthError::Invalid,
            )));
        };
        o.authenticate_scoped(bearer, cloud_id, scopes)
            .map(|p| p.account_id)
            .map_err(|e| gateway(OAuthServer::gateway_error(e)))
    }

    pub fn client_id(&self) -> Option<&str> {
        self.oauth.as_ref().map(|o| o.client_id())
    }

    pub fn hub(&self, site: usize) -> Option<&Arc<WebhookHub>> {
        self.hubs.get(site)
    }

    pub fn scenario_json(&self) -> Value {
        self.oauth
            .as_ref()
            .map(|o| o.scenario_json())
            .unwrap_or(Value::Null)
    }

    /// Whether any webhook is registered on `site` (events are only built when one is).
    pub fn listening(&self, site: usize) -> bool {
        self.hubs.get(site).is_some_and(|h| {
            let s = h.stats_json();
            s["admin_webhooks"].as_u64().unwrap_or(0) + s["dynamic_webhooks"].as_u64().unwrap_or(0)
                > 0
        })
    }

    /// Publishes a webhook event of `site`; `matches` evaluates a webhook's JQL against
    /// the issue.
    pub fn publish(&self, site: usize, event: &str, body: Value, matches: &dyn Fn(&str) -> bool) {
        if let Some(h) = self.hubs.get(site) {
            h.publish(
                WebhookEvent {
                    event: event.to_string(),
                    body,
                },
                matches,
            );
        }
    }

    /// OAuth and webhook counters for `GET /_sim/stats`.
    pub fn stats_json(&self) -> Value {
        let oauth = self.oauth.as_ref().map(|o| {
            let s = o.stats();
            json!({
                "authorize": s.authorize,
                "code_exchanges": s.code_exchanges,
                "refreshes": s.refreshes,
                "refresh_rejected": s.refresh_rejected,
            })
        });
        let hooks: serde_json::Map<String, Value> = self
            .slugs
            .iter()
            .zip(&self.hubs)
            .map(|(s, h)| (s.clone(), h.stats_json()))
            .collect();
        json!({"oauth": oauth, "webhooks": hooks})
    }

    pub fn reset(&self) {
        if let Some(o) = &self.oauth {
            o.reset();
        }
        for h in &self.hubs {
            h.reset();
        }
    }
}

fn gateway((status, body): (u16, Value)) -> Response {
    crate::util::ok_json(status, body)
}
