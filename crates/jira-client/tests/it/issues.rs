use futures::TryStreamExt;
use jira_client::{BulkCreateItem, Error, GetIssue, IssueInput, RemoteLink, RemoteLinkObject};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn create_get_edit_properties_delete() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        let created = c
            .create_issue(
                &IssueInput::new()
                    .project_key("OPS")
                    .issue_type_name("Task")
                    .summary("Rotate keys")
                    .description(c.rich_text("All **of** them.").await.unwrap())
                    .priority_name("High")
                    .labels(["security", "q3"])
                    .property("bridge.source", json!({"id": "src-1"})),
            )
            .await
            .unwrap();
        assert!(created.key.starts_with("OPS-"), "{created:?}");

        let issue = c
            .get_issue(
                &created.key,
                &GetIssue {
                    fields: vec![
                        "summary".into(),
                        "description".into(),
                        "labels".into(),
                        "priority".into(),
                        "status".into(),
                    ],
                    properties: vec!["bridge.source".into()],
                    ..GetIssue::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(issue.id, created.id);
        assert_eq!(issue.summary().as_deref(), Some("Rotate keys"));
        assert_eq!(
            jira_client::JiraClient::rich_text_to_markdown(&issue.fields["description"]).trim(),
            "All **of** them."
        );
        assert_eq!(
            issue.field::<Vec<String>>("labels"),
            Some(vec!["security".into(), "q3".into()])
        );
        assert_eq!(issue.fields["priority"]["name"], "High");
        assert_eq!(issue.status().unwrap().name, "To Do");
        assert_eq!(issue.properties["bridge.source"], json!({"id": "src-1"}));

        // Entity properties.
        assert_eq!(
            c.get_issue_property(&created.key, "bridge.source")
                .await
                .unwrap(),
            Some(json!({"id": "src-1"}))
        );
        assert!(c
            .set_issue_property(&created.key, "other", &json!([1, 2]))
            .await
            .unwrap());
        assert!(!c
            .set_issue_property(&created.key, "other", &json!([3]))
            .await
            .unwrap());
        let mut keys = c.issue_property_keys(&created.key).await.unwrap();
        keys.sort();
        assert_eq!(keys, ["bridge.source", "other"]);
        c.delete_issue_property(&created.key, "other")
            .await
            .unwrap();
        assert_eq!(
            c.get_issue_property(&created.key, "other").await.unwrap(),
            None
        );
        assert!(matches!(
            c.get_issue_property("OPS-99999", "other").await,
            Err(Error::NotFound { .. })
        ));

        // Edit.
        c.edit_issue(
            &created.key,
            &IssueInput::new().summary("Rotate all keys"),
            true,
        )
        .await
        .unwrap();
        let issue = c
            .get_issue(
                &created.key,
                &GetIssue {
                    fields: vec!["summary".into()],
                    ..GetIssue::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(issue.summary().as_deref(), Some("Rotate all keys"));

        // Comments.
        let first = c
            .add_comment(&created.key, text_body(&sim, "first"))
            .await
            .unwrap();
        c.add_comment(&created.key, text_body(&sim, "second"))
            .await
            .unwrap();
        let comments: Vec<_> = c.comments(&created.key).try_collect().await.unwrap();
        assert_eq!(comments.len(), 2);
        assert_eq!(comments[0].id, first.id);
        assert_eq!(comments[1].body, text_body(&sim, "second"));

        // Delete.
        c.delete_issue(&created.key, false).await.unwrap();
        match c.get_issue(&created.key, &GetIssue::default()).await {
            Err(Error::NotFound { ctx, .. }) => {
                assert_eq!(ctx.method, http::Method::GET);
                assert_eq!(ctx.path, format!("{}/issue/{}", api(&sim), created.key));
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn bulk_create_chunks_by_50_and_maps_results_to_inputs() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        let inputs: Vec<IssueInput> = (0..120)
            .map(|i| {
                let input = IssueInput::new()
                    .project_key("OPS")
                    .summary(&format!("bulk {i}"));
                if i == 5 || i == 77 {
                    input.issue_type_name("No Such Type")
                } else {
                    input.issue_type_name("Task")
                }
            })
            .collect();
        let results = c.bulk_create(&inputs).await;
        assert_eq!(results.len(), 120);
        for (i, r) in results.iter().enumerate() {
            match r {
                BulkCreateItem::Rejected {
                    field_errors,
                    messages,
                    ..
                } if i == 5 || i == 77 => {
                    assert!(
                        field_errors.contains_key("issuetype") || !messages.is_empty(),
                        "{field_errors:?} {messages:?}"
                    );
                }
                BulkCreateItem::Created(created) if i != 5 && i != 77 => {
                    let got = c
                        .get_issue(
                            &created.key,
                            &GetIssue {
                                fields: vec!["summary".into()],
                                ..GetIssue::default()
                            },
                        )
                        .await
                        .unwrap();
                    assert_eq!(
                        got.summary(),
                        Some(format!("bulk {i}")),
                        "result {i} maps to input {i}"
                    );
                }
                other => panic!("unexpected result {i}: {other:?}"),
            }
        }
        let s = stats(&sim).await;
        assert_eq!(
            count(&s, "POST", &format!("{}/issue/bulk", api(&sim)), None),
            3
        );
    }
}

#[tokio::test]
async fn bulk_create_all_rejected_keeps_per_element_errors() {
    let sim = sim(jira_sim::Flavor::Cloud).await;
    let c = client(&sim);
    let inputs = vec![IssueInput::new().project_key("OPS").issue_type_name("Task"); 2];
    let results = c.bulk_create(&inputs).await;
    assert_eq!(results.len(), 2);
    for r in &results {
        match r {
            BulkCreateItem::Rejected { field_errors, .. } => {
                assert!(field_errors.contains_key("summary"), "{field_errors:?}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn remote_links_upsert_by_global_id() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        let issue = create_task(&c, "OPS", "linked").await;
        let link = RemoteLink {
            global_id: "system=https://ci.example&id=7".into(),
            application: Some(json!({"type": "com.example.ci", "name": "CI"})),
            relationship: Some("built by".into()),
            object: RemoteLinkObject {
                url: "https://ci.example/7".into(),
                title: "Build 7".into(),
                ..RemoteLinkObject::default()
            },
        };
        let first = c.upsert_remote_link(&issue.key, &link).await.unwrap();
        assert!(first.created);
        let mut again = link.clone();
        again.object.title = "Build 7 (green)".into();
        let second = c.upsert_remote_link(&issue.key, &again).await.unwrap();
        assert!(!second.created);
        assert_eq!(first.id, second.id);
        let all = c.remote_links(&issue.key, None).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].object.title, "Build 7 (green)");
        let one = c
            .remote_links(&issue.key, Some(&link.global_id))
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        c.delete_remote_link(&issue.key, &link.global_id)
            .await
            .unwrap();
        assert!(c
            .remote_links(&issue.key, Some(&link.global_id))
            .await
            .unwrap()
            .is_empty());
        assert!(c.remote_links(&issue.key, None).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn epic_children_use_parent_on_cloud_and_epic_link_on_data_center() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        let fields = c.epic_fields().await.unwrap();
        let mut epic = IssueInput::new()
            .project_key("OPS")
            .issue_type_name("Epic")
            .summary("Checkout revamp");
        if let Some(name_field) = &fields.epic_name {
            epic = epic.field(name_field.clone(), json!("Checkout revamp"));
        }
        let epic = c.create_issue(&epic).await.unwrap();
        let (field, value) = c.epic_parent_field(&epic.key).await.unwrap();
        let story = c
            .create_issue(
                &IssueInput::new()
                    .project_key("OPS")
                    .issue_type_name("Story")
                    .summary("Pay by link")
                    .field(field.clone(), value),
            )
            .await
            .unwrap();
        let got = c
            .get_issue(
                &story.key,
                &GetIssue {
                    fields: vec![field.clone()],
                    ..GetIssue::default()
                },
            )
            .await
            .unwrap();
        if is_cloud(&sim) {
            assert_eq!(got.fields["parent"]["key"], epic.key.as_str());
        } else {
            assert_eq!(field, "customfield_10100");
            assert_eq!(got.fields[&field], epic.key.as_str());
        }
    }
}
