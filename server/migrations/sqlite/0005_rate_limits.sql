-- Rate limits shared by every server instance: one counter per rule (bucket), per subject (an
-- address, or an account at an address) and per fixed window. Counters are added to with an
-- atomic upsert and purged once their window has passed.
CREATE TABLE rate_limits (
    bucket TEXT NOT NULL,
    subject TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (bucket, subject, window_start)
);
CREATE INDEX rate_limits_expires ON rate_limits(expires_at);

-- The token a derived token was made from: it never outlives it and dies with it.
ALTER TABLE api_tokens ADD COLUMN parent_id TEXT;
CREATE INDEX api_tokens_parent ON api_tokens(parent_id);
