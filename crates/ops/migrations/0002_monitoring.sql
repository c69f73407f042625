-- Uptime monitoring, SLOs and alert routing. Booleans are BIGINT 0/1 and
-- times unix milliseconds: the types sqlx's Any driver maps alike on both engines.

-- Every probe result; pruned after the configured raw retention.
CREATE TABLE probe_results (
    monitor    TEXT NOT NULL,
    ts         BIGINT NOT NULL,
    ok         BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    status     BIGINT,
    error      TEXT
);
CREATE INDEX probe_results_monitor_ts ON probe_results (monitor, ts);
CREATE INDEX probe_results_ts ON probe_results (ts);

-- Per-minute rollups, kept 400 days: what SLO windows and long queries read.
CREATE TABLE probe_rollups (
    monitor        TEXT NOT NULL,
    minute         BIGINT NOT NULL,
    total          BIGINT NOT NULL,
    failures       BIGINT NOT NULL,
    latency_p50_ms BIGINT NOT NULL,
    latency_p95_ms BIGINT NOT NULL,
    latency_p99_ms BIGINT NOT NULL,
    latency_max_ms BIGINT NOT NULL,
    PRIMARY KEY (monitor, minute)
);

CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    monitor     TEXT NOT NULL,
    opened_at   BIGINT NOT NULL,
    resolved_at BIGINT,
    cause       TEXT NOT NULL
);
CREATE INDEX incidents_monitor ON incidents (monitor, opened_at);

-- Heartbeat monitors: the token a cron job calls and when it last did.
CREATE TABLE push_monitors (
    monitor      TEXT PRIMARY KEY,
    token        TEXT NOT NULL UNIQUE,
    last_ping_at BIGINT
);

CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    monitor    TEXT,
    tag        TEXT,
    comment    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    expired_at BIGINT
);

CREATE TABLE maintenance_windows (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    monitors   TEXT NOT NULL,
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Current state of every alert ever raised, by fingerprint.
CREATE TABLE alerts (
    fingerprint TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    body        TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    updated_at  BIGINT NOT NULL
);

-- The outbox: one row per (channel, fingerprint, state change); the id is
-- derived from those, so enqueuing twice (a restart mid-way) is a no-op.
CREATE TABLE alert_outbox (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    status          TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    claimed_until   BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT
);
CREATE INDEX alert_outbox_pending ON alert_outbox (delivered_at, next_attempt_at);
CREATE INDEX alert_outbox_fp ON alert_outbox (channel, fingerprint, created_at);
