//! Start times, zones, offsets and the duration rule.
//!
//! Jira's worklog `started` is a local date-time with an offset
//! (`2026-03-29T23:30:00.000+0200`); Jira keeps the instant and shows it in each
//! viewer's zone. We send the instant in the offset the entry itself had at that
//! moment: the offset given with `started_at`, or, when the entry names an IANA zone,
//! the zone's offset **on that date** (so DST is right for the entry, not for "now").
//!
//! Durations: Jira counts whole minutes and refuses less than one. The rule is
//! "round to the nearest minute, half a minute rounds up, at least one minute": 89 s →
//! 60 s, 90 s → 120 s, 20 s → 60 s.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Longest entry accepted (24 hours).
pub const MAX_DURATION_S: i64 = 24 * 3600;

/// A start resolved to an instant and the offset to write it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// The instant.
    pub at: DateTime<Utc>,
    /// Seconds east of UTC.
    pub offset_s: i32,
}

impl Start {
    /// The instant in its own offset (what `started` is written with).
    pub fn local(&self) -> DateTime<FixedOffset> {
        let off = FixedOffset::east_opt(self.offset_s)
            .unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or(Utc.fix()));
        self.at.with_timezone(&off)
    }
}

/// Parse an IANA zone name.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("`{name}` is not an IANA time zone (e.g. Europe/Berlin)"))
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

/// Resolve a date-time given by the host: RFC 3339 with an offset, or — with a zone —
/// also a local date-time without offset (`2026-03-29T02:30:00`), read in that zone.
/// With a zone the written offset is the zone's offset at that instant.
pub fn resolve(s: &str, zone: Option<&Tz>) -> Result<Start, String> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        let at = dt.with_timezone(&Utc);
        let offset_s = match zone {
            Some(z) => z
                .offset_from_utc_datetime(&at.naive_utc())
                .fix()
                .local_minus_utc(),
            None => dt.offset().local_minus_utc(),
        };
        return Ok(Start { at, offset_s });
    }
    let Some(z) = zone else {
        return Err(
            "must be RFC 3339 with an offset (e.g. 2026-03-01T23:30:00+13:00), or give time_zone"
                .into(),
        );
    };
    let Some(naive) = parse_naive(s) else {
        return Err("must be RFC 3339 or a local date-time like 2026-03-29T09:00:00".into());
    };
    let local = match z.from_local_datetime(&naive) {
        LocalResult::Single(t) => t,
        // The hour repeated when clocks go back: the first occurrence.
        LocalResult::Ambiguous(first, _) => first,
        LocalResult::None => {
            return Err(format!(
                "{s} does not exist in {} (the clocks skip it at the DST change)",
                z.name()
            ))
        }
    };
    Ok(Start {
        at: local.with_timezone(&Utc),
        offset_s: local.offset().fix().local_minus_utc(),
    })
}

/// Seconds as Jira will count them (see the module docs).
pub fn jira_seconds(duration_s: i64) -> i64 {
    (((duration_s + 30) / 60) * 60).max(60)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jira_client::format_jira_datetime;

    fn fmt(s: Start) -> String {
        format_jira_datetime(&s.local())
    }

    #[test]
    fn offsets_given_with_the_start_are_kept() {
        assert_eq!(
            fmt(resolve("2026-03-01T23:30:00+13:00", None).unwrap()),
            "2026-03-01T23:30:00.000+1300"
        );
        assert_eq!(
            fmt(resolve("2026-03-01T23:30:00-10:00", None).unwrap()),
            "2026-03-01T23:30:00.000-1000"
        );
        assert!(resolve("2026-03-01T23:30:00", None).is_err());
    }

    #[test]
    fn a_zone_gives_the_offset_of_the_entry_date_not_of_today() {
        let berlin = parse_zone("Europe/Berlin").unwrap();
        // The night of the spring change (29 March 2026): before and after.
        assert_eq!(
            fmt(resolve("2026-03-28T23:30:00", Some(&berlin)).unwrap()),
            "2026-03-28T23:30:00.000+0100"
        );
        assert_eq!(
            fmt(resolve("2026-03-29T23:30:00", Some(&berlin)).unwrap()),
            "2026-03-29T23:30:00.000+0200"
        );
        // 02:30 does not exist that night.
        assert!(resolve("2026-03-29T02:30:00", Some(&berlin)).is_err());
        // An RFC 3339 instant is re-expressed in the zone's offset of that date.
        assert_eq!(
            fmt(resolve(
                "2026-11-01T05:30:00Z",
                Some(&parse_zone("America/New_York").unwrap())
            )
            .unwrap()),
            "2026-11-01T01:30:00.000-0400"
        );
        // The repeated hour when clocks go back: the first one.
        assert_eq!(
            fmt(resolve(
                "2026-11-01T01:30:00",
                Some(&parse_zone("America/New_York").unwrap())
            )
            .unwrap()),
            "2026-11-01T01:30:00.000-0400"
        );
        assert!(parse_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn durations_round_to_the_nearest_minute_with_a_one_minute_floor() {
        assert_eq!(jira_seconds(1), 60);
        assert_eq!(jira_seconds(60), 60);
        assert_eq!(jira_seconds(89), 60);
        assert_eq!(jira_seconds(90), 120);
        assert_eq!(jira_seconds(3599), 3600);
    }
}
