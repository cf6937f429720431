-- Durable jobs and their items (the job engine).
-- Timestamps are UTC text in the fixed form YYYY-MM-DDTHH:MM:SS.ffffffZ.

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL DEFAULT '{}',
    payload_version  INTEGER NOT NULL DEFAULT 1,
    state            TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'partially_failed', 'cancelled')),
    total            INTEGER NOT NULL DEFAULT 0,
    succeeded        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    pending          INTEGER NOT NULL DEFAULT 0,
    running          INTEGER NOT NULL DEFAULT 0,
    held             INTEGER NOT NULL DEFAULT 0,
    cancelled        INTEGER NOT NULL DEFAULT 0,
    idempotency_key  TEXT,
    connection_id    TEXT REFERENCES connections(id) ON DELETE SET NULL,
    cancel_requested_at TEXT,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    updated_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, idempotency_key);
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);
CREATE INDEX jobs_active ON jobs (kind, state, id);

CREATE TABLE job_items (
    id               TEXT PRIMARY KEY NOT NULL,
    job_id           TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    item_key         TEXT,
    payload          TEXT NOT NULL DEFAULT '{}',
    state            TEXT NOT NULL
        CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'held')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    lease_owner      TEXT,
    lease_until      TEXT,
    lease_epoch      INTEGER NOT NULL DEFAULT 0,
    result           TEXT,
    error            TEXT,
    depends_on       TEXT REFERENCES job_items(id) ON DELETE SET NULL,
    group_key        TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (job_id, seq)
);
CREATE INDEX job_items_due ON job_items (job_id, state, next_attempt_at);
CREATE INDEX job_items_leases ON job_items (state, lease_until);
CREATE INDEX job_items_owner ON job_items (lease_owner, state);
CREATE INDEX job_items_depends ON job_items (depends_on);
CREATE INDEX job_items_key ON job_items (job_id, item_key);
