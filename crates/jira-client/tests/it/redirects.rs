use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jira_client::{ClientOptions, Error, SiteConfig};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::*;

/// A tiny HTTP/1.1 server answering every request with `response`, counting requests
/// and remembering whether any carried an Authorization header.
async fn server(response: String) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let with_auth = Arc::new(AtomicUsize::new(0));
    let (h, a) = (hits.clone(), with_auth.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (h, a, response) = (h.clone(), a.clone(), response.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                if String::from_utf8_lossy(&buf)
                    .to_ascii_lowercase()
                    .contains("\r\nauthorization:")
                {
                    a.fetch_add(1, Ordering::SeqCst);
                }
                let _ = sock.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, hits, with_auth)
}

fn json_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        body.len(),
        body
    )
}

fn redirect_to(location: &str) -> String {
    format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
}

#[tokio::test]
async fn credentials_never_follow_a_cross_origin_redirect() {
    let (other, other_hits, _) = server(json_response(r#"{"accountId":"evil"}"#)).await;
    let (site_url, site_hits, site_auth) = server(redirect_to(&format!("{other}/steal"))).await;
    let site = SiteConfig::cloud_basic(
        site_url.parse().unwrap(),
        EMAIL,
        SecretString::from(API_TOKEN),
    );
    let c = client_with(site, test_pacer(), ClientOptions::default());
    match c.myself().await {
        Err(Error::Transport { message, .. }) => assert!(message.contains("redirect"), "{message}"),
        other => panic!("expected the redirect to be refused, got {other:?}"),
    }
    assert_eq!(site_hits.load(Ordering::SeqCst), 1);
    assert_eq!(site_auth.load(Ordering::SeqCst), 1);
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "the other origin was never contacted"
    );
}

#[tokio::test]
async fn same_origin_redirects_are_followed() {
    // One server that redirects /rest/api/3/myself to /moved and answers /moved.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&buf).to_string();
                let resp = if req.starts_with("GET /moved") {
                    json_response(r#"{"accountId":"abc","displayName":"Moved"}"#)
                } else {
                    redirect_to("/moved")
                };
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    let site = SiteConfig::cloud_basic(base.parse().unwrap(), EMAIL, SecretString::from(API_TOKEN));
    let c = client_with(site, test_pacer(), ClientOptions::default());
    let me = c.myself().await.unwrap();
    assert_eq!(me.display_name.as_deref(), Some("Moved"));
}
