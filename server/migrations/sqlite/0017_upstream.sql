-- The upstream proxy (--upstream). Names this registry has served from its upstream: a local
-- first publish of one is refused (an administrator reserves it for its new owner instead), so
-- that nobody here can take over a public name builds already install through this registry.
CREATE TABLE upstream_names (
    name TEXT PRIMARY KEY,
    first_served_at BIGINT NOT NULL
);
-- Upstream tarballs whose SHA-512 matched the upstream's dist.integrity. Bounded by
-- --upstream-cache-bytes: the oldest are evicted first. Never read for a name that is local.
CREATE TABLE upstream_tarballs (
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    integrity TEXT NOT NULL,
    size BIGINT NOT NULL,
    bytes BLOB NOT NULL,
    fetched_at BIGINT NOT NULL,
    PRIMARY KEY (package, version)
);
CREATE INDEX upstream_tarballs_by_age ON upstream_tarballs (fetched_at);
-- A counter every committed change to what installers receive increments (with modified_at,
-- which has a resolution of seconds): the key of the serialized packuments kept in memory.
ALTER TABLE packages ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
