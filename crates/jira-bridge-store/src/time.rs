use chrono::{DateTime, SubsecRound, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo};
use sqlx::{Encode, Postgres, Sqlite, Type};

/// A UTC instant with microsecond precision, as bound into queries.
///
/// PostgreSQL stores it as `TIMESTAMPTZ`. SQLite stores it as fixed-width text
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so comparisons in SQL (`lease_until < $1`) order
/// correctly. Rows read timestamps back as `DateTime<Utc>`, which both drivers decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// The current time, truncated to microseconds (what both databases keep).
    pub fn now() -> Self {
        Self::from(Utc::now())
    }

    /// As a `DateTime<Utc>`.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    fn sqlite_text(&self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Self(dt.trunc_subsecs(6))
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl Type<Sqlite> for Timestamp {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for Timestamp {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.sqlite_text(), buf)
    }
}

impl Type<Postgres> for Timestamp {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Timestamp {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sqlite_text_is_fixed_width_and_orders_like_time() {
        let a = Timestamp::from(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
        let b = Timestamp::from(a.as_datetime() + chrono::Duration::microseconds(500_000));
        let c = Timestamp::from(a.as_datetime() + chrono::Duration::microseconds(1));
        assert_eq!(a.sqlite_text(), "2026-01-02T03:04:05.000000Z");
        assert_eq!(a.sqlite_text().len(), b.sqlite_text().len());
        assert!(a.sqlite_text() < c.sqlite_text() && c.sqlite_text() < b.sqlite_text());
    }
}
