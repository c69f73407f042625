-- Storage cost: the cache of repository listings. The `cost` job lists
-- every repository of every [[backup]] and replaces its rows here; metrics,
-- `ops check` and the monthly report read these tables, never the store.
-- One row per (backup, repository): when it was last listed, and why the
-- latest listing failed if it did (the usage rows then keep the last good
-- listing).
CREATE TABLE storage_measurements (
    backup       TEXT NOT NULL,
    repository   TEXT NOT NULL,
    measured_at  BIGINT,
    attempted_at BIGINT NOT NULL,
    error        TEXT,
    assumed      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (backup, repository)
);

-- Objects and bytes per storage class, as of `measured_at`.
CREATE TABLE storage_usage (
    backup     TEXT NOT NULL,
    repository TEXT NOT NULL,
    class      TEXT NOT NULL,
    objects    BIGINT NOT NULL,
    bytes      BIGINT NOT NULL,
    PRIMARY KEY (backup, repository, class)
);
