-- Failed second-factor attempts counted against packages, and the locks they set.
CREATE TABLE auth_failures (
    id BIGSERIAL PRIMARY KEY,
    package TEXT NOT NULL,
    at BIGINT NOT NULL,
    -- approval_failed, ticket_refused, counter_regression, not_maintainer, ci_credential, …
    kind TEXT NOT NULL,
    user_id TEXT,
    key_id TEXT,
    client_ip TEXT,
    user_agent TEXT,
    detail TEXT NOT NULL,
    -- Whether it counts towards the lock: maintainers' failures always do; anonymous clients'
    -- and non-maintainers' only within the per-address and per-account rate limits.
    counted BOOLEAN NOT NULL
);
CREATE INDEX auth_failures_package ON auth_failures(package, id);

-- One row per package that was ever locked. Locked while lock_id is set; failures with an id at
-- or below counted_after (the last failure before the last unlock) no longer count.
CREATE TABLE package_locks (
    package TEXT PRIMARY KEY,
    lock_id TEXT,
    locked_at BIGINT,
    failures BIGINT NOT NULL DEFAULT 0,
    counted_after BIGINT NOT NULL DEFAULT 0,
    unlocked_at BIGINT,
    unlocked_by TEXT
);
