-- Idempotency-Key records: one per (scope, key). The stored response is sealed by the
-- service (it may contain a secret shown once, such as a new API key).
CREATE TABLE idempotency_keys (
    id               TEXT PRIMARY KEY NOT NULL,
    scope            TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    response         BLOB,
    response_key_id  TEXT,
    created_at       TEXT NOT NULL,
    completed_at     TEXT,
    expires_at       TEXT NOT NULL,
    UNIQUE (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
