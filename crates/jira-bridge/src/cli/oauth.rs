//! `jira-bridge connections oauth`: the OAuth 2.0 (3LO) round trip from a terminal.
//!
//! The command listens on a free loopback port, starts the authorization with that
//! address as `return_to`, prints (and with `--open` opens) the consent URL, and waits
//! for the browser to come back: the service's callback redirects it to the loopback
//! address with `status=connected&connection_id=…` or
//! `status=selection_required&selection_id=…`. A selection is completed with the site
//! named by `--site` (or the only one). When the service does not allow loopback
//! `return_to` addresses, the command falls back to waiting for the new connection
//! to appear in `GET /v1/connections`.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::client::{enc, Api};
use super::output::{print_json, s};
use super::Exit;

/// Options of `connections oauth`.
pub struct OAuthOptions<'a> {
    /// Owner of the new connection.
    pub owner: Option<&'a str>,
    /// Display name.
    pub name: Option<&'a str>,
    /// An explicit `return_to`: the command then only prints the URL.
    pub return_to: Option<&'a str>,
    /// The site to pick when the grant covers several (name, URL or cloud id).
    pub site: Option<&'a str>,
    /// Print the URL and exit.
    pub no_wait: bool,
    /// Open the URL in the default browser.
    pub open: bool,
}

const DONE_PATH: &str = "/jira-bridge/oauth-done";

/// Run the round trip; prints the connection made.
pub async fn run(api: &Api, o: &OAuthOptions<'_>, json: bool) -> anyhow::Result<()> {
    if o.no_wait || o.return_to.is_some() {
        let v = start(api, o, o.return_to).await?;
        if json {
            print_json(&v);
        } else {
            println!("Open this URL in a browser to connect Jira:");
            println!("{}", s(&v, "authorization_url"));
        }
        return Ok(());
    }
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on a loopback port: {e}"))?;
    let return_to = format!("http://{}{DONE_PATH}", listener.local_addr()?);
    let before = connection_ids(api).await?;
    let (started, loopback) = match start(api, o, Some(&return_to)).await {
        Ok(v) => (v, true),
        Err(e) if is_usage(&e) => (start(api, o, None).await?, false),
        Err(e) => return Err(e),
    };
    let url = s(&started, "authorization_url").to_string();
    eprintln!("Open this URL in a browser to connect Jira:\n{url}");
    if o.open {
        open_browser(&url);
    }
    let wait = started["expires_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| {
            (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .ok()
        })
        .unwrap_or(Duration::from_secs(600));
    eprintln!("Waiting for the browser (Ctrl-C stops waiting)…");
    let connection = tokio::select! {
        c = async {
            if loopback {
                from_redirect(api, &listener, o.site).await
            } else {
                new_connection(api, &before).await
            }
        } => c?,
        _ = tokio::time::sleep(wait) => {
            return Err(Exit::Partial("the authorization expired before the browser came back".into()).into())
        }
        _ = tokio::signal::ctrl_c() => {
            return Err(Exit::Partial("stopped waiting for the browser".into()).into())
        }
    };
    if json {
        print_json(&connection);
    } else {
        println!(
            "connected {}  {}  {}  as {}",
            s(&connection, "id"),
            s(&connection, "name"),
            s(&connection, "base_url"),
            connection
                .get("email")
                .or_else(|| connection.get("account_name"))
                .and_then(Value::as_str)
                .unwrap_or("-")
        );
    }
    Ok(())
}

fn is_usage(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<Exit>(), Some(Exit::Usage(_)))
}

async fn start(api: &Api, o: &OAuthOptions<'_>, return_to: Option<&str>) -> anyhow::Result<Value> {
    let body = json!({"owner": o.owner, "name": o.name, "return_to": return_to});
    api.call(Method::POST, "/v1/oauth/start", Some(&body)).await
}

async fn connection_ids(api: &Api) -> anyhow::Result<HashSet<String>> {
    let v = api.call(Method::GET, "/v1/connections", None).await?;
    Ok(v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| s(c, "id").to_string())
        .collect())
}

/// Without a loopback redirect: the connection that was not there before.
async fn new_connection(api: &Api, before: &HashSet<String>) -> anyhow::Result<Value> {
    loop {
        let v = api.call(Method::GET, "/v1/connections", None).await?;
        if let Some(c) = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| !before.contains(s(c, "id")))
        {
            return Ok(c.clone());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Serve the loopback address until the browser comes back to [`DONE_PATH`], then
/// finish the connection.
async fn from_redirect(
    api: &Api,
    listener: &TcpListener,
    site: Option<&str>,
) -> anyhow::Result<Value> {
    let query = loop {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&buf);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (code, body) = if path == DONE_PATH {
            (
                "200 OK",
                "jira-bridge: done. You can close this window and return to the terminal.",
            )
        } else {
            ("404 Not Found", "not found")
        };
        let reply = format!(
            "HTTP/1.1 {code}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
        if path == DONE_PATH {
            break query.to_string();
        }
    };
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    match get("status") {
        "connected" => {
            api.call(
                Method::GET,
                &format!("/v1/connections/{}", enc(get("connection_id"))),
                None,
            )
            .await
        }
        "selection_required" => select_site(api, get("selection_id"), site).await,
        _ => Err(Exit::Partial(format!(
            "Jira did not connect: {}",
            params
                .get("error")
                .map(String::as_str)
                .unwrap_or("unknown error")
        ))
        .into()),
    }
}

/// The grant covers several sites: pick `site` (or the only one).
async fn select_site(api: &Api, id: &str, site: Option<&str>) -> anyhow::Result<Value> {
    let path = format!("/v1/oauth/selections/{}", enc(id));
    let sel = api.call(Method::GET, &path, None).await?;
    let sites: Vec<&Value> = sel["sites"].as_array().into_iter().flatten().collect();
    let names = || {
        sites
            .iter()
            .map(|x| format!("{} ({})", s(x, "name"), s(x, "url")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match (site, sites.as_slice()) {
        (None, [one]) => *one,
        (None, _) => {
            return Err(Exit::Usage(format!(
                "the grant covers several sites: {}; run again with --site NAME",
                names()
            ))
            .into())
        }
        (Some(want), _) => sites
            .iter()
            .copied()
            .find(|x| {
                [s(x, "name"), s(x, "url"), s(x, "cloud_id")]
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(want) || v.trim_end_matches('/') == want)
            })
            .ok_or_else(|| {
                Exit::Usage(format!(
                    "--site {want} is not one of the granted sites: {}",
                    names()
                ))
            })?,
    };
    let body = json!({"cloud_id": s(chosen, "cloud_id")});
    api.call(Method::POST, &path, Some(&body)).await
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        eprintln!("cannot open a browser ({opener}: {e}); open the URL yourself");
    }
}
