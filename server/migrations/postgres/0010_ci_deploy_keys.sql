-- CI without codes. A CI credential is created by a maintainer's tap whose intent is its scope;
-- CI trades it for deploy keys: documents the registry signs with its Ed25519 key, each good for
-- exactly one publish (package, version, tarball, tags), once, for minutes.
CREATE TABLE ci_credentials (
    -- Public id (ci_…), part of the approved intent.
    id TEXT PRIMARY KEY,
    package TEXT NOT NULL REFERENCES packages(name),
    name TEXT NOT NULL,
    -- SHA-256 (hex) of the tg_ci_… secret; the secret itself is shown once and never stored.
    secret_hash TEXT NOT NULL UNIQUE,
    -- The npm version range, dist-tags (JSON array) and client networks (JSON array) allowed.
    versions TEXT NOT NULL,
    tags TEXT NOT NULL,
    cidrs TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    -- The approval (the maintainer's tap) that created it: the chain's first link.
    approval_id TEXT NOT NULL REFERENCES approvals(id),
    revoked_at BIGINT,
    revoked_by TEXT,
    last_used_at BIGINT
);
CREATE INDEX ci_credentials_package ON ci_credentials (package);

CREATE TABLE deploy_keys (
    -- SHA-256 (hex) of the deploy key's text: what a publish spends.
    hash TEXT PRIMARY KEY,
    nonce TEXT NOT NULL UNIQUE,
    kid TEXT NOT NULL,
    credential_id TEXT NOT NULL REFERENCES ci_credentials(id),
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    integrity TEXT NOT NULL,
    tags TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- Set in the transaction that publishes the version, with the deploy key's text (the
    -- version's record; worthless once spent).
    spent_at BIGINT,
    document TEXT
);
CREATE UNIQUE INDEX deploy_keys_spent_version ON deploy_keys (package, version) WHERE spent_at IS NOT NULL;

-- The registry's Ed25519 signing keys. One is current (not_after NULL); rotated-out keys stay,
-- with the time they stopped signing, so that what they signed stays verifiable.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    private_key BYTEA NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (alg) WHERE not_after IS NULL;
