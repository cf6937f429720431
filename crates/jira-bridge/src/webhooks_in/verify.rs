//! Verification of inbound deliveries (constant-time comparisons throughout).

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How a delivery proved where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `X-Hub-Signature` HMAC (admin webhook with a secret).
    Hmac,
    /// Dynamic-webhook JWT signed with the OAuth client secret.
    Jwt,
    /// The per-connection URL token.
    Token,
}

/// What the verifier may use.
pub struct Credentials<'a> {
    /// The connection's webhook secret, if one was generated.
    pub secret: Option<&'a SecretString>,
    /// SHA-256 (hex) of the connection's URL token.
    pub token_hash: Option<&'a str>,
    /// OAuth client id and secret (OAuth connections only).
    pub oauth: Option<(&'a str, &'a SecretString)>,
}

/// Check a delivery; the error says why it was refused (recorded, and sent in the 401).
pub fn verify(
    headers: &HeaderMap,
    query_token: Option<&str>,
    body: &[u8],
    creds: &Credentials<'_>,
) -> Result<Method, &'static str> {
    if let Some(sig) = headers.get("x-hub-signature") {
        let sig = sig.to_str().map_err(|_| "malformed X-Hub-Signature")?;
        let (method, hex_mac) = sig.split_once('=').ok_or("malformed X-Hub-Signature")?;
        if !method.eq_ignore_ascii_case("sha256") {
            return Err("unsupported X-Hub-Signature method");
        }
        let given = hex::decode(hex_mac.trim()).map_err(|_| "malformed X-Hub-Signature")?;
        let secret = creds
            .secret
            .ok_or("no webhook secret is set for this connection")?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .map_err(|_| "bad webhook secret")?;
        mac.update(body);
        return mac
            .verify_slice(&given)
            .map(|()| Method::Hmac)
            .map_err(|_| "wrong X-Hub-Signature");
    }
    if let Some(auth) = headers.get(axum::http::header::AUTHORIZATION) {
        let auth = auth.to_str().map_err(|_| "malformed Authorization")?;
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .ok_or("unsupported Authorization scheme")?;
        let (client_id, client_secret) = creds
            .oauth
            .ok_or("a bearer token is only accepted for OAuth connections")?;
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_audience(&[client_id]);
        v.validate_exp = true;
        v.leeway = 30;
        v.set_required_spec_claims(&["exp", "aud"]);
        return jsonwebtoken::decode::<serde_json::Value>(
            token.trim(),
            &jsonwebtoken::DecodingKey::from_secret(client_secret.expose_secret().as_bytes()),
            &v,
        )
        .map(|_| Method::Jwt)
        .map_err(|_| "invalid bearer token");
    }
    if let Some(token) = query_token {
        let want = creds
            .token_hash
            .ok_or("no URL token is set for this connection")?;
        let got = super::token_hash(token);
        return if bool::from(got.as_bytes().ct_eq(want.as_bytes())) {
            Ok(Method::Token)
        } else {
            Err("wrong URL token")
        };
    }
    Err("the delivery is not signed (no X-Hub-Signature, bearer token or URL token)")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn creds<'a>(secret: &'a SecretString, hash: &'a str) -> Credentials<'a> {
        Credentials {
            secret: Some(secret),
            token_hash: Some(hash),
            oauth: None,
        }
    }

    fn hub(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn hmac_token_and_refusals() {
        let secret = SecretString::from("s3cret".to_owned());
        let hash = super::super::token_hash("tok");
        let c = creds(&secret, &hash);
        let body = br#"{"webhookEvent":"jira:issue_updated"}"#;
        let mut h = HeaderMap::new();
        h.insert("x-hub-signature", hub("s3cret", body).parse().unwrap());
        assert_eq!(verify(&h, None, body, &c), Ok(Method::Hmac));
        assert!(verify(&h, None, b"{}", &c).is_err(), "body changed");
        h.insert("x-hub-signature", hub("other", body).parse().unwrap());
        assert_eq!(
            verify(&h, Some("tok"), body, &c),
            Err("wrong X-Hub-Signature")
        );
        let empty = HeaderMap::new();
        assert_eq!(verify(&empty, Some("tok"), body, &c), Ok(Method::Token));
        assert_eq!(
            verify(&empty, Some("tok2"), body, &c),
            Err("wrong URL token")
        );
        assert!(verify(&empty, None, body, &c).is_err());
    }

    #[test]
    fn jwt_checks_audience_and_expiry() {
        let secret = SecretString::from("client-secret".to_owned());
        let c = Credentials {
            secret: None,
            token_hash: None,
            oauth: Some(("client-1", &secret)),
        };
        let now = chrono::Utc::now().timestamp();
        let sign = |aud: &str, exp: i64, key: &str| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &serde_json::json!({"aud": aud, "exp": exp, "iat": now}),
                &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
            )
            .unwrap()
        };
        let with = |t: String| {
            let mut h = HeaderMap::new();
            h.insert("authorization", format!("Bearer {t}").parse().unwrap());
            h
        };
        let ok = with(sign("client-1", now + 180, "client-secret"));
        assert_eq!(verify(&ok, None, b"{}", &c), Ok(Method::Jwt));
        let wrong_aud = with(sign("client-2", now + 180, "client-secret"));
        assert!(verify(&wrong_aud, None, b"{}", &c).is_err());
        let expired = with(sign("client-1", now - 3600, "client-secret"));
        assert!(verify(&expired, None, b"{}", &c).is_err());
        let wrong_key = with(sign("client-1", now + 180, "nope"));
        assert!(verify(&wrong_key, None, b"{}", &c).is_err());
    }
}
