-- Tarball bytes move out of the versions rows, so that reading a package's versions (every
-- packument GET) never reads its tarballs. An unpublished version has no tarball row.
CREATE TABLE tarballs (
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (package, version),
    FOREIGN KEY (package, version) REFERENCES versions(package, version) ON DELETE CASCADE
);
INSERT INTO tarballs (package, version, bytes)
SELECT package, version, tarball FROM versions WHERE unpublished_at IS NULL;
ALTER TABLE versions DROP COLUMN tarball;
