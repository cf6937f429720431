//! Dynamic webhooks (OAuth 2.0 / Connect apps on Jira Cloud): register, list, refresh,
//! delete.

use futures::stream::BoxStream;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{JiraClient, Req};
use crate::error::Result;
use crate::meta::PageBean;
use crate::models::{parse_expiration, Webhook, WebhookSpec};
use crate::paging::offset_stream;

/// Result of registering one [`WebhookSpec`], in request order.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookRegistration {
    /// Registered with this id.
    Created(i64),
    /// Refused, with Jira's messages.
    Failed(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegistrationResults {
    #[serde(default)]
    webhook_registration_result: Vec<RegistrationResult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegistrationResult {
    #[serde(default)]
    created_webhook_id: Option<i64>,
    #[serde(default)]
    errors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshResult {
    #[serde(default)]
    expiration_date: Option<Value>,
}

impl JiraClient {
    /// `POST /webhook`: register webhooks delivering to `url`.
    pub async fn register_webhooks(
        &self,
        url: &str,
        specs: &[WebhookSpec],
    ) -> Result<Vec<WebhookRegistration>> {
        let body = serde_json::json!({ "url": url, "webhooks": specs });
        let r: RegistrationResults = self.call(Req::post(&["webhook"]).json_value(body)).await?;
        Ok(r.webhook_registration_result
            .into_iter()
            .map(|r| match r.created_webhook_id {
                Some(id) => WebhookRegistration::Created(id),
                None => WebhookRegistration::Failed(r.errors),
            })
            .collect())
    }

    /// `GET /webhook`: the app's webhooks, all pages.
    pub fn webhooks(&self) -> BoxStream<'static, Result<Webhook>> {
        let c = self.clone();
        offset_stream(100, move |start, max| {
            let c = c.clone();
            async move {
                let p: PageBean<Webhook> = c
                    .call(
                        Req::get(&["webhook"])
                            .q("startAt", start)
                            .q("maxResults", max),
                    )
                    .await?;
                Ok(p.into())
            }
        })
    }

    /// `PUT /webhook/refresh`: extend the webhooks' life; returns the new expiry.
    pub async fn refresh_webhooks(
        &self,
        ids: &[i64],
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let r: RefreshResult = self
            .call(
                Req::put(&["webhook", "refresh"])
                    .json_value(serde_json::json!({ "webhookIds": ids })),
            )
            .await?;
        Ok(r.expiration_date.as_ref().and_then(parse_expiration))
    }

    /// `DELETE /webhook` (ids of other apps are ignored by Jira).
    pub async fn delete_webhooks(&self, ids: &[i64]) -> Result<()> {
        self.call_empty(
            Req::delete(&["webhook"]).json_value(serde_json::json!({ "webhookIds": ids })),
        )
        .await
        .map(|_| ())
    }
}
