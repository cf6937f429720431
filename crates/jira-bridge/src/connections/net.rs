//! Checks on user-supplied Jira base URLs: shape, scheme, and that the host is not a
//! private, loopback or link-local address (server-side request forgery), unless the
//! operator allows private hosts.

use url::Url;

use super::errors::ConnectionError;
use crate::http::ApiError;
use crate::net_guard::{self, GuardError, UrlPolicy};

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

/// Refuse private destinations (unless allowed) and plain http (unless allowed), with
/// [`crate::net_guard`]'s rules: the host and every address it resolves to must be
/// public. The address is judged before the scheme, so a private `http://` URL gets
/// the more useful answer.
pub async fn guard(url: &Url, allow_private: bool) -> Result<(), ConnectionError> {
    let policy = UrlPolicy {
        allow_private_hosts: allow_private,
    };
    let mut as_https = url.clone();
    if as_https.scheme() == "http" && as_https.set_scheme("https").is_err() {
        as_https = url.clone();
    }
    net_guard::check_url(as_https.as_str(), policy)
        .await
        .map_err(|e| map_guard(url, e))?;
    net_guard::check_url_syntax(url.as_str(), policy).map_err(|e| map_guard(url, e))?;
    Ok(())
}

fn map_guard(url: &Url, e: GuardError) -> ConnectionError {
    let host = url.host_str().unwrap_or_default();
    match e {
        GuardError::Forbidden { .. } | GuardError::ForbiddenName(_) => {
            ConnectionError::PrivateAddress(format!(
                "{e}: this server only connects to public Jira sites (the operator can allow private hosts with JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS=true)"
            ))
        }
        GuardError::Unresolvable { .. } => ConnectionError::Unreachable(format!(
            "the host {host} could not be resolved: check the spelling of the base URL"
        )),
        other => ConnectionError::Api(ApiError::invalid_field("base_url", other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn guard_refuses_private_hosts_before_plain_http() {
        let u = parse_base_url("http://127.0.0.1:8080/jira/").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/jira");
        assert!(matches!(
            guard(&u, false).await,
            Err(ConnectionError::PrivateAddress(_))
        ));
        assert!(guard(&u, true).await.is_ok());
        for private in [
            "https://10.0.0.1",
            "https://169.254.169.254",
            "https://[::1]",
        ] {
            let u = parse_base_url(private).unwrap();
            assert!(
                matches!(
                    guard(&u, false).await,
                    Err(ConnectionError::PrivateAddress(_))
                ),
                "{private}"
            );
        }
        let public = parse_base_url("http://8.8.8.8").unwrap();
        assert!(matches!(
            guard(&public, false).await,
            Err(ConnectionError::Api(_))
        ));
        assert!(guard(&parse_base_url("https://8.8.8.8").unwrap(), false)
            .await
            .is_ok());
        assert!(parse_base_url("https://u:p@x.example").is_err());
        assert!(parse_base_url("ftp://x.example").is_err());
        assert!(parse_base_url("x.example").is_err());
    }
}
