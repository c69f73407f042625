-- A run stopped by shutdown is recorded as 'cancelled'. SQLite cannot alter
-- a CHECK constraint, so the table is rebuilt with the same columns.
CREATE TABLE job_runs_new (
    id           TEXT PRIMARY KEY,
    job          TEXT NOT NULL,
    scheduled_at BIGINT NOT NULL,
    trigger_kind TEXT NOT NULL CHECK (trigger_kind IN ('schedule', 'catch_up', 'manual')),
    instance     TEXT NOT NULL,
    actor        TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    outcome      TEXT NOT NULL CHECK (outcome IN ('running', 'success', 'failure', 'abandoned', 'cancelled')),
    summary      TEXT NOT NULL,
    UNIQUE (job, scheduled_at)
);
INSERT INTO job_runs_new (id, job, scheduled_at, trigger_kind, instance, actor, started_at, finished_at, outcome, summary)
    SELECT id, job, scheduled_at, trigger_kind, instance, actor, started_at, finished_at, outcome, summary FROM job_runs;
DROP TABLE job_runs;
ALTER TABLE job_runs_new RENAME TO job_runs;
CREATE INDEX job_runs_job_started ON job_runs (job, started_at);
