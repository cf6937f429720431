//! Checking a base URL and credentials before anything is stored: is the address
//! allowed, does anything answer, is it Jira, is it the kind of Jira the connection
//! kind needs, and does it accept the credentials.

use std::time::Duration;

use jira_client::SiteConfig;
use serde::Deserialize;

use super::errors::{jira_messages, ConnectionError};
use super::{net, Kind, TokenCredentials};
use crate::config::Config;
use crate::http::ApiError;

/// What verification found.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Normalised base URL.
    pub base_url: String,
    /// `Cloud` or `DataCenter`.
    pub deployment: String,
    /// Jira version.
    pub version: Option<String>,
    /// Server title (site name).
    pub server_title: Option<String>,
    /// Account id (Cloud) or user name (Data Center).
    pub account_id: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Email Jira reports for the user (may be hidden).
    pub email: Option<String>,
    /// The email used for Basic auth (Cloud API tokens).
    pub email_for_auth: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnonymousServerInfo {
    #[serde(default)]
    deployment_type: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    server_title: Option<String>,
    #[serde(default)]
    version_numbers: Option<Vec<i64>>,
}

/// A site URL without trailing slashes.
pub fn normalise_site_url(s: &str) -> String {
    s.trim().trim_end_matches('/').to_owned()
}

fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Run every check; the first failure is the answer.
pub async fn probe(config: &Config, creds: &TokenCredentials) -> Result<Probe, ConnectionError> {
    let url = net::parse_base_url(&creds.base_url)?;
    let email = match creds.kind {
        Kind::CloudToken => {
            let e = creds.email.as_deref().map(str::trim).unwrap_or_default();
            if e.is_empty() || !e.contains('@') {
                return Err(ConnectionError::Api(ApiError::invalid_field(
                    "email",
                    "a Jira Cloud API token is used with the email of its Atlassian account",
                )));
            }
            Some(e.to_owned())
        }
        Kind::DcPat => None,
        Kind::CloudOauth => {
            return Err(ConnectionError::Api(ApiError::invalid_field(
                "kind",
                "OAuth connections are made with POST /v1/oauth/start",
            )))
        }
    };
    {
        use secrecy::ExposeSecret;
        let t = creds.token.expose_secret();
        if t.trim().is_empty() || t.len() > 4096 || t.chars().any(char::is_control) {
            return Err(ConnectionError::Api(ApiError::invalid_field(
                "token",
                "must be a non-empty token without spaces around it",
            )));
        }
    }
    net::guard(&url, config.security.allow_private_hosts).await?;
    let host = url.host_str().unwrap_or_default().to_owned();

    // 1. Anonymous serverInfo: is it Jira, and which kind?
    let http = crate::net_guard::client_builder(crate::net_guard::UrlPolicy::from_config(config))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("jira-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConnectionError::Api(ApiError::internal(e)))?;
    let mut info_url = url.clone();
    if let Ok(mut segs) = info_url.path_segments_mut() {
        segs.pop_if_empty()
            .extend(["rest", "api", "2", "serverInfo"]);
    }
    let resp = http
        .get(info_url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            let e = e.without_url();
            ConnectionError::Unreachable(format!(
                "nothing answered at {host}: {}; check the base URL and that the server is reachable from this service",
                describe(&e)
            ))
        })?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.bytes().await.unwrap_or_default();
    let not_jira = |why: &str| {
        ConnectionError::NotJira(format!(
            "{} does not look like a Jira site ({why}); give the address you open Jira at, e.g. https://your-site.atlassian.net or https://jira.example.com/jira",
            url.as_str()
        ))
    };
    let info: Option<AnonymousServerInfo> = match status {
        200..=299 => {
            let parsed: AnonymousServerInfo = serde_json::from_slice(&body)
                .map_err(|_| not_jira("its /rest/api/2/serverInfo is not Jira's JSON"))?;
            if parsed.deployment_type.is_none()
                && parsed.version.is_none()
                && parsed.version_numbers.is_none()
            {
                return Err(not_jira("its /rest/api/2/serverInfo has no Jira version"));
            }
            Some(parsed)
        }
        300..=399 => {
            return Err(not_jira(&format!(
                "it redirects to {}; use the final address",
                location.as_deref().unwrap_or("another address")
            )))
        }
        // Anonymous access may be switched off: judge by the authenticated calls.
        401 | 403 => None,
        s => {
            return Err(not_jira(&format!(
                "/rest/api/2/serverInfo answered HTTP {s}"
            )))
        }
    };
    let deployment = info.as_ref().and_then(|i| i.deployment_type.clone());
    let is_cloud = deployment
        .as_deref()
        .map(|d| d.eq_ignore_ascii_case("cloud"));
    let version = info.as_ref().and_then(|i| i.version.clone());
    match (creds.kind, is_cloud) {
        (Kind::CloudToken, Some(false)) => {
            return Err(ConnectionError::WrongDeployment(format!(
                "{} is Jira Data Center / Server (version {}), not Jira Cloud: connect it with kind dc_pat and a personal access token",
                url.as_str(),
                version.as_deref().unwrap_or("unknown")
            )))
        }
        (Kind::DcPat, Some(true)) => {
            return Err(ConnectionError::WrongDeployment(format!(
                "{} is Jira Cloud, not Data Center: connect it with kind cloud_token (email and API token) or with OAuth",
                url.as_str()
            )))
        }
        _ => {}
    }

    // 2. Credentials: who are we?
    let site = match creds.kind {
        Kind::CloudToken => SiteConfig::cloud_basic(
            url.clone(),
            email.clone().unwrap_or_default(),
            creds.token.clone(),
        ),
        _ => SiteConfig::data_center_pat(url.clone(), creds.token.clone()),
    };
    let client = super::jira_client(site, config)
        .build()
        .map_err(|e| ConnectionError::Api(ApiError::invalid_field("base_url", e.to_string())))?;
    let me = match client.myself().await {
        Ok(me) => me,
        Err(e) => {
            let jira = jira_messages(&e).unwrap_or_default();
            return Err(match &e {
                jira_client::Error::Unauthorized { .. } | jira_client::Error::Forbidden { .. } => {
                    ConnectionError::CredentialsRejected {
                        detail: match creds.kind {
                            Kind::CloudToken => format!(
                                "Jira at {host} rejected the email and API token (HTTP {}); check that the token belongs to {} and has not expired or been revoked (id.atlassian.com → Security → API tokens)",
                                jira.status.unwrap_or(401),
                                email.as_deref().unwrap_or("that account")
                            ),
                            _ => format!(
                                "Jira at {host} rejected the personal access token (HTTP {}); check that it has not expired or been revoked (Profile → Personal Access Tokens)",
                                jira.status.unwrap_or(401)
                            ),
                        },
                        jira,
                    }
                }
                jira_client::Error::Transport { message, .. } => ConnectionError::Unreachable(format!(
                    "{host} stopped answering during verification: {message}"
                )),
                jira_client::Error::Timeout { .. } => {
                    ConnectionError::Unreachable(format!("{host} did not answer in time"))
                }
                jira_client::Error::NotFound { .. } | jira_client::Error::Decode { .. } => {
                    not_jira("it has no Jira REST API for the current user")
                }
                other => super::errors::from_jira(other),
            });
        }
    };
    Ok(Probe {
        base_url: url.as_str().trim_end_matches('/').to_owned(),
        deployment: match is_cloud {
            Some(true) => "Cloud".into(),
            Some(false) => "DataCenter".into(),
            None if creds.kind == Kind::CloudToken => "Cloud".into(),
            None => "DataCenter".into(),
        },
        version,
        server_title: info.and_then(|i| i.server_title),
        account_id: me.account_id.clone().or_else(|| me.name.clone()),
        display_name: me.display_name.clone(),
        email: me.email_address.clone(),
        email_for_auth: email,
    })
}
