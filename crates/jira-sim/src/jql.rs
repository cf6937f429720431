//! The JQL subset the simulator understands: a hand-written lexer, parser, resolver
//! (values checked against the instance, dates read in the searching user's zone) and
//! evaluator.
//!
//! Supported: `project`, `key`/`issuekey`/`id`, `status`, `statusCategory`, `assignee`,
//! `reporter`, `creator` (with `currentUser()` and `EMPTY`), `text`/`summary`/`description`/
//! `comment` with `~` and `!~`, `labels`, `issuetype`/`type`, `priority`, `parent`,
//! `resolution`, `"Epic Link"`, `created`/`updated` (`=`, `!=`, `<`, `<=`, `>`, `>=` with
//! date-times, dates, relative periods like `-5m` / `-1d` / `"-2w 1d"` and `now()`,
//! `startOfDay()`, `endOfDay()`), `issue in issuesWithRemoteLinksByGlobalId(...)`,
//! `IN`/`NOT IN`, `IS [NOT] EMPTY`, `AND`/`OR`/`NOT`, parentheses and `ORDER BY` on `key`,
//! `id`, `created`, `updated`, `priority`, `status`, `summary` with `ASC`/`DESC`.

use std::cmp::Ordering;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A JQL error with Jira's message (answered as 400 `errorMessages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JqlError(pub String);

impl std::fmt::Display for JqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Op(&'static str),
}

#[derive(Debug, Clone)]
struct Lexed {
    tok: Tok,
    pos: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(
            c,
            '_' | '-' | '.' | '@' | ':' | '/' | '*' | '+' | '$' | '[' | ']'
        )
}

/// Decodes the escape at `chars[at]` (a backslash) into `buf` as Jira's JQL lexer
/// does: `\'`, `\"`, `\t`, `\n`, `\r`, `\\`, `\ ` and `\uXXXX` (a UTF-16 unit;
/// surrogate pairs combine); anything else is an error. Answers the index after it.
fn unescape(chars: &[char], at: usize, buf: &mut String) -> Result<usize, JqlError> {
    let illegal = |seq: String| {
        JqlError(format!(
            "Error in the JQL Query: '{seq}' is an illegal JQL escape sequence. The valid escape sequences are \\', \\\", \\t, \\n, \\r, \\\\, '\\ ' and \\uXXXX. (line 1, character {})",
            at + 1
        ))
    };
    let unit = |from: usize| -> Option<u32> {
        let hex: String = chars.get(from..from + 4)?.iter().collect();
        (hex.len() == 4 && hex.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(&hex, 16).ok())
            .flatten()
    };
    let c = chars[at + 1];
    let decoded = match c {
        '\'' | '"' | '\\' | ' ' => c,
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'u' => {
            let Some(high) = unit(at + 2) else {
                let end = (at + 6).min(chars.len());
                return Err(illegal(chars[at..end].iter().collect()));
            };
            if (0xD800..0xDC00).contains(&high)
                && chars.get(at + 6) == Some(&'\\')
                && chars.get(at + 7) == Some(&'u')
            {
                if let Some(low) = unit(at + 8).filter(|l| (0xDC00..0xE000).contains(l)) {
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    buf.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    return Ok(at + 12);
                }
            }
            buf.push(char::from_u32(high).unwrap_or('\u{fffd}'));
            return Ok(at + 6);
        }
        other => return Err(illegal(format!("\\{other}"))),
    };
    buf.push(decoded);
    Ok(at + 2)
}

fn lex(s: &str) -> Result<Vec<Lexed>, JqlError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op2 = match two.as_str() {
            "!=" => Some("!="),
            ">=" => Some(">="),
            "<=" => Some("<="),
            "!~" => Some("!~"),
            "&&" => Some("AND"),
            "||" => Some("OR"),
            _ => None,
        };
        if let Some(op) = op2 {
            let tok = if op == "AND" || op == "OR" {
                Tok::Word(op.to_string())
            } else {
                Tok::Op(op)
            };
            out.push(Lexed { tok, pos });
            i += 2;
            continue;
        }
        match c {
            '(' => out.push(Lexed { tok: Tok::LParen, pos }),
            ')' => out.push(Lexed { tok: Tok::RParen, pos }),
            ',' => out.push(Lexed { tok: Tok::Comma, pos }),
            '=' => out.push(Lexed { tok: Tok::Op("="), pos }),
            '>' => out.push(Lexed { tok: Tok::Op(">"), pos }),
            '<' => out.push(Lexed { tok: Tok::Op("<"), pos }),
            '~' => out.push(Lexed { tok: Tok::Op("~"), pos }),
            '!' => out.push(Lexed {
                tok: Tok::Word("NOT".into()),
                pos,
            }),
            '"' | '\'' => {
                let q = c;
                let mut j = i + 1;
                let mut buf = String::new();
                let mut closed = false;
                while j < chars.len() {
                    let d = chars[j];
                    if d == '\\' && j + 1 < chars.len() {
                        j = unescape(&chars, j, &mut buf)?;
                        continue;
                    }
                    if d == q {
                        closed = true;
                        break;
                    }
                    buf.push(d);
                    j += 1;
                }
                if !closed {
                    return Err(JqlError(format!(
                        "Error in the JQL Query: The quoted string '{buf}' has not been completed. (line 1, character {pos})"
                    )));
                }
                out.push(Lexed { tok: Tok::Str(buf), pos });
                i = j + 1;
                continue;
            }
            c if is_word_char(c) => {
                let mut j = i;
                let mut buf = String::new();
                while j < chars.len() && is_word_char(chars[j]) {
                    buf.push(chars[j]);
                    j += 1;
                }
                out.push(Lexed { tok: Tok::Word(buf), pos });
                i = j;
                continue;
            }
            other => {
                return Err(JqlError(format!(
                    "Error in the JQL Query: The character '{other}' is a reserved JQL character. You must enclose it in a string or use the escape '\\u{:04x}' instead. (line 1, character {pos})",
                    other as u32
                )))
            }
        }
        i += 1;
    }
    Ok(out)
}

// ---------------------------------------------------------------- AST

/// A value on the right-hand side of a clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Value(String),
    /// A value written in quotes (never a keyword).
    Quoted(String),
    Func(String, Vec<String>),
    Empty,
    List(Vec<Operand>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Clause {
        field: String,
        op: String,
        value: Operand,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Option<Expr>,
    /// (field, descending)
    pub order: Vec<(String, bool)>,
}

struct Parser {
    toks: Vec<Lexed>,
    i: usize,
    len: usize,
}

fn kw(t: &Tok, k: &str) -> bool {
    matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(k))
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Word(w) => w.clone(),
        Tok::Str(s) => s.clone(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::Comma => ",".into(),
        Tok::Op(o) => (*o).into(),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|l| &l.tok)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.i).map(|l| l.pos).unwrap_or(self.len + 1)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).map(|l| l.tok.clone());
        self.i += 1;
        t
    }
    fn err_expect(&self, what: &str) -> JqlError {
        match self.peek() {
            Some(t) => JqlError(format!(
                "Error in the JQL Query: Expecting {what} but got '{}'. (line 1, character {})",
                show(t),
                self.pos()
            )),
            None => JqlError(format!(
                "Error in the JQL Query: Expecting {what} but got the end of the query. (line 1, character {})",
                self.pos()
            )),
        }
    }

    fn query(&mut self) -> Result<Query, JqlError> {
        let filter = match self.peek() {
            None => None,
            Some(t) if kw(t, "ORDER") => None,
            Some(_) => Some(self.or()?),
        };
        let mut order = vec![];
        if let Some(t) = self.peek() {
            if kw(t, "ORDER") {
                self.next();
                if !self.peek().is_some_and(|t| kw(t, "BY")) {
                    return Err(self.err_expect("'BY'"));
                }
                self.next();
                loop {
                    let f = match self.next() {
                        Some(Tok::Word(w)) | Some(Tok::Str(w)) => w,
                        _ => {
                            self.i -= 1;
                            return Err(self.err_expect("a field name"));
                        }
                    };
                    let mut desc = false;
                    if let Some(t) = self.peek() {
                        if kw(t, "DESC") {
                            desc = true;
                            self.next();
                        } else if kw(t, "ASC") {
                            self.next();
                        }
                    }
                    order.push((f, desc));
                    if self.peek() == Some(&Tok::Comma) {
                        self.next();
                        continue;
                    }
                    break;
                }
            } else if filter.is_some() {
                return Err(self.err_expect("either 'OR' or 'AND'"));
            }
        }
        if self.peek().is_some() {
            return Err(self.err_expect("either 'OR' or 'AND'"));
        }
        Ok(Query { filter, order })
    }

    fn or(&mut self) -> Result<Expr, JqlError> {
        let mut l = self.and()?;
        while self.peek().is_some_and(|t| kw(t, "OR")) {
            self.next();
            let r = self.and()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, JqlError> {
        let mut l = self.not()?;
        while self.peek().is_some_and(|t| kw(t, "AND")) {
            self.next();
            let r = self.not()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, JqlError> {
        match self.peek() {
            Some(t) if kw(t, "NOT") => {
                self.next();
                Ok(Expr::Not(Box::new(self.not()?)))
            }
            Some(Tok::LParen) => {
                self.next();
                let e = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err_expect("')'"));
                }
                self.next();
                Ok(e)
            }
            _ => self.clause(),
        }
    }

    fn clause(&mut self) -> Result<Expr, JqlError> {
        let field = match self.peek() {
            Some(Tok::Word(w))
                if !["AND", "OR", "ORDER"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                w.clone()
            }
            Some(Tok::Str(s)) => s.clone(),
            _ => return Err(self.err_expect("a field name")),
        };
        self.next();
        let op_err = |p: &Parser| {
            let mut e = p.err_expect("operator");
            e.0 = e.0.replace(
                ". (line",
                ". The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. (line",
            );
            e
        };
        let op = match self.peek() {
            Some(Tok::Op(o)) => {
                let o = (*o).to_string();
                self.next();
                o
            }
            Some(t) if kw(t, "IN") => {
                self.next();
                "in".into()
            }
            Some(t) if kw(t, "NOT") => {
                self.next();
                if self.peek().is_some_and(|t| kw(t, "IN")) {
                    self.next();
                    "not in".into()
                } else {
                    return Err(op_err(self));
                }
            }
            Some(t) if kw(t, "IS") => {
                self.next();
                let neg = if self.peek().is_some_and(|t| kw(t, "NOT")) {
                    self.next();
                    true
                } else {
                    false
                };
                if !self.peek().is_some_and(|t| kw(t, "EMPTY") || kw(t, "NULL")) {
                    return Err(self.err_expect("'EMPTY' or 'NULL'"));
                }
                self.next();
                return Ok(Expr::Clause {
                    field,
                    op: if neg { "is not".into() } else { "is".into() },
                    value: Operand::Empty,
                });
            }
            _ => return Err(op_err(self)),
        };
        let value = if op == "in" || op == "not in" {
            if self.peek() == Some(&Tok::LParen) {
                self.next();
                let mut items = vec![];
                if self.peek() != Some(&Tok::RParen) {
                    loop {
                        items.push(self.operand()?);
                        match self.peek() {
                            Some(Tok::Comma) => {
                                self.next();
                            }
                            Some(Tok::RParen) => break,
                            _ => return Err(self.err_expect("')' or ','")),
                        }
                    }
                }
                self.next();
                Operand::List(items)
            } else {
                // `issue in someFunction()`
                self.operand()?
            }
        } else {
            self.operand()?
        };
        Ok(Expr::Clause { field, op, value })
    }

    fn operand(&mut self) -> Result<Operand, JqlError> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.next();
                Ok(Operand::Quoted(s))
            }
            Some(Tok::Word(w)) => {
                self.next();
                if w.eq_ignore_ascii_case("EMPTY") || w.eq_ignore_ascii_case("NULL") {
                    return Ok(Operand::Empty);
                }
                if self.peek() == Some(&Tok::LParen) {
                    self.next();
                    let mut args = vec![];
                    while let Some(t) = self.peek().cloned() {
                        match t {
                            Tok::RParen => break,
                            Tok::Comma => {
                                self.next();
                            }
                            Tok::Word(a) | Tok::Str(a) => {
                                args.push(a);
                                self.next();
                            }
                            _ => return Err(self.err_expect("')'")),
                        }
                    }
                    if self.peek() != Some(&Tok::RParen) {
                        return Err(self.err_expect("')'"));
                    }
                    self.next();
                    return Ok(Operand::Func(w, args));
                }
                // A relative period may be written with spaces: `-1w 2d` is not valid unquoted.
                Ok(Operand::Value(w))
            }
            _ => Err(self.err_expect("either a value, list or function")),
        }
    }
}

/// Parses JQL text.
pub fn parse(s: &str) -> Result<Query, JqlError> {
    let toks = lex(s)?;
    let mut p = Parser {
        toks,
        i: 0,
        len: s.chars().count(),
    };
    p.query()
}

// ---------------------------------------------------------------- resolution

/// What a JQL query is evaluated against: the instance's names and the searching user.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub current_user: String,
    pub tz: Tz,
    pub now: DateTime<Utc>,
    pub data_center: bool,
    /// (id, key)
    pub projects: Vec<(String, String)>,
    /// (id, name, category id)
    pub statuses: Vec<(String, String, u64)>,
    /// (id, name)
    pub issue_types: Vec<(String, String)>,
    /// (id, name, rank: 1 = highest)
    pub priorities: Vec<(String, String, usize)>,
    /// (account id, username, email)
    pub users: Vec<(String, String, String)>,
    /// (issue id, key)
    pub issues: Vec<(String, String)>,
}

/// An issue as JQL sees it.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub id: String,
    pub key: String,
    pub project_id: String,
    pub status_id: String,
    pub category: u64,
    pub issuetype_id: String,
    pub priority_id: String,
    pub assignee: Option<String>,
    pub reporter: Option<String>,
    pub creator: Option<String>,
    pub summary: String,
    pub description: String,
    pub comments: String,
    pub labels: Vec<String>,
    pub parent_id: Option<String>,
    pub epic_link_id: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub remote_global_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SetField {
    Project,
    Key,
    Status,
    Category,
    IssueType,
    Priority,
    Assignee,
    Reporter,
    Creator,
    Labels,
    Parent,
    EpicLink,
    Resolution,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TextField {
    Text,
    Summary,
    Description,
    Comment,
}

#[derive(Debug, Clone)]
enum Pred {
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Not(Box<Pred>),
    /// Value in set (`negate` = `!=` / `NOT IN`). An empty string in the set means EMPTY.
    Set(SetField, Vec<String>, bool),
    Text(TextField, String, bool),
    Date(bool, &'static str, DateTime<Utc>),
    DateEmpty(bool),
    Remote(Vec<String>),
}

/// A query checked against a catalog, ready to run.
#[derive(Debug, Clone)]
pub struct Compiled {
    pred: Option<Pred>,
    order: Vec<(OrderField, bool)>,
    rank: Vec<(String, usize)>,
    status_names: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy)]
enum OrderField {
    Key,
    Id,
    Created,
    Updated,
    Priority,
    Status,
    Summary,
}

impl Compiled {
    /// Whether the query restricts anything (Jira refuses unbounded queries on /search/jql).
    pub fn is_bounded(&self) -> bool {
        self.pred.is_some()
    }

    pub fn matches(&self, d: &Doc) -> bool {
        self.pred.as_ref().is_none_or(|p| eval(p, d))
    }

    /// Sorts matching docs by the query's ORDER BY (default: newest id first).
    pub fn sort(&self, docs: &mut [Doc]) {
        let rank = |d: &Doc| {
            self.rank
                .iter()
                .find(|(id, _)| *id == d.priority_id)
                .map(|(_, r)| *r)
                .unwrap_or(99)
        };
        let status_name = |d: &Doc| {
            self.status_names
                .iter()
                .find(|(id, _)| *id == d.status_id)
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        };
        let key_parts = |d: &Doc| {
            let (p, n) = d.key.rsplit_once('-').unwrap_or((&d.key, "0"));
            (p.to_string(), n.parse::<u64>().unwrap_or(0))
        };
        let id_num = |d: &Doc| d.id.parse::<u64>().unwrap_or(0);
        docs.sort_by(|a, b| {
            for (f, desc) in &self.order {
                let o = match f {
                    OrderField::Key => key_parts(a).cmp(&key_parts(b)),
                    OrderField::Id => id_num(a).cmp(&id_num(b)),
                    OrderField::Created => a.created.cmp(&b.created),
                    OrderField::Updated => a.updated.cmp(&b.updated),
                    // Higher priority (lower rank) counts as "greater".
                    OrderField::Priority => rank(b).cmp(&rank(a)),
                    OrderField::Status => status_name(a).cmp(&status_name(b)),
                    OrderField::Summary => a.summary.to_lowercase().cmp(&b.summary.to_lowercase()),
                };
                let o = if *desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            id_num(b).cmp(&id_num(a))
        });
    }
}

fn unknown_value(v: &str, field: &str) -> JqlError {
    JqlError(format!(
        "The value '{v}' does not exist for the field '{field}'."
    ))
}

fn op_unsupported(op: &str, field: &str) -> JqlError {
    JqlError(format!(
        "The operator '{op}' is not supported by the '{field}' field."
    ))
}

fn operand_values(o: &Operand) -> Vec<&Operand> {
    match o {
        Operand::List(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// Parses a period like `-5m`, `-1d`, `4w 2d`, `-2h30m`; returns the signed offset.
fn parse_period(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body.is_empty() {
        return None;
    }
    let mut total = Duration::zero();
    let mut num = String::new();
    let mut any = false;
    for c in body.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else if c.is_whitespace() {
            continue;
        } else {
            let n: i64 = num.parse().ok()?;
            num.clear();
            let part = match c.to_ascii_lowercase() {
                'w' => Duration::try_weeks(n),
                'd' => Duration::try_days(n),
                'h' => Duration::try_hours(n),
                'm' => Duration::try_minutes(n),
                _ => return None,
            }?;
            total = total.checked_add(&part)?;
            any = true;
        }
    }
    if !num.is_empty() {
        // A bare number is minutes.
        total = total.checked_add(&Duration::try_minutes(num.parse().ok()?)?)?;
        any = true;
    }
    any.then_some(if neg { -total } else { total })
}

fn local(tz: Tz, ndt: NaiveDateTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&ndt)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

/// Reads a JQL date value in the searching user's zone.
fn parse_date(cat: &Catalog, o: &Operand, field: &str) -> Result<DateTime<Utc>, JqlError> {
    let bad = |v: &str| {
        JqlError(format!(
            "Date value '{v}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
        ))
    };
    match o {
        Operand::Func(name, args) => {
            let n = name.to_ascii_lowercase();
            let offset = args
                .first()
                .map(|a| parse_period(a).ok_or_else(|| bad(a)))
                .transpose()?
                .unwrap_or_else(Duration::zero);
            let today = cat.now.with_timezone(&cat.tz).date_naive();
            let at = match n.as_str() {
                "now" => Some(cat.now),
                "startofday" => today.and_hms_opt(0, 0, 0).and_then(|d| local(cat.tz, d)),
                "endofday" => today
                    .and_hms_milli_opt(23, 59, 59, 999)
                    .and_then(|d| local(cat.tz, d)),
                _ => return Err(JqlError(format!("Unable to find JQL function '{name}()'."))),
            };
            at.and_then(|a| a.checked_add_signed(offset))
                .ok_or_else(|| bad(name))
        }
        Operand::Value(v) | Operand::Quoted(v) => {
            let v = v.trim();
            for fmt in ["%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M"] {
                if let Ok(ndt) = NaiveDateTime::parse_from_str(v, fmt) {
                    return local(cat.tz, ndt).ok_or_else(|| bad(v));
                }
            }
            for fmt in ["%Y/%m/%d", "%Y-%m-%d"] {
                if let Ok(d) = NaiveDate::parse_from_str(v, fmt) {
                    return d
                        .and_hms_opt(0, 0, 0)
                        .and_then(|ndt| local(cat.tz, ndt))
                        .ok_or_else(|| bad(v));
                }
            }
            if let Ok(ms) = v.parse::<i64>() {
                if v.len() >= 10 {
                    return Utc.timestamp_millis_opt(ms).single().ok_or_else(|| bad(v));
                }
            }
            parse_period(v)
                .and_then(|p| cat.now.checked_add_signed(p))
                .ok_or_else(|| bad(v))
        }
        Operand::Empty | Operand::List(_) => Err(bad("EMPTY")),
    }
}

fn resolve_user(cat: &Catalog, o: &Operand, field: &str) -> Result<String, JqlError> {
    match o {
        Operand::Empty => Ok(String::new()),
        Operand::Func(name, _) if name.eq_ignore_ascii_case("currentUser") => {
            Ok(cat.current_user.clone())
        }
        Operand::Func(name, _) => Err(JqlError(format!("Unable to find JQL function '{name}()'."))),
        Operand::Value(v) | Operand::Quoted(v) => cat
            .users
            .iter()
            .find(|(id, name, email)| {
                id == v
                    || email.eq_ignore_ascii_case(v)
                    || (cat.data_center && name.eq_ignore_ascii_case(v))
            })
            .map(|(id, _, _)| id.clone())
            .ok_or_else(|| unknown_value(v, field)),
        Operand::List(_) => Err(unknown_value("(...)", field)),
    }
}

fn plain_value<'a>(o: &'a Operand, field: &str) -> Result<&'a str, JqlError> {
    match o {
        Operand::Value(v) | Operand::Quoted(v) => Ok(v),
        Operand::Func(name, _) => Err(JqlError(format!("Unable to find JQL function '{name}()'."))),
        Operand::Empty => Ok(""),
        Operand::List(_) => Err(JqlError(format!(
            "The operator '=' does not accept a list for the field '{field}'."
        ))),
    }
}

fn valid_key_syntax(k: &str) -> bool {
    let Some((p, n)) = k.rsplit_once('-') else {
        return false;
    };
    !p.is_empty()
        && p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit())
}

fn resolve_issue(cat: &Catalog, v: &str, field: &str) -> Result<String, JqlError> {
    if let Ok(id) = v.parse::<u64>() {
        return Ok(id.to_string());
    }
    if !valid_key_syntax(v) {
        return Err(JqlError(format!(
            "The issue key '{v}' for field '{field}' is invalid."
        )));
    }
    Ok(cat
        .issues
        .iter()
        .find(|(_, k)| k.eq_ignore_ascii_case(v))
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| format!("missing:{}", v.to_ascii_uppercase())))
}

fn compile_clause(cat: &Catalog, field: &str, op: &str, value: &Operand) -> Result<Pred, JqlError> {
    let f = field.to_ascii_lowercase();
    let set_ops = ["=", "!=", "in", "not in", "is", "is not"];
    let negate = matches!(op, "!=" | "not in" | "is not");
    let set_field = match f.as_str() {
        "project" => Some(SetField::Project),
        "key" | "issuekey" | "id" | "issue" => Some(SetField::Key),
        "status" => Some(SetField::Status),
        "statuscategory" => Some(SetField::Category),
        "issuetype" | "type" => Some(SetField::IssueType),
        "priority" => Some(SetField::Priority),
        "assignee" => Some(SetField::Assignee),
        "reporter" => Some(SetField::Reporter),
        "creator" => Some(SetField::Creator),
        "labels" | "label" => Some(SetField::Labels),
        "parent" => Some(SetField::Parent),
        "epic link" | "\"epic link\"" if cat.data_center => Some(SetField::EpicLink),
        "resolution" => Some(SetField::Resolution),
        _ => None,
    };
    if let Some(sf) = set_field {
        // issue in issuesWithRemoteLinksByGlobalId("...")
        if let Operand::Func(name, args) = value {
            if sf == SetField::Key && name.eq_ignore_ascii_case("issuesWithRemoteLinksByGlobalId") {
                if op != "in" && op != "not in" {
                    return Err(op_unsupported(op, field));
                }
                let p = Pred::Remote(args.clone());
                return Ok(if negate { Pred::Not(Box::new(p)) } else { p });
            }
        }
        if !set_ops.contains(&op) {
            return Err(op_unsupported(op, field));
        }
        let mut ids = vec![];
        for o in operand_values(value) {
            if matches!(o, Operand::Empty) {
                ids.push(String::new());
                continue;
            }
            let id = match sf {
                SetField::Assignee | SetField::Reporter | SetField::Creator => {
                    resolve_user(cat, o, &f)?
                }
                _ => {
                    let v = plain_value(o, &f)?;
                    match sf {
                        SetField::Project => cat
                            .projects
                            .iter()
                            .find(|(id, key)| id == v || key.eq_ignore_ascii_case(v))
                            .map(|(id, _)| id.clone())
                            .ok_or_else(|| unknown_value(v, &f))?,
                        SetField::Status => cat
                            .statuses
                            .iter()
                            .find(|(id, name, _)| id == v || name.eq_ignore_ascii_case(v))
                            .map(|(id, _, _)| id.clone())
                            .ok_or_else(|| unknown_value(v, &f))?,
                        SetField::Category => match v.to_ascii_lowercase().as_str() {
                            "2" | "new" | "to do" => "2".into(),
                            "4" | "indeterminate" | "in progress" => "4".into(),
                            "3" | "done" | "complete" => "3".into(),
                            _ => return Err(unknown_value(v, "statusCategory")),
                        },
                        SetField::IssueType => {
                            let found: Vec<String> = cat
                                .issue_types
                                .iter()
                                .filter(|(id, name)| id == v || name.eq_ignore_ascii_case(v))
                                .map(|(id, _)| id.clone())
                                .collect();
                            if found.is_empty() {
                                return Err(unknown_value(v, &f));
                            }
                            ids.extend(found);
                            continue;
                        }
                        SetField::Priority => cat
                            .priorities
                            .iter()
                            .find(|(id, name, _)| id == v || name.eq_ignore_ascii_case(v))
                            .map(|(id, _, _)| id.clone())
                            .ok_or_else(|| unknown_value(v, &f))?,
                        SetField::Key | SetField::Parent | SetField::EpicLink => {
                            resolve_issue(cat, v, &f)?
                        }
                        SetField::Labels => v.to_string(),
                        SetField::Resolution => match v.to_ascii_lowercase().as_str() {
                            "unresolved" => String::new(),
                            "done" | "10000" => "done".into(),
                            _ => return Err(unknown_value(v, &f)),
                        },
                        SetField::Assignee | SetField::Reporter | SetField::Creator => {
                            String::new()
                        }
                    }
                }
            };
            ids.push(id);
        }
        return Ok(Pred::Set(sf, ids, negate));
    }
    let text_field = match f.as_str() {
        "text" => Some(TextField::Text),
        "summary" => Some(TextField::Summary),
        "description" => Some(TextField::Description),
        "comment" => Some(TextField::Comment),
        _ => None,
    };
    if let Some(tf) = text_field {
        if op != "~" && op != "!~" {
            return Err(op_unsupported(op, field));
        }
        let v = plain_value(value, &f)?;
        if v.trim().is_empty() {
            return Err(JqlError(format!(
                "The field '{f}' does not support searching for an empty string."
            )));
        }
        return Ok(Pred::Text(tf, v.to_string(), op == "!~"));
    }
    match f.as_str() {
        "created" | "createddate" | "updated" | "updateddate" => {
            let created = f.starts_with("created");
            if op == "is" || op == "is not" {
                return Ok(Pred::DateEmpty(op == "is"));
            }
            let sop: &'static str = match op {
                "=" => "=",
                "!=" => "!=",
                "<" => "<",
                "<=" => "<=",
                ">" => ">",
                ">=" => ">=",
                "in" | "not in" => {
                    let mut acc: Option<Pred> = None;
                    for o in operand_values(value) {
                        let at = parse_date(cat, o, &f)?;
                        let p = Pred::Date(created, "=", at);
                        acc = Some(match acc {
                            None => p,
                            Some(a) => Pred::Or(Box::new(a), Box::new(p)),
                        });
                    }
                    let p = acc.unwrap_or(Pred::DateEmpty(true));
                    return Ok(if op == "not in" {
                        Pred::Not(Box::new(p))
                    } else {
                        p
                    });
                }
                _ => return Err(op_unsupported(op, field)),
            };
            Ok(Pred::Date(created, sop, parse_date(cat, value, &f)?))
        }
        _ => Err(JqlError(format!(
            "Field '{field}' does not exist or you do not have permission to view it."
        ))),
    }
}

fn compile_expr(cat: &Catalog, e: &Expr) -> Result<Pred, JqlError> {
    Ok(match e {
        Expr::And(a, b) => Pred::And(
            Box::new(compile_expr(cat, a)?),
            Box::new(compile_expr(cat, b)?),
        ),
        Expr::Or(a, b) => Pred::Or(
            Box::new(compile_expr(cat, a)?),
            Box::new(compile_expr(cat, b)?),
        ),
        Expr::Not(a) => Pred::Not(Box::new(compile_expr(cat, a)?)),
        Expr::Clause { field, op, value } => compile_clause(cat, field, op, value)?,
    })
}

/// Parses and resolves a query against a catalog.
pub fn compile(jql: &str, cat: &Catalog) -> Result<Compiled, JqlError> {
    let q = parse(jql)?;
    let pred = q
        .filter
        .as_ref()
        .map(|e| compile_expr(cat, e))
        .transpose()?;
    if q.order.len() > 7 {
        return Err(JqlError(
            "The ORDER BY clause may contain at most 7 fields.".into(),
        ));
    }
    let mut order = vec![];
    for (f, desc) in &q.order {
        let of = match f.to_ascii_lowercase().as_str() {
            "key" | "issuekey" => OrderField::Key,
            "id" => OrderField::Id,
            "created" | "createddate" => OrderField::Created,
            "updated" | "updateddate" => OrderField::Updated,
            "priority" => OrderField::Priority,
            "status" => OrderField::Status,
            "summary" => OrderField::Summary,
            _ => {
                return Err(JqlError(format!(
                    "Field '{f}' does not exist or you do not have permission to view it."
                )))
            }
        };
        order.push((of, *desc));
    }
    Ok(Compiled {
        pred,
        order,
        rank: cat
            .priorities
            .iter()
            .map(|(id, _, r)| (id.clone(), *r))
            .collect(),
        status_names: cat
            .statuses
            .iter()
            .map(|(id, n, _)| (id.clone(), n.clone()))
            .collect(),
    })
}

// ---------------------------------------------------------------- evaluation

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn term_matches(term: &str, ws: &[String]) -> bool {
    if let Some(prefix) = term.strip_suffix('*') {
        return ws.iter().any(|w| w.starts_with(prefix));
    }
    ws.iter().any(|w| {
        w == term
            || w.strip_prefix(term)
                .is_some_and(|rest| matches!(rest, "s" | "es" | "ed" | "ing"))
            || term
                .strip_prefix(w.as_str())
                .is_some_and(|rest| matches!(rest, "s" | "es" | "ed" | "ing"))
    })
}

/// Jira text search: case-insensitive, every term must match (simple stemming, `*`
/// suffix wildcard); a value wrapped in inner quotes is an exact phrase.
pub fn text_matches(haystack: &str, query: &str) -> bool {
    let q = query.trim();
    if q.len() >= 2 && q.starts_with('"') && q.ends_with('"') {
        let phrase = words(&q[1..q.len() - 1]);
        let hw = words(haystack);
        if phrase.is_empty() {
            return false;
        }
        return hw.windows(phrase.len()).any(|win| win == phrase.as_slice());
    }
    let hw = words(haystack);
    let terms: Vec<String> = q
        .split_whitespace()
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric() && c != '*')
                .to_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect();
    !terms.is_empty() && terms.iter().all(|t| term_matches(t, &hw))
}

fn eval(p: &Pred, d: &Doc) -> bool {
    match p {
        Pred::And(a, b) => eval(a, d) && eval(b, d),
        Pred::Or(a, b) => eval(a, d) || eval(b, d),
        Pred::Not(a) => !eval(a, d),
        Pred::Set(f, ids, negate) => {
            let single = |v: Option<&String>| -> bool {
                let val = v.map(String::as_str).unwrap_or("");
                let hit = ids.iter().any(|i| i == val);
                if *negate {
                    // `!=` / NOT IN never match an empty field unless EMPTY is compared.
                    if val.is_empty() {
                        return false;
                    }
                    !hit
                } else {
                    hit
                }
            };
            match f {
                SetField::Project => single(Some(&d.project_id)),
                SetField::Key => single(Some(&d.id)),
                SetField::Status => single(Some(&d.status_id)),
                SetField::Category => single(Some(&d.category.to_string())),
                SetField::IssueType => single(Some(&d.issuetype_id)),
                SetField::Priority => single(Some(&d.priority_id)),
                SetField::Assignee => single(d.assignee.as_ref()),
                SetField::Reporter => single(d.reporter.as_ref()),
                SetField::Creator => single(d.creator.as_ref()),
                SetField::Parent => single(d.parent_id.as_ref()),
                SetField::EpicLink => single(d.epic_link_id.as_ref()),
                SetField::Resolution => {
                    let v = if d.category == 3 {
                        "done".to_string()
                    } else {
                        String::new()
                    };
                    let hit = ids.contains(&v);
                    if *negate {
                        !hit
                    } else {
                        hit
                    }
                }
                SetField::Labels => {
                    if d.labels.is_empty() {
                        let hit = ids.iter().any(String::is_empty);
                        return !*negate && hit;
                    }
                    let hit = d.labels.iter().any(|l| ids.iter().any(|i| i == l));
                    hit != *negate
                }
            }
        }
        Pred::Text(f, q, negate) => {
            let hay = match f {
                TextField::Summary => d.summary.clone(),
                TextField::Description => d.description.clone(),
                TextField::Comment => d.comments.clone(),
                TextField::Text => format!("{} {} {}", d.summary, d.description, d.comments),
            };
            text_matches(&hay, q) != *negate
        }
        Pred::Date(created, op, at) => {
            let v = if *created { d.created } else { d.updated };
            match *op {
                "=" => v == *at,
                "!=" => v != *at,
                "<" => v < *at,
                "<=" => v <= *at,
                ">" => v > *at,
                _ => v >= *at,
            }
        }
        Pred::DateEmpty(is_empty) => !*is_empty,
        Pred::Remote(gids) => d.remote_global_ids.iter().any(|g| gids.contains(g)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn quoted(jql: &str) -> Result<String, JqlError> {
        match parse(jql)?.filter {
            Some(Expr::Clause {
                value: Operand::Quoted(s),
                ..
            }) => Ok(s),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn string_escapes_decode_as_jira_does() {
        assert_eq!(quoted(r#"summary = "a\nb\tc\rd""#).unwrap(), "a\nb\tc\rd");
        assert_eq!(
            quoted(r#"summary = "q\"s\'b\\ x\ y""#).unwrap(),
            "q\"s'b\\ x y"
        );
        assert_eq!(
            quoted(r#"summary = "\u0000\u001b\u00e9""#).unwrap(),
            "\u{0}\u{1b}\u{e9}"
        );
        assert_eq!(quoted(r#"summary = "\ud83d\ude00""#).unwrap(), "\u{1f600}");
        let e = quoted(r#"summary = "a\qb""#).unwrap_err();
        assert!(
            e.0.contains(r"'\q' is an illegal JQL escape sequence"),
            "{e}"
        );
        assert!(quoted(r#"summary = "\u12""#).is_err());
    }

    fn cat(user: &str, tz: Tz) -> Catalog {
        Catalog {
            current_user: user.into(),
            tz,
            now: Utc.with_ymd_and_hms(2026, 1, 2, 12, 0, 0).unwrap(),
            data_center: false,
            projects: vec![
                ("10000".into(), "WEB".into()),
                ("10001".into(), "OPS".into()),
            ],
            statuses: vec![
                ("10000".into(), "To Do".into(), 2),
                ("3".into(), "In Progress".into(), 4),
                ("10002".into(), "Done".into(), 3),
            ],
            issue_types: vec![
                ("10001".into(), "Story".into()),
                ("10003".into(), "Bug".into()),
            ],
            priorities: vec![
                ("1".into(), "Highest".into(), 1),
                ("3".into(), "Medium".into(), 3),
            ],
            users: vec![
                ("acc-a".into(), "alice".into(), "alice@example.com".into()),
                ("acc-b".into(), "bob".into(), "bob@example.com".into()),
            ],
            issues: vec![
                ("1".into(), "WEB-1".into()),
                ("2".into(), "WEB-2".into()),
                ("3".into(), "OPS-1".into()),
            ],
        }
    }

    fn docs() -> Vec<Doc> {
        let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 1, 1, h, m, 0).unwrap();
        vec![
            Doc {
                id: "1".into(),
                key: "WEB-1".into(),
                project_id: "10000".into(),
                status_id: "10000".into(),
                category: 2,
                issuetype_id: "10001".into(),
                priority_id: "3".into(),
                assignee: Some("acc-a".into()),
                reporter: Some("acc-b".into()),
                summary: "Checkout flow broken".into(),
                description: "The payment page fails".into(),
                labels: vec!["customer".into()],
                created: t(8, 0),
                updated: t(9, 30),
                remote_global_ids: vec!["system=x&id=1".into()],
                ..Doc::default()
            },
            Doc {
                id: "2".into(),
                key: "WEB-2".into(),
                project_id: "10000".into(),
                status_id: "3".into(),
                category: 4,
                issuetype_id: "10003".into(),
                priority_id: "1".into(),
                assignee: None,
                reporter: Some("acc-a".into()),
                summary: "Login fails on mobile".into(),
                parent_id: Some("1".into()),
                created: t(9, 0),
                updated: t(10, 30),
                ..Doc::default()
            },
            Doc {
                id: "3".into(),
                key: "OPS-1".into(),
                project_id: "10001".into(),
                status_id: "10002".into(),
                category: 3,
                issuetype_id: "10001".into(),
                priority_id: "3".into(),
                assignee: Some("acc-b".into()),
                summary: "Backup the database".into(),
                comments: "checkout mentioned here".into(),
                created: t(10, 0),
                updated: t(23, 0),
                ..Doc::default()
            },
        ]
    }

    fn keys(jql: &str, c: &Catalog) -> Vec<String> {
        let q = compile(jql, c).unwrap();
        let mut m: Vec<Doc> = docs().into_iter().filter(|d| q.matches(d)).collect();
        q.sort(&mut m);
        m.into_iter().map(|d| d.key).collect()
    }

    fn utc() -> Catalog {
        cat("acc-a", chrono_tz::UTC)
    }

    fn err(jql: &str) -> String {
        compile(jql, &utc()).unwrap_err().0
    }

    #[test]
    fn project_and_in() {
        assert_eq!(
            keys("project = WEB ORDER BY key ASC", &utc()),
            ["WEB-1", "WEB-2"]
        );
        assert_eq!(
            keys("project in (OPS, 10000) ORDER BY key ASC", &utc()),
            ["OPS-1", "WEB-1", "WEB-2"]
        );
        assert_eq!(keys("project != WEB", &utc()), ["OPS-1"]);
        assert!(err("project = NOPE")
            .contains("The value 'NOPE' does not exist for the field 'project'"));
    }

    #[test]
    fn key_issuekey() {
        assert_eq!(keys("key = WEB-2", &utc()), ["WEB-2"]);
        assert_eq!(
            keys("issuekey in (web-1, OPS-1) ORDER BY key DESC", &utc()),
            ["WEB-1", "OPS-1"]
        );
        assert!(keys("key = WEB-99", &utc()).is_empty());
        assert!(err("key = notakey").contains("is invalid"));
    }

    #[test]
    fn status_and_category() {
        assert_eq!(keys("status = \"In Progress\"", &utc()), ["WEB-2"]);
        assert_eq!(
            keys("statusCategory != Done ORDER BY key", &utc()),
            ["WEB-1", "WEB-2"]
        );
        assert_eq!(keys("statusCategory = \"To Do\"", &utc()), ["WEB-1"]);
        assert!(err("status = Bogus").contains("does not exist for the field 'status'"));
    }

    #[test]
    fn users_current_user_and_empty() {
        assert_eq!(keys("assignee = currentUser()", &utc()), ["WEB-1"]);
        assert_eq!(
            keys("assignee = currentUser()", &cat("acc-b", chrono_tz::UTC)),
            ["OPS-1"]
        );
        assert_eq!(keys("assignee is EMPTY", &utc()), ["WEB-2"]);
        assert_eq!(keys("assignee = EMPTY", &utc()), ["WEB-2"]);
        assert_eq!(
            keys("assignee is not empty ORDER BY key", &utc()),
            ["OPS-1", "WEB-1"]
        );
        assert_eq!(keys("reporter = \"bob@example.com\"", &utc()), ["WEB-1"]);
        assert_eq!(
            keys("assignee in (acc-b, currentUser()) ORDER BY key", &utc()),
            ["OPS-1", "WEB-1"]
        );
        assert!(err("assignee = nobody").contains("does not exist for the field 'assignee'"));
    }

    #[test]
    fn text_search() {
        assert_eq!(keys("summary ~ checkout", &utc()), ["WEB-1"]);
        assert_eq!(
            keys("text ~ checkout ORDER BY key", &utc()),
            ["OPS-1", "WEB-1"]
        );
        assert_eq!(keys("summary ~ \"log*\"", &utc()), ["WEB-2"]);
        assert_eq!(keys("summary ~ \"fail\"", &utc()), ["WEB-2"]);
        assert_eq!(keys("summary ~ \"\\\"flow broken\\\"\"", &utc()), ["WEB-1"]);
        assert!(keys("summary ~ \"\\\"broken flow\\\"\"", &utc()).is_empty());
        assert_eq!(
            keys("summary !~ checkout ORDER BY key", &utc()),
            ["OPS-1", "WEB-2"]
        );
        assert!(err("summary = x").contains("operator '=' is not supported"));
    }

    #[test]
    fn labels_issuetype_parent_priority() {
        assert_eq!(keys("labels = customer", &utc()), ["WEB-1"]);
        assert_eq!(
            keys("labels is EMPTY ORDER BY key", &utc()),
            ["OPS-1", "WEB-2"]
        );
        assert_eq!(keys("issuetype = Bug", &utc()), ["WEB-2"]);
        assert_eq!(
            keys("type in (Story) ORDER BY key", &utc()),
            ["OPS-1", "WEB-1"]
        );
        assert_eq!(keys("parent = WEB-1", &utc()), ["WEB-2"]);
        assert_eq!(keys("priority = Highest", &utc()), ["WEB-2"]);
    }

    #[test]
    fn boolean_logic_and_parentheses() {
        assert_eq!(
            keys(
                "project = WEB AND (status = \"To Do\" OR assignee is EMPTY) ORDER BY key",
                &utc()
            ),
            ["WEB-1", "WEB-2"]
        );
        assert_eq!(keys("NOT project = WEB", &utc()), ["OPS-1"]);
        assert_eq!(
            keys("project = WEB and not status = \"To Do\"", &utc()),
            ["WEB-2"]
        );
        assert_eq!(
            keys("project = OPS OR key = WEB-2 ORDER BY key", &utc()),
            ["OPS-1", "WEB-2"]
        );
    }

    #[test]
    fn order_by() {
        assert_eq!(
            keys("project in (WEB, OPS) ORDER BY created DESC", &utc()),
            ["OPS-1", "WEB-2", "WEB-1"]
        );
        assert_eq!(
            keys("project in (WEB, OPS) ORDER BY updated ASC", &utc()),
            ["WEB-1", "WEB-2", "OPS-1"]
        );
        assert_eq!(
            keys(
                "project in (WEB, OPS) ORDER BY priority DESC, key ASC",
                &utc()
            ),
            ["WEB-2", "OPS-1", "WEB-1"]
        );
        assert_eq!(
            keys("project in (WEB, OPS) ORDER BY key", &utc()),
            ["OPS-1", "WEB-1", "WEB-2"]
        );
        assert!(err("project = WEB ORDER BY sprint").contains("does not exist"));
    }

    #[test]
    fn dates_absolute_and_relative() {
        assert_eq!(
            keys("created >= \"2026-01-01 09:00\" ORDER BY key", &utc()),
            ["OPS-1", "WEB-2"]
        );
        assert_eq!(keys("created < \"2026/01/01 09:00\"", &utc()), ["WEB-1"]);
        assert_eq!(keys("updated > 2026-01-01 ORDER BY key", &utc()).len(), 3);
        // now = 2026-01-02 12:00 UTC; OPS-1 updated 13 h before.
        assert_eq!(keys("updated >= -14h", &utc()), ["OPS-1"]);
        assert_eq!(keys("updated >= \"-1d\" ORDER BY key", &utc()), ["OPS-1"]);
        assert_eq!(keys("updated >= -2d ORDER BY key", &utc()).len(), 3);
        assert_eq!(
            keys("updated > startOfDay(-1d) ORDER BY key", &utc()).len(),
            3
        );
        assert!(err("created > \"yesterday\"")
            .contains("Date value 'yesterday' for field 'created' is invalid"));
    }

    #[test]
    fn dates_are_read_in_the_searching_users_zone() {
        let jql = "updated >= \"2026-01-01 10:00\" ORDER BY key";
        // UTC user: 10:00 UTC -> WEB-2 (10:30) and OPS-1 (23:00).
        assert_eq!(keys(jql, &utc()), ["OPS-1", "WEB-2"]);
        // Auckland (UTC+13 in January): 10:00 local = 21:00 UTC the day before -> all three.
        assert_eq!(
            keys(jql, &cat("acc-a", chrono_tz::Pacific::Auckland)),
            ["OPS-1", "WEB-1", "WEB-2"]
        );
        // Honolulu (UTC-10): 10:00 local = 20:00 UTC -> only OPS-1.
        assert_eq!(
            keys(jql, &cat("acc-a", chrono_tz::Pacific::Honolulu)),
            ["OPS-1"]
        );
    }

    #[test]
    fn huge_periods_are_refused_not_panicking() {
        assert!(err("created > -99999999999999999w").contains("is invalid"));
        assert!(err("created > \"-9999999999999w\"").contains("is invalid"));
        assert!(err("updated > startOfDay(\"-999999999999d\")").contains("is invalid"));
    }

    #[test]
    fn remote_link_function() {
        assert_eq!(
            keys(
                "issue in issuesWithRemoteLinksByGlobalId(\"system=x&id=1\")",
                &utc()
            ),
            ["WEB-1"]
        );
    }

    #[test]
    fn malformed_and_unsupported() {
        assert!(err("project = WEB AND").contains("Expecting a field name"));
        assert!(err("project WEB").contains("Expecting operator"));
        assert!(err("project = WEB foo").contains("Expecting either 'OR' or 'AND' but got 'foo'"));
        assert!(err("summary ~ \"open").contains("has not been completed"));
        assert!(err("sprint = 5").contains("Field 'sprint' does not exist"));
        assert!(err("project = WEB ORDER key").contains("Expecting 'BY'"));
        assert!(err("(project = WEB").contains("Expecting ')'"));
        assert!(err("assignee = someFunc()").contains("Unable to find JQL function"));
        assert!(!compile("ORDER BY key DESC", &utc()).unwrap().is_bounded());
        assert!(compile("project = WEB", &utc()).unwrap().is_bounded());
    }
}
