//! Typed, prefixed, time-ordered ids: `ten_0190…` (prefix, `_`, 32 lowercase hex
//! digits of a UUIDv7). Lexical order is creation order, which list queries use for
//! keyset paging. Parse, don't validate: a `TenantId` always has the right shape.

/// An id string had the wrong prefix or shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id: expected `{prefix}_` followed by 32 hex digits")]
pub struct InvalidId {
    /// What kind of id was expected.
    pub kind: &'static str,
    /// The expected prefix.
    pub prefix: &'static str,
}

/// A fresh `prefix_<uuidv7 hex>` string.
pub fn new_prefixed(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

fn well_formed(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Define a prefixed id type. Modules added later use it for their own ids:
/// `define_id!(JobId, "job", "job");`
#[macro_export]
macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type, serde::Serialize)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id prefix, without the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-ordered id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self($crate::ids::new_prefixed($prefix))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::ids::InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if $crate::ids::is_well_formed(s, $prefix) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err($crate::ids::InvalidId { kind: $kind, prefix: $prefix })
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

#[doc(hidden)]
pub fn is_well_formed(s: &str, prefix: &str) -> bool {
    well_formed(s, prefix)
}

define_id!(
    /// A tenant: one host application (or one environment of it).
    TenantId, "ten", "tenant"
);
define_id!(
    /// An API key of a tenant.
    ApiKeyId, "key", "API key"
);
define_id!(
    /// A Jira connection.
    ConnectionId, "con", "connection"
);
define_id!(
    /// An audit log entry.
    AuditId, "aud", "audit entry"
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_prefixed_parse_back_and_sort_by_creation() {
        let a = TenantId::new();
        let b = TenantId::new();
        assert!(a.as_str().starts_with("ten_"));
        assert_eq!(a.as_str().len(), 4 + 32);
        assert!(a < b, "{a} should sort before {b}");
        assert_eq!(a.as_str().parse::<TenantId>().unwrap(), a);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        let good = ConnectionId::new();
        assert!(good.as_str().parse::<TenantId>().is_err(), "wrong prefix");
        assert!("con_xyz".parse::<ConnectionId>().is_err());
        assert!(format!("{}A", &good.as_str()[..35])
            .parse::<ConnectionId>()
            .is_err());
        assert!("".parse::<ConnectionId>().is_err());
    }
}
