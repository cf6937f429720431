-- Foundation: tenants, API keys, audit log, connections.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    scopes        JSONB NOT NULL DEFAULT '[]',
    created_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_kind  TEXT,
    target_id    TEXT,
    outcome      TEXT NOT NULL,
    detail       JSONB NOT NULL DEFAULT '{}',
    request_id   TEXT,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

CREATE TABLE connections (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind                 TEXT NOT NULL CHECK (kind IN ('cloud_oauth', 'cloud_token', 'dc_pat')),
    owner                TEXT,
    name                 TEXT NOT NULL,
    base_url             TEXT NOT NULL,
    cloud_id             TEXT,
    site_name            TEXT,
    account_id           TEXT,
    secret               BYTEA NOT NULL,
    secret_key_id        TEXT NOT NULL,
    scopes               JSONB NOT NULL DEFAULT '[]',
    token_expires_at     TIMESTAMPTZ,
    token_version        BIGINT NOT NULL DEFAULT 0,
    verification_status  TEXT NOT NULL DEFAULT 'not_verified'
        CHECK (verification_status IN ('not_verified', 'valid', 'invalid', 'expired')),
    last_verified_at     TIMESTAMPTZ,
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX connections_tenant ON connections (tenant_id, id);
CREATE INDEX connections_owner ON connections (tenant_id, owner, id);
