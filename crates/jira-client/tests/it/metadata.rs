use futures::TryStreamExt;
use jira_client::{AssignableScope, Deployment, ProjectQuery};

use crate::common::*;

#[tokio::test]
async fn server_info_myself_and_flavor_detection() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        let me = c.myself().await.unwrap();
        assert_eq!(me.email_address.as_deref(), Some(EMAIL));
        assert_eq!(me.display_name.as_deref(), Some("Alice Adler"));
        let info = c.server_info().await.unwrap();
        let auto = auto_client(&sim);
        let detected = auto.deployment().await.unwrap();
        if is_cloud(&sim) {
            assert!(me.account_id.is_some());
            assert_eq!(info.deployment_type.as_deref(), Some("Cloud"));
            assert_eq!(detected, Deployment::Cloud);
        } else {
            assert_eq!(me.name.as_deref(), Some("alice"));
            assert_ne!(info.deployment_type.as_deref(), Some("Cloud"));
            assert_eq!(detected, Deployment::DataCenter);
        }
        // The auto-detected client then talks the right API version.
        assert_eq!(
            auto.myself().await.unwrap().email_address.as_deref(),
            Some(EMAIL)
        );
    }
}

#[tokio::test]
async fn projects_issue_types_and_create_metadata() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        // Page size 1 forces paging on Cloud.
        let projects: Vec<_> = c
            .projects(ProjectQuery {
                page_size: Some(1),
                ..ProjectQuery::default()
            })
            .try_collect()
            .await
            .unwrap();
        let keys: Vec<&str> = projects.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"WEB") && keys.contains(&"OPS"), "{keys:?}");
        if is_cloud(&sim) {
            let pages = count(
                &stats(&sim).await,
                "GET",
                "/rest/api/3/project/search",
                Some(200),
            );
            assert_eq!(
                pages as usize,
                projects.len(),
                "one page per project at page size 1"
            );
        }
        let filtered: Vec<_> = c
            .projects(ProjectQuery {
                keys: vec!["OPS".into()],
                ..ProjectQuery::default()
            })
            .try_collect()
            .await
            .unwrap();
        assert_eq!(filtered.len(), 1);
        assert_eq!(filtered[0].name, "Operations");

        let ops = c.project("OPS").await.unwrap();
        assert_eq!(ops.key, "OPS");
        let type_names: Vec<String> = c
            .project_issue_types("OPS")
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert!(type_names.contains(&"Bug".to_string()), "{type_names:?}");

        let types = c.create_meta_issue_types("OPS").await.unwrap();
        let bug = types.iter().find(|t| t.name == "Bug").expect("Bug type");
        let sub = types
            .iter()
            .find(|t| t.name == "Sub-task")
            .expect("Sub-task type");
        assert!(sub.subtask);
        let fields = c.create_meta_fields("OPS", &bug.id).await.unwrap();
        let severity = fields
            .iter()
            .find(|f| f.field_id == "customfield_10020")
            .expect("Severity on the Bug screen");
        assert!(severity.required);
        assert_eq!(severity.allowed_values.len(), 3);
        let summary = fields
            .iter()
            .find(|f| f.field_id == "summary")
            .expect("summary");
        assert!(summary.required);
    }
}

#[tokio::test]
async fn fields_priorities_statuses_and_epic_fields() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        let fields = c.fields().await.unwrap();
        assert!(fields.iter().any(|f| f.id == "summary" && !f.custom));
        assert!(fields
            .iter()
            .any(|f| f.id == "customfield_10020" && f.custom));

        let prios: Vec<String> = c
            .priorities()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(prios, ["Highest", "High", "Medium", "Low", "Lowest"]);

        let statuses = c.statuses().await.unwrap();
        let done = statuses.iter().find(|s| s.name == "Done").expect("Done");
        assert_eq!(done.category_key(), Some("done"));

        let per_type = c.project_statuses("OPS").await.unwrap();
        assert!(!per_type.is_empty());
        for t in &per_type {
            let names: Vec<&str> = t.statuses.iter().map(|s| s.name.as_str()).collect();
            assert!(
                names.contains(&"To Do") && names.contains(&"Done"),
                "{names:?}"
            );
        }

        let cats: Vec<String> = c
            .status_categories()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.key)
            .collect();
        for k in ["new", "indeterminate", "done"] {
            assert!(cats.iter().any(|c| c == k), "{cats:?}");
        }

        let epic = c.epic_fields().await.unwrap();
        let (field, value) = c.epic_parent_field("OPS-1").await.unwrap();
        if is_cloud(&sim) {
            assert_eq!(epic.epic_link, None);
            assert_eq!(field, "parent");
            assert_eq!(value, serde_json::json!({"key": "OPS-1"}));
        } else {
            assert_eq!(epic.epic_link.as_deref(), Some("customfield_10100"));
            assert_eq!(epic.epic_name.as_deref(), Some("customfield_10101"));
            assert_eq!(field, "customfield_10100");
            assert_eq!(value, serde_json::json!("OPS-1"));
        }
    }
}

#[tokio::test]
async fn users_search_assignable_and_email_resolution_with_cache() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        let found = c.search_users("bob", 10).await.unwrap();
        assert!(found
            .iter()
            .any(|u| u.display_name.as_deref() == Some("Bob Brown")));

        let assignable = c
            .assignable_users(&AssignableScope::Project("OPS".into()), None, 50)
            .await
            .unwrap();
        assert!(!assignable.is_empty());

        let bob = c
            .user_by_email("Bob@Example.com")
            .await
            .unwrap()
            .expect("bob resolves");
        assert_eq!(bob.display_name.as_deref(), Some("Bob Brown"));
        let before = count(
            &stats(&sim).await,
            "GET",
            &format!("{}/user/search", api(&sim)),
            None,
        );
        let id = c
            .account_id_for_email("bob@example.com")
            .await
            .unwrap()
            .expect("cached");
        let after = count(
            &stats(&sim).await,
            "GET",
            &format!("{}/user/search", api(&sim)),
            None,
        );
        assert_eq!(before, after, "second resolution served from the cache");
        if is_cloud(&sim) {
            assert_eq!(Some(id.clone()), bob.account_id);
            assert_eq!(bob.reference(), Some(jira_client::UserRef::AccountId(id)));
        } else {
            assert_eq!(id, "bob");
        }
        assert!(c
            .user_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_none());
    }
}
