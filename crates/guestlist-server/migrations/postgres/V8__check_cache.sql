-- Issue 13 §2 "A decision is seen at once" with an in-memory check-status cache per replica
-- (store/pg/check_cache.rs). Each replica that caches holds a lease row here. Every write that
-- can change a check-status answer appends the SHA-256 of the person's canonical e-mail to the
-- inbox of every row, in its own transaction (the triggers below, so no write path can forget
-- it); a replica empties its inbox, drops those entries from memory, and only then records
-- `drained` and renews its lease. A writer acknowledges only once every replica holding a live
-- lease has drained past its entries, or has let its lease lapse (a replica serves nothing from
-- memory after its lease and must empty its cache before it takes a new one).
CREATE TABLE check_caches (
    replica uuid PRIMARY KEY,
    lease_until timestamptz NOT NULL,
    -- entries appended since the row was made, and how many of them the replica has applied
    appended bigint NOT NULL DEFAULT 0,
    drained bigint NOT NULL DEFAULT 0,
    -- SHA-256 digests of canonical e-mails, oldest first; at most 4,096 (then `flush`)
    inbox bytea[] NOT NULL DEFAULT '{}',
    -- the replica must empty its whole cache (the inbox overflowed, or a tombstone changed)
    flush boolean NOT NULL DEFAULT false
);

-- Appends one entry (`h` NULL: "empty the whole cache") to every replica's inbox, rows locked
-- in key order (two writers never deadlock on them).
--
-- First it takes the shared sequence lock (store/pg/mod.rs `SEQ_LOCK`, namespace "glst"; held
-- already by guestlist's own writers): a replica registers under that lock taken exclusively,
-- so no replica registers while a transaction that appended to the other rows is in flight,
-- and every later append sees its row.
--
-- A writer that will not wait at the barrier after its commit (a replica of an earlier version,
-- an operator's SQL: any session without `guestlist.check_cache_barrier = on`) then waits here,
-- before its commit, until every lease has lapsed. It holds every row meanwhile, so no replica
-- renews; each stops serving from memory before its lease ends and empties its cache before it
-- takes a new one, so none answers from before this write once it commits.
CREATE FUNCTION guestlist_check_invalidate(h bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lapse timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1735160692, 1);
    UPDATE check_caches c
       SET appended = c.appended + 1,
           inbox = CASE WHEN h IS NULL OR c.flush OR cardinality(c.inbox) >= 4096
                        THEN c.inbox ELSE c.inbox || h END,
           flush = c.flush OR h IS NULL OR cardinality(c.inbox) >= 4096
      FROM (SELECT replica FROM check_caches ORDER BY replica FOR UPDATE) locked
     WHERE c.replica = locked.replica;
    IF current_setting('guestlist.check_cache_barrier', true) IS DISTINCT FROM 'on' THEN
        SELECT max(lease_until) INTO lapse FROM check_caches;
        IF lapse > clock_timestamp() THEN
            PERFORM pg_sleep(extract(epoch FROM lapse - clock_timestamp()));
        END IF;
    END IF;
END
$$;

CREATE FUNCTION guestlist_requests_check_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM guestlist_check_invalidate(sha256(convert_to(OLD.email, 'UTF8')));
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.email IS DISTINCT FROM OLD.email) THEN
        PERFORM guestlist_check_invalidate(sha256(convert_to(NEW.email, 'UTF8')));
    END IF;
    RETURN NULL;
END
$$;

-- What check-status reads of a request: its key, id, status and creation time, and (for the
-- person's other requests) whether it is denied. A new pending or approved request changes no
-- cached answer (a cache holds only stored requests and denied e-mails, never "nothing").
CREATE TRIGGER requests_check_cache_update AFTER UPDATE ON requests FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.created_at IS DISTINCT FROM NEW.created_at
          OR OLD.id IS DISTINCT FROM NEW.id
          OR OLD.email IS DISTINCT FROM NEW.email
          OR OLD.issuer IS DISTINCT FROM NEW.issuer
          OR OLD.issuer_assigned_id IS DISTINCT FROM NEW.issuer_assigned_id)
    EXECUTE FUNCTION guestlist_requests_check_invalidate();
CREATE TRIGGER requests_check_cache_delete AFTER DELETE ON requests FOR EACH ROW
    EXECUTE FUNCTION guestlist_requests_check_invalidate();
CREATE TRIGGER requests_check_cache_insert AFTER INSERT ON requests FOR EACH ROW
    WHEN (NEW.status = 'denied')
    EXECUTE FUNCTION guestlist_requests_check_invalidate();

-- A tombstone holds a keyed digest, not the e-mail: any change empties every cache.
CREATE FUNCTION guestlist_tombstones_check_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM guestlist_check_invalidate(NULL);
    RETURN NULL;
END
$$;
CREATE TRIGGER tombstones_check_cache AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON tombstones
    FOR EACH STATEMENT EXECUTE FUNCTION guestlist_tombstones_check_invalidate();
-- TRUNCATE of requests (an operator's reset) empties every cache too.
CREATE TRIGGER requests_check_cache_truncate AFTER TRUNCATE ON requests
    FOR EACH STATEMENT EXECUTE FUNCTION guestlist_tombstones_check_invalidate();
