-- Issue 13 §5 (bench/NOTES.md, "pgwrite"): fewer index entries written per new sign-up. A
-- new request is pending; these two indexes served only denied or decided rows, yet every
-- insert (and every update that changes status or updated_at) wrote an entry in each.
-- Lookups by e-mail alone (a person's requests: deny_same_person, erasure, export) use the
-- prefix of requests_key (email, issuer, issuer_assigned_id).
DROP INDEX requests_email_status;
-- "is this e-mail denied?" (check-status, request-approval, reopen): denied rows only.
CREATE INDEX requests_denied_email ON requests (email) WHERE status = 'denied';
DROP INDEX requests_retention;
-- retention of decided requests (store/pg/privacy.rs retention_batch, same predicate).
CREATE INDEX requests_retention_decided ON requests (updated_at)
    WHERE status IN ('approved', 'denied', 'expired');
