//! Issue keys: the [`IssueKey`] and [`ProjectKey`] types and extraction of keys from
//! free text (commit messages, pull-request titles, branch names, URLs).
//!
//! # What counts as a key
//!
//! `PROJECT-NUMBER`, where
//! - the project part starts with an ASCII letter, continues with ASCII letters and
//!   digits (`A1B-5`, `J42-123` are keys; `2PAC-1` is not), is 2 to
//!   [`KeyExtractor::max_project_len`] characters long (default 10, Jira Cloud's limit;
//!   Data Center admins can raise it) and, only when enabled with
//!   [`KeyExtractor::allow_underscore`], may contain `_` (Data Center allows it; Cloud
//!   and GitHub for Jira do not, so by default `_` separates words: `ABC-123_fix` →
//!   `ABC-123`);
//! - the number has no leading zero (`ABC-012` is not a key, as in GitHub for Jira) and
//!   fits in a `u64`.
//!
//! # Boundaries
//!
//! A key must not touch a letter or digit on either side (any Unicode alphanumeric
//! counts): `xABC-1` and `ABC-1x` are not keys, while `[ABC-1]`, `(ABC-1)`, `ABC-1:`,
//! `/browse/ABC-1`, `?selectedIssue=ABC-1`, `feature/abc-1-login` and `ABC-1_fix` all
//! contain `ABC-1`.
//!
//! **Adjacency** (`ABC-12-3`): the key is `ABC-12`; the `-3` that follows is treated as
//! a suffix, exactly like the `-login` in the branch name `ABC-12-login`. This is what
//! GitHub for Jira does (its pattern ends with a look-ahead for a non-alphanumeric
//! character, and `-` is one). `Jra-1-jra-2` holds both `JRA-1` and `JRA-2`.
//!
//! # Case
//!
//! [`CaseMode::AnyIfAllowListed`] (the default) accepts upper-case keys always and
//! lower/mixed-case keys (`abc-123`, common in branch names) only when their project is
//! on the allow-list, because prose is full of lower-case look-alikes (`covid-19`,
//! `top-10`, `win-10`, `step-2`). [`CaseMode::Any`] accepts every case (GitHub for
//! Jira's behaviour), [`CaseMode::Upper`] only upper case (GitLab's). Matches are always
//! normalised to upper case.
//!
//! # Allow- and deny-lists
//!
//! With an allow-list, only keys of those projects are returned. The deny-list
//! ([`DEFAULT_DENY_LIST`], replaceable) removes look-alikes such as `ISO-9001`, `UTF-8`,
//! `SHA-256` or `CVE-2021-44228`; a project that is explicitly allow-listed is never
//! denied.
//!
//! Results are deduplicated and in order of first appearance, across texts too.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No `-` between project and number.
    #[error("{0:?} is not an issue key: expected PROJECT-NUMBER")]
    MissingDash(String),
    /// The project part is not a valid project key.
    #[error("{0:?} is not a project key: a letter followed by letters, digits or '_' (2 to 255 characters)")]
    BadProject(String),
    /// The number is not a positive integer without leading zero.
    #[error("{0:?} is not an issue number: 1 or more without leading zero")]
    BadNumber(String),
}

/// The longest project key Jira allows (Data Center's configurable maximum).
pub const MAX_PROJECT_KEY_LEN: usize = 255;

/// A project key such as `ABC`: upper case, starts with a letter, then letters, digits
/// or `_`, 2–255 characters. Parsing upper-cases the input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectKey(String);

impl ProjectKey {
    /// Parses (and upper-cases) a project key.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let upper = s.to_ascii_uppercase();
        let mut chars = upper.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase());
        let rest_ok = chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !first_ok || !rest_ok || upper.len() < 2 || upper.len() > MAX_PROJECT_KEY_LEN {
            return Err(KeyError::BadProject(s.to_string()));
        }
        Ok(Self(upper))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ProjectKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for ProjectKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An issue key such as `ABC-123`. Parsing upper-cases the project part; the number
/// is at least 1 and written without leading zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IssueKey {
    repr: String,
    project: ProjectKey,
    number: u64,
}

impl IssueKey {
    /// Parses a key (case-insensitive; normalised to upper case).
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let (project, number) = s
            .rsplit_once('-')
            .ok_or_else(|| KeyError::MissingDash(s.to_string()))?;
        let project = ProjectKey::parse(project)?;
        let number = parse_number(number).ok_or_else(|| KeyError::BadNumber(s.to_string()))?;
        Ok(Self::from_parts(project, number))
    }

    /// Builds a key from its parts. Numbers start at 1; 0 is not rejected here but
    /// Jira never issues it.
    pub fn from_parts(project: ProjectKey, number: u64) -> Self {
        Self {
            repr: format!("{project}-{number}"),
            project,
            number,
        }
    }

    /// The project part.
    pub fn project(&self) -> &ProjectKey {
        &self.project
    }

    /// The number part.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// `PROJECT-NUMBER`.
    pub fn as_str(&self) -> &str {
        &self.repr
    }
}

fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Ord for IssueKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.project, self.number).cmp(&(&other.project, other.number))
    }
}

impl PartialOrd for IssueKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for IssueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}

impl FromStr for IssueKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for IssueKey {
    fn as_ref(&self) -> &str {
        &self.repr
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(IssueKey);
string_serde!(ProjectKey);

/// Look-alikes of issue keys that are standards, encodings, algorithms, identifiers
/// or versions, matched on the project part.
pub const DEFAULT_DENY_LIST: &[&str] = &[
    "AES", "AMD", "ARM", "BASE", "CRC", "CVE", "CWE", "COVID", "DIN", "ECMA", "EN", "ES", "FIPS",
    "GPL", "HTTP", "IEC", "IEEE", "IPV", "ISO", "LGPL", "MD", "MP", "NIST", "PEP", "RFC", "RSA",
    "SHA", "SOC", "SSL", "TLS", "UCS", "UTF", "WIN", "X86",
];

/// Which letter cases are accepted. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseMode {
    /// Only `ABC-1`.
    Upper,
    /// `ABC-1`, and `abc-1` / `Abc-1` when `ABC` is on the allow-list.
    #[default]
    AnyIfAllowListed,
    /// Every case.
    Any,
}

/// One key found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMatch {
    /// The key (upper case).
    pub key: IssueKey,
    /// Byte range of the match in the text.
    pub range: std::ops::Range<usize>,
}

/// Finds issue keys in text. Configure with the builder methods; see the
/// [module docs](self) for the rules.
#[derive(Debug, Clone)]
pub struct KeyExtractor {
    case: CaseMode,
    allow: Option<HashSet<String>>,
    deny: HashSet<String>,
    max_project_len: usize,
    underscore: bool,
}

impl Default for KeyExtractor {
    fn default() -> Self {
        Self {
            case: CaseMode::default(),
            allow: None,
            deny: DEFAULT_DENY_LIST.iter().map(|s| s.to_string()).collect(),
            max_project_len: 10,
            underscore: false,
        }
    }
}

impl KeyExtractor {
    /// An extractor with the defaults: [`CaseMode::AnyIfAllowListed`], no allow-list,
    /// [`DEFAULT_DENY_LIST`], project keys up to 10 characters, no `_`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the case mode.
    pub fn case_mode(mut self, mode: CaseMode) -> Self {
        self.case = mode;
        self
    }

    /// Shorthand: `true` is [`CaseMode::Any`], `false` [`CaseMode::Upper`].
    pub fn case_insensitive(self, yes: bool) -> Self {
        self.case_mode(if yes { CaseMode::Any } else { CaseMode::Upper })
    }

    /// Only keys of these projects are returned (case-insensitive).
    pub fn allow_projects<I, S>(mut self, projects: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.allow = Some(
            projects
                .into_iter()
                .map(|p| p.as_ref().trim().to_ascii_uppercase())
                .filter(|p| !p.is_empty())
                .collect(),
        );
        self
    }

    /// Replaces the deny-list.
    pub fn deny_projects<I, S>(mut self, projects: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.deny = projects
            .into_iter()
            .map(|p| p.as_ref().trim().to_ascii_uppercase())
            .collect();
        self
    }

    /// Adds to the deny-list.
    pub fn also_deny<I, S>(mut self, projects: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.deny.extend(
            projects
                .into_iter()
                .map(|p| p.as_ref().trim().to_ascii_uppercase()),
        );
        self
    }

    /// Longest project part accepted (2..=255; default 10).
    pub fn max_project_len(mut self, len: usize) -> Self {
        self.max_project_len = len.clamp(2, MAX_PROJECT_KEY_LEN);
        self
    }

    /// Accept `_` inside project keys (Data Center). With an allow-list, a candidate
    /// such as `FEATURE_ABC-1` also yields `ABC-1` when only `ABC` is allowed.
    pub fn allow_underscore(mut self, yes: bool) -> Self {
        self.underscore = yes;
        self
    }

    /// Every key occurrence in `text`, in order, with duplicates.
    pub fn find_iter(&self, text: &str) -> Vec<KeyMatch> {
        let mut out = Vec::new();
        let bytes = text.as_bytes();
        let mut prev: Option<char> = None;
        let mut iter = text.char_indices().peekable();
        while let Some((start, c)) = iter.next() {
            let boundary =
                prev.is_none_or(|p| !(p.is_alphanumeric() || self.underscore && p == '_'));
            if boundary && c.is_ascii_alphabetic() {
                if let Some((m, end)) = self.try_at(text, bytes, start) {
                    out.push(m);
                    // Continue after the match; the next char is a boundary.
                    prev = text[..end].chars().next_back();
                    while iter.peek().is_some_and(|(i, _)| *i < end) {
                        iter.next();
                    }
                    continue;
                }
            }
            prev = Some(c);
        }
        out
    }

    fn try_at(&self, text: &str, bytes: &[u8], start: usize) -> Option<(KeyMatch, usize)> {
        // Project part: ASCII letters/digits (and '_' when enabled).
        let mut i = start;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || (self.underscore && bytes[i] == b'_'))
        {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'-' {
            return None;
        }
        let project_end = i;
        let num_start = i + 1;
        let mut j = num_start;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        if j == num_start {
            return None;
        }
        // Right boundary: end, or a char that is not alphanumeric.
        if let Some(next) = text[j..].chars().next() {
            if next.is_alphanumeric() {
                return None;
            }
        }
        let number = parse_number(&text[num_start..j])?;
        let raw_project = &text[start..project_end];
        // Candidate project parts: the whole, and with '_' the parts after each '_'.
        let mut candidates = vec![(start, raw_project)];
        if self.underscore {
            for (pos, _) in raw_project.match_indices('_') {
                candidates.push((start + pos + 1, &raw_project[pos + 1..]));
            }
        }
        for (cand_start, project) in candidates {
            if let Some(key) = self.accept(project, number) {
                return Some((
                    KeyMatch {
                        key,
                        range: cand_start..j,
                    },
                    j,
                ));
            }
        }
        None
    }

    fn accept(&self, project: &str, number: u64) -> Option<IssueKey> {
        let len = project.len();
        if len < 2 || len > self.max_project_len {
            return None;
        }
        if !project.as_bytes()[0].is_ascii_alphabetic() || project.ends_with('_') {
            return None;
        }
        let upper = project.to_ascii_uppercase();
        let is_upper = upper == project;
        let allowed = self.allow.as_ref().map(|a| a.contains(&upper));
        if allowed == Some(false) {
            return None;
        }
        if !is_upper {
            match self.case {
                CaseMode::Upper => return None,
                CaseMode::AnyIfAllowListed if allowed != Some(true) => return None,
                _ => {}
            }
        }
        if allowed != Some(true) && self.deny.contains(&upper) {
            return None;
        }
        let project = ProjectKey::parse(&upper).ok()?;
        Some(IssueKey::from_parts(project, number))
    }

    /// Distinct keys in `text`, in order of first appearance.
    pub fn extract(&self, text: &str) -> Vec<IssueKey> {
        self.extract_all([text])
    }

    /// Distinct keys across `texts`, in order of first appearance.
    pub fn extract_all<I, S>(&self, texts: I) -> Vec<IssueKey>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for text in texts {
            for m in self.find_iter(text.as_ref()) {
                if seen.insert(m.key.clone()) {
                    out.push(m.key);
                }
            }
        }
        out
    }
}

/// Distinct keys across `texts` with the default [`KeyExtractor`] (upper-case keys,
/// default deny-list), in order of first appearance.
pub fn extract_keys(texts: &[&str]) -> Vec<IssueKey> {
    KeyExtractor::default().extract_all(texts.iter().copied())
}
