//! JQL builder: quoting, text search escaping and time-zone-safe date-times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use jira_client::jql::{
    field, field_name, quote, user_zone, Clause, Direction, JqlDateTime, JqlError, Query, TextQuery,
};
use jira_client::keys::IssueKey;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn zone(name: &str) -> Tz {
    user_zone(name).unwrap()
}

#[test]
fn quote_escapes_quotes_backslashes_and_controls() {
    assert_eq!(quote("plain"), r#""plain""#);
    assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    assert_eq!(quote("line\nnext\ttab\r"), r#""line\nnext\ttab\r""#);
    assert_eq!(quote("bell\u{7}"), r#""bell\u0007""#);
    assert_eq!(quote("and"), r#""and""#);
    assert_eq!(quote("a,b;c|d*e"), r#""a,b;c|d*e""#);
}

#[test]
fn field_names_are_quoted_only_when_needed() {
    assert_eq!(field_name("status"), "status");
    assert_eq!(field_name("issue.property"), "issue.property");
    assert_eq!(field_name("cf[10010]"), "cf[10010]");
    assert_eq!(field_name("Story Points"), r#""Story Points""#);
    assert_eq!(field_name("order"), r#""order""#);
    assert_eq!(field_name("Epic-Link"), r#""Epic-Link""#);
    assert_eq!(field_name("cf[x]"), r#""cf[x]""#);
}

#[test]
fn values_cannot_break_out_of_their_literal() {
    let jql = Query::new(Clause::project_in([r#"ABC") OR project = "X"#]))
        .build()
        .unwrap();
    assert_eq!(jql, r#"project in ("ABC\") OR project = \"X")"#);
    let jql = Query::new(field("summary").eq("x\" OR 1=1 OR summary = \""))
        .build()
        .unwrap();
    assert_eq!(jql, r#"summary = "x\" OR 1=1 OR summary = \"""#);
}

#[test]
fn text_search_escapes_lucene_and_keeps_operators_literal() {
    let q = Clause::text(TextQuery::words(r#"a-b "c" AND d* (x)"#));
    assert_eq!(
        q.render().unwrap(),
        r#"text ~ "a\\-b \\\"c\\\" and d\\* \\(x\\)""#
    );
    let q = field("summary").contains(TextQuery::phrase(r#"exact "x" phrase"#));
    assert_eq!(
        q.render().unwrap(),
        r#"summary ~ "\"exact \\\"x\\\" phrase\"""#
    );
    let q = Clause::text(TextQuery::prefix("log fail"));
    assert_eq!(q.render().unwrap(), r#"text ~ "log fail*""#);
    let q = Clause::text(TextQuery::words("C:\\path/to"));
    assert_eq!(q.render().unwrap(), r#"text ~ "C\\:\\\\path\\/to""#);
    assert_eq!(
        Clause::text(TextQuery::words("   ")).render(),
        Err(JqlError::EmptyText("text".into()))
    );
}

#[test]
fn combining_parenthesises_or_inside_and_and_raw_jql() {
    let c = Clause::project_in(["ABC"])
        .and(field("status").eq("Done").or(field("status").eq("Closed")))
        .and(Clause::raw(
            "assignee = currentUser() OR reporter = currentUser()",
        ));
    assert_eq!(
        Query::new(c)
            .order_by("updated", Direction::Asc)
            .order_by("key", Direction::Desc)
            .build()
            .unwrap(),
        r#"project in ("ABC") AND (status = "Done" OR status = "Closed") AND (assignee = currentUser() OR reporter = currentUser()) ORDER BY updated ASC, key DESC"#
    );
    let c = field("labels")
        .is_empty()
        .negate()
        .or(field("labels").not_in(["x", "y"]));
    assert_eq!(
        c.render().unwrap(),
        r#"NOT (labels is EMPTY) OR labels not in ("x", "y")"#
    );
}

#[test]
fn empty_lists_and_blank_queries_are_errors() {
    let none: [&str; 0] = [];
    assert_eq!(
        Query::new(Clause::project_in(none)).build(),
        Err(JqlError::EmptyList("project".into()))
    );
    assert_eq!(
        Query::new(Clause::raw("  ")).build(),
        Err(JqlError::Unbounded)
    );
    assert!(matches!(
        user_zone("Mars/Olympus"),
        Err(JqlError::UnknownZone(_))
    ));
}

#[test]
fn key_in_is_chunked() {
    let keys: Vec<IssueKey> = (1..=250)
        .map(|n| format!("ABC-{n}").parse().unwrap())
        .collect();
    let chunks = Clause::key_in_chunks(&keys, 100);
    assert_eq!(chunks.len(), 3);
    let texts: Vec<String> = chunks.iter().map(|c| c.render().unwrap()).collect();
    assert!(texts[0].starts_with(r#"key in ("ABC-1", "ABC-2""#));
    assert!(texts[0].ends_with(r#""ABC-100")"#));
    assert!(texts[2].starts_with(r#"key in ("ABC-201""#));
    assert_eq!(texts[2].matches("ABC-").count(), 50);
}

#[test]
fn berlin_spring_forward_uses_summer_time() {
    let berlin = zone("Europe/Berlin");
    // 01:30 UTC on the day DST starts (01:00 UTC) is 03:30 CEST, not 02:30 (which does
    // not exist in Berlin that night).
    let c = Clause::updated_since(utc(2026, 3, 29, 1, 30, 0), berlin);
    assert_eq!(c.render().unwrap(), r#"updated >= "2026-03-29 03:30""#);
    // Half an hour earlier it is still winter time.
    assert_eq!(
        JqlDateTime::floor(utc(2026, 3, 29, 0, 30, 0), berlin).to_string(),
        "2026-03-29 01:30"
    );
    // An upper bound inside the skipped hour moves to its end.
    assert_eq!(
        JqlDateTime::ceil(utc(2026, 3, 29, 0, 59, 30), berlin).to_string(),
        "2026-03-29 03:00"
    );
}

#[test]
fn berlin_fall_back_never_narrows_the_window() {
    let berlin = zone("Europe/Berlin");
    // 00:30 UTC on 2026-10-25 is 02:30 CEST; 02:30 also means 01:30 UTC (CET), so a
    // lower bound steps back to the last unambiguous minute before the repeated hour.
    assert_eq!(
        JqlDateTime::floor(utc(2026, 10, 25, 0, 30, 0), berlin).to_string(),
        "2026-10-25 01:59"
    );
    // 01:30 UTC is 02:30 CET, the later reading: both readings are at or before it.
    assert_eq!(
        JqlDateTime::floor(utc(2026, 10, 25, 1, 30, 0), berlin).to_string(),
        "2026-10-25 02:30"
    );
    // Upper bound for 00:30 UTC: 02:30 read either way is not before it.
    assert_eq!(
        JqlDateTime::ceil(utc(2026, 10, 25, 0, 30, 0), berlin).to_string(),
        "2026-10-25 02:30"
    );
    // Upper bound for 01:30 UTC must not be read as 00:30 UTC: step past the repeated hour.
    assert_eq!(
        JqlDateTime::ceil(utc(2026, 10, 25, 1, 30, 0), berlin).to_string(),
        "2026-10-25 03:00"
    );
}

#[test]
fn other_zones() {
    let instant = utc(2026, 3, 29, 1, 30, 0);
    // Auckland is on daylight time (UTC+13) in March.
    assert_eq!(
        JqlDateTime::floor(instant, zone("Pacific/Auckland")).to_string(),
        "2026-03-29 14:30"
    );
    // Honolulu has no daylight saving (UTC-10): the previous day.
    assert_eq!(
        JqlDateTime::floor(instant, zone("Pacific/Honolulu")).to_string(),
        "2026-03-28 15:30"
    );
    assert_eq!(
        JqlDateTime::floor(instant, zone("UTC")).to_string(),
        "2026-03-29 01:30"
    );
    // Auckland's daylight time ends 2026-04-05 03:00 NZDT (14:00 UTC on 04-04).
    let auckland = zone("Pacific/Auckland");
    assert_eq!(
        JqlDateTime::floor(utc(2026, 4, 4, 13, 30, 0), auckland).to_string(),
        "2026-04-05 01:59"
    );
}

#[test]
fn minute_precision_rounds_outwards() {
    let t = utc(2026, 1, 15, 10, 42, 59);
    assert_eq!(
        JqlDateTime::floor(t, zone("UTC")).to_string(),
        "2026-01-15 10:42"
    );
    assert_eq!(
        JqlDateTime::ceil(t, zone("UTC")).to_string(),
        "2026-01-15 10:43"
    );
    let exact = utc(2026, 1, 15, 10, 42, 0);
    assert_eq!(
        JqlDateTime::ceil(exact, zone("UTC")).to_string(),
        "2026-01-15 10:42"
    );
    assert_eq!(
        Clause::updated_before(t, zone("Asia/Kolkata"))
            .render()
            .unwrap(),
        r#"updated < "2026-01-15 16:13""#
    );
}
