//! The file as written. Each `[[section]]` element is deserialized on its own
//! (see `compile::de_item`), so one bad element does not hide the others.
//!
//! Fields are `Spanned` where validation needs to point at them (never around
//! tables: a `[x.y]` sub-table loses its span when the element is detached from
//! the document, and `Spanned` then fails to deserialize), and numbers
//! are `i64` so that a negative or oversized value gets our range message
//! rather than serde's.

use toml::Spanned;

pub(crate) type Sp<T> = Spanned<T>;
