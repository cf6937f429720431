-- Events: the outbox of domain events, outbound webhook subscriptions, their
-- deliveries and every delivery attempt.
-- Timestamps are UTC text in the fixed form YYYY-MM-DDTHH:MM:SS.ffffffZ.

-- One row: the last event sequence number handed out. Incrementing it inside the
-- appending transaction serialises appends, so sequence order is commit order and a
-- reader paging with `seq > cursor` never skips an event committed later.
CREATE TABLE event_sequence (
    id    INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    last  INTEGER NOT NULL
);
INSERT INTO event_sequence (id, last) VALUES (1, 0);

CREATE TABLE events (
    id          TEXT PRIMARY KEY NOT NULL,
    seq         INTEGER NOT NULL UNIQUE,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    subject     TEXT,
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);
CREATE INDEX events_tenant_seq ON events (tenant_id, seq);

CREATE TABLE subscriptions (
    id               TEXT PRIMARY KEY NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    event_types      TEXT NOT NULL DEFAULT '[]',
    description      TEXT,
    enabled          INTEGER NOT NULL DEFAULT 1,
    disabled_reason  TEXT,
    failing_since    TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, id);

-- Signing secrets of a subscription: the current one (expires_at NULL) and, during a
-- rotation, earlier ones valid until expires_at. Sealed; bound to the row id.
CREATE TABLE subscription_secrets (
    id               TEXT PRIMARY KEY NOT NULL,
    subscription_id  TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    secret           BLOB NOT NULL,
    secret_key_id    TEXT NOT NULL,
    expires_at       TEXT,
    created_at       TEXT NOT NULL
);
CREATE INDEX subscription_secrets_subscription ON subscription_secrets (subscription_id, id);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subscription_id  TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    state            TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'succeeded', 'failed', 'exhausted')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    lease_owner      TEXT,
    lease_until      TEXT,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, id);

CREATE TABLE delivery_attempts (
    id                TEXT PRIMARY KEY NOT NULL,
    delivery_id       TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    attempted_at      TEXT NOT NULL,
    status_code       INTEGER,
    duration_ms       INTEGER NOT NULL,
    error             TEXT,
    response_snippet  TEXT,
    UNIQUE (delivery_id, attempt)
);
