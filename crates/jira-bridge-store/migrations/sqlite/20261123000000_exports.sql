-- Exports (epic -> story hierarchies) and releases (one epic per platform target).
-- Timestamps are UTC text in the fixed form YYYY-MM-DDTHH:MM:SS.ffffffZ.

-- One export run: the tree as posted (normalised), the job that creates it and the
-- job that rolls it back. Per-item state lives in the jobs' items.
CREATE TABLE exports (
    id               TEXT PRIMARY KEY NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connection_id    TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    project_key      TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'queued',
    job_id           TEXT,
    rollback_job_id  TEXT,
    options          TEXT NOT NULL DEFAULT '{}',
    tree             TEXT NOT NULL DEFAULT '[]',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    finished_at      TEXT
);
CREATE INDEX exports_tenant ON exports (tenant_id, id);
CREATE INDEX exports_job ON exports (job_id);
CREATE INDEX exports_rollback_job ON exports (rollback_job_id);

-- A release: one epic per platform target of a config. `platforms` is the JSON
-- list of {platform, project_key, completed_status, source_id}; the epics are links
-- (source kind `release`). `completed_at` is set once, with `release.completed`.
CREATE TABLE releases (
    id             TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    config_id      TEXT NOT NULL,
    version        TEXT NOT NULL,
    planned_date   TEXT,
    description    TEXT,
    platforms      TEXT NOT NULL DEFAULT '[]',
    job_id         TEXT,
    completed_at   TEXT,
    checked_at     TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX releases_tenant ON releases (tenant_id, id);
