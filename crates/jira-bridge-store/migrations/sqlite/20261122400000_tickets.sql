-- Tickets: links between host objects and Jira issues, reusable configs, and the
-- status-sync watermark per connection.
-- Timestamps are UTC text in the fixed form YYYY-MM-DDTHH:MM:SS.ffffffZ.

-- Reusable ticket targets (e.g. WEB / PLAY_STORE / APP_STORE).
CREATE TABLE ticket_configs (
    id             TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    description    TEXT,
    targets        TEXT NOT NULL DEFAULT '[]',
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX ticket_configs_tenant ON ticket_configs (tenant_id, id);

-- One row per (tenant, source kind, source id, purpose): the ledger that makes
-- creation exactly once. `state` is `pending` (reserved, the issue may or may not
-- exist yet), `created` or `failed` (Jira refused; nothing exists). `claimed_by` /
-- `claimed_until`: who is creating the issue right now (one creator at a time).
CREATE TABLE links (
    id                 TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connection_id      TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    source_kind        TEXT NOT NULL,
    source_id          TEXT NOT NULL,
    purpose            TEXT NOT NULL DEFAULT '',
    idempotency_key    TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'created', 'failed')),
    project_key        TEXT NOT NULL,
    issue_id           TEXT,
    issue_key          TEXT,
    url                TEXT,
    status             TEXT,
    status_category    TEXT,
    remote_updated_at  TEXT,
    synced_at          TEXT,
    config_id          TEXT,
    target             TEXT,
    job_id             TEXT,
    claimed_by         TEXT,
    claimed_until      TEXT,
    last_error         TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (tenant_id, source_kind, source_id, purpose)
);
CREATE INDEX links_tenant ON links (tenant_id, id);
CREATE INDEX links_issue ON links (connection_id, issue_id);
CREATE INDEX links_idempotency ON links (connection_id, idempotency_key);

-- Incremental status sync per connection: issues updated at or after
-- `watermark - overlap` are read on the next run.
CREATE TABLE ticket_sync_state (
    connection_id  TEXT PRIMARY KEY NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    watermark      TEXT,
    last_run_at    TEXT,
    last_searches  INTEGER NOT NULL DEFAULT 0,
    last_changed   INTEGER NOT NULL DEFAULT 0
);
