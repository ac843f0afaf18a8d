-- Packages, their versions (tarball bytes next to the metadata, so a publish commits whole or not
-- at all), dist-tags, maintainers, and publish approvals.
CREATE TABLE packages (
    name TEXT PRIMARY KEY,
    -- PackagePolicy as JSON, e.g. {"second_factor":"security-key"}.
    policy TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    modified_at BIGINT NOT NULL
);

CREATE TABLE package_maintainers (
    package TEXT NOT NULL REFERENCES packages(name) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (package, user_id)
);
CREATE INDEX package_maintainers_user ON package_maintainers(user_id);

CREATE TABLE versions (
    package TEXT NOT NULL REFERENCES packages(name) ON DELETE CASCADE,
    version TEXT NOT NULL,
    -- The version manifest (package.json plus dist), JSON.
    manifest TEXT NOT NULL,
    tarball BYTEA NOT NULL,
    integrity TEXT NOT NULL,
    shasum TEXT NOT NULL,
    size BIGINT NOT NULL,
    published_by TEXT NOT NULL REFERENCES users(id),
    published_at BIGINT NOT NULL,
    approval_id TEXT,
    PRIMARY KEY (package, version)
);

CREATE TABLE dist_tags (
    package TEXT NOT NULL REFERENCES packages(name) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (package, tag)
);

CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    integrity TEXT NOT NULL,
    requested_by TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    nonce BYTEA NOT NULL,
    challenge BYTEA NOT NULL,
    -- webauthn-rs authentication state whose challenge is the intent challenge, JSON.
    auth_state TEXT NOT NULL,
    -- Hash of the secret in npm's doneUrl.
    done_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    approved_at BIGINT,
    approved_by TEXT REFERENCES users(id),
    key_id TEXT,
    ticket_hash TEXT UNIQUE,
    ticket_expires_at BIGINT,
    code_hash TEXT,
    used_at BIGINT,
    -- The signed evidence, kept for offline verification.
    credential_id BYTEA,
    credential_public_key TEXT,
    client_data_json BYTEA,
    authenticator_data BYTEA,
    signature BYTEA,
    user_verified BOOLEAN
);
CREATE INDEX approvals_intent ON approvals(package, version, integrity);
