use jira_client::{ClientOptions, Error, GetIssue, IssueInput, SiteConfig};
use secrecy::SecretString;

use crate::common::*;

#[tokio::test]
async fn errors_are_typed_with_request_and_jira_messages() {
    for flavor in flavors() {
        let sim = sim(flavor).await;
        let c = client(&sim);
        match c
            .create_issue(&IssueInput::new().project_key("OPS").issue_type_name("Task"))
            .await
        {
            Err(e @ Error::Validation { .. }) => {
                let Error::Validation {
                    status,
                    ref field_errors,
                    ref ctx,
                    ..
                } = e
                else {
                    unreachable!()
                };
                assert_eq!(status, 400);
                assert!(field_errors.contains_key("summary"), "{field_errors:?}");
                assert_eq!(ctx.method, http::Method::POST);
                assert_eq!(ctx.path, format!("{}/issue", api(&sim)));
                assert!(e.to_string().contains("summary"), "{e}");
            }
            other => panic!("expected Validation, got {other:?}"),
        }
        assert!(matches!(
            c.get_issue("NOPE-1", &GetIssue::default()).await,
            Err(Error::NotFound { .. })
        ));

        // Wrong credentials: 401, and the secret appears nowhere in the error.
        let base = sim.base_url().parse().unwrap();
        let bad = if is_cloud(&sim) {
            SiteConfig::cloud_basic(base, EMAIL, SecretString::from("wrong-secret-value"))
        } else {
            SiteConfig::data_center_pat(base, SecretString::from("wrong-secret-value"))
        };
        let bad = client_with(bad, test_pacer(), ClientOptions::default());
        match bad.myself().await {
            Err(e @ Error::Unauthorized { .. }) => {
                let text = format!("{e} {e:?}");
                assert!(!text.contains("wrong-secret-value"), "{text}");
                assert_eq!(bad.stats().retries, 0, "401 is not retried");
            }
            other => panic!("expected Unauthorized, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unreachable_host_is_a_transport_error() {
    // A port nothing listens on: bind, note the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let site = SiteConfig::cloud_basic(
        format!("http://127.0.0.1:{port}").parse().unwrap(),
        EMAIL,
        SecretString::from(API_TOKEN),
    );
    let c = client_with(site, test_pacer(), ClientOptions::default());
    match c.myself().await {
        Err(Error::Transport { ctx, .. }) => assert_eq!(ctx.path, "/rest/api/3/myself"),
        other => panic!("expected Transport, got {other:?}"),
    }
    let s = c.stats();
    assert_eq!(s.retries, 4, "connect failures are retried");
    assert_eq!(s.transport_errors, 5);
}
