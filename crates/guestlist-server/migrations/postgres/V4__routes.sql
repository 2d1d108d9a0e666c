-- Issue 14 §2-3 (SQLite: the last migration of store/schema.rs): the route a request was routed
-- by when it was created (NULL: unrouted), the approvals it needs (1 or 2), and the approvals
-- recorded while it waits for more (a JSON array of {by, at}; NULL when none).
ALTER TABLE requests ADD COLUMN route text;
ALTER TABLE requests ADD COLUMN approvals_required smallint NOT NULL DEFAULT 1
    CHECK (approvals_required IN (1, 2));
ALTER TABLE requests ADD COLUMN approvals jsonb;
-- a routed approver's list, in created order
CREATE INDEX requests_route_order ON requests (route, created_at, id);
