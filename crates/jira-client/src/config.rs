//! Site configuration: where Jira is, which flavor it is, and how to authenticate.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::SecretString;
use url::Url;

/// Which Jira product a site runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Jira Cloud: REST v3, ADF rich text, accountIds, `/search/jql`.
    Cloud,
    /// Jira Data Center / Server: REST v2, wiki markup, usernames, legacy `/search`.
    DataCenter,
    /// Detect from `serverInfo.deploymentType` on first use.
    Auto,
}

/// The resolved deployment of a site (never `Auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Deployment {
    /// Jira Cloud.
    Cloud,
    /// Jira Data Center / Server.
    DataCenter,
}

/// A failure of a [`TokenSource`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// The grant is gone (revoked, expired, `invalid_grant`): the user must re-authorize.
    #[error("OAuth grant no longer valid, re-authorization required: {0}")]
    Revoked(String),
    /// A transient failure obtaining a token (network, token endpoint unavailable).
    #[error("could not obtain an access token: {0}")]
    Unavailable(String),
}

/// Supplies OAuth 2.0 access tokens to the client.
///
/// The caller owns refresh and storage (rotating refresh tokens must be persisted
/// atomically and refreshed single-flight, which only the caller can do). The client
/// asks [`TokenSource::access_token`] before each request; when Jira answers 401 it
/// calls [`TokenSource::on_unauthorized`] with the token that was rejected and
/// repeats the request with the token returned, at most twice per request (the first
/// answer may be a token another process stored meanwhile, which can have expired
/// as well; the second 401 then leads to a refresh).
pub trait TokenSource: Send + Sync {
    /// The current access token (refreshing first if the caller knows it has expired).
    fn access_token(&self) -> BoxFuture<'_, Result<SecretString, TokenError>>;
    /// `rejected` was answered 401: return a fresh token (or an error if none can be had).
    /// Implementations should compare `rejected` with their current token so that
    /// concurrent callers trigger only one refresh.
    fn on_unauthorized<'a>(
        &'a self,
        rejected: &'a SecretString,
    ) -> BoxFuture<'a, Result<SecretString, TokenError>>;
}

/// A fixed token that is never refreshed (e.g. a token obtained out of band).
pub struct StaticToken(SecretString);

impl StaticToken {
    /// Wrap a token.
    pub fn new(token: SecretString) -> Self {
        Self(token)
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken([REDACTED])")
    }
}

impl TokenSource for StaticToken {
    fn access_token(&self) -> BoxFuture<'_, Result<SecretString, TokenError>> {
        let t = self.0.clone();
        Box::pin(async move { Ok(t) })
    }
    fn on_unauthorized<'a>(
        &'a self,
        _rejected: &'a SecretString,
    ) -> BoxFuture<'a, Result<SecretString, TokenError>> {
        Box::pin(async { Err(TokenError::Revoked("static token rejected".into())) })
    }
}

/// Credentials for one site.
#[derive(Clone)]
pub enum Auth {
    /// Jira Cloud email + API token (HTTP Basic).
    Basic {
        /// Atlassian account email (or DC username).
        email: String,
        /// API token (or DC password).
        api_token: SecretString,
    },
    /// Data Center personal access token (Bearer).
    Pat(SecretString),
    /// OAuth 2.0 (3LO): Bearer tokens from a [`TokenSource`], calls routed through
    /// `{api_base}/ex/jira/{cloud_id}`.
    OAuth {
        /// The site's cloud id (from accessible-resources).
        cloud_id: String,
        /// The API gateway, `https://api.atlassian.com` in production.
        api_base: Url,
        /// Where access tokens come from.
        source: Arc<dyn TokenSource>,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { email, .. } => f
                .debug_struct("Basic")
                .field("email", email)
                .field("api_token", &"[REDACTED]")
                .finish(),
            Auth::Pat(_) => f.write_str("Pat([REDACTED])"),
            Auth::OAuth {
                cloud_id, api_base, ..
            } => f
                .debug_struct("OAuth")
                .field("cloud_id", cloud_id)
                .field("api_base", &api_base.as_str())
                .field("source", &"[TokenSource]")
                .finish(),
        }
    }
}

/// One Jira site and how to reach it.
#[derive(Clone, Debug)]
pub struct SiteConfig {
    /// The site's base URL (`https://acme.atlassian.net`, or a DC base incl. context path).
    /// For OAuth it identifies the site (pacer key, links); calls go to the gateway.
    pub base_url: Url,
    /// Cloud, Data Center, or detect.
    pub flavor: Flavor,
    /// Credentials.
    pub auth: Auth,
}

impl SiteConfig {
    /// A Cloud site with email + API token.
    pub fn cloud_basic(base_url: Url, email: impl Into<String>, api_token: SecretString) -> Self {
        Self {
            base_url,
            flavor: Flavor::Cloud,
            auth: Auth::Basic {
                email: email.into(),
                api_token,
            },
        }
    }

    /// A Data Center site with a personal access token.
    pub fn data_center_pat(base_url: Url, pat: SecretString) -> Self {
        Self {
            base_url,
            flavor: Flavor::DataCenter,
            auth: Auth::Pat(pat),
        }
    }

    /// A Cloud site reached over OAuth 2.0 (3LO).
    pub fn cloud_oauth(
        base_url: Url,
        api_base: Url,
        cloud_id: impl Into<String>,
        source: Arc<dyn TokenSource>,
    ) -> Self {
        Self {
            base_url,
            flavor: Flavor::Cloud,
            auth: Auth::OAuth {
                cloud_id: cloud_id.into(),
                api_base,
                source,
            },
        }
    }

    /// The key under which this site's pacer is shared: the origin that receives the
    /// calls plus, for OAuth, the cloud id.
    pub fn pacer_key(&self) -> String {
        match &self.auth {
            Auth::OAuth { cloud_id, .. } => format!("cloud:{cloud_id}"),
            _ => {
                let mut s = self.base_url.as_str().trim_end_matches('/').to_string();
                s.make_ascii_lowercase();
                s
            }
        }
    }
}

/// HTTP-level options of a client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (one attempt).
    pub request_timeout: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Capacity of the per-client email → user cache.
    pub user_cache_capacity: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            user_agent: concat!("jira-client/", env!("CARGO_PKG_VERSION")).to_string(),
            user_cache_capacity: 1024,
        }
    }
}
