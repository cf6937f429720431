//! The client: HTTP transport, authentication, pacing and retries.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::OnceCell;
use url::Url;

use crate::config::{Auth, ClientOptions, Deployment, Flavor, SiteConfig};
use crate::error::{from_status, Error, RequestCtx, Result};
use crate::pacer::{Pacer, PacerConfig, PacerRegistry, PacerStats, RateInfo, RetryReason};

/// Where a request's path is rooted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Root {
    /// The REST API of the site's flavor (`/rest/api/3` or `/rest/api/2`).
    Api,
    /// `/rest/api/2` whatever the flavor (flavor detection).
    ApiV2,
}

/// Whether a request may be repeated after an ambiguous failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idem {
    /// Safe to repeat (GET, PUT, DELETE, read-only POST).
    Yes,
    /// Creates something: never repeated after it may have been sent.
    No,
}

/// An outgoing request, relative to a [`Root`].
#[derive(Clone, Debug)]
pub(crate) struct Req {
    pub method: Method,
    pub root: Root,
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
    pub idem: Idem,
    /// Non-2xx statuses answered as [`Answer`] instead of an error.
    pub accept: &'static [u16],
    /// The issue this request writes to (per-issue rate limit).
    pub issue: Option<String>,
}

impl Req {
    fn new(method: Method, segs: &[&str], idem: Idem) -> Self {
        Self {
            method,
            root: Root::Api,
            segs: segs.iter().map(|s| s.to_string()).collect(),
            query: Vec::new(),
            body: None,
            idem,
            accept: &[],
            issue: None,
        }
    }
    pub fn get(segs: &[&str]) -> Self {
        Self::new(Method::GET, segs, Idem::Yes)
    }
    /// A POST that creates something (never retried once possibly sent).
    pub fn post(segs: &[&str]) -> Self {
        Self::new(Method::POST, segs, Idem::No)
    }
    /// A POST that only reads (search, bulk fetch): retried like a GET.
    pub fn post_read(segs: &[&str]) -> Self {
        Self::new(Method::POST, segs, Idem::Yes)
    }
    pub fn put(segs: &[&str]) -> Self {
        Self::new(Method::PUT, segs, Idem::Yes)
    }
    pub fn delete(segs: &[&str]) -> Self {
        Self::new(Method::DELETE, segs, Idem::Yes)
    }
    /// Mark as a write to one issue (subject to Jira's per-issue write limit).
    pub fn issue_write(mut self, key: &str) -> Self {
        self.issue = Some(key.to_string());
        self
    }
    pub fn accept(mut self, statuses: &'static [u16]) -> Self {
        self.accept = statuses;
        self
    }
    pub fn root(mut self, root: Root) -> Self {
        self.root = root;
        self
    }
    pub fn q(mut self, k: &str, v: impl ToString) -> Self {
        self.query.push((k.to_string(), v.to_string()));
        self
    }
    pub fn q_opt(self, k: &str, v: Option<impl ToString>) -> Self {
        match v {
            Some(v) => self.q(k, v),
            None => self,
        }
    }
    pub fn json(mut self, body: impl Serialize) -> Result<Self> {
        self.body = Some(
            serde_json::to_value(body).map_err(|e| Error::Config(format!("request body: {e}")))?,
        );
        Ok(self)
    }
    pub fn json_value(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// A raw answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
    pub ctx: RequestCtx,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            ctx: self.ctx.clone(),
            message: e.to_string(),
        })
    }
}

pub(crate) struct Inner {
    pub http: reqwest::Client,
    pub site: SiteConfig,
    pub pacer: Arc<Pacer>,
    pub deployment: OnceCell<Deployment>,
    pub users_by_email: parking_lot::Mutex<HashMap<String, crate::models::User>>,
    pub epic_fields: OnceCell<crate::models::EpicFields>,
    pub workflows: parking_lot::Mutex<HashMap<String, crate::transitions::KnownWorkflow>>,
    pub options: ClientOptions,
}

/// A Jira REST client for one site. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct JiraClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for JiraClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraClient")
            .field("base_url", &self.inner.site.base_url.as_str())
            .field("flavor", &self.inner.site.flavor)
            .field("auth", &self.inner.site.auth)
            .finish()
    }
}

/// Builds a [`JiraClient`].
#[derive(Debug)]
pub struct ClientBuilder {
    site: SiteConfig,
    options: ClientOptions,
    pacer: Option<Arc<Pacer>>,
    registry: Option<&'static PacerRegistry>,
    resolver: Option<DnsResolver>,
    transport: Option<reqwest::Client>,
}

/// A DNS resolver for the client's connections (e.g. one refusing internal addresses).
#[derive(Clone)]
struct DnsResolver(Arc<dyn reqwest::dns::Resolve>);

impl reqwest::dns::Resolve for DnsResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.0.resolve(name)
    }
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DnsResolver")
    }
}

impl ClientBuilder {
    /// Resolve host names with `resolver` instead of the system's: the caller's policy
    /// applies to every connection, so a name that resolves to a refused address
    /// later (DNS rebinding) is still refused.
    pub fn dns_resolver(mut self, resolver: Arc<dyn reqwest::dns::Resolve>) -> Self {
        self.resolver = Some(DnsResolver(resolver));
        self
    }

    /// HTTP options (timeouts, user agent).
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Use this pacer (share the same `Arc` between all clients of the site).
    pub fn pacer(mut self, pacer: Arc<Pacer>) -> Self {
        self.pacer = Some(pacer);
        self
    }

    /// Send through this HTTP transport (from [`transport`] with the same options)
    /// instead of building one. Building a transport costs milliseconds (TLS set-up)
    /// and each has its own connection pool: a caller that makes many short-lived
    /// clients (one per request) should build one transport and share it.
    pub fn transport(mut self, http: reqwest::Client) -> Self {
        self.transport = Some(http);
        self
    }

    /// Take the site's pacer from this registry (default: [`PacerRegistry::global`]).
    pub fn registry(mut self, registry: &'static PacerRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Build the client.
    pub fn build(self) -> Result<JiraClient> {
        let site = self.site;
        match site.base_url.scheme() {
            "http" | "https" => {}
            other => return Err(Error::Config(format!("unsupported URL scheme {other:?}"))),
        }
        if site.base_url.cannot_be_a_base() || site.base_url.host().is_none() {
            return Err(Error::Config("base URL has no host".into()));
        }
        if let Auth::OAuth {
            api_base, cloud_id, ..
        } = &site.auth
        {
            if api_base.host().is_none() {
                return Err(Error::Config("OAuth api_base has no host".into()));
            }
            if cloud_id.is_empty() || cloud_id.contains('/') {
                return Err(Error::Config("invalid cloud id".into()));
            }
            if site.flavor == Flavor::DataCenter {
                return Err(Error::Config(
                    "OAuth 2.0 (3LO) is a Jira Cloud authentication".into(),
                ));
            }
        }
        let http = match self.transport {
            Some(http) => http,
            None => transport_with_resolver(&self.options, self.resolver.map(|r| r.0))?,
        };
        let pacer = match self.pacer {
            Some(p) => p,
            None => {
                let reg = self.registry.unwrap_or_else(PacerRegistry::global);
                let dc = site.flavor == Flavor::DataCenter;
                reg.get_or(&site.pacer_key(), || {
                    if dc {
                        PacerConfig::data_center()
                    } else {
                        PacerConfig::default()
                    }
                })
            }
        };
        let deployment = match (site.flavor, &site.auth) {
            (Flavor::Cloud, _) | (_, Auth::OAuth { .. }) => {
                OnceCell::new_with(Some(Deployment::Cloud))
            }
            (Flavor::DataCenter, _) => OnceCell::new_with(Some(Deployment::DataCenter)),
            (Flavor::Auto, _) => OnceCell::new(),
        };
        Ok(JiraClient {
            inner: Arc::new(Inner {
                http,
                site,
                pacer,
                deployment,
                users_by_email: parking_lot::Mutex::new(HashMap::new()),
                epic_fields: OnceCell::new(),
                workflows: parking_lot::Mutex::new(HashMap::new()),
                options: self.options,
            }),
        })
    }
}

/// Follow redirects only within the origin of the first URL: credentials never travel
/// to another host, port or scheme.
/// An HTTP transport (connection pool, TLS, timeouts, user agent, same-origin
/// redirects) for clients with these options; see [`ClientBuilder::transport`].
/// Credentials are per request, never part of the transport.
pub fn transport(options: &ClientOptions) -> Result<reqwest::Client> {
    transport_with_resolver(options, None)
}

/// [`transport`] whose host names are resolved by `resolver` (see
/// [`ClientBuilder::dns_resolver`]); a transport given to [`ClientBuilder::transport`]
/// keeps the resolver it was built with.
pub fn transport_with_resolver(
    options: &ClientOptions,
    resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
) -> Result<reqwest::Client> {
    let mut http = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .user_agent(options.user_agent.clone())
        .redirect(same_origin_redirects())
        .use_rustls_tls();
    if let Some(resolver) = resolver {
        http = http.dns_resolver(Arc::new(DnsResolver(resolver)));
    }
    http.build()
        .map_err(|e| Error::Config(format!("HTTP client: {}", e.without_url())))
}

fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.stop();
        }
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
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

impl JiraClient {
    /// A client for `site`, with default options and the site's pacer from
    /// [`PacerRegistry::global`].
    pub fn new(site: SiteConfig) -> Result<Self> {
        Self::builder(site).build()
    }

    /// A builder for `site`.
    pub fn builder(site: SiteConfig) -> ClientBuilder {
        ClientBuilder {
            resolver: None,
            site,
            options: ClientOptions::default(),
            pacer: None,
            registry: None,
            transport: None,
        }
    }

    /// The site configuration.
    pub fn site(&self) -> &SiteConfig {
        &self.inner.site
    }

    /// The site's pacer.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.inner.pacer
    }

    /// Counters of the site's pacer (shared by all clients of the site).
    pub fn stats(&self) -> PacerStats {
        self.inner.pacer.stats()
    }

    /// Cloud or Data Center (detected from `serverInfo.deploymentType` when the site was
    /// configured with [`Flavor::Auto`]).
    pub async fn deployment(&self) -> Result<Deployment> {
        self.inner
            .deployment
            .get_or_try_init(|| async {
                let req = Req::get(&["serverInfo"]).root(Root::ApiV2);
                let url = self.url_with(&req, None);
                let info: crate::models::ServerInfo = self.send_to(url, req).await?.json()?;
                Ok(match info.deployment_type.as_deref() {
                    Some(t) if t.eq_ignore_ascii_case("cloud") => Deployment::Cloud,
                    _ => Deployment::DataCenter,
                })
            })
            .await
            .copied()
    }

    /// True for Jira Cloud.
    pub async fn is_cloud(&self) -> Result<bool> {
        Ok(self.deployment().await? == Deployment::Cloud)
    }

    /// Markdown as the site's rich-text value (description, comment, worklog comment):
    /// an ADF document on Cloud, a wiki-markup string on Data Center.
    pub async fn rich_text(&self, markdown: &str) -> Result<serde_json::Value> {
        Ok(match self.deployment().await? {
            Deployment::Cloud => crate::adf::markdown_to_adf(markdown).to_value(),
            Deployment::DataCenter => {
                serde_json::Value::String(crate::adf::markdown_to_wiki(markdown))
            }
        })
    }

    /// A rich-text value from Jira (ADF on Cloud, wiki markup on Data Center) as Markdown.
    pub fn rich_text_to_markdown(value: &serde_json::Value) -> String {
        match value {
            serde_json::Value::String(wiki) => crate::adf::wiki_to_markdown(wiki),
            serde_json::Value::Null => String::new(),
            doc => crate::adf::adf_to_markdown(doc),
        }
    }

    /// The browse URL of an issue (`{base}/browse/KEY`).
    pub fn browse_url(&self, key: &str) -> String {
        let mut u = self.inner.site.base_url.clone();
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty().extend(["browse", key]);
        }
        u.to_string()
    }

    fn root_url(&self, root: Root, dep: Option<Deployment>) -> Url {
        let site = &self.inner.site;
        let (mut url, prefix): (Url, Vec<&str>) = match &site.auth {
            Auth::OAuth {
                cloud_id, api_base, ..
            } => (api_base.clone(), vec!["ex", "jira", cloud_id.as_str()]),
            _ => (site.base_url.clone(), vec![]),
        };
        let version = match (root, dep) {
            (Root::ApiV2, _) | (Root::Api, Some(Deployment::DataCenter)) => "2",
            (Root::Api, _) => "3",
        };
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty()
                .extend(prefix)
                .extend(["rest", "api", version]);
        }
        url
    }

    pub(crate) async fn url_for(&self, req: &Req) -> Result<Url> {
        let dep = match req.root {
            Root::Api => Some(self.deployment().await?),
            Root::ApiV2 => None,
        };
        Ok(self.url_with(req, dep))
    }

    fn url_with(&self, req: &Req, dep: Option<Deployment>) -> Url {
        let mut url = self.root_url(req.root, dep);
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.extend(req.segs.iter());
        }
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(req.query.iter());
        }
        url
    }

    /// Send a request with pacing, authentication and retries; return any final answer
    /// with a success status, or the error.
    pub(crate) async fn send(&self, req: Req) -> Result<Answer> {
        let url = self.url_for(&req).await?;
        self.send_to(url, req).await
    }

    async fn send_to(&self, url: Url, req: Req) -> Result<Answer> {
        let ctx = RequestCtx {
            method: req.method.clone(),
            path: url.path().to_string(),
        };
        let pacer = &self.inner.pacer;
        let max_retries = pacer.config().retry.max_retries;
        let mut attempt: u32 = 0;
        // Answers to a 401 so far. The token source may answer a 401 with a token
        // another process stored meanwhile rather than refreshing; that one can have
        // expired too, so a second 401 gets one more (then refreshing) chance.
        let mut unauthorized: u8 = 0;
        let mut oauth_token: Option<SecretString> = None;
        loop {
            let auth = match &self.inner.site.auth {
                Auth::Basic { email, api_token } => {
                    let raw = format!("{email}:{}", api_token.expose_secret());
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(raw)
                    )
                }
                Auth::Pat(t) => format!("Bearer {}", t.expose_secret()),
                Auth::OAuth { source, .. } => {
                    let tok = match &oauth_token {
                        Some(t) => t.clone(),
                        None => {
                            let t = source.access_token().await.map_err(|e| Error::Token {
                                ctx: ctx.clone(),
                                source: e,
                            })?;
                            oauth_token = Some(t.clone());
                            t
                        }
                    };
                    format!("Bearer {}", tok.expose_secret())
                }
            };
            let mut auth_value = HeaderValue::from_str(&auth)
                .map_err(|_| Error::Config("credentials contain invalid characters".into()))?;
            auth_value.set_sensitive(true);
            drop(auth);

            let mut rb = self
                .inner
                .http
                .request(req.method.clone(), url.clone())
                .header(http::header::AUTHORIZATION, auth_value)
                .header(http::header::ACCEPT, "application/json");
            if let Some(body) = &req.body {
                rb = rb.json(body);
            }
            if let Some(key) = &req.issue {
                pacer.wait_for_issue(key).await;
            }
            let permit = pacer.acquire().await;
            let sent = std::time::Instant::now();
            let result = match rb.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let info = RateInfo::from_headers(resp.headers());
                    match resp.bytes().await {
                        Ok(body) => Ok((status, info, body)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            drop(permit);
            crate::timing::add_attempt(sent.elapsed());
            match result {
                Ok((status, info, body)) => {
                    let min_delay = pacer.on_issue_response(req.issue.as_deref(), status, &info);
                    tracing::debug!(method = %ctx.method, path = %ctx.path, status, attempt, "jira answer");
                    if (200..300).contains(&status) || req.accept.contains(&status) {
                        return Ok(Answer { status, body, ctx });
                    }
                    if status == 401 && unauthorized < 2 {
                        if let (Auth::OAuth { source, .. }, Some(rejected)) =
                            (&self.inner.site.auth, &oauth_token)
                        {
                            unauthorized += 1;
                            let fresh = source.on_unauthorized(rejected).await.map_err(|e| {
                                Error::Token {
                                    ctx: ctx.clone(),
                                    source: e,
                                }
                            })?;
                            oauth_token = Some(fresh);
                            continue;
                        }
                    }
                    // A 429 means Jira did not execute the request: safe to repeat even
                    // for creates. 5xx only for idempotent requests.
                    let retryable = status == 429 || (status >= 500 && req.idem == Idem::Yes);
                    if retryable && attempt < max_retries {
                        let delay = pacer.backoff(attempt).max(min_delay);
                        attempt += 1;
                        let reason = if status == 429 {
                            RetryReason::RateLimited
                        } else {
                            RetryReason::ServerError
                        };
                        pacer.sleep_before_retry(reason, delay).await;
                        continue;
                    }
                    if (300..400).contains(&status) {
                        return Err(Error::Transport {
                            ctx,
                            message: format!("redirect ({status}) to another origin not followed"),
                        });
                    }
                    return Err(from_status(
                        ctx,
                        status,
                        &body,
                        info.retry_after,
                        info.reason,
                    ));
                }
                Err(e) => {
                    pacer.on_transport_error();
                    let (is_connect, is_timeout) = (e.is_connect(), e.is_timeout());
                    let message = describe(&e.without_url());
                    tracing::debug!(method = %ctx.method, path = %ctx.path, attempt, error = %message, "jira transport error");
                    // A failed connect never reached Jira: always safe to repeat.
                    let not_sent = is_connect;
                    if req.idem == Idem::No && !not_sent {
                        let reason = if is_timeout {
                            "timed out waiting for the answer".to_string()
                        } else {
                            format!("connection failed after sending: {message}")
                        };
                        return Err(Error::OutcomeUnknown { ctx, reason });
                    }
                    if attempt < max_retries {
                        let delay = pacer.backoff(attempt);
                        attempt += 1;
                        pacer
                            .sleep_before_retry(RetryReason::Transport, delay)
                            .await;
                        continue;
                    }
                    if is_timeout && !not_sent {
                        return Err(Error::Timeout { ctx });
                    }
                    return Err(Error::Transport { ctx, message });
                }
            }
        }
    }

    /// Send and decode a JSON answer.
    pub(crate) async fn call<T: DeserializeOwned>(&self, req: Req) -> Result<T> {
        self.send(req).await?.json()
    }

    /// Send, ignoring the answer body.
    pub(crate) async fn call_empty(&self, req: Req) -> Result<u16> {
        Ok(self.send(req).await?.status)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::StaticToken;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[tokio::test]
    async fn api_roots_per_flavor_and_auth() {
        let c = JiraClient::builder(SiteConfig::cloud_basic(
            url("https://acme.atlassian.net"),
            "a@b.c",
            SecretString::from("tok"),
        ))
        .pacer(Pacer::new(PacerConfig::default()))
        .build()
        .unwrap();
        let u = c
            .url_for(&Req::get(&["issue", "AB-1", "worklog"]).q("a", "b c"))
            .await
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://acme.atlassian.net/rest/api/3/issue/AB-1/worklog?a=b+c"
        );

        let c = JiraClient::builder(SiteConfig::data_center_pat(
            url("https://jira.example.com/jira/"),
            SecretString::from("pat"),
        ))
        .pacer(Pacer::new(PacerConfig::default()))
        .build()
        .unwrap();
        let u = c.url_for(&Req::get(&["issue", "a/b"])).await.unwrap();
        assert_eq!(
            u.as_str(),
            "https://jira.example.com/jira/rest/api/2/issue/a%2Fb"
        );
        assert_eq!(
            c.browse_url("AB-1"),
            "https://jira.example.com/jira/browse/AB-1"
        );

        let c = JiraClient::builder(SiteConfig::cloud_oauth(
            url("https://acme.atlassian.net"),
            url("https://api.atlassian.com"),
            "1234-abcd",
            Arc::new(StaticToken::new(SecretString::from("at"))),
        ))
        .pacer(Pacer::new(PacerConfig::default()))
        .build()
        .unwrap();
        let u = c.url_for(&Req::get(&["myself"])).await.unwrap();
        assert_eq!(
            u.as_str(),
            "https://api.atlassian.com/ex/jira/1234-abcd/rest/api/3/myself"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = JiraClient::builder(SiteConfig::cloud_basic(
            url("https://acme.atlassian.net"),
            "a@b.c",
            SecretString::from("s3cr3t-token"),
        ))
        .pacer(Pacer::new(PacerConfig::default()))
        .build()
        .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("s3cr3t-token"), "{d}");
        assert!(d.contains("REDACTED"), "{d}");
        let a = Auth::Pat(SecretString::from("pat-secret"));
        assert!(!format!("{a:?}").contains("pat-secret"));
    }

    #[test]
    fn config_errors_are_reported() {
        let r = JiraClient::new(SiteConfig {
            base_url: url("ftp://x"),
            flavor: Flavor::Cloud,
            auth: Auth::Pat(SecretString::from("x")),
        });
        assert!(matches!(r, Err(Error::Config(_))));
        let r = JiraClient::new(SiteConfig {
            base_url: url("https://x"),
            flavor: Flavor::DataCenter,
            auth: Auth::OAuth {
                cloud_id: "c".into(),
                api_base: url("https://api"),
                source: Arc::new(StaticToken::new(SecretString::from("t"))),
            },
        });
        assert!(matches!(r, Err(Error::Config(_))));
    }
}
