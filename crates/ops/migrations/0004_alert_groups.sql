-- Alert groups (`[[route]] group_by`): alerts of one route and channel with
-- equal group labels are notified together. One row per live group; its
-- members and timing are the JSON `state`, written only with a matching
-- `version` (optimistic locking) so concurrent raisers and several instances
-- never lose an update or queue one change twice. Deleted once every member
-- has resolved and been notified. Plain SQL both engines accept.
CREATE TABLE alert_groups (
    id         TEXT PRIMARY KEY,
    channel    TEXT NOT NULL,
    route_key  TEXT NOT NULL,
    labels     TEXT NOT NULL,
    state      TEXT NOT NULL,
    flush_at   BIGINT,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- The outbox worker looks for groups whose next flush is due.
CREATE INDEX alert_groups_flush ON alert_groups (flush_at);
