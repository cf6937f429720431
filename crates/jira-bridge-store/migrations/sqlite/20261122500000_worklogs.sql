-- Time entries (host time records) that become Jira worklogs, every sync attempt, and
-- the per-connection position in Jira's worklog change feeds.
-- Timestamps are UTC text in the fixed form YYYY-MM-DDTHH:MM:SS.ffffffZ.

CREATE TABLE time_entries (
    id                 TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connection_id      TEXT NOT NULL,
    source_id          TEXT NOT NULL,
    owner              TEXT,
    issue_key          TEXT NOT NULL,
    started_at         TEXT NOT NULL,
    started_offset_s   INTEGER NOT NULL DEFAULT 0,
    time_zone          TEXT,
    duration_s         INTEGER NOT NULL,
    comment            TEXT,
    sync_mode          TEXT NOT NULL DEFAULT 'manual',
    state              TEXT NOT NULL DEFAULT 'not_synced',
    content_hash       TEXT NOT NULL,
    synced_hash        TEXT,
    worklog_id         TEXT,
    worklog_issue_key  TEXT,
    remote_updated_ms  INTEGER,
    remote             TEXT,
    last_error         TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_sync_at       TEXT,
    lease_owner        TEXT,
    lease_until        TEXT,
    intent             TEXT,
    synced_at          TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE UNIQUE INDEX time_entries_source ON time_entries (tenant_id, source_id);
CREATE INDEX time_entries_state ON time_entries (tenant_id, state, id);
CREATE INDEX time_entries_due ON time_entries (next_sync_at) WHERE next_sync_at IS NOT NULL;
CREATE INDEX time_entries_worklog ON time_entries (connection_id, worklog_id);

CREATE TABLE sync_history (
    id             TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL,
    subject_kind   TEXT NOT NULL,
    subject_id     TEXT NOT NULL,
    connection_id  TEXT,
    issue_key      TEXT,
    remote_id      TEXT,
    job_id         TEXT,
    error_code     TEXT,
    error          TEXT,
    detail         TEXT NOT NULL DEFAULT '{}',
    at             TEXT NOT NULL
);
CREATE INDEX sync_history_tenant ON sync_history (tenant_id, id);
CREATE INDEX sync_history_subject ON sync_history (tenant_id, subject_kind, subject_id, id);

CREATE TABLE worklog_feed_cursors (
    connection_id  TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    updated_since  INTEGER NOT NULL DEFAULT 0,
    deleted_since  INTEGER NOT NULL DEFAULT 0,
    updated_at     TEXT NOT NULL
);
