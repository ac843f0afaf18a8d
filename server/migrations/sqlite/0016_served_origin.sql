-- The origin the server last started with, so that admin commands print links that work.
CREATE TABLE served_origin (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    origin TEXT NOT NULL,
    started_at BIGINT NOT NULL
);
