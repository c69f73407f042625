//! Wire types: what clients send and receive. Converted by hand from domain
//! types so the domain can change without breaking the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use bulwark_ops::audit::Record;
use bulwark_ops::keys::KeyInfo;
use bulwark_ops::Role;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub error: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    Admin,
    Analyst,
}

impl From<Role> for ApiRole {
    fn from(r: Role) -> ApiRole {
        match r {
            Role::Admin => ApiRole::Admin,
            Role::Analyst => ApiRole::Analyst,
        }
    }
}

impl From<ApiRole> for Role {
    fn from(r: ApiRole) -> Role {
        match r {
            ApiRole::Admin => Role::Admin,
            ApiRole::Analyst => Role::Analyst,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The key's name.
    pub name: String,
    pub role: ApiRole,
    /// The key's id when it was made with `bulwark keys create` or the API;
    /// absent for keys from the config file or `ROLES_JSON`.
    pub key_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub role: ApiRole,
    /// 1 to 64 letters, digits, `-`, `_`, `.` or `@`.
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub role: ApiRole,
    /// The key itself. Shown only in this response; store it now.
    pub key: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyMeta {
    pub id: String,
    pub name: String,
    pub role: ApiRole,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<KeyInfo> for KeyMeta {
    fn from(k: KeyInfo) -> KeyMeta {
        KeyMeta {
            id: k.id,
            name: k.name,
            role: k.role.into(),
            created_at: k.created_at,
            created_by: k.created_by,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only records by this actor (e.g. `key:ops-bot`, `cli:alice`).
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `*` (`key.*`).
    pub action: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: Option<String>,
    /// Only records at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only records before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Only records with a sequence number below this (paging).
    pub before: Option<i64>,
    /// At most this many records (1 to 1000, default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    pub ts: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<Record> for AuditRecord {
    fn from(r: Record) -> AuditRecord {
        AuditRecord {
            seq: r.seq,
            ts: r.ts,
            actor: r.actor,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            detail: r.detail,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub records: Vec<AuditRecord>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}
