-- Issue 17: the user flow a request came through ('workforce': self-service sign-up API
-- connectors; 'external': an external tenant's custom authentication extensions), and when an
-- approved external request was completed (its person's sign-up continued and Entra created the
-- customer account). The same columns as the SQLite store's migration in store/external.rs.
-- Rows stored before read as 'workforce'. V4 is taken by the routing/escalation work.
ALTER TABLE requests ADD COLUMN flow text NOT NULL DEFAULT 'workforce'
    CHECK (flow IN ('workforce', 'external'));
ALTER TABLE requests ADD COLUMN completed_at timestamptz;
