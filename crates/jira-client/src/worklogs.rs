//! Worklogs: add, update, delete, list, changes since, list by ids; Jira's date-time
//! format.

use chrono::{DateTime, FixedOffset};
use futures::stream::BoxStream;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{JiraClient, Req};
use crate::error::{Error, Result};
use crate::models::{Worklog, WorklogChange, WorklogInput};
use crate::paging::{offset_stream, token_stream, OffsetPage, TokenPage};

/// Format a date-time as Jira expects in `started`: `yyyy-MM-dd'T'HH:mm:ss.SSS+hhmm`,
/// in the offset the value carries (no conversion to UTC).
pub fn format_jira_datetime(dt: &DateTime<FixedOffset>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// Parse Jira's date-time (`+hhmm` or `+hh:mm` offsets, with or without millis).
pub fn parse_jira_datetime(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorklogPage {
    #[serde(default)]
    worklogs: Vec<Worklog>,
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangePage {
    #[serde(default)]
    values: Vec<WorklogChange>,
    #[serde(default)]
    until: Option<i64>,
    #[serde(default)]
    last_page: Option<bool>,
    #[serde(default)]
    next_page: Option<String>,
}

fn worklog_body(input: &WorklogInput) -> Result<Value> {
    if input.time_spent_seconds < 60 {
        return Err(Error::Config(format!(
            "worklog duration {}s: Jira requires at least 60 seconds",
            input.time_spent_seconds
        )));
    }
    let mut body = serde_json::json!({
        "started": format_jira_datetime(&input.started),
        "timeSpentSeconds": input.time_spent_seconds,
    });
    if let Some(c) = &input.comment {
        body["comment"] = c.clone();
    }
    if !input.properties.is_empty() {
        body["properties"] = serde_json::to_value(&input.properties)
            .map_err(|e| Error::Config(format!("worklog properties: {e}")))?;
    }
    Ok(body)
}

impl JiraClient {
    /// `POST /issue/{key}/worklog` (estimate adjusted automatically). Not retried after it
    /// may have been sent.
    pub async fn add_worklog(&self, key: &str, input: &WorklogInput) -> Result<Worklog> {
        let body = worklog_body(input)?;
        self.call(
            Req::post(&["issue", key, "worklog"])
                .issue_write(key)
                .json_value(body),
        )
        .await
    }

    /// `PUT /issue/{key}/worklog/{id}`.
    pub async fn update_worklog(
        &self,
        key: &str,
        id: &str,
        input: &WorklogInput,
    ) -> Result<Worklog> {
        let body = worklog_body(input)?;
        self.call(
            Req::put(&["issue", key, "worklog", id])
                .issue_write(key)
                .json_value(body),
        )
        .await
    }

    /// `DELETE /issue/{key}/worklog/{id}`.
    pub async fn delete_worklog(&self, key: &str, id: &str) -> Result<()> {
        self.call_empty(Req::delete(&["issue", key, "worklog", id]).issue_write(key))
            .await
            .map(|_| ())
    }

    /// All worklogs of an issue.
    pub fn worklogs(&self, key: &str) -> BoxStream<'static, Result<Worklog>> {
        let c = self.clone();
        let key = key.to_string();
        offset_stream(1000, move |start, max| {
            let c = c.clone();
            let key = key.clone();
            async move {
                let p: WorklogPage = c
                    .call(
                        Req::get(&["issue", &key, "worklog"])
                            .q("startAt", start)
                            .q("maxResults", max)
                            .q("expand", "properties"),
                    )
                    .await?;
                Ok(OffsetPage {
                    values: p.worklogs,
                    is_last: None,
                    total: p.total,
                })
            }
        })
    }

    fn worklog_changes(
        &self,
        kind: &'static str,
        since_ms: i64,
    ) -> BoxStream<'static, Result<WorklogChange>> {
        let c = self.clone();
        token_stream(move |token| {
            let c = c.clone();
            async move {
                let since = match token {
                    Some(t) => t.parse::<i64>().unwrap_or(since_ms),
                    None => since_ms,
                };
                let p: ChangePage = c
                    .call(Req::get(&["worklog", kind]).q("since", since))
                    .await?;
                // Follow `nextPage` (its `since`), else continue from `until`.
                let from_next = p.next_page.as_deref().and_then(|u| {
                    url::Url::parse(u)
                        .ok()?
                        .query_pairs()
                        .find(|(k, _)| k == "since")?
                        .1
                        .parse::<i64>()
                        .ok()
                });
                let next = match (p.last_page, from_next.or(p.until)) {
                    (Some(false), Some(n)) if n > since && !p.values.is_empty() => {
                        Some(n.to_string())
                    }
                    _ => None,
                };
                Ok(TokenPage {
                    values: p.values,
                    next,
                })
            }
        })
    }

    /// Worklogs changed since `since_ms` (ms since epoch), oldest first, all pages.
    /// Jira leaves out the last minute.
    pub fn worklogs_updated_since(
        &self,
        since_ms: i64,
    ) -> BoxStream<'static, Result<WorklogChange>> {
        self.worklog_changes("updated", since_ms)
    }

    /// Worklogs deleted since `since_ms`, all pages.
    pub fn worklogs_deleted_since(
        &self,
        since_ms: i64,
    ) -> BoxStream<'static, Result<WorklogChange>> {
        self.worklog_changes("deleted", since_ms)
    }

    /// A worklog entity property (`None` when the worklog has no such property).
    pub async fn get_worklog_property(
        &self,
        key: &str,
        worklog_id: &str,
        property: &str,
    ) -> Result<Option<Value>> {
        #[derive(Deserialize)]
        struct V {
            #[serde(default)]
            value: Value,
        }
        match self
            .call::<V>(Req::get(&[
                "issue",
                key,
                "worklog",
                worklog_id,
                "properties",
                property,
            ]))
            .await
        {
            Ok(v) => Ok(Some(v.value)),
            Err(Error::NotFound { ctx, messages }) => {
                // Distinguish "no property" from "no worklog".
                match self
                    .call_empty(Req::get(&[
                        "issue",
                        key,
                        "worklog",
                        worklog_id,
                        "properties",
                    ]))
                    .await
                {
                    Ok(_) => Ok(None),
                    Err(Error::NotFound { .. }) => Err(Error::NotFound { ctx, messages }),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Set a worklog entity property (true when created, false when updated).
    pub async fn set_worklog_property(
        &self,
        key: &str,
        worklog_id: &str,
        property: &str,
        value: &Value,
    ) -> Result<bool> {
        let status = self
            .call_empty(
                Req::put(&["issue", key, "worklog", worklog_id, "properties", property])
                    .issue_write(key)
                    .json_value(value.clone()),
            )
            .await?;
        Ok(status == 201)
    }

    /// `POST /worklog/list` in chunks of 1000 ids (only worklogs the caller may see).
    pub async fn worklogs_by_ids(&self, ids: &[i64]) -> Result<Vec<Worklog>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(1000) {
            let mut page: Vec<Worklog> = self
                .call(
                    Req::post_read(&["worklog", "list"])
                        .json_value(serde_json::json!({ "ids": chunk })),
                )
                .await?;
            out.append(&mut page);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn started_is_written_in_its_own_offset() {
        let plus13 = FixedOffset::east_opt(13 * 3600).unwrap();
        let dt = plus13.with_ymd_and_hms(2026, 3, 1, 23, 30, 0).unwrap();
        assert_eq!(format_jira_datetime(&dt), "2026-03-01T23:30:00.000+1300");
        let minus10 = FixedOffset::west_opt(10 * 3600).unwrap();
        let dt = minus10.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(format_jira_datetime(&dt), "2026-12-31T23:59:59.000-1000");
        let half = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        let dt = half.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_jira_datetime(&dt), "2026-01-02T03:04:05.000+0530");
        assert_eq!(
            parse_jira_datetime("2026-01-02T03:04:05.000+0530"),
            Some(dt)
        );
        assert_eq!(
            parse_jira_datetime("2026-01-02T03:04:05.000+05:30"),
            Some(dt)
        );
    }

    #[test]
    fn short_durations_are_refused_before_sending() {
        let input = WorklogInput {
            started: FixedOffset::east_opt(0)
                .unwrap()
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .unwrap(),
            time_spent_seconds: 59,
            comment: None,
            properties: vec![],
        };
        assert!(matches!(worklog_body(&input), Err(Error::Config(_))));
    }
}
