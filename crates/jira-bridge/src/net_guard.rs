//! SSRF guard for URLs that users give us (Jira base URLs, webhook subscription
//! URLs).
//!
//! A user-supplied URL must be `https`, carry no credentials, and its host must not
//! be, or resolve to, an address inside the operator's network: loopback, private
//! (RFC 1918), link-local (which holds the cloud metadata endpoints), unique-local,
//! CGNAT, multicast, unspecified, broadcast or otherwise reserved ranges, nor an IPv6
//! form that embeds one of those (IPv4-mapped, NAT64, 6to4). The operator can lift all
//! of this with `JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS=true` (demos and tests), which also
//! allows plain `http`.
//!
//! Checking a URL once is not enough: DNS can answer differently at request time
//! (rebinding) and a redirect can point anywhere. So outbound requests go through a
//! client from [`client_builder`]: its resolver applies the same rule to every
//! address it connects to, and it follows no redirects.
//!
//! ```ignore
//! let policy = UrlPolicy::from_config(&config);
//! let url = net_guard::check_url("https://hooks.example.com/in", policy).await?; // on input
//! let client = net_guard::client_builder(policy).timeout(t).build()?;       // for sending
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// What the operator allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Allow private, loopback and other internal addresses, and plain `http`.
    pub allow_private_hosts: bool,
}

impl UrlPolicy {
    /// The policy of a configuration (`security.allow_private_hosts`).
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            allow_private_hosts: config.security.allow_private_hosts,
        }
    }
}

/// Why a URL was refused. The messages are meant for the API's users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// Not a URL.
    #[error("not a valid URL: {0}")]
    Invalid(String),
    /// Not `https` (or `http` when private hosts are allowed).
    #[error("the URL must use https (got {0})")]
    Scheme(String),
    /// `user:password@` in the URL.
    #[error("the URL must not contain credentials")]
    Credentials,
    /// No host.
    #[error("the URL has no host")]
    NoHost,
    /// The host name did not resolve.
    #[error("the host {host} could not be resolved: {reason}")]
    Unresolvable {
        /// The host.
        host: String,
        /// The resolver's message.
        reason: String,
    },
    /// The host is, or resolves to, an internal address.
    #[error("the host {host} is {reason} ({addr}); only public addresses are allowed")]
    Forbidden {
        /// The host as given.
        host: String,
        /// The offending address.
        addr: IpAddr,
        /// Which kind of address it is.
        reason: &'static str,
    },
    /// A host name reserved for the local machine or a metadata service.
    #[error("the host {0} is reserved for internal use; only public hosts are allowed")]
    ForbiddenName(String),
}

/// The kind of internal address `ip` is, or `None` if it is a public address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "a cloud metadata address",
        _ if ip == Ipv4Addr::new(100, 100, 100, 200) => "a cloud metadata address",
        (0, _, _) => "an unspecified address",
        (127, _, _) => "a loopback address",
        (10, _, _) => "a private address",
        (172, 16..=31, _) => "a private address",
        (192, 168, _) => "a private address",
        (169, 254, _) => "a link-local address",
        (100, 64..=127, _) => "a carrier-grade NAT address",
        (192, 0, 0) => "a reserved address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let s = ip.segments();
    Some(match s {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] => "a cloud metadata address",
        [x, ..] if x & 0xfe00 == 0xfc00 => "a unique-local address",
        [x, ..] if x & 0xffc0 == 0xfe80 => "a link-local address",
        [x, ..] if x & 0xffc0 == 0xfec0 => "a site-local address",
        [x, ..] if x & 0xff00 == 0xff00 => "a multicast address",
        [0x2001, 0x0db8, ..] => "a documentation address",
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4 address.
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => return forbidden_v4(v4_of(hi, lo)),
        [0x2002, hi, lo, ..] => return forbidden_v4(v4_of(hi, lo)),
        // IPv4-compatible (deprecated) ::a.b.c.d.
        [0, 0, 0, 0, 0, 0, hi, lo] => return forbidden_v4(v4_of(hi, lo)),
        _ => return None,
    })
}

fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn forbidden_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h == "metadata.google.internal"
        || h.ends_with(".internal")
        || h.ends_with(".local")
}

/// Check a URL's syntax, scheme, credentials and (for IP literals) address, without
/// resolving its host. Returns the parsed URL.
pub fn check_url_syntax(raw: &str, policy: UrlPolicy) -> Result<Url, GuardError> {
    let url = Url::parse(raw.trim()).map_err(|e| GuardError::Invalid(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_private_hosts => {}
        other => return Err(GuardError::Scheme(other.to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GuardError::Credentials);
    }
    let host = url.host().ok_or(GuardError::NoHost)?;
    if policy.allow_private_hosts {
        return Ok(url);
    }
    match host {
        Host::Ipv4(v4) => check_addr(&v4.to_string(), IpAddr::V4(v4))?,
        Host::Ipv6(v6) => check_addr(&v6.to_string(), IpAddr::V6(v6))?,
        Host::Domain(name) => {
            if forbidden_name(name) {
                return Err(GuardError::ForbiddenName(name.to_owned()));
            }
        }
    }
    Ok(url)
}

fn check_addr(host: &str, addr: IpAddr) -> Result<(), GuardError> {
    match forbidden_reason(addr) {
        Some(reason) => Err(GuardError::Forbidden {
            host: host.to_owned(),
            addr,
            reason,
        }),
        None => Ok(()),
    }
}

/// Check a user-supplied URL fully: [`check_url_syntax`], then resolve the host and
/// refuse it if any address it resolves to is internal. Use on input (creating a
/// subscription or connection); requests themselves go through [`client_builder`].
pub async fn check_url(raw: &str, policy: UrlPolicy) -> Result<Url, GuardError> {
    let url = check_url_syntax(raw, policy)?;
    if policy.allow_private_hosts {
        return Ok(url);
    }
    if let Some(Host::Domain(name)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        resolve_checked(name, port).await?;
    }
    Ok(url)
}

async fn resolve_checked(host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| GuardError::Unresolvable {
            host: host.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(GuardError::Unresolvable {
            host: host.to_owned(),
            reason: "no addresses".into(),
        });
    }
    for a in &addrs {
        check_addr(host, a.ip())?;
    }
    Ok(addrs)
}

/// A resolver that refuses host names resolving to internal addresses.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: UrlPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = if policy.allow_private_hosts {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            } else {
                if forbidden_name(&host) {
                    return Err(Box::new(GuardError::ForbiddenName(host)) as _);
                }
                resolve_checked(&host, 0).await.map_err(Box::new)?
            };
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The guarded resolver as `reqwest` takes it (for clients built elsewhere, such as
/// the Jira client).
pub fn resolver(policy: UrlPolicy) -> Arc<dyn reqwest::dns::Resolve> {
    Arc::new(GuardedResolver { policy })
}

/// A `reqwest` client builder for requests to user-supplied URLs: host names are
/// resolved through [`GuardedResolver`] and redirects are not followed. IP-literal
/// URLs bypass resolvers, so check each URL with [`check_url_syntax`] before sending.
pub fn client_builder(policy: UrlPolicy) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy {
        allow_private_hosts: false,
    };
    const OPEN: UrlPolicy = UrlPolicy {
        allow_private_hosts: true,
    };

    #[test]
    fn internal_addresses_are_classified() {
        for (ip, reason) in [
            ("127.0.0.1", "a loopback address"),
            ("127.255.0.9", "a loopback address"),
            ("10.1.2.3", "a private address"),
            ("172.16.0.1", "a private address"),
            ("172.31.255.255", "a private address"),
            ("192.168.1.1", "a private address"),
            ("169.254.169.254", "a cloud metadata address"),
            ("169.254.1.1", "a link-local address"),
            ("100.64.0.1", "a carrier-grade NAT address"),
            ("100.127.255.254", "a carrier-grade NAT address"),
            ("100.100.100.200", "a cloud metadata address"),
            ("0.0.0.0", "an unspecified address"),
            ("224.0.0.1", "a multicast address"),
            ("255.255.255.255", "a reserved address"),
            ("::1", "a loopback address"),
            ("::", "an unspecified address"),
            ("fd00::1", "a unique-local address"),
            ("fc00::1", "a unique-local address"),
            ("fe80::1", "a link-local address"),
            ("ff02::1", "a multicast address"),
            ("fd00:ec2::254", "a cloud metadata address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("::ffff:10.0.0.1", "a private address"),
            ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),
            ("2002:c0a8:0101::1", "a private address"),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden_reason(ip), Some(reason), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden_reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn syntax_check_refuses_internal_literals_names_schemes_and_credentials() {
        for (url, expect) in [
            ("http://93.184.216.34/", "must use https"),
            ("ftp://93.184.216.34/", "must use https"),
            ("https://127.0.0.1/hook", "loopback"),
            ("https://2130706433/hook", "loopback"),
            ("https://0x7f.1/hook", "loopback"),
            ("https://[::1]:8443/", "loopback"),
            ("https://10.0.0.5/", "private"),
            ("https://169.254.169.254/latest/meta-data", "metadata"),
            ("https://[fd12::1]/", "unique-local"),
            ("https://[::ffff:192.168.0.1]/", "private"),
            ("https://localhost/", "reserved"),
            ("https://api.localhost/", "reserved"),
            ("https://metadata.google.internal/", "reserved"),
            ("https://user:pw@example.com/", "credentials"),
            ("not a url", "not a valid URL"),
        ] {
            let err = check_url_syntax(url, STRICT).unwrap_err();
            assert!(err.to_string().contains(expect), "{url}: {err}");
        }
        let ok = check_url_syntax("https://93.184.216.34:8443/in?x=1", STRICT).unwrap();
        assert_eq!(ok.port(), Some(8443));
        assert!(check_url_syntax("https://hooks.example.com/in", STRICT).is_ok());
    }

    #[tokio::test]
    async fn operator_can_allow_private_hosts_and_http() {
        for url in [
            "http://127.0.0.1:9999/hook",
            "https://10.0.0.5/",
            "http://localhost:1/",
        ] {
            assert!(check_url(url, OPEN).await.is_ok(), "{url}");
            assert!(check_url(url, STRICT).await.is_err(), "{url}");
        }
        // Still a URL with a scheme we speak.
        assert!(check_url("file:///etc/passwd", OPEN).await.is_err());
    }

    /// An HTTP server on 127.0.0.1:0: `/` answers 200, `/redirect` a 302 to the
    /// metadata address.
    async fn local_server() -> (u16, tokio::task::JoinHandle<()>) {
        use axum::response::Redirect;
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route(
                "/redirect",
                axum::routing::get(|| async {
                    Redirect::to("http://169.254.169.254/latest/meta-data")
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (port, task)
    }

    #[tokio::test]
    async fn guarded_client_will_not_connect_to_a_name_resolving_to_loopback() {
        let (port, server) = local_server().await;
        // `localhost` resolves to loopback: refused by the resolver itself, so even a
        // URL that slipped past the input check cannot reach it.
        let strict = client_builder(STRICT).build().unwrap();
        let err = strict
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err:?}");
        let open = client_builder(OPEN).build().unwrap();
        let ok = open
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        server.abort();
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (port, server) = local_server().await;
        let client = client_builder(OPEN).build().unwrap();
        let res = client
            .get(format!("http://127.0.0.1:{port}/redirect"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "the redirect is answered, not followed");
        server.abort();
    }
}
