//! OAuth 2.0 (3LO) helpers for Jira Cloud: authorization URL, code exchange, refresh
//! (rotating refresh tokens), accessible resources, and an in-memory single-flight
//! [`TokenSource`].
//!
//! A service that stores tokens should implement [`TokenSource`] itself over its
//! storage (refresh under a lock or compare-and-swap, persist the rotated refresh token
//! before using the new access token) and may call [`OAuthApp::refresh`] for the
//! exchange. [`MemoryTokenSource`] does the same in memory, for programs that keep
//! tokens in the process.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::config::{TokenError, TokenSource};

/// An OAuth 2.0 (3LO) app registration.
#[derive(Clone)]
pub struct OAuthApp {
    /// Authorization server (`https://auth.atlassian.com`).
    pub auth_base: Url,
    /// API gateway (`https://api.atlassian.com`), for accessible resources.
    pub api_base: Url,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
    /// Registered callback URL.
    pub redirect_uri: String,
    http: reqwest::Client,
}

impl fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthApp")
            .field("auth_base", &self.auth_base.as_str())
            .field("api_base", &self.api_base.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// Tokens from the token endpoint.
#[derive(Clone)]
pub struct TokenResponse {
    /// Access token.
    pub access_token: SecretString,
    /// The new refresh token (rotated on every refresh; absent without `offline_access`).
    pub refresh_token: Option<SecretString>,
    /// Lifetime of the access token.
    pub expires_in: Option<Duration>,
    /// Granted scopes (space separated).
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// A site the token can reach.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessibleResource {
    /// The cloud id.
    pub id: String,
    /// Site name.
    #[serde(default)]
    pub name: String,
    /// Site URL.
    #[serde(default)]
    pub url: String,
    /// Scopes granted on this site.
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

impl OAuthApp {
    /// An app registration.
    pub fn new(
        auth_base: Url,
        api_base: Url,
        client_id: impl Into<String>,
        client_secret: SecretString,
        redirect_uri: impl Into<String>,
    ) -> Result<Self, TokenError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .use_rustls_tls()
            .build()
            .map_err(|e| TokenError::Unavailable(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self {
            auth_base,
            api_base,
            client_id: client_id.into(),
            client_secret,
            redirect_uri: redirect_uri.into(),
            http,
        })
    }

    fn endpoint(base: &Url, segs: &[&str]) -> Url {
        let mut u = base.clone();
        if let Ok(mut s) = u.path_segments_mut() {
            s.pop_if_empty().extend(segs);
        }
        u
    }

    /// The URL to send the user to (`prompt=consent`, `audience=api.atlassian.com`).
    pub fn authorize_url(&self, scopes: &[&str], state: &str) -> Url {
        let mut u = Self::endpoint(&self.auth_base, &["authorize"]);
        u.query_pairs_mut()
            .append_pair("audience", "api.atlassian.com")
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("state", state)
            .append_pair("response_type", "code")
            .append_pair("prompt", "consent");
        u
    }

    async fn token_call(&self, body: serde_json::Value) -> Result<TokenResponse, TokenError> {
        let url = Self::endpoint(&self.auth_base, &["oauth", "token"]);
        let resp =
            self.http.post(url).json(&body).send().await.map_err(|e| {
                TokenError::Unavailable(format!("token endpoint: {}", e.without_url()))
            })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| TokenError::Unavailable(format!("token endpoint: {}", e.without_url())))?;
        if !(200..300).contains(&status) {
            let ec = crate::error::ErrorCollection::parse(&bytes);
            let msg = ec.messages().join("; ");
            let grant = matches!(&ec.error, Some(serde_json::Value::String(e)) if e == "invalid_grant" || e == "access_denied" || e == "unauthorized_client");
            return Err(if grant || status == 401 || status == 403 {
                TokenError::Revoked(format!("token endpoint answered {status}: {msg}"))
            } else {
                TokenError::Unavailable(format!("token endpoint answered {status}: {msg}"))
            });
        }
        let raw: RawToken = serde_json::from_slice(&bytes)
            .map_err(|e| TokenError::Unavailable(format!("token endpoint answer: {e}")))?;
        Ok(TokenResponse {
            access_token: SecretString::from(raw.access_token),
            refresh_token: raw.refresh_token.map(SecretString::from),
            expires_in: raw.expires_in.map(Duration::from_secs),
            scope: raw.scope,
        })
    }

    /// Exchange an authorization code.
    pub async fn exchange_code(&self, code: &str) -> Result<TokenResponse, TokenError> {
        self.token_call(serde_json::json!({
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
            "code": code,
            "redirect_uri": self.redirect_uri,
        }))
        .await
    }

    /// Redeem a refresh token. The answer carries a **new** refresh token: persist it
    /// before using the access token; the old one stops working.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenResponse, TokenError> {
        self.token_call(serde_json::json!({
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
            "refresh_token": refresh_token.expose_secret(),
        }))
        .await
    }

    /// Sites the token can reach (in no particular order: never pick the first blindly).
    pub async fn accessible_resources(
        &self,
        access_token: &SecretString,
    ) -> Result<Vec<AccessibleResource>, TokenError> {
        let url = Self::endpoint(&self.api_base, &["oauth", "token", "accessible-resources"]);
        let resp = self
            .http
            .get(url)
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(|e| {
                TokenError::Unavailable(format!("accessible-resources: {}", e.without_url()))
            })?;
        let status = resp.status().as_u16();
        if status == 401 {
            return Err(TokenError::Revoked(
                "accessible-resources answered 401".into(),
            ));
        }
        if !(200..300).contains(&status) {
            return Err(TokenError::Unavailable(format!(
                "accessible-resources answered {status}"
            )));
        }
        resp.json().await.map_err(|e| {
            TokenError::Unavailable(format!("accessible-resources answer: {}", e.without_url()))
        })
    }
}

struct Tokens {
    access: SecretString,
    refresh: SecretString,
    expires_at: Option<Instant>,
}

/// Called with every rotated token pair (persist it).
pub type OnRotate = Arc<dyn Fn(&TokenResponse) + Send + Sync>;

/// An in-memory [`TokenSource`] that refreshes through an [`OAuthApp`]: before expiry
/// (with a margin) and when Jira answers 401, single-flight (concurrent callers wait
/// for one refresh and share its result).
pub struct MemoryTokenSource {
    app: OAuthApp,
    tokens: tokio::sync::Mutex<Tokens>,
    margin: Duration,
    on_rotate: Option<OnRotate>,
}

impl fmt::Debug for MemoryTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenSource")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl MemoryTokenSource {
    /// Start from a token pair. `expires_in` of the access token, if known.
    pub fn new(
        app: OAuthApp,
        access: SecretString,
        refresh: SecretString,
        expires_in: Option<Duration>,
    ) -> Self {
        Self {
            app,
            tokens: tokio::sync::Mutex::new(Tokens {
                access,
                refresh,
                expires_at: expires_in.map(|d| Instant::now() + d),
            }),
            margin: Duration::from_secs(60),
            on_rotate: None,
        }
    }

    /// Refresh this long before the access token expires (default 60 s).
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Call `f` with every rotated pair (to persist it).
    pub fn on_rotate(mut self, f: OnRotate) -> Self {
        self.on_rotate = Some(f);
        self
    }

    async fn refresh_locked(&self, t: &mut Tokens) -> Result<SecretString, TokenError> {
        let r = self.app.refresh(&t.refresh).await?;
        if let Some(new_refresh) = &r.refresh_token {
            t.refresh = new_refresh.clone();
        }
        t.access = r.access_token.clone();
        t.expires_at = r.expires_in.map(|d| Instant::now() + d);
        if let Some(cb) = &self.on_rotate {
            cb(&r);
        }
        Ok(t.access.clone())
    }
}

impl TokenSource for MemoryTokenSource {
    fn access_token(&self) -> BoxFuture<'_, Result<SecretString, TokenError>> {
        Box::pin(async move {
            let mut t = self.tokens.lock().await;
            let stale = t
                .expires_at
                .is_some_and(|e| Instant::now() + self.margin >= e);
            if stale {
                return self.refresh_locked(&mut t).await;
            }
            Ok(t.access.clone())
        })
    }

    fn on_unauthorized<'a>(
        &'a self,
        rejected: &'a SecretString,
    ) -> BoxFuture<'a, Result<SecretString, TokenError>> {
        Box::pin(async move {
            let mut t = self.tokens.lock().await;
            if t.access.expose_secret() != rejected.expose_secret() {
                // Someone refreshed while this request was in flight.
                return Ok(t.access.clone());
            }
            self.refresh_locked(&mut t).await
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn authorize_url_has_every_parameter_and_no_secret() {
        let app = OAuthApp::new(
            Url::parse("https://auth.example").unwrap(),
            Url::parse("https://api.example").unwrap(),
            "cid",
            SecretString::from("very-secret"),
            "https://app.example/cb",
        )
        .unwrap();
        let u = app.authorize_url(&["read:jira-work", "offline_access"], "st8");
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(u.path(), "/authorize");
        assert_eq!(q["audience"], "api.atlassian.com");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["scope"], "read:jira-work offline_access");
        assert_eq!(q["redirect_uri"], "https://app.example/cb");
        assert_eq!(q["state"], "st8");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["prompt"], "consent");
        assert!(!u.as_str().contains("very-secret"));
        assert!(!format!("{app:?}").contains("very-secret"));
    }
}
