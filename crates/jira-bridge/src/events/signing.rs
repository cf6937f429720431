//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).
//!
//! A secret is `whsec_` + base64 of 24 random bytes. A delivery carries
//! `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`: one or
//! more space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one
//! per valid secret (two while a rotated secret is in its grace period).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A stored secret that is not a `whsec_…` base64 value.
#[derive(Debug, thiserror::Error)]
#[error("signing secret is malformed")]
pub struct MalformedSecret;

/// A new random signing secret.
pub fn generate_secret() -> SecretString {
    let mut bytes = zeroize::Zeroizing::new([0u8; 24]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    SecretString::from(format!(
        "{SECRET_PREFIX}{}",
        STANDARD.encode(bytes.as_ref())
    ))
}

fn key_bytes(secret: &SecretString) -> Result<zeroize::Zeroizing<Vec<u8>>, MalformedSecret> {
    let b64 = secret
        .expose_secret()
        .strip_prefix(SECRET_PREFIX)
        .ok_or(MalformedSecret)?;
    STANDARD
        .decode(b64)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| MalformedSecret)
}

/// `v1,<signature>` of one message under one secret.
pub fn sign(
    secret: &SecretString,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, MalformedSecret> {
    let key = key_bytes(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| MalformedSecret)?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[SecretString],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, MalformedSecret> {
    let sigs = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(sigs.join(" "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The test vector of the Standard Webhooks reference libraries.
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let sig = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_prefixed_and_random_and_headers_carry_one_signature_each() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(a.expose_secret().starts_with(SECRET_PREFIX));
        assert_ne!(a.expose_secret(), b.expose_secret());
        let h = signature_header(&[a.clone(), b.clone()], "evt_1", 5, b"{}").unwrap();
        let parts: Vec<_> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&a, "evt_1", 5, b"{}").unwrap());
        assert_ne!(
            parts[0],
            sign(&a, "evt_1", 6, b"{}").unwrap(),
            "timestamp is signed"
        );
        assert!(sign(&SecretString::from("nope".to_owned()), "x", 1, b"").is_err());
    }
}
