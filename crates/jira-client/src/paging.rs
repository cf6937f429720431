//! Pagination as `futures::Stream`s: offset paging (`startAt`/`maxResults`/`isLast`/
//! `total`) and token paging (`nextPageToken`).

use std::future::Future;

use futures::stream::BoxStream;
use futures::StreamExt;

use crate::error::Result;

/// One page of an offset-paged list.
#[derive(Debug, Clone)]
pub struct OffsetPage<T> {
    /// Items of this page.
    pub values: Vec<T>,
    /// `isLast`, when the endpoint sends it.
    pub is_last: Option<bool>,
    /// `total`, when the endpoint sends it.
    pub total: Option<u64>,
}

/// One page of a token-paged list.
#[derive(Debug, Clone)]
pub struct TokenPage<T> {
    /// Items of this page.
    pub values: Vec<T>,
    /// Token of the next page (`None` on the last page).
    pub next: Option<String>,
}

/// Stream every item of an offset-paged list. `fetch(start_at, max_results)` loads one
/// page. Paging stops at `isLast: true`, at `total`, or at an empty page (endpoints that
/// filter after paging, like assignable-user search, return short pages before the end).
pub fn offset_stream<T, F, Fut>(page_size: u32, fetch: F) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: Fn(u64, u32) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<OffsetPage<T>>> + Send + 'static,
{
    let s = async_stream::try_stream! {
        let mut start: u64 = 0;
        loop {
            let page = fetch(start, page_size).await?;
            let n = page.values.len() as u64;
            for v in page.values {
                yield v;
            }
            start += n;
            let done = match (page.is_last, page.total) {
                (Some(last), _) => last || n == 0,
                (None, Some(total)) => start >= total || n == 0,
                (None, None) => n == 0,
            };
            if done {
                break;
            }
        }
    };
    s.boxed()
}

/// Stream every item of a token-paged list. `fetch(token)` loads one page (`None` for
/// the first).
pub fn token_stream<T, F, Fut>(fetch: F) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<TokenPage<T>>> + Send + 'static,
{
    let s = async_stream::try_stream! {
        let mut token: Option<String> = None;
        loop {
            let page = fetch(token.take()).await?;
            for v in page.values {
                yield v;
            }
            match page.next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
    };
    s.boxed()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures::TryStreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn offset_paging_follows_is_last_total_and_empty_pages() {
        // isLast-driven, 7 items in pages of 3.
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let items: Vec<u64> = offset_stream(3, move |start, max| {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                let values: Vec<u64> = (start..(start + u64::from(max)).min(7)).collect();
                Ok(OffsetPage {
                    is_last: Some(start + u64::from(max) >= 7),
                    total: None,
                    values,
                })
            }
        })
        .try_collect()
        .await
        .unwrap();
        assert_eq!(items, (0..7).collect::<Vec<_>>());
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        // total-driven.
        let items: Vec<u64> = offset_stream(4, |start, max| async move {
            Ok(OffsetPage {
                values: (start..(start + u64::from(max)).min(10)).collect(),
                is_last: None,
                total: Some(10),
            })
        })
        .try_collect()
        .await
        .unwrap();
        assert_eq!(items.len(), 10);

        // Bare arrays: short pages continue, an empty page ends.
        let items: Vec<u64> = offset_stream(5, |start, _max| async move {
            let values = match start {
                0 => vec![1, 2],
                2 => vec![3],
                _ => vec![],
            };
            Ok(OffsetPage {
                values,
                is_last: None,
                total: None,
            })
        })
        .try_collect()
        .await
        .unwrap();
        assert_eq!(items, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn token_paging_stops_without_token_and_propagates_errors() {
        let items: Vec<u32> = token_stream(|tok| async move {
            Ok(match tok.as_deref() {
                None => TokenPage {
                    values: vec![1, 2],
                    next: Some("b".into()),
                },
                Some("b") => TokenPage {
                    values: vec![3],
                    next: None,
                },
                _ => TokenPage {
                    values: vec![99],
                    next: None,
                },
            })
        })
        .try_collect()
        .await
        .unwrap();
        assert_eq!(items, vec![1, 2, 3]);

        let r: Result<Vec<u32>> = token_stream(|tok| async move {
            match tok {
                None => Ok(TokenPage {
                    values: vec![1],
                    next: Some("x".into()),
                }),
                Some(_) => Err(crate::Error::Config("boom".into())),
            }
        })
        .try_collect()
        .await;
        assert!(matches!(r, Err(crate::Error::Config(_))));
    }
}
