-- Critical packages: approvals that several maintainers give (N of M), that any maintainer can
-- reject, and administrators' acts that need their own tap besides the maintainers'.

-- The requester's own tap must be among the signatures (an administrator acting on a critical
-- package: the administrator's tap plus the maintainers' approvals).
ALTER TABLE approvals ADD COLUMN requester_must_sign BOOLEAN NOT NULL DEFAULT FALSE;
-- Set when a maintainer rejected the change with a tap: the approval is void.
ALTER TABLE approvals ADD COLUMN rejected_at BIGINT;
ALTER TABLE approvals ADD COLUMN rejected_by TEXT;

-- The tap that rejected an approval: a signature over the intent's reject challenge
-- (tapgate-reject-v2), kept as evidence like the approving taps.
CREATE TABLE approval_rejections (
    approval_id TEXT PRIMARY KEY REFERENCES approvals(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id),
    key_id TEXT NOT NULL,
    credential_id BLOB NOT NULL,
    challenge BLOB NOT NULL,
    client_data_json BLOB NOT NULL,
    authenticator_data BLOB NOT NULL,
    signature BLOB NOT NULL,
    user_verified BOOLEAN NOT NULL,
    rejected_at BIGINT NOT NULL
);

-- Pending approvals are listed per package for its maintainers.
CREATE INDEX approvals_package_created ON approvals(package, created_at);
