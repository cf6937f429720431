-- Foundation: tenants, API keys, audit log, connections.
-- Timestamps are UTC text in the fixed form YYYY-MM-DDTHH:MM:SS.ffffffZ (see
-- `Timestamp`), so text comparison orders them correctly.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL DEFAULT '[]',
    created_at    TEXT NOT NULL,
    revoked_at    TEXT,
    last_used_at  TEXT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_kind  TEXT,
    target_id    TEXT,
    outcome      TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}',
    request_id   TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

CREATE TABLE connections (
    id                   TEXT PRIMARY KEY NOT NULL,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind                 TEXT NOT NULL CHECK (kind IN ('cloud_oauth', 'cloud_token', 'dc_pat')),
    owner                TEXT,
    name                 TEXT NOT NULL,
    base_url             TEXT NOT NULL,
    cloud_id             TEXT,
    site_name            TEXT,
    account_id           TEXT,
    secret               BLOB NOT NULL,
    secret_key_id        TEXT NOT NULL,
    scopes               TEXT NOT NULL DEFAULT '[]',
    token_expires_at     TEXT,
    token_version        INTEGER NOT NULL DEFAULT 0,
    verification_status  TEXT NOT NULL DEFAULT 'not_verified'
        CHECK (verification_status IN ('not_verified', 'valid', 'invalid', 'expired')),
    last_verified_at     TEXT,
    enabled              INTEGER NOT NULL DEFAULT 1,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX connections_tenant ON connections (tenant_id, id);
CREATE INDEX connections_owner ON connections (tenant_id, owner, id);
