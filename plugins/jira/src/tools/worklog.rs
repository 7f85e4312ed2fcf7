//! Logging time on an issue.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use toolhost_sdk::http::Request;
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api};
use crate::model::Worklog;
use crate::tools::{to_adf, when};

/// What to do with the issue's remaining estimate.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum AdjustEstimate {
    /// Reduce it by the time spent.
    #[default]
    Auto,
    /// Leave it unchanged.
    Leave,
    /// Set it to `new_estimate`.
    New,
    /// Reduce it by `reduce_by`.
    Manual,
}

impl AdjustEstimate {
    fn as_str(self) -> &'static str {
        match self {
            AdjustEstimate::Auto => "auto",
            AdjustEstimate::Leave => "leave",
            AdjustEstimate::New => "new",
            AdjustEstimate::Manual => "manual",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddWorklog {
    /// The issue key, e.g. `PROJ-123` (or its numeric id).
    pub issue_key: String,
    /// Time spent as a Jira duration: numbers with `w` (weeks), `d` (days), `h` (hours) or `m` (minutes), e.g. `1h 30m`, `2d`, `45m`.
    pub time_spent: String,
    /// When the work started: `YYYY-MM-DDTHH:MM` with an optional `:SS` and a zone (`Z`, `+02:00`); without a zone it is UTC, a bare date means midday UTC; default now.
    #[serde(default)]
    pub started: Option<String>,
    /// A comment describing the work, in Markdown; mention people as `[~accountid:ID]`.
    #[serde(default)]
    pub comment: Option<String>,
    /// How to change the issue's remaining estimate; default `auto` (reduce it by time_spent).
    #[serde(default)]
    pub adjust_estimate: AdjustEstimate,
    /// The new remaining estimate, as a duration like `2d`; with `adjust_estimate: new`.
    #[serde(default)]
    pub new_estimate: Option<String>,
    /// How much to reduce the remaining estimate by, as a duration like `3h`; with `adjust_estimate: manual`.
    #[serde(default)]
    pub reduce_by: Option<String>,
}

/// A logged piece of work.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Logged {
    pub key: String,
    pub worklog_id: String,
    /// As Jira recorded it, e.g. `1h 30m`.
    pub time_spent: Option<String>,
    pub time_spent_seconds: Option<u64>,
    pub started: Option<String>,
    /// The issue's page in Jira.
    pub url: String,
}

/// Log time spent on a Jira issue (a worklog), with an optional Markdown
/// comment and start time.
///
/// `time_spent` is a Jira duration such as `1h 30m`, `2d` or `45m` (a day and
/// a week are the site's working day and week, 8h and 5d by default). By
/// default the issue's remaining estimate is reduced by the time spent.
#[tool(open_world, title = "Log work on a Jira issue")]
pub fn jira_add_worklog(cx: &Context, args: AddWorklog) -> Result<Reply<Logged>> {
    let api = Api::from_context(cx)?;
    let body = worklog_body(&args, unix_now())?;
    let worklog: Worklog = api::send(worklog_request(&api, &args, &body)?)?;
    Ok(format_logged(&api, args.issue_key.trim(), worklog))
}

pub fn worklog_request(api: &Api, args: &AddWorklog, body: &Value) -> Result<Request> {
    let key = api::issue_segment(&args.issue_key)?;
    let (new_estimate, reduce_by) = match args.adjust_estimate {
        AdjustEstimate::New => {
            let estimate = api::non_empty(&args.new_estimate).ok_or_else(|| {
                ToolError::InvalidArguments(
                    "adjust_estimate new needs new_estimate, e.g. \"2d\"".into(),
                )
            })?;
            (Some(duration("new_estimate", estimate)?), None)
        }
        AdjustEstimate::Manual => {
            let by = api::non_empty(&args.reduce_by).ok_or_else(|| {
                ToolError::InvalidArguments(
                    "adjust_estimate manual needs reduce_by, e.g. \"3h\"".into(),
                )
            })?;
            (None, Some(duration("reduce_by", by)?))
        }
        AdjustEstimate::Auto | AdjustEstimate::Leave => (None, None),
    };
    let mut request = api.post(&format!("/issue/{key}/worklog"), body)?;
    if args.adjust_estimate != AdjustEstimate::Auto {
        request = request.query("adjustEstimate", args.adjust_estimate.as_str());
    }
    Ok(request
        .query_opt("newEstimate", new_estimate)
        .query_opt("reduceBy", reduce_by))
}

/// The body of `POST /issue/{key}/worklog`. `now` (Unix seconds) is the
/// start time when none is given.
pub fn worklog_body(args: &AddWorklog, now: u64) -> Result<Value> {
    let mut body = Map::new();
    body.insert(
        "timeSpent".into(),
        json!(duration("time_spent", &args.time_spent)?),
    );
    let started = match api::non_empty(&args.started) {
        Some(started) => start_time(started)?,
        None => format_utc(now),
    };
    body.insert("started".into(), json!(started));
    if let Some(comment) = api::non_empty(&args.comment) {
        body.insert("comment".into(), to_adf(comment));
    }
    Ok(Value::Object(body))
}

pub fn format_logged(api: &Api, key: &str, worklog: Worklog) -> Reply<Logged> {
    let url = api.browse_url(key);
    let mut text = format!(
        "Logged {} on {key}",
        worklog.time_spent.as_deref().unwrap_or("time")
    );
    if let Some(started) = &worklog.started {
        text.push_str(&format!(", started {}", when(started)));
    }
    text.push_str(&format!(" (worklog {}): {url}", worklog.id));
    Reply::new(
        text,
        Logged {
            key: key.to_string(),
            worklog_id: worklog.id,
            time_spent: worklog.time_spent,
            time_spent_seconds: worklog.time_spent_seconds,
            started: worklog.started,
            url,
        },
    )
}

/// A Jira duration, normalised to `1h 30m` form: Jira parses it itself
/// (only it knows the site's working day and week), but a malformed one is
/// better refused here with an example than by a terse 400.
pub fn duration(what: &str, value: &str) -> Result<String> {
    let invalid = || {
        ToolError::InvalidArguments(format!(
            "{what} {value:?} is not a Jira duration: use numbers with w, d, h or m, like \"1h 30m\", \"2d\" or \"45m\""
        ))
    };
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let mut parts = Vec::new();
    let mut number = String::new();
    let mut any_time = false;
    for c in compact.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'w' | 'd' | 'h' | 'm' | 'W' | 'D' | 'H' | 'M' => {
                let amount: f64 = number.parse().map_err(|_| invalid())?;
                any_time |= amount > 0.0;
                parts.push(format!("{number}{}", c.to_ascii_lowercase()));
                number.clear();
            }
            _ => return Err(invalid()),
        }
    }
    if !number.is_empty() || parts.is_empty() {
        return Err(invalid());
    }
    if !any_time {
        return Err(ToolError::InvalidArguments(format!(
            "{what} {value:?} is zero; log at least one minute"
        )));
    }
    Ok(parts.join(" "))
}

/// A start time in the one form Jira accepts, `2021-01-17T12:34:00.000+0000`.
pub fn start_time(value: &str) -> Result<String> {
    let invalid = || {
        ToolError::InvalidArguments(format!(
            "started {value:?} is not a time: use YYYY-MM-DDTHH:MM, with optional :SS and zone, \
             e.g. 2024-03-05T14:30 or 2024-03-05T14:30:00+01:00"
        ))
    };
    let digits = |s: &str, range: std::ops::RangeInclusive<u32>| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().filter(|n| range.contains(n))
    };
    let date = value.get(..10).ok_or_else(invalid)?;
    let (year, month, day) = (
        digits(date.get(..4).ok_or_else(invalid)?, 1..=9999),
        digits(date.get(5..7).ok_or_else(invalid)?, 1..=12),
        digits(date.get(8..10).ok_or_else(invalid)?, 1..=31),
    );
    let (Some(year), Some(month), Some(day)) = (year, month, day) else {
        return Err(invalid());
    };
    if date.as_bytes()[4] != b'-' || date.as_bytes()[7] != b'-' {
        return Err(invalid());
    }
    let rest = &value[10..];
    if rest.is_empty() {
        // Midday UTC is the same calendar day in nearly every zone, so a bare
        // date logs work on that date wherever the reader is.
        return Ok(format!("{year:04}-{month:02}-{day:02}T12:00:00.000+0000"));
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(invalid)?;
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut clock_parts = clock.split(':');
    let hour = clock_parts.next().and_then(|h| digits(h, 0..=23));
    let minute = clock_parts.next().and_then(|m| digits(m, 0..=59));
    let second = match clock_parts.next() {
        Some(s) => digits(s, 0..=60),
        None => Some(0),
    };
    let (Some(hour), Some(minute), Some(second)) = (hour, minute, second) else {
        return Err(invalid());
    };
    if clock_parts.next().is_some() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
    let zone = match zone {
        "" | "Z" | "z" => "+0000".to_string(),
        z => {
            let (sign, offset) = z.split_at(1);
            let offset = offset.replace(':', "");
            let valid = offset.len() == 2 || offset.len() == 4;
            let hours = offset.get(..2).and_then(|h| digits(h, 0..=14));
            let minutes = match offset.get(2..) {
                Some("") | None => Some(0),
                Some(m) => digits(m, 0..=59),
            };
            match (valid, hours, minutes) {
                (true, Some(h), Some(m)) => format!("{sign}{h:02}{m:02}"),
                _ => return Err(invalid()),
            }
        }
    };
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis}{zone}"
    ))
}

/// Unix seconds as Jira's `YYYY-MM-DDTHH:MM:SS.000+0000`, without a date
/// crate.
pub fn format_utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Days since 1970-01-01 to a Gregorian date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000+0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> AddWorklog {
        AddWorklog {
            issue_key: "ED-1".into(),
            time_spent: "3h 20m".into(),
            started: None,
            comment: None,
            adjust_estimate: AdjustEstimate::Auto,
            new_estimate: None,
            reduce_by: None,
        }
    }

    #[test]
    fn bodies_match_the_worklog_schema() {
        let full = AddWorklog {
            started: Some("2021-01-17T12:34".into()),
            comment: Some("I did some work here.".into()),
            ..args()
        };
        assert_eq!(
            worklog_body(&full, 0).expect("body"),
            json!({
                "timeSpent": "3h 20m",
                "started": "2021-01-17T12:34:00.000+0000",
                "comment": {"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "I did some work here."}]}
                ]}
            })
        );
        assert_eq!(
            worklog_body(&args(), 1_610_886_840).expect("body"),
            json!({"timeSpent": "3h 20m", "started": "2021-01-17T12:34:00.000+0000"})
        );
    }

    #[test]
    fn durations_are_checked() {
        assert_eq!(duration("t", "1h30m").expect("ok"), "1h 30m");
        assert_eq!(duration("t", " 2D ").expect("ok"), "2d");
        assert_eq!(duration("t", "1.5h").expect("ok"), "1.5h");
        assert_eq!(duration("t", "1w 2d 3h 4m").expect("ok"), "1w 2d 3h 4m");
        for bad in ["", "90", "1 hour", "h", "1x", "1..5h"] {
            assert!(duration("t", bad).is_err(), "{bad}");
        }
        assert!(
            matches!(duration("t", "0m"), Err(ToolError::InvalidArguments(m)) if m.contains("zero"))
        );
    }

    #[test]
    fn start_times_take_jiras_form() {
        let check = |input: &str, expect: &str| {
            assert_eq!(start_time(input).expect(input), expect, "{input}");
        };
        check("2024-03-05", "2024-03-05T12:00:00.000+0000");
        check("2024-03-05T14:30", "2024-03-05T14:30:00.000+0000");
        check("2024-03-05 14:30:15Z", "2024-03-05T14:30:15.000+0000");
        check(
            "2024-03-05T14:30:15.5+01:00",
            "2024-03-05T14:30:15.500+0100",
        );
        check(
            "2024-03-05T14:30:15.123456-0530",
            "2024-03-05T14:30:15.123-0530",
        );
        check("2024-03-05T14:30+02", "2024-03-05T14:30:00.000+0200");
        for bad in [
            "yesterday",
            "2024-13-01",
            "2024-03-05T25:00",
            "2024/03/05",
            "2024-03-05T14",
            "2024-03-05T14:30+2",
            "2024-03-05X",
        ] {
            assert!(start_time(bad).is_err(), "{bad}");
        }
        assert_eq!(format_utc(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00.000+0000");
    }

    #[test]
    fn estimates_adjust_through_the_query() {
        let api = Api::new("https://acme.atlassian.net").expect("api");
        let body = json!({});
        let url = |a: &AddWorklog| worklog_request(&api, a, &body).map(|r| r.url());
        assert_eq!(
            url(&args()).expect("auto"),
            "https://acme.atlassian.net/rest/api/3/issue/ED-1/worklog"
        );
        let new = AddWorklog {
            adjust_estimate: AdjustEstimate::New,
            new_estimate: Some("2d".into()),
            ..args()
        };
        assert_eq!(
            url(&new).expect("new"),
            "https://acme.atlassian.net/rest/api/3/issue/ED-1/worklog?adjustEstimate=new&newEstimate=2d"
        );
        let manual = AddWorklog {
            adjust_estimate: AdjustEstimate::Manual,
            reduce_by: Some("1h 30m".into()),
            ..args()
        };
        assert_eq!(
            url(&manual).expect("manual"),
            "https://acme.atlassian.net/rest/api/3/issue/ED-1/worklog?adjustEstimate=manual&reduceBy=1h%2030m"
        );
        let missing = AddWorklog {
            adjust_estimate: AdjustEstimate::Manual,
            ..args()
        };
        assert!(url(&missing).is_err());
    }

    #[test]
    fn the_answer_reads_well() {
        let api = Api::new("https://acme.atlassian.net").expect("api");
        let worklog: Worklog = serde_json::from_str(
            r#"{"author":{"accountId":"5b10a2844c20165700ede21g","displayName":"Mia Krystof"},"comment":{"type":"doc","version":1,"content":[]},"id":"100028","issueId":"10002","self":"https://your-domain.atlassian.net/rest/api/3/issue/10010/worklog/10000","started":"2021-01-17T12:34:00.000+0000","timeSpent":"3h 20m","timeSpentSeconds":12000,"updated":"2021-01-18T23:45:00.000+0000"}"#,
        )
        .expect("fixture");
        let reply = format_logged(&api, "ED-1", worklog);
        assert_eq!(
            reply.text,
            "Logged 3h 20m on ED-1, started 2021-01-17 12:34 (worklog 100028): https://acme.atlassian.net/browse/ED-1"
        );
        assert_eq!(reply.data.time_spent_seconds, Some(12000));
        crate::tools::assert_fits::<jira_add_worklog>(&reply.data);
    }
}
