//! Autosuggest: Jira's issue picker plus the connection's recently viewed and linked
//! issues, answered from a short-lived per-connection cache keyed by the typed text.
//!
//! Order: an exact key match first, then keys starting with the text, then text
//! matches (Jira's order kept within each group). The cache lives in this process and
//! is keyed by connection id, so one connection's suggestions never answer another's
//! request (and a connection belongs to one tenant).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use jira_bridge_store::links::LinkFilter;
use jira_bridge_store::{ConnectionId, PageRequest};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::IssueDetails;
use crate::connections::{Connected, ConnectionError};
use crate::http::{ApiError, AppState};

/// How long a picker answer is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// Cache entries kept in all (oldest dropped first beyond this).
const CACHE_CAPACITY: usize = 10_000;
/// Recently viewed issues kept per connection.
const RECENT_PER_CONNECTION: usize = 50;
/// Most suggestions answered.
pub const MAX_SUGGESTIONS: usize = 20;

/// Where a suggestion came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionSource {
    /// Jira's picker (history or current search).
    Jira,
    /// Viewed recently through this service.
    Recent,
    /// Linked to a host object in this service.
    Linked,
}

/// How a suggestion matched the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The text is this issue's key.
    ExactKey,
    /// The key starts with the text.
    KeyPrefix,
    /// The summary (or another field, per Jira) matches the text.
    Text,
}

/// One suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Suggestion {
    /// Issue key.
    pub key: String,
    /// Summary, when known.
    pub summary: Option<String>,
    /// How it matched.
    #[serde(rename = "match")]
    pub match_kind: MatchKind,
    /// Where it came from.
    pub source: SuggestionSource,
}

/// The picker's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PickerResponse {
    /// Suggestions, most relevant first.
    pub items: Vec<Suggestion>,
    /// Answered from the cache (no Jira call).
    pub cached: bool,
}

struct Entry {
    at: Instant,
    items: Vec<(String, Option<String>)>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<(ConnectionId, String), Entry>,
    order: VecDeque<(ConnectionId, String)>,
    recent: HashMap<ConnectionId, VecDeque<(String, Option<String>)>>,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(Cache::default()));

/// Remember an issue viewed through the connection (for suggestions).
pub fn remember(connection: &ConnectionId, d: &IssueDetails) {
    let mut c = CACHE.lock();
    let list = c.recent.entry(connection.clone()).or_default();
    list.retain(|(k, _)| *k != d.key);
    list.push_front((d.key.clone(), d.summary.clone()));
    list.truncate(RECENT_PER_CONNECTION);
}

fn normalise(q: &str) -> String {
    q.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn classify(key: &str, summary: Option<&str>, q: &str) -> Option<MatchKind> {
    let k = key.to_lowercase();
    if k == q {
        Some(MatchKind::ExactKey)
    } else if k.starts_with(q) {
        Some(MatchKind::KeyPrefix)
    } else if summary.is_some_and(|s| s.to_lowercase().contains(q)) {
        Some(MatchKind::Text)
    } else {
        None
    }
}

async fn jira_suggestions(
    c: &Connected,
    q: &str,
) -> Result<(Vec<(String, Option<String>)>, bool), ConnectionError> {
    let key = (c.connection.id.clone(), q.to_owned());
    {
        let cache = CACHE.lock();
        if let Some(e) = cache.entries.get(&key) {
            if e.at.elapsed() < CACHE_TTL {
                return Ok((e.items.clone(), true));
            }
        }
    }
    let result = c.observe(c.jira.issue_picker(q, None).await).await?;
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    for section in result.sections {
        for i in section.issues {
            if seen.insert(i.key.clone()) {
                items.push((i.key, i.summary_text));
            }
        }
    }
    let mut cache = CACHE.lock();
    if cache
        .entries
        .insert(
            key.clone(),
            Entry {
                at: Instant::now(),
                items: items.clone(),
            },
        )
        .is_none()
    {
        cache.order.push_back(key);
    }
    while cache.order.len() > CACHE_CAPACITY {
        if let Some(old) = cache.order.pop_front() {
            cache.entries.remove(&old);
        }
    }
    Ok((items, false))
}

/// Suggestions for `q`.
pub async fn suggest(
    state: &AppState,
    c: &Connected,
    q: &str,
) -> Result<PickerResponse, ConnectionError> {
    let q = normalise(q);
    if q.is_empty() {
        return Err(ApiError::bad_field("q", "must not be empty").into());
    }
    if q.chars().count() > 200 {
        return Err(ApiError::bad_field("q", "at most 200 characters").into());
    }
    let (from_jira, cached) = jira_suggestions(c, &q).await?;
    let mut all: Vec<Suggestion> = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |key: String,
                    summary: Option<String>,
                    source: SuggestionSource,
                    all: &mut Vec<Suggestion>| {
        if let Some(m) = classify(&key, summary.as_deref(), &q) {
            if seen.insert(key.clone()) {
                all.push(Suggestion {
                    key,
                    summary,
                    match_kind: m,
                    source,
                });
            }
        } else if source == SuggestionSource::Jira && seen.insert(key.clone()) {
            // Jira matched on something we cannot see (another field, a stem).
            all.push(Suggestion {
                key,
                summary,
                match_kind: MatchKind::Text,
                source,
            });
        }
    };
    for (k, s) in from_jira {
        push(k, s, SuggestionSource::Jira, &mut all);
    }
    let recent: Vec<(String, Option<String>)> = CACHE
        .lock()
        .recent
        .get(&c.connection.id)
        .map(|l| l.iter().cloned().collect())
        .unwrap_or_default();
    for (k, s) in recent {
        push(k, s, SuggestionSource::Recent, &mut all);
    }
    // Linked issues: keys only (the ledger has no summaries).
    let links = state
        .store
        .list_links(
            &c.connection.tenant_id,
            &LinkFilter {
                connection_id: Some(c.connection.id.clone()),
                ..LinkFilter::default()
            },
            &PageRequest::first(200),
        )
        .await
        .map_err(ApiError::from)?;
    for l in links.items {
        if let Some(k) = l.issue_key {
            push(k, None, SuggestionSource::Linked, &mut all);
        }
    }
    // Stable: Jira's order kept within each kind.
    all.sort_by_key(|s| s.match_kind);
    all.truncate(MAX_SUGGESTIONS);
    Ok(PickerResponse { items: all, cached })
}
