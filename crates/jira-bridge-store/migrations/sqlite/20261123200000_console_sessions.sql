-- Console sessions: the browser holds a random id in an HTTP-only cookie; only its
-- SHA-256 is stored. Each session is bound to the API key it was opened with (a
-- revoked key ends it) and carries the synchronizer token its forms must echo.
CREATE TABLE console_sessions (
    id_hash       TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    api_key_id    TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
