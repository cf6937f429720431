//! Cursor paging shared by every list query.
//!
//! Lists are ordered by id, newest first (ids are time-ordered). A query fetches
//! [`PageRequest::fetch_limit`] rows (one more than asked) with
//! `WHERE ($n IS NULL OR id < $n) ORDER BY id DESC LIMIT $m`, binding
//! [`PageRequest::after`], and hands them to [`Page::from_overfetch`], which trims
//! the extra row and makes the next cursor. Cursors are opaque to clients.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use crate::StoreError;

/// Default page size when the client gives none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size a client may ask for.
pub const MAX_LIMIT: u32 = 500;

const CURSOR_VERSION: &str = "v1:";

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    limit: u32,
    after: Option<String>,
}

impl PageRequest {
    /// First page of `limit` items (clamped to `1..=MAX_LIMIT`).
    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, MAX_LIMIT),
            after: None,
        }
    }

    /// From the client's `?limit=` and `?cursor=`. A limit outside `1..=MAX_LIMIT` is
    /// clamped; a cursor this store did not make is [`StoreError::InvalidCursor`].
    pub fn new(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, StoreError> {
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c)?),
        };
        Ok(Self {
            limit: limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
            after,
        })
    }

    /// Items per page.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The key the page starts after (exclusive), if any.
    pub fn after(&self) -> Option<&str> {
        self.after.as_deref()
    }

    /// Rows to fetch: one more than the limit, to know whether a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// Cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Build a page from up to `fetch_limit` rows; `key` gives a row's sort key (its id).
    pub fn from_overfetch(mut rows: Vec<T>, req: &PageRequest, key: impl Fn(&T) -> &str) -> Self {
        let limit = req.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| encode_cursor(key(r)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    /// Convert the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}{key}"))
}

fn decode_cursor(cursor: &str) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let key = text
        .strip_prefix(CURSOR_VERSION)
        .ok_or(StoreError::InvalidCursor)?;
    if key.is_empty() || key.len() > 200 {
        return Err(StoreError::InvalidCursor);
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn overfetch_yields_cursor_that_round_trips() {
        let req = PageRequest::new(Some(2), None).unwrap();
        let page = Page::from_overfetch(vec!["c", "b", "a"], &req, |s| s);
        assert_eq!(page.items, vec!["c", "b"]);
        let next = PageRequest::new(Some(2), page.next_cursor.as_deref()).unwrap();
        assert_eq!(next.after(), Some("b"));
        let last = Page::from_overfetch(vec!["a"], &next, |s| s);
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn limits_are_clamped_and_foreign_cursors_rejected() {
        assert_eq!(PageRequest::new(Some(0), None).unwrap().limit(), 1);
        assert_eq!(
            PageRequest::new(Some(10_000), None).unwrap().limit(),
            MAX_LIMIT
        );
        assert_eq!(PageRequest::new(None, None).unwrap().limit(), DEFAULT_LIMIT);
        assert!(matches!(
            PageRequest::new(None, Some("not-a-cursor!")),
            Err(StoreError::InvalidCursor)
        ));
        let foreign = URL_SAFE_NO_PAD.encode("v0:abc");
        assert!(PageRequest::new(None, Some(&foreign)).is_err());
    }
}
