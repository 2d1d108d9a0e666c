-- The PostgreSQL schema of guestlist-server (issue 13): the same logical tables as the SQLite
-- store's migrations 1-5 (crates/guestlist-server/src/store/schema.rs, audit.rs, privacy.rs),
-- with native types. Applied by refinery (table refinery_schema_history) under an advisory lock,
-- so replicas starting together migrate once. Never edit a shipped migration: add V2__….sql.

-- The change sequence of GET /api/requests?since= (requests.change_seq and erasures.change_seq
-- share it) and the event sequence of /api/events. Readers never skip a number committed late:
-- see store/pg/mod.rs "Sequence order across replicas".
CREATE SEQUENCE change_seq AS bigint;
CREATE SEQUENCE event_seq AS bigint;

CREATE TABLE requests (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    issuer text NOT NULL,
    issuer_assigned_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    state jsonb NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    decided_by jsonb,
    attempts bigint NOT NULL,
    claims jsonb NOT NULL,
    search text NOT NULL,
    change_seq bigint NOT NULL,
    CONSTRAINT requests_key UNIQUE (email, issuer, issuer_assigned_id)
);
-- denied-e-mail lookups, the denial of the same person, reopen's companions, erasure by e-mail
CREATE INDEX requests_email_status ON requests (email, status);
-- the approvers' list (by status, or all) in created order
CREATE INDEX requests_status_order ON requests (status, created_at, id);
CREATE INDEX requests_order ON requests (created_at, id);
-- since= sync
CREATE INDEX requests_change ON requests (change_seq);
-- retention of decided requests
CREATE INDEX requests_retention ON requests (status, updated_at);

CREATE TABLE history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id uuid NOT NULL,
    at timestamptz NOT NULL,
    action text NOT NULL,
    actor jsonb NOT NULL,
    version bigint NOT NULL,
    detail jsonb NOT NULL
);
CREATE INDEX history_request ON history (request_id, id);

CREATE TABLE events (
    seq bigint PRIMARY KEY,
    kind text NOT NULL,
    -- The request concerned (erasure deletes its events by it).
    request_id uuid NOT NULL,
    -- The request's updatedAt, or the erasure's time: event compaction reads it.
    at timestamptz NOT NULL,
    -- The request after the change, or {"id","at"} for request.erased.
    body jsonb NOT NULL
);
CREATE INDEX events_request ON events (request_id);

CREATE TABLE idempotency (
    key text PRIMARY KEY,
    request_id uuid NOT NULL,
    fingerprint text NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX idempotency_request ON idempotency (request_id);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE reminded (
    request_id uuid PRIMARY KEY,
    at_unix bigint NOT NULL
);

CREATE TABLE audit_log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    action text NOT NULL,
    request_id uuid,
    actor jsonb NOT NULL,
    detail jsonb NOT NULL
);

-- HMAC-SHA256 of the canonical e-mail under the configured tombstone key.
CREATE TABLE tombstones (
    digest bytea PRIMARY KEY CHECK (octet_length(digest) = 32),
    created_at timestamptz NOT NULL
);

CREATE TABLE erasures (
    change_seq bigint PRIMARY KEY,
    request_id uuid NOT NULL,
    at timestamptz NOT NULL
);
