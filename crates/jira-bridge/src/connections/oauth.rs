//! The Atlassian OAuth 2.0 (3LO) app: authorization URL, code exchange, refresh,
//! accessible resources, and the signed single-use `state`.
//!
//! The token calls are plain `reqwest` rather than the `oauth2` crate: Atlassian
//! documents JSON bodies for its token endpoint (the crate sends forms), and refresh
//! handling needs the exact `error` code of a refusal (`invalid_grant` decides between
//! "someone else refreshed" and "the grant is gone"), which is simplest to read from
//! the raw answer.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::OAuthConfig;

/// The configured OAuth app (only when `oauth.client_id` is set).
pub struct OAuthApp {
    pub(crate) client_id: String,
    client_secret: SecretString,
    pub(crate) redirect_uri: String,
    authorize_url: Url,
    token_url: Url,
    pub(crate) api_url: Url,
    pub(crate) scopes: Vec<String>,
    pub(crate) return_to_origins: Vec<String>,
    state_key: [u8; 32],
    http: reqwest::Client,
}

impl fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("redirect_uri", &self.redirect_uri)
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

/// An access token and the refresh token that came with it.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenPair {
    /// Access token.
    pub access_token: String,
    /// Refresh token.
    pub refresh_token: String,
    /// Unix time after which the pair is refreshed proactively.
    #[serde(default)]
    pub refresh_after: Option<i64>,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("refresh_after", &self.refresh_after)
            .finish_non_exhaustive()
    }
}

/// What the token endpoint answered.
pub struct Granted {
    /// The tokens (the refresh token is the old one when Atlassian sent none).
    pub access_token: SecretString,
    /// The new refresh token, if any.
    pub refresh_token: Option<SecretString>,
    /// Lifetime of the access token.
    pub expires_in: Option<Duration>,
    /// Granted scopes.
    pub scopes: Option<Vec<String>>,
}

/// Why a token call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenCallError {
    /// `invalid_grant`: the code or refresh token is not (or no longer) valid.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// Any other refusal (client credentials, request shape).
    #[error("token endpoint refused ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// `error` / `error_description`.
        message: String,
    },
    /// Network failure or a 5xx.
    #[error("token endpoint unavailable: {0}")]
    Unavailable(String),
}

/// One site of `accessible-resources`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Site {
    /// The cloud id.
    #[serde(alias = "id")]
    pub cloud_id: String,
    /// Site name.
    #[serde(default)]
    pub name: String,
    /// Site URL.
    #[serde(default)]
    pub url: String,
    /// Scopes granted on the site.
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Deserialize)]
struct RawToken {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

type HmacSha256 = Hmac<Sha256>;

impl OAuthApp {
    /// The app from the configuration; `None` when OAuth is off (no client id).
    pub fn from_config(cfg: &OAuthConfig) -> anyhow::Result<Option<Self>> {
        if cfg.client_id.trim().is_empty() {
            return Ok(None);
        }
        let Some(secret) = cfg.client_secret.clone() else {
            anyhow::bail!("oauth.client_secret is not set");
        };
        let mut k = Sha256::new();
        k.update(b"jira-bridge/oauth-state/v1\0");
        k.update(secret.expose_secret().as_bytes());
        let state_key: [u8; 32] = k.finalize().into();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("jira-bridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Some(Self {
            client_id: cfg.client_id.trim().to_owned(),
            client_secret: secret,
            redirect_uri: cfg.redirect_uri.clone(),
            authorize_url: Url::parse(&cfg.authorize_url)?,
            token_url: Url::parse(&cfg.token_url)?,
            api_url: Url::parse(&cfg.api_url)?,
            scopes: cfg.scopes.clone(),
            return_to_origins: cfg
                .return_to_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
            state_key,
            http,
        }))
    }

    /// Where to send the user (`audience=api.atlassian.com`, `prompt=consent`).
    pub fn authorization_url(&self, state: &str) -> Url {
        let mut u = self.authorize_url.clone();
        u.query_pairs_mut()
            .append_pair("audience", "api.atlassian.com")
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", &self.scopes.join(" "))
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("state", state)
            .append_pair("response_type", "code")
            .append_pair("prompt", "consent");
        u
    }

    async fn token_call(&self, body: serde_json::Value) -> Result<Granted, TokenCallError> {
        let resp = self
            .http
            .post(self.token_url.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| TokenCallError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| TokenCallError::Unavailable(e.without_url().to_string()))?;
        if !(200..300).contains(&status) {
            let err: RawError = serde_json::from_slice(&bytes).unwrap_or_default();
            let code = err.error.unwrap_or_default();
            let desc = err.error_description.unwrap_or_default();
            if code == "invalid_grant" {
                return Err(TokenCallError::InvalidGrant(desc));
            }
            if status >= 500 {
                return Err(TokenCallError::Unavailable(format!("status {status}")));
            }
            return Err(TokenCallError::Refused {
                status,
                message: format!("{code}: {desc}"),
            });
        }
        let raw: RawToken = serde_json::from_slice(&bytes)
            .map_err(|e| TokenCallError::Unavailable(format!("unreadable answer: {e}")))?;
        Ok(Granted {
            access_token: SecretString::from(raw.access_token),
            refresh_token: raw.refresh_token.map(SecretString::from),
            expires_in: raw.expires_in.map(Duration::from_secs),
            scopes: raw
                .scope
                .map(|s| s.split_whitespace().map(str::to_owned).collect()),
        })
    }

    /// Exchange an authorization code.
    pub async fn exchange_code(&self, code: &str) -> Result<Granted, TokenCallError> {
        self.token_call(serde_json::json!({
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
            "code": code,
            "redirect_uri": self.redirect_uri,
        }))
        .await
    }

    /// Redeem a refresh token (answers a new, rotated one).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Granted, TokenCallError> {
        self.token_call(serde_json::json!({
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
            "refresh_token": refresh_token,
        }))
        .await
    }

    /// The sites the access token reaches, in Atlassian's (meaningless) order.
    pub async fn accessible_resources(
        &self,
        access_token: &SecretString,
    ) -> Result<Vec<Site>, TokenCallError> {
        let mut url = self.api_url.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty()
                .extend(["oauth", "token", "accessible-resources"]);
        }
        let resp = self
            .http
            .get(url)
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(|e| TokenCallError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(TokenCallError::Refused {
                status,
                message: "accessible-resources refused the new access token".into(),
            });
        }
        resp.json()
            .await
            .map_err(|e| TokenCallError::Unavailable(e.without_url().to_string()))
    }

    /// Whether `return_to` may be redirected to: its origin is allow-listed, or it is
    /// an `http` loopback address (`127.0.0.1`, `[::1]`) whose port-less origin is
    /// allow-listed; any port then matches, as RFC 8252 §7.3 asks for native apps
    /// such as the command line, which listen on a free port.
    pub fn return_to_allowed(&self, return_to: &str) -> bool {
        Url::parse(return_to).is_ok_and(|u| {
            let origin = u.origin().ascii_serialization();
            let loopback = u.scheme() == "http"
                && match u.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    _ => false,
                };
            let any_port = format!("http://{}", u.host_str().unwrap_or_default());
            matches!(u.scheme(), "http" | "https")
                && self
                    .return_to_origins
                    .iter()
                    .any(|o| *o == origin || (loopback && *o == any_port))
        })
    }

    fn mac(&self, nonce: &str, tenant: &str, owner: Option<&str>, expires: i64) -> Vec<u8> {
        // The key is 32 bytes; HMAC accepts any length, so this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.state_key) {
            Ok(m) => m,
            Err(_) => return Vec::new(),
        };
        for part in [
            nonce,
            tenant,
            owner.unwrap_or("\u{0}none"),
            &expires.to_string(),
        ] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// A new state for a tenant and owner: `(state, stored id, …)`. The state is
    /// `nonce.expires.signature`; only the SHA-256 of the nonce is stored.
    pub fn new_state(&self, tenant: &str, owner: Option<&str>, expires: i64) -> (String, String) {
        let mut raw = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let nonce = URL_SAFE_NO_PAD.encode(raw);
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&nonce, tenant, owner, expires));
        let id = state_id(&nonce);
        (format!("{nonce}.{expires}.{sig}"), id)
    }

    /// Check a state's signature against what was stored for it.
    pub fn state_signature_ok(
        &self,
        parsed: &ParsedState,
        tenant: &str,
        owner: Option<&str>,
    ) -> bool {
        let expected = self.mac(&parsed.nonce, tenant, owner, parsed.expires);
        let Ok(given) = URL_SAFE_NO_PAD.decode(&parsed.signature) else {
            return false;
        };
        use subtle::ConstantTimeEq;
        !expected.is_empty() && bool::from(expected.ct_eq(&given))
    }
}

/// A state split into its parts.
#[derive(Debug, Clone)]
pub struct ParsedState {
    /// The random part.
    pub nonce: String,
    /// Expiry (Unix seconds).
    pub expires: i64,
    /// Signature (base64url).
    pub signature: String,
    /// Stored id (SHA-256 of the nonce).
    pub id: String,
}

/// Split a state; `None` when it is not one of ours.
pub fn parse_state(state: &str) -> Option<ParsedState> {
    let mut it = state.splitn(3, '.');
    let nonce = it.next()?.to_owned();
    let expires = it.next()?.parse().ok()?;
    let signature = it.next()?.to_owned();
    if nonce.is_empty() || nonce.len() > 64 || signature.len() > 128 {
        return None;
    }
    let id = state_id(&nonce);
    Some(ParsedState {
        nonce,
        expires,
        signature,
        id,
    })
}

fn state_id(nonce: &str) -> String {
    hex::encode(Sha256::digest(nonce.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn app() -> OAuthApp {
        let cfg = OAuthConfig {
            client_id: "cid".into(),
            client_secret: Some(SecretString::from("very-secret")),
            client_secret_file: None,
            redirect_uri: "https://bridge.example/v1/oauth/callback".into(),
            authorize_url: "https://auth.example/authorize".into(),
            token_url: "https://auth.example/oauth/token".into(),
            api_url: "https://api.example".into(),
            scopes: vec!["read:jira-work".into(), "offline_access".into()],
            return_to_origins: vec!["https://app.example".into()],
            state_ttl_seconds: 600,
            refresh_margin_seconds: 300,
            idle_refresh_days: 30,
        };
        OAuthApp::from_config(&cfg).unwrap().unwrap()
    }

    #[test]
    fn states_are_bound_to_tenant_and_owner() {
        let a = app();
        let (state, id) = a.new_state("ten_1", Some("u1"), 1_900_000_000);
        let p = parse_state(&state).unwrap();
        assert_eq!(p.id, id);
        assert!(a.state_signature_ok(&p, "ten_1", Some("u1")));
        assert!(!a.state_signature_ok(&p, "ten_2", Some("u1")));
        assert!(!a.state_signature_ok(&p, "ten_1", None));
        let forged = ParsedState {
            expires: p.expires + 1,
            ..p.clone()
        };
        assert!(!a.state_signature_ok(&forged, "ten_1", Some("u1")));
        assert!(parse_state("garbage").is_none());
    }

    #[test]
    fn loopback_return_to_matches_any_port_of_a_port_less_origin() {
        let mut a = app();
        assert!(a.return_to_allowed("https://app.example/done"));
        assert!(!a.return_to_allowed("http://127.0.0.1:4000/done"));
        a.return_to_origins.push("http://127.0.0.1".into());
        assert!(a.return_to_allowed("http://127.0.0.1:4000/done"));
        assert!(a.return_to_allowed("http://127.0.0.1:53111/"));
        assert!(!a.return_to_allowed("https://127.0.0.1:4000/"));
        assert!(!a.return_to_allowed("http://localhost:4000/"));
        assert!(!a.return_to_allowed("http://127.0.0.2.example:4000/"));
        assert!(!a.return_to_allowed("https://app.example:444/"));
    }

    #[test]
    fn authorization_url_and_return_to() {
        let a = app();
        let u = a.authorization_url("st");
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["scope"], "read:jira-work offline_access");
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["audience"], "api.atlassian.com");
        assert!(!u.as_str().contains("very-secret"));
        assert!(!format!("{a:?}").contains("very-secret"));
        assert!(a.return_to_allowed("https://app.example/done?x=1"));
        assert!(!a.return_to_allowed("https://app.example.evil/done"));
        assert!(!a.return_to_allowed("javascript:alert(1)"));
    }
}
