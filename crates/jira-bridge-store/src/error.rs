use thiserror::Error;

/// Everything a store function can fail with. Callers match on the variants; the
/// database error itself is kept as the source for logs.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The row does not exist, or belongs to another tenant.
    #[error("not found")]
    NotFound,
    /// A uniqueness or foreign-key constraint refused the write.
    #[error("conflict with an existing row ({constraint})")]
    Conflict {
        /// Name of the constraint (or the database's message when it has none).
        constraint: String,
    },
    /// A paging cursor that this store did not produce.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The database URL is not usable.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// A stored value could not be read back (corrupt row).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// Applying migrations failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database error (connection lost, pool timeout, …).
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// Classify a driver error: unique / foreign-key violations become
    /// [`StoreError::Conflict`], a missing row [`StoreError::NotFound`].
    pub(crate) fn from_sqlx(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(ref db)
                if db.is_unique_violation() || db.is_foreign_key_violation() =>
            {
                Self::Conflict {
                    constraint: db
                        .constraint()
                        .map(str::to_owned)
                        .unwrap_or_else(|| db.message().to_owned()),
                }
            }
            e => Self::Database(e),
        }
    }

    /// True when the database could not be reached or a connection could not be had.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
            )
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::from_sqlx(e)
    }
}
