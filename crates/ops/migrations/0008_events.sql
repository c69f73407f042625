-- The exported event stream: audit records, incidents, alert deliveries,
-- job runs, drill reports and secret rotations, in one append-only table.
-- `seq` is dense and assigned under a lock at insert time, so events commit
-- in `seq` order and a reader that has seen `seq` N has seen everything
-- before it: a sink's cursor is one number.
CREATE TABLE events (
    seq   BIGINT PRIMARY KEY,
    at    BIGINT NOT NULL,
    kind  TEXT NOT NULL,
    body  TEXT NOT NULL
);
CREATE INDEX events_at ON events (at);

-- Per sink, the last `seq` the sink confirmed, and the lease of the
-- instance shipping to it (one shipper per sink across instances).
CREATE TABLE event_cursors (
    sink         TEXT PRIMARY KEY,
    seq          BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT
);
