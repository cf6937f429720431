-- Connections: what verification learned about the site, OAuth state and pending site
-- selections, and the per-connection metadata cache.
-- Timestamps are TIMESTAMPTZ (UTC).

ALTER TABLE connections ADD COLUMN email TEXT;
ALTER TABLE connections ADD COLUMN account_name TEXT;
ALTER TABLE connections ADD COLUMN deployment TEXT;
ALTER TABLE connections ADD COLUMN server_version TEXT;
ALTER TABLE connections ADD COLUMN last_error TEXT;
ALTER TABLE connections ADD COLUMN last_refreshed_at TIMESTAMPTZ;
CREATE INDEX connections_kind ON connections (kind, id);

-- One row per OAuth authorization started with POST /v1/oauth/start. `id` is the
-- SHA-256 (hex) of the state's nonce; the state itself is never stored.
CREATE TABLE oauth_states (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    owner       TEXT,
    name        TEXT,
    return_to   TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);

-- A grant that reaches several sites, waiting for the user to pick one. The token
-- pair is sealed (bound to the row id).
CREATE TABLE oauth_selections (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    owner             TEXT,
    name              TEXT,
    return_to         TEXT,
    sites             JSONB NOT NULL DEFAULT '[]',
    scopes            JSONB NOT NULL DEFAULT '[]',
    secret            BYTEA NOT NULL,
    secret_key_id     TEXT NOT NULL,
    token_expires_at  TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL,
    used_at           TIMESTAMPTZ,
    connection_id     TEXT
);
CREATE INDEX oauth_selections_tenant ON oauth_selections (tenant_id, id);

-- Jira metadata (projects, issue types, fields, …) fetched through a connection.
CREATE TABLE connection_metadata (
    connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    cache_key      TEXT NOT NULL,
    value          JSONB NOT NULL,
    fetched_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connection_id, cache_key)
);
