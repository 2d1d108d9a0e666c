-- Settings every replica shares. Today: the generated denial tombstone key, used only when
-- retention.tombstone_key is not configured (see store/pg/mod.rs, "Tombstone key").
CREATE TABLE settings (
    name text PRIMARY KEY,
    value bytea NOT NULL
);
