use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use jira_client::{ClientOptions, GetIssue, SiteConfig};
use secrecy::SecretString;

use crate::common::*;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything the client (and the HTTP stack under it) logs at trace level carries
/// neither the API token nor the encoded Basic credentials.
#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = sim(jira_sim::Flavor::Cloud).await;
    let c = client(&sim);
    c.myself().await.unwrap();
    let _ = c.get_issue("NOPE-1", &GetIssue::default()).await;
    let bad = client_with(
        SiteConfig::cloud_basic(
            sim.base_url().parse().unwrap(),
            EMAIL,
            SecretString::from("bad-token-xyz"),
        ),
        test_pacer(),
        ClientOptions::default(),
    );
    let _ = bad.myself().await;

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("jira answer"), "the client did log: {logs}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{API_TOKEN}"));
    for secret in [API_TOKEN, basic.as_str(), "bad-token-xyz"] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}
