use std::collections::HashSet;

use futures::TryStreamExt;
use jira_client::{Error, IssueInput, SearchRequest};

use crate::common::*;

#[tokio::test]
async fn search_streams_every_page_with_selected_fields() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        let inputs: Vec<IssueInput> = (0..12)
            .map(|i| {
                IssueInput::new()
                    .project_key("OPS")
                    .issue_type_name("Task")
                    .summary(&format!("needle {i}"))
                    .labels(["needle"])
            })
            .collect();
        let created = c.bulk_create(&inputs).await;
        let keys: HashSet<String> = created
            .iter()
            .map(|r| r.created().unwrap().key.clone())
            .collect();

        let req = SearchRequest::new("project = OPS AND labels = needle ORDER BY key ASC")
            .fields(["summary", "status"])
            .page_size(5);
        let found: Vec<_> = c.search(req.clone()).try_collect().await.unwrap();
        assert_eq!(found.len(), 12);
        let found_keys: HashSet<String> = found.iter().map(|i| i.key.clone()).collect();
        assert_eq!(found_keys, keys);
        assert!(found
            .iter()
            .all(|i| i.summary().is_some_and(|s| s.starts_with("needle "))));
        assert!(found.iter().all(|i| i.status().is_some()));

        // Page by page with the opaque cursor.
        let p1 = c.search_page(&req, None).await.unwrap();
        assert_eq!(p1.issues.len(), 5);
        let cursor = p1.next_cursor.clone().expect("more pages");
        let p2 = c.search_page(&req, Some(&cursor)).await.unwrap();
        assert_eq!(p2.issues.len(), 5);
        assert!(p1
            .issues
            .iter()
            .all(|a| p2.issues.iter().all(|b| a.key != b.key)));

        let s = stats(&sim).await;
        if is_cloud(&sim) {
            assert!(count(&s, "POST", "/rest/api/3/search/jql", Some(200)) >= 3);
            assert_eq!(count(&s, "POST", "/rest/api/3/search", None), 0);
        } else {
            assert!(count(&s, "POST", "/rest/api/2/search", Some(200)) >= 3);
        }

        // A JQL error surfaces Jira's message.
        match c
            .search(SearchRequest::new("project = OPS AND nosuchfield = 1"))
            .try_collect::<Vec<_>>()
            .await
        {
            Err(Error::Validation {
                status, messages, ..
            }) => {
                assert_eq!(status, 400);
                assert!(!messages.is_empty());
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn bulk_fetch_and_picker() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        let a = create_task(&c, "OPS", "zebra crossing").await;
        let b = create_task(&c, "OPS", "zebra stripes").await;
        let fetched = c
            .bulk_fetch(
                &[a.key.clone(), b.id.clone(), "OPS-99999".into()],
                &["summary".into()],
            )
            .await
            .unwrap();
        let mut summaries: Vec<String> =
            fetched.issues.iter().filter_map(|i| i.summary()).collect();
        summaries.sort();
        assert_eq!(summaries, ["zebra crossing", "zebra stripes"]);

        let picked = c
            .issue_picker("zebra", Some("project = OPS"))
            .await
            .unwrap();
        let keys: Vec<&str> = picked
            .sections
            .iter()
            .flat_map(|s| s.issues.iter().map(|i| i.key.as_str()))
            .collect();
        assert!(
            keys.contains(&a.key.as_str()) && keys.contains(&b.key.as_str()),
            "{keys:?}"
        );
    }
}
