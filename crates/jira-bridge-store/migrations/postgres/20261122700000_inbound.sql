-- Inbound Jira webhooks: every accepted delivery (deduplicated by Jira's
-- X-Atlassian-Webhook-Identifier per connection), applied asynchronously; and the
-- per-connection webhook set-up (sealed secret, URL token hash, registrations, health).
-- Timestamps are TIMESTAMPTZ (UTC).

CREATE TABLE inbound_webhooks (
    seq            BIGSERIAL PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    identifier     TEXT NOT NULL,
    event          TEXT NOT NULL,
    body           TEXT NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL,
    applied_at     TIMESTAMPTZ,
    outcome        TEXT,
    UNIQUE (connection_id, identifier)
);
CREATE INDEX inbound_webhooks_pending ON inbound_webhooks (seq) WHERE applied_at IS NULL;

CREATE TABLE jira_webhook_setups (
    id                       TEXT PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
    tenant_id                TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    secret                   BYTEA,
    secret_key_id            TEXT,
    token_hash               TEXT,
    registration_ids         TEXT NOT NULL DEFAULT '[]',
    registration_jql         TEXT,
    registration_expires_at  TIMESTAMPTZ,
    last_received_at         TIMESTAMPTZ,
    received_count           BIGINT NOT NULL DEFAULT 0,
    rejected_count           BIGINT NOT NULL DEFAULT 0,
    last_rejected_at         TIMESTAMPTZ,
    last_rejection           TEXT,
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL
);
