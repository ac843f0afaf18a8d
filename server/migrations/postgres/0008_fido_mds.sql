-- The last FIDO Metadata Service BLOB this registry accepted (one row). A BLOB whose serial
-- number (`no`) is lower is older data replayed, and is refused at start-up.
CREATE TABLE fido_mds_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    serial BIGINT NOT NULL,
    next_update TEXT NOT NULL,
    blob_sha256 TEXT NOT NULL,
    accepted_at BIGINT NOT NULL
);
