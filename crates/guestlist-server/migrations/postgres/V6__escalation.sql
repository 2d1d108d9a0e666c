-- Issue 14 §2 (SQLite: the last migration of store/schema.rs): when the escalation job found a
-- routed request still pending `escalate_after_hours` after it was created and escalated it to
-- its route's fallback role (event `request.escalated`, one reminder). NULL: not escalated. Set
-- once (the upsert keeps a stored value), never cleared.
ALTER TABLE requests ADD COLUMN escalated_at timestamptz;
-- the job's search: pending routed requests not yet escalated, oldest first
CREATE INDEX requests_escalation_due ON requests (route, created_at)
    WHERE status = 'pending' AND escalated_at IS NULL AND route IS NOT NULL;
