-- Idempotency-Key records: one per (scope, key). The stored response is sealed by the
-- service (it may contain a secret shown once, such as a new API key).
CREATE TABLE idempotency_keys (
    id               TEXT PRIMARY KEY,
    scope            TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    response         BYTEA,
    response_key_id  TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    completed_at     TIMESTAMPTZ,
    expires_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
