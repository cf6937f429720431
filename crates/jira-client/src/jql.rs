//! A small JQL builder that quotes every value and writes date-times that the searching
//! user's time-zone setting cannot shift.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use jira_client::jql::{field, Clause, Direction, Query, TextQuery};
//!
//! let since = Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap();
//! let jql = Query::new(
//!     Clause::project_in(["ABC", "DEF"])
//!         .and(Clause::updated_since(since, chrono_tz::Europe::Berlin))
//!         .and(Clause::text(TextQuery::words("login fails (500)"))),
//! )
//! .order_by("updated", Direction::Asc)
//! .build()
//! .unwrap();
//! assert_eq!(
//!     jql,
//!     r#"project in ("ABC", "DEF") AND updated >= "2026-03-29 03:30" AND text ~ "login fails \\(500\\)" ORDER BY updated ASC"#
//! );
//! ```
//!
//! # Quoting
//!
//! Every value is written as a JQL string literal: `"` and `\` are escaped with `\`,
//! newlines, tabs and other control characters as `\n`, `\t`, `\uXXXX`. Reserved words
//! (`and`, `order`, `empty`, …) and reserved characters are therefore harmless in
//! values. Field names are written bare when they are plain identifiers (or `cf[N]`) and
//! not reserved words, quoted otherwise (`"Story Points"`).
//!
//! # Text search
//!
//! `~` takes a Lucene query inside the JQL string. [`TextQuery::words`] escapes every
//! Lucene special character (`+ - & | ! ( ) { } [ ] ^ " ~ * ? : \ /`) with a backslash
//! (which the JQL literal doubles, as Jira's documentation shows: `"\\["`) and lowers
//! the operators `AND`/`OR`/`NOT` so the user's text is searched, never interpreted.
//! [`TextQuery::phrase`] searches the exact phrase; [`TextQuery::prefix`] adds a
//! trailing `*` to the last word.
//!
//! # Date-times and time zones
//!
//! Jira reads a JQL date-time such as `updated >= "2026-03-29 03:30"` **in the time zone
//! of the user running the search** (their profile setting, `myself.timeZone`), not in
//! UTC and not in the server's zone. A bare UTC timestamp therefore shifts by the
//! user's offset, and incremental syncs silently miss or repeat issues. This builder
//! takes the instant in UTC plus the user's zone and writes the user's local wall-clock
//! time, `yyyy-MM-dd HH:mm`.
//!
//! JQL has minute precision, so every bound is rounded **outwards** to a whole minute:
//! lower bounds (`>=`, `>`) down ([`JqlDateTime::floor`]), upper bounds (`<`, `<=`) up
//! ([`JqlDateTime::ceil`]). Windows only ever widen; callers deduplicate. Around a
//! daylight-saving change a local time can mean two instants (autumn) or none
//! (spring); the builder steps the written minute outwards until every instant Jira
//! could read it as is still on the safe side.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::keys::{IssueKey, ProjectKey};

/// Why a query cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JqlError {
    /// `field in ()` is not valid JQL.
    #[error("empty value list for {0}")]
    EmptyList(String),
    /// A text search needs at least one character to search for.
    #[error("empty text search on {0}")]
    EmptyText(String),
    /// Jira Cloud rejects queries without a restriction.
    #[error("a query needs at least one restriction (Jira rejects unbounded JQL)")]
    Unbounded,
    /// Not an IANA time-zone name.
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
}

/// Parses a user's time zone as Jira reports it (`myself.timeZone`, an IANA name such
/// as `Europe/Berlin`).
pub fn user_zone(name: &str) -> Result<Tz, JqlError> {
    name.parse::<Tz>()
        .map_err(|_| JqlError::UnknownZone(name.to_string()))
}

/// JQL words that must be quoted when used as field names.
pub const RESERVED_WORDS: &[&str] = &[
    "a",
    "an",
    "abort",
    "access",
    "add",
    "after",
    "alias",
    "all",
    "alter",
    "and",
    "any",
    "are",
    "as",
    "asc",
    "audit",
    "avg",
    "before",
    "begin",
    "between",
    "boolean",
    "break",
    "by",
    "byte",
    "catch",
    "cf",
    "changed",
    "char",
    "character",
    "check",
    "checkpoint",
    "collate",
    "collation",
    "column",
    "commit",
    "connect",
    "continue",
    "count",
    "create",
    "current",
    "date",
    "decimal",
    "declare",
    "decrement",
    "default",
    "defaults",
    "define",
    "delete",
    "delimiter",
    "desc",
    "difference",
    "distinct",
    "divide",
    "do",
    "double",
    "drop",
    "else",
    "empty",
    "encoding",
    "end",
    "equals",
    "escape",
    "exclusive",
    "exec",
    "execute",
    "exists",
    "explain",
    "false",
    "fetch",
    "file",
    "field",
    "first",
    "float",
    "for",
    "from",
    "function",
    "go",
    "goto",
    "grant",
    "greater",
    "group",
    "having",
    "identified",
    "if",
    "immediate",
    "in",
    "increment",
    "index",
    "initial",
    "inner",
    "inout",
    "input",
    "insert",
    "int",
    "integer",
    "intersect",
    "intersection",
    "into",
    "is",
    "isempty",
    "isnull",
    "join",
    "last",
    "left",
    "less",
    "like",
    "limit",
    "lock",
    "long",
    "max",
    "min",
    "minus",
    "mode",
    "modify",
    "modulo",
    "more",
    "multiply",
    "next",
    "noaudit",
    "not",
    "notin",
    "nowait",
    "null",
    "number",
    "object",
    "of",
    "on",
    "option",
    "or",
    "order",
    "outer",
    "output",
    "power",
    "previous",
    "prior",
    "privileges",
    "public",
    "raise",
    "raw",
    "remainder",
    "rename",
    "resource",
    "return",
    "returns",
    "revoke",
    "right",
    "row",
    "rowid",
    "rownum",
    "rows",
    "select",
    "session",
    "set",
    "share",
    "size",
    "sqrt",
    "start",
    "strict",
    "string",
    "subtract",
    "sum",
    "synonym",
    "table",
    "then",
    "to",
    "trans",
    "transaction",
    "trigger",
    "true",
    "uid",
    "union",
    "unique",
    "update",
    "user",
    "validate",
    "values",
    "view",
    "was",
    "when",
    "whenever",
    "where",
    "while",
    "with",
];

/// Writes `s` as a JQL string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes a field name, quoted unless it is a plain identifier or `cf[N]`.
pub fn field_name(name: &str) -> String {
    let is_cf = name
        .strip_prefix("cf[")
        .and_then(|r| r.strip_suffix(']'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let mut chars = name.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    let reserved = RESERVED_WORDS.contains(&name.to_ascii_lowercase().as_str());
    if is_cf || (ident && !reserved) {
        name.to_string()
    } else {
        quote(name)
    }
}

const LUCENE_SPECIAL: &[char] = &[
    '+', '-', '&', '|', '!', '(', ')', '{', '}', '[', ']', '^', '"', '~', '*', '?', ':', '\\', '/',
];

fn lucene_escape_word(word: &str) -> String {
    if matches!(word, "AND" | "OR" | "NOT") {
        return word.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if LUCENE_SPECIAL.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The right-hand side of a `~` (contains) search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextQuery {
    /// All words, in any order; special characters are searched literally.
    Words(String),
    /// The exact phrase.
    Phrase(String),
    /// All words, the last one as a prefix (`log*`).
    Prefix(String),
}

impl TextQuery {
    /// All words.
    pub fn words(s: impl Into<String>) -> Self {
        TextQuery::Words(s.into())
    }
    /// The exact phrase.
    pub fn phrase(s: impl Into<String>) -> Self {
        TextQuery::Phrase(s.into())
    }
    /// All words, the last one as a prefix.
    pub fn prefix(s: impl Into<String>) -> Self {
        TextQuery::Prefix(s.into())
    }

    /// The Lucene query (before JQL quoting); `None` when there is nothing to search.
    pub fn to_lucene(&self) -> Option<String> {
        match self {
            TextQuery::Words(s) | TextQuery::Prefix(s) => {
                let words: Vec<String> = s.split_whitespace().map(lucene_escape_word).collect();
                if words.is_empty() {
                    return None;
                }
                let mut q = words.join(" ");
                if matches!(self, TextQuery::Prefix(_)) {
                    q.push('*');
                }
                Some(q)
            }
            TextQuery::Phrase(s) => {
                let words: Vec<&str> = s.split_whitespace().collect();
                if words.is_empty() {
                    return None;
                }
                let inner = words.join(" ").replace('\\', "\\\\").replace('"', "\\\"");
                Some(format!("\"{inner}\""))
            }
        }
    }
}

/// A local date-time with minute precision, as JQL writes it (`yyyy-MM-dd HH:mm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct JqlDateTime(NaiveDateTime);

/// Instants a local time can mean in `zone` (0, 1 or 2).
fn instants(zone: Tz, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        chrono::LocalResult::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
        chrono::LocalResult::None => Vec::new(),
    }
}

/// How far the safe-side search may step (longer than any real DST shift).
const MAX_STEP_MINUTES: i64 = 24 * 60;

impl JqlDateTime {
    /// The latest whole minute that Jira, reading it in `zone`, can only place at or
    /// before `instant`: for lower bounds (`>=`, `>`).
    pub fn floor(instant: DateTime<Utc>, zone: Tz) -> Self {
        let local = instant.with_timezone(&zone).naive_local();
        let mut m = local
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(local);
        for _ in 0..MAX_STEP_MINUTES {
            let all = instants(zone, m);
            if !all.is_empty() && all.iter().all(|t| *t <= instant) {
                break;
            }
            m -= Duration::minutes(1);
        }
        Self(m)
    }

    /// The earliest whole minute that Jira, reading it in `zone`, can only place at or
    /// after `instant`: for upper bounds (`<`, `<=`).
    pub fn ceil(instant: DateTime<Utc>, zone: Tz) -> Self {
        let local = instant.with_timezone(&zone).naive_local();
        let base = local
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(local);
        let mut m = if base < local {
            base + Duration::minutes(1)
        } else {
            base
        };
        for _ in 0..MAX_STEP_MINUTES {
            let all = instants(zone, m);
            if !all.is_empty() && all.iter().all(|t| *t >= instant) {
                break;
            }
            m += Duration::minutes(1);
        }
        Self(m)
    }

    /// A wall-clock time given directly in the user's zone.
    pub fn local(local: NaiveDateTime) -> Self {
        Self(
            local
                .with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(local),
        )
    }

    /// The local date-time.
    pub fn naive(&self) -> NaiveDateTime {
        self.0
    }
}

impl fmt::Display for JqlDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d %H:%M"))
    }
}

/// A value on the right of an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string, always quoted.
    String(String),
    /// A number.
    Number(i64),
    /// A date-time, quoted.
    DateTime(JqlDateTime),
    /// A JQL function call written as given, e.g. `currentUser()`. Only for trusted,
    /// constant text.
    Function(String),
}

impl Value {
    fn render(&self) -> String {
        match self {
            Value::String(s) => quote(s),
            Value::Number(n) => n.to_string(),
            Value::DateTime(d) => quote(&d.to_string()),
            Value::Function(f) => f.clone(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::String(s.clone())
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n)
    }
}
impl From<JqlDateTime> for Value {
    fn from(d: JqlDateTime) -> Self {
        Value::DateTime(d)
    }
}
impl From<&IssueKey> for Value {
    fn from(k: &IssueKey) -> Self {
        Value::String(k.to_string())
    }
}
impl From<IssueKey> for Value {
    fn from(k: IssueKey) -> Self {
        Value::String(k.to_string())
    }
}
impl From<&ProjectKey> for Value {
    fn from(k: &ProjectKey) -> Self {
        Value::String(k.to_string())
    }
}
impl From<ProjectKey> for Value {
    fn from(k: ProjectKey) -> Self {
        Value::String(k.to_string())
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
        }
    }
}

/// A field to compare; see [`field`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field(String);

/// A field by name (`project`, `status`, `"Story Points"`, `cf[10010]`).
pub fn field(name: &str) -> Field {
    Field(name.to_string())
}

impl Field {
    fn cmp(self, op: Op, v: impl Into<Value>) -> Clause {
        Clause::Compare {
            field: self.0,
            op,
            value: v.into(),
        }
    }
    /// `field = value`
    pub fn eq(self, v: impl Into<Value>) -> Clause {
        self.cmp(Op::Eq, v)
    }
    /// `field != value`
    pub fn ne(self, v: impl Into<Value>) -> Clause {
        self.cmp(Op::Ne, v)
    }
    /// `field > value`
    pub fn gt(self, v: impl Into<Value>) -> Clause {
        self.cmp(Op::Gt, v)
    }
    /// `field >= value`
    pub fn gte(self, v: impl Into<Value>) -> Clause {
        self.cmp(Op::Gte, v)
    }
    /// `field < value`
    pub fn lt(self, v: impl Into<Value>) -> Clause {
        self.cmp(Op::Lt, v)
    }
    /// `field <= value`
    pub fn lte(self, v: impl Into<Value>) -> Clause {
        self.cmp(Op::Lte, v)
    }
    /// `field in (values…)`
    pub fn in_list<I, V>(self, values: I) -> Clause
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        Clause::In {
            field: self.0,
            values: values.into_iter().map(Into::into).collect(),
            negated: false,
        }
    }
    /// `field not in (values…)`
    pub fn not_in<I, V>(self, values: I) -> Clause
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        Clause::In {
            field: self.0,
            values: values.into_iter().map(Into::into).collect(),
            negated: true,
        }
    }
    /// `field ~ "query"`
    pub fn contains(self, query: TextQuery) -> Clause {
        Clause::Contains {
            field: self.0,
            query,
        }
    }
    /// `field is EMPTY`
    pub fn is_empty(self) -> Clause {
        Clause::IsEmpty {
            field: self.0,
            negated: false,
        }
    }
    /// `field is not EMPTY`
    pub fn is_not_empty(self) -> Clause {
        Clause::IsEmpty {
            field: self.0,
            negated: true,
        }
    }
    /// `field >= <floor(instant) in zone>`: everything at or after `instant`.
    pub fn since(self, instant: DateTime<Utc>, zone: Tz) -> Clause {
        self.gte(JqlDateTime::floor(instant, zone))
    }
    /// `field < <ceil(instant) in zone>`: everything before `instant` (and, because of
    /// minute precision, possibly up to a minute after it).
    pub fn before(self, instant: DateTime<Utc>, zone: Tz) -> Clause {
        self.lt(JqlDateTime::ceil(instant, zone))
    }
}

/// A JQL condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// `field op value`
    Compare {
        /// Field name (unquoted).
        field: String,
        /// Operator.
        op: Op,
        /// Value.
        value: Value,
    },
    /// `field [not] in (…)`
    In {
        /// Field name.
        field: String,
        /// Values.
        values: Vec<Value>,
        /// `not in`.
        negated: bool,
    },
    /// `field ~ "…"`
    Contains {
        /// Field name.
        field: String,
        /// What to search.
        query: TextQuery,
    },
    /// `field is [not] EMPTY`
    IsEmpty {
        /// Field name.
        field: String,
        /// `is not`.
        negated: bool,
    },
    /// All of these.
    And(Vec<Clause>),
    /// Any of these.
    Or(Vec<Clause>),
    /// Not this.
    Not(Box<Clause>),
    /// JQL written by someone else, kept as is and parenthesised when combined.
    Raw(String),
}

impl Clause {
    /// `project in ("A", "B")`
    pub fn project_in<I, S>(projects: I) -> Clause
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        field("project").in_list(projects.into_iter().map(|p| p.as_ref().to_string()))
    }

    /// `key in ("A-1", …)`
    pub fn key_in<'a, I>(keys: I) -> Clause
    where
        I: IntoIterator<Item = &'a IssueKey>,
    {
        field("key").in_list(keys)
    }

    /// `key in (…)` split into clauses of at most `chunk` keys (one search each; 100 is
    /// a safe size, see FACTS on `key in` lists).
    pub fn key_in_chunks(keys: &[IssueKey], chunk: usize) -> Vec<Clause> {
        keys.chunks(chunk.max(1)).map(Clause::key_in).collect()
    }

    /// `updated >= "<local minute>"` for everything updated at or after `instant`.
    pub fn updated_since(instant: DateTime<Utc>, zone: Tz) -> Clause {
        field("updated").since(instant, zone)
    }

    /// `updated < "<local minute>"` for everything updated before `instant`.
    pub fn updated_before(instant: DateTime<Utc>, zone: Tz) -> Clause {
        field("updated").before(instant, zone)
    }

    /// `text ~ "…"`: all text fields.
    pub fn text(query: TextQuery) -> Clause {
        field("text").contains(query)
    }

    /// JQL from elsewhere, kept verbatim.
    pub fn raw(jql: impl Into<String>) -> Clause {
        Clause::Raw(jql.into())
    }

    /// `self AND other`
    pub fn and(self, other: Clause) -> Clause {
        match self {
            Clause::And(mut items) => {
                items.push(other);
                Clause::And(items)
            }
            first => Clause::And(vec![first, other]),
        }
    }

    /// `self OR other`
    pub fn or(self, other: Clause) -> Clause {
        match self {
            Clause::Or(mut items) => {
                items.push(other);
                Clause::Or(items)
            }
            first => Clause::Or(vec![first, other]),
        }
    }

    /// `NOT (self)`
    pub fn negate(self) -> Clause {
        Clause::Not(Box::new(self))
    }

    /// The JQL text.
    pub fn render(&self) -> Result<String, JqlError> {
        Ok(match self {
            Clause::Compare { field, op, value } => {
                format!("{} {} {}", field_name(field), op.as_str(), value.render())
            }
            Clause::In {
                field,
                values,
                negated,
            } => {
                if values.is_empty() {
                    return Err(JqlError::EmptyList(field.clone()));
                }
                let list: Vec<String> = values.iter().map(Value::render).collect();
                format!(
                    "{} {} ({})",
                    field_name(field),
                    if *negated { "not in" } else { "in" },
                    list.join(", ")
                )
            }
            Clause::Contains { field, query } => {
                let lucene = query
                    .to_lucene()
                    .ok_or_else(|| JqlError::EmptyText(field.clone()))?;
                format!("{} ~ {}", field_name(field), quote(&lucene))
            }
            Clause::IsEmpty { field, negated } => format!(
                "{} is {}EMPTY",
                field_name(field),
                if *negated { "not " } else { "" }
            ),
            Clause::And(items) | Clause::Or(items) => {
                let and = matches!(self, Clause::And(_));
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    let text = item.render()?;
                    let wrap = match item {
                        Clause::Raw(_) => true,
                        Clause::Or(v) | Clause::And(v) => {
                            v.len() > 1 && (and != matches!(item, Clause::And(_)))
                        }
                        _ => false,
                    };
                    parts.push(if wrap { format!("({text})") } else { text });
                }
                if parts.is_empty() {
                    return Err(JqlError::Unbounded);
                }
                parts.join(if and { " AND " } else { " OR " })
            }
            Clause::Not(inner) => format!("NOT ({})", inner.render()?),
            Clause::Raw(text) => text.clone(),
        })
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// A full query: a restriction plus optional `ORDER BY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    clause: Clause,
    order: Vec<(String, Direction)>,
}

impl Query {
    /// A query restricted by `clause`.
    pub fn new(clause: Clause) -> Self {
        Self {
            clause,
            order: Vec::new(),
        }
    }

    /// Adds a restriction with `AND`.
    pub fn and(mut self, clause: Clause) -> Self {
        self.clause = self.clause.and(clause);
        self
    }

    /// Adds a sort key.
    pub fn order_by(mut self, field: &str, direction: Direction) -> Self {
        self.order.push((field.to_string(), direction));
        self
    }

    /// The JQL text.
    pub fn build(&self) -> Result<String, JqlError> {
        let mut out = self.clause.render()?;
        if out.trim().is_empty() {
            return Err(JqlError::Unbounded);
        }
        if !self.order.is_empty() {
            let order: Vec<String> = self
                .order
                .iter()
                .map(|(f, d)| {
                    format!(
                        "{} {}",
                        field_name(f),
                        if *d == Direction::Asc { "ASC" } else { "DESC" }
                    )
                })
                .collect();
            out.push_str(" ORDER BY ");
            out.push_str(&order.join(", "));
        }
        Ok(out)
    }
}
