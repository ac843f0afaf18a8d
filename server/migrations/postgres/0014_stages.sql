-- Staged releases (npm's `npm stage`): an upload kept aside, served to nobody, until a maintainer
-- approves it (the normal publish of exactly these bytes, through the gate) or rejects it.
CREATE TABLE stages (
    -- A random UUID (npm's stage ids are UUIDs).
    id TEXT PRIMARY KEY,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    -- The tarball's SHA-512 SRI and SHA-1 (hex), computed here when it was staged.
    integrity TEXT NOT NULL,
    shasum TEXT NOT NULL,
    -- The dist-tags the publish will set (JSON array, sorted).
    tags TEXT NOT NULL,
    size BIGINT NOT NULL,
    -- The account the upload acts for (a CI credential's or trust's creator, or the user).
    staged_by TEXT NOT NULL REFERENCES users(id),
    -- How it was uploaded: user, ci-credential or oidc; and which credential or trust.
    actor_type TEXT NOT NULL,
    actor_ref TEXT,
    client_ip TEXT,
    user_agent TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- pending, published, rejected or superseded (the version was published otherwise).
    state TEXT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT
);
CREATE INDEX stages_package ON stages (package, created_at);
CREATE INDEX stages_pending_version ON stages (package, version) WHERE state = 'pending';

-- A stage's tarball, apart from the rows lists read; deleted with the decision.
CREATE TABLE stage_tarballs (
    stage_id TEXT PRIMARY KEY REFERENCES stages(id) ON DELETE CASCADE,
    bytes BYTEA NOT NULL
);
