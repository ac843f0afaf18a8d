-- Security keys, WebAuthn ceremonies, npm web logins, and server-held secrets.
CREATE TABLE security_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    credential_id BLOB NOT NULL UNIQUE,
    -- The webauthn-rs credential (public key, flags, attestation) as JSON.
    credential TEXT NOT NULL,
    -- Signature counter, updated with compare-and-set.
    counter BIGINT NOT NULL,
    aaguid TEXT NOT NULL,
    attestation_format TEXT NOT NULL,
    -- Whether the attestation chained to a CA the server trusts (and the AAGUID is allowed).
    attested BOOLEAN NOT NULL,
    attestation_ca TEXT,
    user_verified BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    -- Set when the key is refused from now on (e.g. its counter went backwards).
    suspended_at BIGINT,
    suspended_reason TEXT
);
CREATE INDEX security_keys_user ON security_keys(user_id);

CREATE TABLE ceremonies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    -- webauthn-rs ceremony state, JSON.
    state TEXT NOT NULL,
    -- What the ceremony is for (invite, key name, npm login id), JSON.
    context TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ceremonies_expires ON ceremonies(expires_at);

CREATE TABLE npm_logins (
    id TEXT PRIMARY KEY,
    done_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    approved_at BIGINT,
    collected_at BIGINT
);

CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- How a token came to be: 'issued' (admin CLI), 'derived' (from another token), 'login' (a key
-- tap). Fresh 'login' tokens may manage keys.
ALTER TABLE api_tokens ADD COLUMN source TEXT NOT NULL DEFAULT 'issued';
