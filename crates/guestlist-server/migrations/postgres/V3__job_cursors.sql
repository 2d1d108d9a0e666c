-- Durable per-job cursors (issue 14 §5): how far a job that follows the event log (the guest
-- e-mail job) has got, by job name. Written only by the replica holding the job's advisory lock;
-- the cursor only moves forward (GREATEST on update). See store/job_cursor.rs.
CREATE TABLE job_cursors (
    name text PRIMARY KEY,
    seq bigint NOT NULL
);
