use jira_client::{Category, Error, GetIssue, Target};

use crate::common::*;

#[tokio::test]
async fn transition_to_walks_a_strict_workflow() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        // OPS uses To Do → In Progress → In Review → Done.
        let issue = create_task(&c, "OPS", "walk me").await;
        let available = c.transitions(&issue.key).await.unwrap();
        assert_eq!(available.len(), 1);
        assert_eq!(available[0].to.name, "In Progress");

        let out = c
            .transition_to(&issue.key, &Target::Category(Category::Done))
            .await
            .unwrap();
        assert_eq!(out.status.name, "Done");
        assert_eq!(out.path, ["Start Progress", "Request Review", "Done"]);
        let now = c
            .get_issue(
                &issue.key,
                &GetIssue {
                    fields: vec!["status".into()],
                    ..GetIssue::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(now.status().unwrap().category_key(), Some("done"));

        // Already there: nothing to do.
        let out = c
            .transition_to(&issue.key, &Target::Status("done".into()))
            .await
            .unwrap();
        assert!(out.path.is_empty());

        // Back to a named status using the learned graph: Done → To Do → In Progress.
        let out = c
            .transition_to(&issue.key, &Target::Status("In Progress".into()))
            .await
            .unwrap();
        assert_eq!(out.path, ["Reopen", "Start Progress"]);

        // A direct transition by id.
        let t = c.transitions(&issue.key).await.unwrap();
        let review = t.iter().find(|t| t.to.name == "In Review").unwrap();
        c.do_transition(&issue.key, &review.id, None).await.unwrap();
        let now = c
            .get_issue(
                &issue.key,
                &GetIssue {
                    fields: vec!["status".into()],
                    ..GetIssue::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(now.status().unwrap().name, "In Review");

        // Unknown status: a clear error naming the available transitions.
        match c
            .transition_to(&issue.key, &Target::Status("Blocked".into()))
            .await
        {
            Err(Error::NoTransitionPath {
                available, current, ..
            }) => {
                assert!(!available.is_empty());
                assert!(!current.is_empty());
                let text = Error::NoTransitionPath {
                    issue: issue.key.clone(),
                    target: "status \"Blocked\"".into(),
                    current,
                    available,
                }
                .to_string();
                assert!(text.contains("available transitions"), "{text}");
            }
            other => panic!("expected NoTransitionPath, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn transition_to_category_in_an_open_workflow_is_one_hop() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        let issue = create_task(&c, "WEB", "open workflow").await;
        let out = c
            .transition_to(&issue.key, &Target::Category(Category::Done))
            .await
            .unwrap();
        assert_eq!(out.path.len(), 1);
        assert_eq!(out.status.category_key(), Some("done"));
        let out = c
            .transition_to(&issue.key, &Target::Category(Category::InProgress))
            .await
            .unwrap();
        assert_eq!(out.path.len(), 1);
        assert_eq!(out.status.category_key(), Some("indeterminate"));
    }
}
