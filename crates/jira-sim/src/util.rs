//! Small helpers: Jira error bodies, time formats, query strings.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

/// `{"errorMessages":[...],"errors":{...}}` with the given status.
pub fn jerr(status: u16, messages: &[&str], errors: &[(&str, &str)]) -> Response {
    let mut e = Map::new();
    for (k, v) in errors {
        e.insert((*k).to_string(), Value::String((*v).to_string()));
    }
    let body = json!({"errorMessages": messages, "errors": e});
    (code(status), axum::Json(body)).into_response()
}

/// Same as [`jerr`] but with owned field errors.
pub fn jerr_map(status: u16, messages: Vec<String>, errors: Map<String, Value>) -> Response {
    (
        code(status),
        axum::Json(json!({"errorMessages": messages, "errors": errors})),
    )
        .into_response()
}

pub fn code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub fn ok_json(status: u16, v: Value) -> Response {
    (code(status), axum::Json(v)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn not_found_issue() -> Response {
    jerr(
        404,
        &["Issue does not exist or you do not have permission to see it."],
        &[],
    )
}

/// Jira's REST date-time format: `2026-01-17T12:34:00.000+0100`.
pub fn jtime(dt: DateTime<Utc>, tz: Tz) -> String {
    dt.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%.3f%z")
        .to_string()
}

pub fn jtime_fixed(dt: DateTime<chrono::FixedOffset>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// Parsed query string keeping repeated keys.
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        Query(
            url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a repeatable parameter, also splitting comma lists.
    pub fn list(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(kk, _)| kk == k)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub fn bool(&self, k: &str, default: bool) -> bool {
        match self.get(k) {
            Some(v) => v.eq_ignore_ascii_case("true"),
            None => default,
        }
    }

    /// Integer parameter; `Err` carries a ready 400 response.
    pub fn int(&self, k: &str, default: i64) -> Result<i64, Response> {
        match self.get(k) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<i64>().map_err(|_| {
                jerr(
                    400,
                    &[&format!("The '{k}' parameter must be a number.")],
                    &[],
                )
            }),
        }
    }
}

/// Paging parameters with Jira's checks (`startAt` >= 0, `maxResults` clamped to `max`).
pub fn paging(q: &Query, default: i64, max: i64) -> Result<(usize, usize), Response> {
    let start = q.int("startAt", 0)?;
    let mut max_results = q.int("maxResults", default)?;
    if start < 0 {
        return Err(jerr(
            400,
            &["The 'startAt' parameter must not be negative."],
            &[],
        ));
    }
    if max_results < 0 {
        return Err(jerr(
            400,
            &["The 'maxResults' parameter must not be negative."],
            &[],
        ));
    }
    if max_results > max {
        max_results = max;
    }
    Ok((start as usize, max_results as usize))
}

pub fn avatar_urls(base: &str, kind: &str, id: &str) -> Value {
    json!({
        "48x48": format!("{base}/secure/useravatar?{kind}={id}&size=large"),
        "24x24": format!("{base}/secure/useravatar?{kind}={id}&size=small"),
        "16x16": format!("{base}/secure/useravatar?{kind}={id}&size=xsmall"),
        "32x32": format!("{base}/secure/useravatar?{kind}={id}&size=medium"),
    })
}

/// Formats seconds as Jira's "1w 2d 3h 4m" (8h days, 5d weeks).
pub fn format_duration(secs: i64) -> String {
    let mut m = secs / 60;
    let w = m / (60 * 8 * 5);
    m -= w * 60 * 8 * 5;
    let d = m / (60 * 8);
    m -= d * 60 * 8;
    let h = m / 60;
    m -= h * 60;
    let mut parts = vec![];
    if w > 0 {
        parts.push(format!("{w}w"));
    }
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 || parts.is_empty() {
        parts.push(format!("{m}m"));
    }
    parts.join(" ")
}

/// Parses Jira durations like "3h 20m", "1d", "2w 1d", "90m", or a bare number of minutes.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<f64>() {
        return Some((n * 60.0) as i64);
    }
    let mut total = 0f64;
    for part in s.split_whitespace() {
        let unit = part.chars().last()?;
        let num = &part[..part.len() - unit.len_utf8()];
        let n: f64 = num.parse().ok()?;
        let mult = match unit {
            'w' => 5.0 * 8.0 * 3600.0,
            'd' => 8.0 * 3600.0,
            'h' => 3600.0,
            'm' => 60.0,
            _ => return None,
        };
        total += n * mult;
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("3h 20m"), Some(12000));
        assert_eq!(parse_duration("1d"), Some(28800));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("1é"), None);
        assert_eq!(parse_duration("é"), None);
        assert_eq!(format_duration(12000), "3h 20m");
        assert_eq!(format_duration(60), "1m");
    }
}
