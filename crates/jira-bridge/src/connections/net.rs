//! Checks on user-supplied Jira base URLs: shape, scheme, and that the host is not a
//! private, loopback or link-local address (server-side request forgery), unless the
//! operator allows private hosts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Url;

use super::errors::ConnectionError;
use crate::http::ApiError;

/// Parse and normalise a base URL: absolute http(s), a host, no credentials, query or
/// fragment; trailing slashes removed.
pub fn parse_base_url(raw: &str) -> Result<Url, ConnectionError> {
    let bad = |m: &str| ConnectionError::Api(ApiError::invalid_field("base_url", m));
    let trimmed = raw.trim();
    let url = Url::parse(trimmed)
        .map_err(|_| bad("not an absolute URL; use e.g. https://your-site.atlassian.net"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http or https URL"));
    }
    if url.host().is_none() {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not contain credentials; send them as email and token",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query string or fragment"));
    }
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// True for addresses a Jira site on the public internet never has.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private_v4(v4);
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80 // link local
                || v6 == Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)
        }
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space (CGNAT)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
        || o[0] >= 240
}

/// Refuse private destinations (unless allowed) and plain http to public hosts
/// (unless allowed). Resolves the host name and checks every address it has.
pub async fn guard(url: &Url, allow_private: bool) -> Result<(), ConnectionError> {
    if allow_private {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        _ => match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(it) => it.map(|a| a.ip()).collect(),
            Err(_) => {
                return Err(ConnectionError::Unreachable(format!(
                    "the host {host} could not be resolved: check the spelling of the base URL"
                )))
            }
        },
    };
    if let Some(ip) = addrs.iter().find(|ip| is_private(**ip)) {
        return Err(ConnectionError::PrivateAddress(format!(
            "{host} resolves to the private or local address {ip}; this server only connects to public Jira sites (the operator can allow private hosts with JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS=true)"
        )));
    }
    if url.scheme() != "https" {
        return Err(ConnectionError::Api(ApiError::invalid_field(
            "base_url",
            "must use https",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn private_and_public_addresses() {
        for p in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in ["104.192.141.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }

    #[tokio::test]
    async fn guard_refuses_literal_private_hosts_and_plain_http() {
        let u = parse_base_url("http://127.0.0.1:8080/jira/").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/jira");
        assert!(matches!(
            guard(&u, false).await,
            Err(ConnectionError::PrivateAddress(_))
        ));
        assert!(guard(&u, true).await.is_ok());
        let public = parse_base_url("http://8.8.8.8").unwrap();
        assert!(matches!(
            guard(&public, false).await,
            Err(ConnectionError::Api(_))
        ));
        assert!(parse_base_url("https://u:p@x.example").is_err());
        assert!(parse_base_url("ftp://x.example").is_err());
        assert!(parse_base_url("x.example").is_err());
    }
}
