-- One gate for every write. An approval holds any gated intent (format 2: publish, dist-tags,
-- deprecation, unpublish, maintainers, policy, security keys) and any number of signatures; the
-- ticket it yields is bound to the digest of that exact intent.
ALTER TABLE approvals ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
ALTER TABLE approvals ADD COLUMN action TEXT NOT NULL DEFAULT 'publish';
-- The GateIntent as JSON (format 2; NULL for format-1 publish approvals).
ALTER TABLE approvals ADD COLUMN intent TEXT;
-- Hex SHA-256 of the intent's canonical form.
ALTER TABLE approvals ADD COLUMN intent_digest TEXT;
-- What committing the change needs that repeating the request does not carry (a verified new key).
ALTER TABLE approvals ADD COLUMN payload TEXT;
-- Distinct maintainers whose taps the policy demands.
ALTER TABLE approvals ADD COLUMN required_taps INTEGER NOT NULL DEFAULT 1;
-- The policy (JSON) the requirement was computed from; the commit re-checks it.
ALTER TABLE approvals ADD COLUMN policy TEXT;

CREATE TABLE approval_signatures (
    approval_id TEXT NOT NULL REFERENCES approvals(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id),
    key_id TEXT NOT NULL,
    credential_id BYTEA NOT NULL,
    credential_public_key TEXT NOT NULL,
    client_data_json BYTEA NOT NULL,
    authenticator_data BYTEA NOT NULL,
    signature BYTEA NOT NULL,
    user_verified BOOLEAN NOT NULL,
    signed_at BIGINT NOT NULL,
    PRIMARY KEY (approval_id, key_id)
);
INSERT INTO approval_signatures (approval_id, user_id, key_id, credential_id, credential_public_key,
    client_data_json, authenticator_data, signature, user_verified, signed_at)
SELECT id, approved_by, key_id, credential_id, credential_public_key, client_data_json, authenticator_data,
    signature, COALESCE(user_verified, FALSE), approved_at
FROM approvals
WHERE approved_at IS NOT NULL AND approved_by IS NOT NULL AND key_id IS NOT NULL AND signature IS NOT NULL
    AND credential_id IS NOT NULL AND credential_public_key IS NOT NULL AND client_data_json IS NOT NULL
    AND authenticator_data IS NOT NULL;

-- Deprecation messages; unpublished versions keep their row (the number is never reused, the
-- record stays) but lose their tarball bytes.
ALTER TABLE versions ADD COLUMN deprecated TEXT;
ALTER TABLE versions ADD COLUMN unpublished_at BIGINT;
ALTER TABLE versions ADD COLUMN unpublished_by TEXT;
ALTER TABLE versions ADD COLUMN unpublish_approval_id TEXT;

-- Scopes an administrator gave to users (@alice always belongs to the user alice).
CREATE TABLE scope_owners (
    scope TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (scope, user_id)
);
