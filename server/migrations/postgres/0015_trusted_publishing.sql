-- Trusted publishing (OIDC). A trust is created by a maintainer's tap (or, for a name nobody
-- holds yet, a claimant's: a pending trusted publisher) whose intent names the issuer and the
-- claims an ID token must carry. CI exchanges a matching ID token for a short-lived registry
-- token that publishes (or stages) that one package, once.
CREATE TABLE trusts (
    -- Public id (trust_…), part of the approved intent.
    id TEXT PRIMARY KEY,
    -- No reference to packages: the name may not exist yet.
    package TEXT NOT NULL,
    issuer TEXT NOT NULL,
    -- npm's type (github, gitlab, circleci) or the operator's name for the issuer.
    provider TEXT NOT NULL,
    -- Canonical JSON (sorted keys, no spaces) of claim name -> required value.
    claims TEXT NOT NULL,
    -- JSON array of npm's permission names (createPackage, createStagedPackage).
    permissions TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    -- The approval (the tap) that created it: the chain's first link.
    approval_id TEXT NOT NULL REFERENCES approvals(id),
    removed_at BIGINT,
    removed_by TEXT
);
CREATE INDEX trusts_package ON trusts (package);

-- Every ID token exchanged, by issuer and jti, until it expires: a replay is refused by every
-- instance sharing the database.
CREATE TABLE oidc_jtis (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX oidc_jtis_expiry ON oidc_jtis (expires_at);

-- The registry tokens (tg_oidc_…) exchanges answered, by the SHA-256 of their text.
CREATE TABLE oidc_tokens (
    hash TEXT PRIMARY KEY,
    trust_id TEXT NOT NULL REFERENCES trusts(id),
    package TEXT NOT NULL,
    permissions TEXT NOT NULL,
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    -- The ID token and the issuer's key (JWK JSON) that verified it: the version's record once
    -- spent (the jti is spent already, so the ID token is worthless here).
    id_token TEXT NOT NULL,
    jwk TEXT NOT NULL,
    exchanged_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- Set in the transaction that publishes the version, with the registry's signed statement.
    spent_at BIGINT,
    version TEXT,
    statement TEXT
);
CREATE UNIQUE INDEX oidc_tokens_spent_version ON oidc_tokens (package, version) WHERE spent_at IS NOT NULL;
