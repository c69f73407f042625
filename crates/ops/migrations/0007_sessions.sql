-- Dashboard sessions. A browser exchanges an API key once for a random
-- session token kept in an HttpOnly cookie. The store keeps the token's
-- SHA-256 only, and the key's SHA-256 so that every request re-checks the
-- key with the authenticator: revoking or rotating the key ends its sessions.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    key_hash    TEXT NOT NULL,
    key_name    TEXT NOT NULL,
    role        TEXT NOT NULL,
    client      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX sessions_expires ON sessions (expires_at);
