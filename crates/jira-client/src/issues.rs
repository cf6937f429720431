//! Issues: create (single and bulk), get, edit, delete, entity properties, comments,
//! remote links.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::BoxStream;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{JiraClient, Req};
use crate::error::{Error, ErrorCollection, Result};
use crate::models::{
    BulkCreateItem, Comment, CreatedIssue, Issue, IssueInput, RemoteLink, RemoteLinkRecord,
    RemoteLinkUpsert,
};
use crate::paging::{offset_stream, OffsetPage};

/// Jira's bulk-create limit per request.
pub const BULK_CREATE_CHUNK: usize = 50;

/// Options of [`JiraClient::get_issue`].
#[derive(Debug, Clone, Default)]
pub struct GetIssue {
    /// Fields (empty: Jira's default, all navigable fields).
    pub fields: Vec<String>,
    /// Properties to include.
    pub properties: Vec<String>,
    /// Expansions.
    pub expand: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct BulkCreated {
    #[serde(default)]
    issues: Vec<CreatedIssue>,
    #[serde(default)]
    errors: Vec<BulkElementError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkElementError {
    #[serde(default)]
    status: Option<u16>,
    failed_element_number: usize,
    #[serde(default)]
    element_errors: Option<ErrorCollection>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentPage {
    #[serde(default)]
    comments: Vec<Comment>,
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct PropertyKeys {
    #[serde(default)]
    keys: Vec<PropertyKey>,
}

#[derive(Debug, Deserialize)]
struct PropertyKey {
    key: String,
}

#[derive(Debug, Deserialize)]
struct PropertyValue {
    #[serde(default)]
    value: Value,
}

#[derive(Debug, Deserialize)]
struct LinkId {
    id: i64,
}

impl JiraClient {
    /// `POST /issue`. Never retried after it may have reached Jira: a timeout is
    /// [`Error::OutcomeUnknown`]. Put an idempotency marker in `input.properties` to
    /// reconcile.
    pub async fn create_issue(&self, input: &IssueInput) -> Result<CreatedIssue> {
        self.call(Req::post(&["issue"]).json(input)?).await
    }

    /// `POST /issue/bulk` in chunks of 50. One result per input, at the input's index.
    pub async fn bulk_create(&self, inputs: &[IssueInput]) -> Vec<BulkCreateItem> {
        let mut out = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(BULK_CREATE_CHUNK) {
            out.extend(self.bulk_create_chunk(chunk).await);
        }
        out
    }

    async fn bulk_create_chunk(&self, chunk: &[IssueInput]) -> Vec<BulkCreateItem> {
        let req = match Req::post(&["issue", "bulk"])
            .accept(&[400])
            .json(serde_json::json!({ "issueUpdates": chunk }))
        {
            Ok(r) => r,
            Err(e) => {
                let e = Arc::new(e);
                return chunk
                    .iter()
                    .map(|_| BulkCreateItem::Failed(e.clone()))
                    .collect();
            }
        };
        // All elements failed: Jira answers 400 with the same body shape.
        let body = match self.send(req).await {
            Ok(answer) if answer.status == 400 => match answer.json::<BulkCreated>() {
                Ok(b) if !b.errors.is_empty() => Ok(b),
                _ => Err(crate::error::from_status(
                    answer.ctx,
                    400,
                    &answer.body,
                    None,
                    None,
                )),
            },
            Ok(answer) => answer.json::<BulkCreated>(),
            Err(e) => Err(e),
        };
        let parsed = match body {
            Ok(b) => b,
            Err(e) => {
                let e = Arc::new(e);
                return chunk
                    .iter()
                    .map(|_| BulkCreateItem::Failed(e.clone()))
                    .collect();
            }
        };
        map_bulk(chunk.len(), parsed)
    }

    /// `GET /issue/{key}`.
    pub async fn get_issue(&self, key: &str, opts: &GetIssue) -> Result<Issue> {
        let mut req = Req::get(&["issue", key]);
        if !opts.fields.is_empty() {
            req = req.q("fields", opts.fields.join(","));
        }
        if !opts.properties.is_empty() {
            req = req.q("properties", opts.properties.join(","));
        }
        if !opts.expand.is_empty() {
            req = req.q("expand", opts.expand.join(","));
        }
        self.call(req).await
    }

    /// `PUT /issue/{key}` with `fields` and/or `update` (properties are ignored here).
    pub async fn edit_issue(
        &self,
        key: &str,
        input: &IssueInput,
        notify_users: bool,
    ) -> Result<()> {
        let body = serde_json::json!({ "fields": input.fields, "update": input.update });
        let mut req = Req::put(&["issue", key]).issue_write(key).json_value(body);
        if !notify_users {
            req = req.q("notifyUsers", "false");
        }
        self.call_empty(req).await.map(|_| ())
    }

    /// `DELETE /issue/{key}`.
    pub async fn delete_issue(&self, key: &str, delete_subtasks: bool) -> Result<()> {
        self.call_empty(
            Req::delete(&["issue", key])
                .issue_write(key)
                .q("deleteSubtasks", delete_subtasks),
        )
        .await
        .map(|_| ())
    }

    /// Keys of an issue's entity properties.
    pub async fn issue_property_keys(&self, key: &str) -> Result<Vec<String>> {
        let k: PropertyKeys = self.call(Req::get(&["issue", key, "properties"])).await?;
        Ok(k.keys.into_iter().map(|k| k.key).collect())
    }

    /// An issue entity property (`None` when the issue has no such property; an unknown
    /// issue is [`Error::NotFound`]).
    pub async fn get_issue_property(&self, key: &str, property: &str) -> Result<Option<Value>> {
        match self
            .call::<PropertyValue>(Req::get(&["issue", key, "properties", property]))
            .await
        {
            Ok(v) => Ok(Some(v.value)),
            Err(Error::NotFound { ctx, messages }) => {
                // Distinguish "no property" from "no issue".
                match self.issue_property_keys(key).await {
                    Ok(_) => Ok(None),
                    Err(Error::NotFound { .. }) => Err(Error::NotFound { ctx, messages }),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Set an issue entity property (any non-empty JSON ≤ 32,768 chars). Returns true
    /// when it was created, false when updated.
    pub async fn set_issue_property(
        &self,
        key: &str,
        property: &str,
        value: &Value,
    ) -> Result<bool> {
        let len = serde_json::to_string(value)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        if len > 32_768 {
            return Err(Error::Config(format!(
                "property {property:?} is {len} characters; Jira allows 32768"
            )));
        }
        let status = self
            .call_empty(
                Req::put(&["issue", key, "properties", property])
                    .issue_write(key)
                    .json_value(value.clone()),
            )
            .await?;
        Ok(status == 201)
    }

    /// Delete an issue entity property.
    pub async fn delete_issue_property(&self, key: &str, property: &str) -> Result<()> {
        self.call_empty(Req::delete(&["issue", key, "properties", property]).issue_write(key))
            .await
            .map(|_| ())
    }

    /// `POST /issue/{key}/comment` (`body`: ADF on Cloud, wiki markup string on DC).
    pub async fn add_comment(&self, key: &str, body: Value) -> Result<Comment> {
        self.call(
            Req::post(&["issue", key, "comment"])
                .issue_write(key)
                .json_value(serde_json::json!({ "body": body })),
        )
        .await
    }

    /// All comments of an issue, oldest first.
    pub fn comments(&self, key: &str) -> BoxStream<'static, Result<Comment>> {
        let c = self.clone();
        let key = key.to_string();
        offset_stream(100, move |start, max| {
            let c = c.clone();
            let key = key.clone();
            async move {
                let p: CommentPage = c
                    .call(
                        Req::get(&["issue", &key, "comment"])
                            .q("startAt", start)
                            .q("maxResults", max),
                    )
                    .await?;
                Ok(OffsetPage {
                    values: p.comments,
                    is_last: None,
                    total: p.total,
                })
            }
        })
    }

    /// Create or update (by `global_id`) a remote link. Jira replaces the whole link on
    /// update, so pass every field you want kept.
    pub async fn upsert_remote_link(
        &self,
        key: &str,
        link: &RemoteLink,
    ) -> Result<RemoteLinkUpsert> {
        if link.global_id.is_empty() || link.global_id.chars().count() > 255 {
            return Err(Error::Config(
                "remote link globalId must be 1..=255 characters".into(),
            ));
        }
        // Upsert by globalId is idempotent: safe to retry.
        let answer = self
            .send(
                Req::post_read(&["issue", key, "remotelink"])
                    .issue_write(key)
                    .json(link)?,
            )
            .await?;
        let id: LinkId = answer.json()?;
        Ok(RemoteLinkUpsert {
            id: id.id,
            created: answer.status == 201,
        })
    }

    /// Remote links of an issue (optionally only the one with `global_id`).
    pub async fn remote_links(
        &self,
        key: &str,
        global_id: Option<&str>,
    ) -> Result<Vec<RemoteLinkRecord>> {
        let req = Req::get(&["issue", key, "remotelink"]).q_opt("globalId", global_id);
        match global_id {
            // With globalId Jira answers a single object.
            Some(_) => match self.call::<RemoteLinkRecord>(req).await {
                Ok(l) => Ok(vec![l]),
                Err(Error::NotFound { .. }) => {
                    // Unknown link on a known issue answers 404 too; check the issue.
                    self.call::<Vec<RemoteLinkRecord>>(Req::get(&["issue", key, "remotelink"]))
                        .await
                        .map(|_| Vec::new())
                }
                Err(e) => Err(e),
            },
            None => self.call(req).await,
        }
    }

    /// Delete the remote link with `global_id`.
    pub async fn delete_remote_link(&self, key: &str, global_id: &str) -> Result<()> {
        self.call_empty(
            Req::delete(&["issue", key, "remotelink"])
                .issue_write(key)
                .q("globalId", global_id),
        )
        .await
        .map(|_| ())
    }
}

fn map_bulk(n: usize, body: BulkCreated) -> Vec<BulkCreateItem> {
    let mut failed: BTreeMap<usize, BulkCreateItem> = BTreeMap::new();
    for e in body.errors {
        let ec = e.element_errors.unwrap_or_default();
        failed.insert(
            e.failed_element_number,
            BulkCreateItem::Rejected {
                status: e.status.unwrap_or(400),
                messages: ec.messages(),
                field_errors: ec.field_errors(),
            },
        );
    }
    let mut created = body.issues.into_iter();
    (0..n)
        .map(|i| match failed.remove(&i) {
            Some(f) => f,
            None => match created.next() {
                Some(c) => BulkCreateItem::Created(c),
                None => BulkCreateItem::Rejected {
                    status: 0,
                    messages: vec!["Jira returned no result for this element".into()],
                    field_errors: BTreeMap::new(),
                },
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bulk_results_map_back_to_input_indices() {
        let body: BulkCreated = serde_json::from_value(serde_json::json!({
            "issues": [
                {"id": "10000", "key": "ED-1", "self": "x"},
                {"id": "10001", "key": "ED-2", "self": "y"}
            ],
            "errors": [{
                "status": 400,
                "failedElementNumber": 1,
                "elementErrors": {"errorMessages": [], "errors": {"issuetype": "The issue type selected is invalid."}}
            }]
        }))
        .unwrap();
        let out = map_bulk(3, body);
        assert_eq!(out[0].created().unwrap().key, "ED-1");
        match &out[1] {
            BulkCreateItem::Rejected {
                status,
                field_errors,
                ..
            } => {
                assert_eq!(*status, 400);
                assert_eq!(
                    field_errors["issuetype"],
                    "The issue type selected is invalid."
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(out[2].created().unwrap().key, "ED-2");
    }
}
