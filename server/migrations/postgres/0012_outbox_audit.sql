-- Notifications: events written in the transaction that caused them, fanned out to one delivery
-- per address or webhook, delivered by a worker with retries (any instance; each delivery is
-- claimed by one at a time).
CREATE TABLE outbox_events (
    id BIGSERIAL PRIMARY KEY,
    -- package-locked, change, key-change, email-verify, …
    kind TEXT NOT NULL,
    package TEXT,
    -- The account concerned (user id), for account events.
    account TEXT,
    -- The event as JSON (the webhook body; emails are rendered from it).
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE outbox_deliveries (
    id BIGSERIAL PRIMARY KEY,
    event_id BIGINT NOT NULL REFERENCES outbox_events(id) ON DELETE CASCADE,
    -- email or webhook
    channel TEXT NOT NULL,
    -- The address or the URL.
    target TEXT NOT NULL,
    -- The webhook's id (for its signing secret), or the user id of an email's recipient.
    ref_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- When the next attempt is due; while an instance holds a delivery, when its claim lapses.
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    -- Set when the worker gave up (the operator can retry).
    failed_at BIGINT,
    last_error TEXT,
    UNIQUE (event_id, channel, target)
);
CREATE INDEX outbox_deliveries_due ON outbox_deliveries(next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;

-- Each user's alert address, verified by a link; a new address waits for its own verification
-- while the old one keeps receiving alerts.
CREATE TABLE user_emails (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    address TEXT,
    verified_at BIGINT,
    pending_address TEXT,
    pending_token_hash TEXT UNIQUE,
    pending_expires_at BIGINT,
    -- Comma-separated event kinds the user wants besides lock alerts (always sent), or 'all'.
    events TEXT NOT NULL DEFAULT 'all'
);

-- Webhooks per package, set through the gate; the secret signs each delivery (HMAC-SHA256).
CREATE TABLE package_webhooks (
    id TEXT PRIMARY KEY,
    package TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (package, url)
);

-- The audit log: append-only, one hash chain per package ('package:<name>') and one for the
-- registry ('registry'). Each entry's hash commits to the previous one (see server/src/audit).
CREATE TABLE audit_log (
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    -- The entry's canonical JSON.
    entry TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);

-- Each chain's head (locked to append), and the heads the server signed.
CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE audit_signed_heads (
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    signed_at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
