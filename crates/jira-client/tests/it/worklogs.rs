use chrono::{FixedOffset, TimeZone};
use futures::TryStreamExt;
use jira_client::{Error, WorklogInput};

use crate::common::*;

fn at(offset_secs: i32, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> chrono::DateTime<FixedOffset> {
    FixedOffset::east_opt(offset_secs)
        .unwrap()
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
}

#[tokio::test]
async fn worklog_add_update_list_delete_and_feeds() {
    for flavor in flavors() {
        // Jira leaves the last minute out of the change feeds; the simulator can too,
        // but here it lists changes at once.
        let sim = sim_with(jira_sim::SimConfig {
            flavor,
            pacing: jira_sim::Pacing {
                worklog_feed_delay_ms: Some(0),
                ..jira_sim::Pacing::default()
            },
            ..jira_sim::SimConfig::default()
        })
        .await;
        let c = client(&sim);
        let issue = create_task(&c, "OPS", "time").await;
        let started = at(13 * 3600, 2026, 3, 1, 23, 30);
        let added = c
            .add_worklog(
                &issue.key,
                &WorklogInput {
                    started,
                    time_spent_seconds: 5400,
                    comment: Some(text_body(&sim, "pairing")),
                    properties: vec![jira_client::EntityProperty {
                        key: "bridge.entry".into(),
                        value: serde_json::json!({"id": "entry-1"}),
                    }],
                },
            )
            .await
            .unwrap();
        assert_eq!(added.time_spent_seconds, Some(5400));
        assert_eq!(
            added.started_at().map(|d| d.timestamp()),
            Some(started.timestamp())
        );
        assert_eq!(added.comment, Some(text_body(&sim, "pairing")));

        let second = c
            .add_worklog(
                &issue.key,
                &WorklogInput {
                    started: at(-10 * 3600, 2026, 3, 2, 8, 0),
                    time_spent_seconds: 60,
                    comment: None,
                    properties: vec![],
                },
            )
            .await
            .unwrap();

        let updated = c
            .update_worklog(
                &issue.key,
                &added.id,
                &WorklogInput {
                    started,
                    time_spent_seconds: 7200,
                    comment: None,
                    properties: vec![],
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.time_spent_seconds, Some(7200));

        // Properties set at creation are listed and readable; others can be added.
        assert_eq!(
            c.get_worklog_property(&issue.key, &added.id, "bridge.entry")
                .await
                .unwrap(),
            Some(serde_json::json!({"id": "entry-1"}))
        );
        assert_eq!(
            c.get_worklog_property(&issue.key, &added.id, "nope")
                .await
                .unwrap(),
            None
        );
        assert!(c
            .set_worklog_property(
                &issue.key,
                &second.id,
                "bridge.entry",
                &serde_json::json!({"id": "entry-2"})
            )
            .await
            .unwrap());

        let all: Vec<_> = c.worklogs(&issue.key).try_collect().await.unwrap();
        let tagged: Vec<(String, serde_json::Value)> = all
            .iter()
            .flat_map(|w| {
                w.properties
                    .iter()
                    .map(move |p| (w.id.clone(), p.value.clone()))
            })
            .collect();
        assert_eq!(tagged.len(), 2, "{tagged:?}");
        assert!(tagged.contains(&(added.id.clone(), serde_json::json!({"id": "entry-1"}))));
        assert!(tagged.contains(&(second.id.clone(), serde_json::json!({"id": "entry-2"}))));
        let mut ids: Vec<&str> = all.iter().map(|w| w.id.as_str()).collect();
        ids.sort();
        let mut expect = vec![added.id.as_str(), second.id.as_str()];
        expect.sort();
        assert_eq!(ids, expect);

        let by_ids = c
            .worklogs_by_ids(&[added.id.parse().unwrap(), second.id.parse().unwrap()])
            .await
            .unwrap();
        assert_eq!(by_ids.len(), 2);

        c.delete_worklog(&issue.key, &second.id).await.unwrap();
        let all: Vec<_> = c.worklogs(&issue.key).try_collect().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].time_spent_seconds, Some(7200));

        // Change feeds: both worklogs were updated (created), the second was deleted.
        let added_id: i64 = added.id.parse().unwrap();
        let second_id: i64 = second.id.parse().unwrap();
        let updated: Vec<_> = c.worklogs_updated_since(0).try_collect().await.unwrap();
        let updated_ids: Vec<i64> = updated.iter().map(|w| w.worklog_id).collect();
        assert!(updated_ids.contains(&added_id), "{updated_ids:?}");
        let deleted: Vec<_> = c.worklogs_deleted_since(0).try_collect().await.unwrap();
        let deleted_ids: Vec<i64> = deleted.iter().map(|w| w.worklog_id).collect();
        assert_eq!(deleted_ids, vec![second_id]);
        let future = chrono::Utc::now().timestamp_millis() + 3_600_000;
        assert!(c
            .worklogs_updated_since(future)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty());
        let s = stats(&sim).await;
        assert!(
            count(
                &s,
                "GET",
                &format!("{}/worklog/updated", api(&sim)),
                Some(200)
            ) >= 1
        );
        assert!(
            count(
                &s,
                "GET",
                &format!("{}/worklog/deleted", api(&sim)),
                Some(200)
            ) >= 1
        );

        // Under a minute is refused before anything is sent.
        let before = count(
            &s,
            "POST",
            &format!("{}/issue/{{issueIdOrKey}}/worklog", api(&sim)),
            None,
        );
        let r = c
            .add_worklog(
                &issue.key,
                &WorklogInput {
                    started,
                    time_spent_seconds: 30,
                    comment: None,
                    properties: vec![],
                },
            )
            .await;
        assert!(matches!(r, Err(Error::Config(_))));
        let after = count(
            &stats(&sim).await,
            "POST",
            &format!("{}/issue/{{issueIdOrKey}}/worklog", api(&sim)),
            None,
        );
        assert_eq!(before, after);
    }
}

#[tokio::test]
async fn work_logging_permission_is_asked_per_issue() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let admin = client(&sim);
        let issue = create_task(&admin, "WEB", "permission").await;
        let hidden = create_task(&admin, "OPS", "hidden from vera").await;
        assert!(admin.can_log_work(&issue.key).await.unwrap());
        assert!(matches!(
            admin.can_log_work("OPS-99999").await,
            Err(Error::NotFound { .. })
        ));
        // The scenario's fifth user (vera) may browse WEB but not log work, and cannot
        // see OPS.
        let scenario = sim.scenario();
        let vera = &scenario["users"][4];
        assert_eq!(vera["can_log_work"], false, "scenario changed: {vera}");
        let base = sim.base_url().parse().unwrap();
        let site = match flavor {
            jira_sim::Flavor::Cloud => jira_client::SiteConfig::cloud_basic(
                base,
                vera["email"].as_str().unwrap(),
                secrecy::SecretString::from(vera["api_token"].as_str().unwrap().to_owned()),
            ),
            jira_sim::Flavor::DataCenter => jira_client::SiteConfig::data_center_pat(
                base,
                secrecy::SecretString::from(vera["pat"].as_str().unwrap().to_owned()),
            ),
        };
        let vera = client_with(site, test_pacer(), jira_client::ClientOptions::default());
        let key = issue.key.clone();
        assert!(!vera.can_log_work(&key).await.unwrap());
        let both = vera
            .my_permissions(
                &jira_client::PermissionScope::Issue(key.clone()),
                &["BROWSE_PROJECTS", "WORK_ON_ISSUES"],
            )
            .await
            .unwrap();
        assert!(both["BROWSE_PROJECTS"]);
        assert!(!both["WORK_ON_ISSUES"]);
        assert!(matches!(
            vera.can_log_work(&hidden.key).await,
            Err(Error::NotFound { .. })
        ));
    }
}
