-- Managed secrets: metadata only. The values live in
-- <data-dir>/secrets/runtime/NAME (mode 0600) and never enter the database.
CREATE TABLE secrets (
    name                 TEXT PRIMARY KEY,
    version              BIGINT NOT NULL,
    rotated_at           BIGINT NOT NULL,
    rotated_by           TEXT NOT NULL,
    -- When the previous value (NAME.previous) stops being accepted; NULL for
    -- the first version, which has no predecessor.
    previous_valid_until BIGINT
);

-- One row per scheduled job, holding the lease of its current run. Claiming
-- a run is a conditional UPDATE of this row, so across every instance sharing
-- the database at most one run of a job holds an unexpired lease: no overlap.
CREATE TABLE jobs (
    name          TEXT PRIMARY KEY,
    running_run   TEXT,
    lease_owner   TEXT,
    lease_until   BIGINT
);

-- Every run: who ran it, when, and how it ended. The unique (job,
-- scheduled_at) makes a scheduled slot run once even when several instances
-- wake for it at the same moment.
CREATE TABLE job_runs (
    id           TEXT PRIMARY KEY,
    job          TEXT NOT NULL,
    scheduled_at BIGINT NOT NULL,
    trigger_kind TEXT NOT NULL CHECK (trigger_kind IN ('schedule', 'catch_up', 'manual')),
    instance     TEXT NOT NULL,
    actor        TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    outcome      TEXT NOT NULL CHECK (outcome IN ('running', 'success', 'failure', 'abandoned')),
    summary      TEXT NOT NULL,
    UNIQUE (job, scheduled_at)
);
CREATE INDEX job_runs_job_started ON job_runs (job, started_at);

-- DR drill reports, whole, as the JSON written to logs/dr_report_*.json.
CREATE TABLE drill_reports (
    id          TEXT PRIMARY KEY,
    drill       TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    passed      BIGINT NOT NULL,
    report      TEXT NOT NULL
);
CREATE INDEX drill_reports_started ON drill_reports (started_at);
