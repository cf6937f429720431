//! Issue keys in text: the client library's [`KeyExtractor`] over many texts, with an
//! optional project allow-list that is checked against the connection's projects when
//! a connection is given. See `docs/search-and-keys.md`.
//!
//! - With `project_keys`, only keys of those projects are found, in any letter case
//!   (`feature/abc-12-login` → `ABC-12`).
//! - With a connection and no `project_keys`, the connection's projects are the
//!   allow-list: keys of projects the site does not have are left out, lower-case keys
//!   of its projects are found.
//! - With neither, upper-case keys only, look-alikes (`ISO-9001`, `UTF-8`) left out.

pub mod api;

use std::collections::{BTreeMap, BTreeSet};

use jira_client::keys::{CaseMode, IssueKey, KeyExtractor, ProjectKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::connections::{Connected, ConnectionError};
use crate::http::{ApiError, AppState};

/// Most texts per request.
pub const MAX_TEXTS: usize = 1000;
/// Most characters in all texts of a request.
pub const MAX_TOTAL_CHARS: usize = 1_000_000;

/// Letter cases accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseOption {
    /// Only `ABC-1`.
    Upper,
    /// `ABC-1`, and `abc-1` when `ABC` is allow-listed (the default).
    #[default]
    AnyIfAllowListed,
    /// Every case (`abc-1`, `Abc-1`).
    Any,
}

/// Extraction options (the client library's [`KeyExtractor`] settings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExtractOptions {
    /// Only keys of these projects (case-insensitive input).
    pub project_keys: Option<Vec<String>>,
    /// Letter cases accepted.
    pub case: Option<CaseOption>,
    /// Accept `_` in project keys (Data Center).
    pub allow_underscore: Option<bool>,
    /// Replace the deny-list of look-alike projects (`ISO`, `UTF`, `SHA`, …).
    pub deny_projects: Option<Vec<String>>,
    /// Longest project part (2 to 255, default 10).
    pub max_project_len: Option<usize>,
}

/// Check `project_keys` (syntax, and membership of the connection's projects when
/// `known` is given); field errors name each bad key.
pub fn validate_projects(
    keys: &[String],
    known: Option<&BTreeSet<String>>,
) -> Result<Vec<String>, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        match ProjectKey::parse(k.trim()) {
            Ok(p) => {
                if let Some(known) = known {
                    if !known.contains(p.as_str()) {
                        errors.insert(
                            format!("project_keys[{i}]"),
                            format!("{} is not a project of this connection", p.as_str()),
                        );
                        continue;
                    }
                }
                out.push(p.as_str().to_owned());
            }
            Err(e) => {
                errors.insert(format!("project_keys[{i}]"), e.to_string());
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The extractor for these options and allow-list.
pub fn extractor(
    opts: &ExtractOptions,
    allow: Option<&[String]>,
) -> Result<KeyExtractor, ApiError> {
    let mut x = KeyExtractor::new().case_mode(match opts.case.unwrap_or_default() {
        CaseOption::Upper => CaseMode::Upper,
        CaseOption::AnyIfAllowListed => CaseMode::AnyIfAllowListed,
        CaseOption::Any => CaseMode::Any,
    });
    if let Some(a) = allow {
        x = x.allow_projects(a);
    }
    if let Some(d) = &opts.deny_projects {
        x = x.deny_projects(d);
    }
    if let Some(n) = opts.max_project_len {
        if !(2..=255).contains(&n) {
            return Err(ApiError::invalid_field("max_project_len", "2 to 255"));
        }
        x = x.max_project_len(n);
    }
    if opts.allow_underscore == Some(true) {
        x = x.allow_underscore(true);
    }
    Ok(x)
}

/// Project keys of a connection (from the cached metadata).
pub async fn connection_projects(
    state: &AppState,
    c: &Connected,
) -> Result<BTreeSet<String>, ConnectionError> {
    let cached = crate::connections::metadata::get(
        state,
        c,
        crate::connections::metadata::What::Projects(None),
        false,
    )
    .await?;
    Ok(cached
        .items
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("key").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// What [`extract`] answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Extracted {
    /// Distinct keys across all texts, upper case, in order of first appearance.
    pub keys: Vec<String>,
    /// The keys of each text, in the texts' order.
    pub per_text: Vec<Vec<String>>,
    /// The allow-list used (`null`: none).
    pub project_keys: Option<Vec<String>>,
}

/// Keys in `texts`.
pub fn run(x: &KeyExtractor, texts: &[String], allow: Option<Vec<String>>) -> Extracted {
    let mut seen = BTreeSet::new();
    let mut keys = Vec::new();
    let per_text = texts
        .iter()
        .map(|t| {
            let found: Vec<IssueKey> = x.extract(t);
            for k in &found {
                if seen.insert(k.clone()) {
                    keys.push(k.to_string());
                }
            }
            found.into_iter().map(|k| k.to_string()).collect()
        })
        .collect();
    Extracted {
        keys,
        per_text,
        project_keys: allow,
    }
}

/// Extract keys, resolving the allow-list against the connection when given.
pub async fn extract(
    state: &AppState,
    tenant: &jira_bridge_store::TenantId,
    texts: &[String],
    connection: Option<&jira_bridge_store::ConnectionId>,
    opts: &ExtractOptions,
) -> Result<Extracted, ConnectionError> {
    if texts.len() > MAX_TEXTS {
        return Err(ApiError::invalid_field("texts", format!("at most {MAX_TEXTS} texts")).into());
    }
    if texts.iter().map(|t| t.len()).sum::<usize>() > MAX_TOTAL_CHARS {
        return Err(ApiError::invalid_field(
            "texts",
            format!("at most {MAX_TOTAL_CHARS} bytes in all"),
        )
        .into());
    }
    let known = match connection {
        Some(id) => {
            let c = crate::connections::connect(state, tenant, id).await?;
            Some(connection_projects(state, &c).await?)
        }
        None => None,
    };
    let allow = match (&opts.project_keys, &known) {
        (Some(p), _) => Some(validate_projects(p, known.as_ref()).map_err(|errors| {
            ConnectionError::Api(ApiError::Validation {
                detail: "some project keys are not valid".into(),
                errors,
            })
        })?),
        (None, Some(k)) => Some(k.iter().cloned().collect()),
        (None, None) => None,
    };
    let x = extractor(opts, allow.as_deref())?;
    Ok(run(&x, texts, allow))
}
