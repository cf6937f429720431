-- Durable jobs and their items (the job engine).
-- Timestamps are TIMESTAMPTZ (UTC); JSON columns are JSONB.

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    payload          JSONB NOT NULL DEFAULT '{}',
    payload_version  BIGINT NOT NULL DEFAULT 1,
    state            TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'partially_failed', 'cancelled')),
    total            BIGINT NOT NULL DEFAULT 0,
    succeeded        BIGINT NOT NULL DEFAULT 0,
    failed           BIGINT NOT NULL DEFAULT 0,
    pending          BIGINT NOT NULL DEFAULT 0,
    running          BIGINT NOT NULL DEFAULT 0,
    held             BIGINT NOT NULL DEFAULT 0,
    cancelled        BIGINT NOT NULL DEFAULT 0,
    idempotency_key  TEXT,
    connection_id    TEXT REFERENCES connections(id) ON DELETE SET NULL,
    cancel_requested_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, idempotency_key);
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);
CREATE INDEX jobs_active ON jobs (kind, state, id);

CREATE TABLE job_items (
    id               TEXT PRIMARY KEY,
    job_id           TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    seq              BIGINT NOT NULL,
    item_key         TEXT,
    payload          JSONB NOT NULL DEFAULT '{}',
    state            TEXT NOT NULL
        CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'held')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    lease_epoch      BIGINT NOT NULL DEFAULT 0,
    result           JSONB,
    error            JSONB,
    depends_on       TEXT REFERENCES job_items(id) ON DELETE SET NULL,
    group_key        TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (job_id, seq)
);
CREATE INDEX job_items_due ON job_items (job_id, state, next_attempt_at);
CREATE INDEX job_items_leases ON job_items (state, lease_until);
CREATE INDEX job_items_owner ON job_items (lease_owner, state);
CREATE INDEX job_items_depends ON job_items (depends_on);
CREATE INDEX job_items_key ON job_items (job_id, item_key);
