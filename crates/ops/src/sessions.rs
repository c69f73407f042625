//! Dashboard sessions: an API key exchanged once for a cookie.
//!
//! A browser should not keep an API key where scripts can read it, so the
//! sign-in page posts the key once and gets back a random session token for
//! an `HttpOnly` cookie. The store keeps the token's SHA-256 (a leaked
//! database yields no usable session) and the key's SHA-256, which every
//! request hands back to the [`Authenticator`]: a key revoked, rotated or
//! removed from the config ends its sessions at once, with no list of
//! sessions to keep in step.
//!
//! State-changing requests made with a session carry a CSRF token derived
//! from the session token ([`Session::csrf_token`]): only a page that was
//! given it (our own, served to the signed-in browser) can send it, and it
//! needs no storage of its own.
//!
//! Signing in and out are audited (`session.sign_in`, `session.sign_out`)
//! in the same transaction as the change; a refused key is audited by the
//! front-end like any other refused credential.

use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::audit::{AuditedTx, Entry, Outcome};
use crate::auth::Authenticator;
use crate::config::Secret;
use crate::identity::{key_digest, Actor, Principal};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// Expired sessions are deleted this long after they expire (on the next
/// sign-in), so the table does not grow without bound.
const KEEP_EXPIRED: Duration = Duration::from_secs(24 * 3600);

/// A session just made: the only time its token exists outside the browser.
#[derive(Debug)]
pub struct NewSession {
    pub token: Secret<String>,
    pub principal: Principal,
    pub expires_at: Timestamp,
}

/// A live session, found by its token.
#[derive(Debug, Clone)]
pub struct Session {
    /// The key's current principal, as the authenticator sees it now.
    pub principal: Principal,
    pub expires_at: Timestamp,
    token_hash: String,
}

impl Session {
    /// The CSRF token of the session whose cookie holds `token`: a keyed
    /// digest of the token, so a page can be given it without the token
    /// itself, and it changes with every session.
    pub fn csrf_token(token: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"bulwark-csrf\0");
        h.update(token.as_bytes());
        hex::encode(h.finalize())
    }

    /// Whether `presented` is the CSRF token of the session with `token`,
    /// compared in constant time.
    pub fn csrf_matches(token: &str, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = Session::csrf_token(token);
        expected.len() == presented.len()
            && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Exchanges `presented` for a session lasting `ttl`, or `None` when no key
/// source holds that key. `client` (an address) is kept for the audit trail.
///
/// # Errors
/// On a database error.
pub async fn sign_in(
    store: &Store,
    auth: &Authenticator,
    presented: &str,
    client: &str,
    ttl: Duration,
) -> Result<Option<NewSession>, StoreError> {
    let key_hash = key_digest(presented);
    let Some(principal) = auth.authenticate_digest(&key_hash).await? else {
        return Ok(None);
    };
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("bws_{}", hex::encode(bytes));
    let now = Timestamp::now();
    let expires_at = now + ttl;

    let mut tx = AuditedTx::begin(store).await?;
    sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind((now - KEEP_EXPIRED).as_millis())
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "INSERT INTO sessions (token_hash, key_hash, key_name, role, client, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(token_hash(&token))
    .bind(hex::encode(key_hash))
    .bind(&principal.name)
    .bind(principal.role.as_str())
    .bind(client)
    .bind(now.as_millis())
    .bind(expires_at.as_millis())
    .execute(tx.conn())
    .await?;
    let entry = Entry::new(
        &Actor::key(&principal),
        "session.sign_in",
        "dashboard",
        Outcome::Success,
    )
    .detail(serde_json::json!({
        "client": client,
        "role": principal.role.as_str(),
        "expires_at_ms": expires_at.as_millis(),
    }));
    tx.commit(&entry).await?;
    Ok(Some(NewSession {
        token: Secret::new(token),
        principal,
        expires_at,
    }))
}

/// The live session whose cookie holds `token`: not expired, not signed
/// out, and its key still accepted by `auth`. `None` otherwise.
///
/// # Errors
/// On a database error.
pub async fn find(
    store: &Store,
    auth: &Authenticator,
    token: &str,
) -> Result<Option<Session>, StoreError> {
    let hash = token_hash(token);
    let row = sqlx::query(
        "SELECT key_hash, expires_at FROM sessions
         WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(&hash)
    .bind(Timestamp::now().as_millis())
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let key_hash: String = row.try_get("key_hash")?;
    let expires_at = Timestamp::from_millis(row.try_get("expires_at")?);
    let digest: [u8; 32] = hex::decode(&key_hash)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| StoreError::Invalid("sessions: key_hash is not a SHA-256".into()))?;
    Ok(auth
        .authenticate_digest(&digest)
        .await?
        .map(|principal| Session {
            principal,
            expires_at,
            token_hash: hash,
        }))
}

/// Ends `session` (sign-out); its cookie stops working at once.
///
/// # Errors
/// On a database error.
pub async fn sign_out(store: &Store, session: &Session, client: &str) -> Result<(), StoreError> {
    let mut tx = AuditedTx::begin(store).await?;
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
        .bind(Timestamp::now().as_millis())
        .bind(&session.token_hash)
        .execute(tx.conn())
        .await?;
    let entry = Entry::new(
        &Actor::key(&session.principal),
        "session.sign_out",
        "dashboard",
        Outcome::Success,
    )
    .detail(serde_json::json!({ "client": client }));
    tx.commit(&entry).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::auth::StaticKeys;
    use crate::config::StaticKey;
    use crate::identity::Role;

    async fn fixture() -> (tempfile::TempDir, Store, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(None, dir.path()).await.unwrap();
        let keys = StaticKeys::new(vec![StaticKey {
            name: "ops".into(),
            role: Role::Admin,
            sha256: key_digest("k-ops"),
        }]);
        (dir, store, Authenticator::new(vec![Arc::new(keys)]))
    }

    #[tokio::test]
    async fn a_session_ends_when_it_expires_or_is_signed_out() {
        let (_dir, store, auth) = fixture().await;
        assert!(
            sign_in(&store, &auth, "wrong", "127.0.0.1", Duration::from_secs(60))
                .await
                .unwrap()
                .is_none()
        );
        let s = sign_in(&store, &auth, "k-ops", "127.0.0.1", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let found = find(&store, &auth, s.token.expose())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.principal.name, "ops");
        assert!(find(&store, &auth, "bws_other").await.unwrap().is_none());

        // Expired: as if the clock had moved past its end.
        sqlx::query("UPDATE sessions SET expires_at = $1")
            .bind(Timestamp::now().as_millis() - 1)
            .execute(store.pool())
            .await
            .unwrap();
        assert!(find(&store, &auth, s.token.expose())
            .await
            .unwrap()
            .is_none());

        let s = sign_in(&store, &auth, "k-ops", "127.0.0.1", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let live = find(&store, &auth, s.token.expose())
            .await
            .unwrap()
            .unwrap();
        sign_out(&store, &live, "127.0.0.1").await.unwrap();
        assert!(find(&store, &auth, s.token.expose())
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn the_store_keeps_digests_only() {
        let (_dir, store, auth) = fixture().await;
        let s = sign_in(&store, &auth, "k-ops", "127.0.0.1", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let (token_hash, key_hash): (String, String) =
            sqlx::query_as("SELECT token_hash, key_hash FROM sessions")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_ne!(token_hash, *s.token.expose());
        assert!(!token_hash.contains(&s.token.expose()[4..]));
        assert_eq!(key_hash, hex::encode(key_digest("k-ops")));
    }

    #[test]
    fn csrf_token_is_bound_to_the_session() {
        let a = Session::csrf_token("bws_a");
        assert_eq!(a.len(), 64);
        assert_ne!(a, Session::csrf_token("bws_b"));
        assert!(Session::csrf_matches("bws_a", &a));
        assert!(!Session::csrf_matches("bws_b", &a));
        assert!(!Session::csrf_matches("bws_a", ""));
        assert!(!Session::csrf_matches("bws_a", &a[..63]));
    }
}
