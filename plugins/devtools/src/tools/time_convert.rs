//! `time_convert`: reads a point in time (now, Unix time, RFC 3339/2822 or a
//! local wall-clock time in a zone) and shows it in IANA time zones.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::tool::{Output, ToolError, ToolSpec, invalid, parse_args};

const MAX_ZONES: usize = 50;

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "time_convert",
        title: "Convert times between zones",
        description: "Convert a point in time into one or more IANA time zones (e.g. \
            `America/New_York`, `Asia/Kolkata`) with offsets, abbreviations and Unix time, \
            applying daylight-saving rules. `time` may be `now`, Unix seconds (or milliseconds \
            with unit), RFC 3339 (`2024-05-01T12:00:00Z`), RFC 2822, or a wall-clock time without \
            offset (`2024-05-01 09:30`) that is read in `from_zone`.",
        input_schema: json!({
            "type": "object",
            "properties": {
                "time": {"type": "string", "description": "`now`, a Unix timestamp (`1714564800`, `1714564800.25`), an RFC 3339 or RFC 2822 date-time, or a date/time without offset such as `2024-05-01`, `2024-05-01 09:30` or `2024-05-01T09:30:00`."},
                "from_zone": {"type": "string", "default": "UTC", "description": "IANA zone in which a time without an offset is read. Ignored for `now`, Unix time and times with an offset."},
                "to_zones": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_ZONES, "description": "IANA zones to show the time in. Defaults to `from_zone` (if given) and UTC."},
                "unit": {"type": "string", "enum": ["seconds", "milliseconds"], "default": "seconds", "description": "Unit of a numeric Unix timestamp in `time`."}
            },
            "required": ["time"],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "utc": {"type": "string", "description": "The instant in RFC 3339, UTC."},
                "unix_seconds": {"type": "integer"},
                "unix_millis": {"type": "integer"},
                "note": {"type": "string", "description": "Present when a wall-clock time was ambiguous (a repeated DST hour)."},
                "zones": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "zone": {"type": "string"},
                        "local": {"type": "string", "description": "Wall-clock time, `YYYY-MM-DD HH:MM:SS`."},
                        "rfc3339": {"type": "string"},
                        "abbreviation": {"type": "string"},
                        "utc_offset": {"type": "string"},
                        "weekday": {"type": "string"}
                    },
                    "required": ["zone", "local", "rfc3339", "abbreviation", "utc_offset", "weekday"]
                }}
            },
            "required": ["utc", "unix_seconds", "unix_millis", "zones"]
        })),
        // "now" answers differently every call.
        idempotent: false,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    time: String,
    from_zone: Option<String>,
    to_zones: Option<Vec<String>>,
    #[serde(default)]
    unit: Unit,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Unit {
    #[default]
    Seconds,
    Milliseconds,
}

fn parse_zone(name: &str) -> Result<Tz, ToolError> {
    Tz::from_str_insensitive(name.trim()).map_err(|_| {
        invalid(format!(
            "`{name}` is not an IANA time zone; use names like `UTC`, `Europe/Berlin` or `America/New_York`"
        ))
    })
}

/// A number with an optional sign and fraction, read exactly (no float
/// rounding) as nanoseconds since the Unix epoch.
fn parse_unix(text: &str, unit: Unit) -> Option<Result<DateTime<Utc>, ToolError>> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(frac) {
        return None;
    }
    let out_of_range = || invalid(format!("Unix time `{text}` is out of the supported range"));
    let unit_nanos: i128 = match unit {
        Unit::Seconds => 1_000_000_000,
        Unit::Milliseconds => 1_000_000,
    };
    let scale = unit_nanos.to_string().len() - 1;
    if frac.len() > scale {
        return Some(Err(invalid(format!(
            "`{text}` has more fractional digits than nanosecond precision allows"
        ))));
    }
    let frac_nanos: i128 = if frac.is_empty() {
        0
    } else {
        // Right-pad so ".25" seconds is 250000000 ns.
        match format!("{frac:0<scale$}").parse() {
            Ok(v) => v,
            Err(_) => return Some(Err(out_of_range())),
        }
    };
    let total = whole
        .parse::<i128>()
        .ok()
        .and_then(|w| w.checked_mul(unit_nanos))
        .and_then(|w| w.checked_add(frac_nanos))
        .map(|t| if negative { -t } else { t });
    let Some(total) = total else {
        return Some(Err(out_of_range()));
    };
    let secs = i64::try_from(total.div_euclid(1_000_000_000)).ok();
    let nanos = u32::try_from(total.rem_euclid(1_000_000_000)).ok();
    Some(match (secs, nanos) {
        (Some(s), Some(n)) => DateTime::from_timestamp(s, n).ok_or_else(out_of_range),
        _ => Err(out_of_range()),
    })
}

fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()?
                .and_hms_opt(0, 0, 0)
        })
}

/// Resolves the input to an instant, plus a note when the choice was not unique.
fn resolve(text: &str, from: Tz, unit: Unit) -> Result<(DateTime<Utc>, Option<String>), ToolError> {
    if text.eq_ignore_ascii_case("now") {
        return Ok((Utc::now(), None));
    }
    if let Some(result) = parse_unix(text, unit) {
        return result.map(|t| (t, None));
    }
    if let Ok(t) =
        DateTime::parse_from_rfc3339(text).or_else(|_| DateTime::parse_from_rfc2822(text))
    {
        return Ok((t.with_timezone(&Utc), None));
    }
    let Some(naive) = parse_naive(text) else {
        return Err(invalid(format!(
            "cannot read `{text}` as a time: use `now`, Unix seconds, RFC 3339 like \
             `2024-05-01T12:00:00Z`, or `YYYY-MM-DD[ HH:MM[:SS]]` with `from_zone`"
        )));
    };
    match from.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok((t.with_timezone(&Utc), None)),
        LocalResult::Ambiguous(early, late) => Ok((
            early.with_timezone(&Utc),
            Some(format!(
                "{naive} happens twice in {from} (clocks go back); used the earlier {}, the later is {}",
                early.to_rfc3339(),
                late.to_rfc3339()
            )),
        )),
        LocalResult::None => Err(invalid(format!(
            "{naive} does not exist in {from}: the clocks skip it when daylight saving time starts"
        ))),
    }
}

fn in_zone(instant: &DateTime<Utc>, zone: Tz) -> Value {
    let t = instant.with_timezone(&zone);
    json!({
        "zone": zone.name(),
        "local": t.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
        "rfc3339": t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "abbreviation": t.format("%Z").to_string(),
        "utc_offset": t.format("%:z").to_string(),
        "weekday": t.format("%A").to_string(),
    })
}

pub(crate) fn run(arguments: &str) -> Result<Output, ToolError> {
    let args: Args = parse_args(arguments)?;
    let from = match &args.from_zone {
        Some(name) => parse_zone(name)?,
        None => Tz::UTC,
    };
    let zones: Vec<Tz> = match &args.to_zones {
        Some(names) if names.is_empty() || names.len() > MAX_ZONES => {
            return Err(invalid(format!(
                "`to_zones` must list between 1 and {MAX_ZONES} zones"
            )));
        }
        Some(names) => names
            .iter()
            .map(|n| parse_zone(n))
            .collect::<Result<_, _>>()?,
        None if from != Tz::UTC => vec![from, Tz::UTC],
        None => vec![Tz::UTC],
    };
    let (instant, note) = resolve(args.time.trim(), from, args.unit)?;

    let rows: Vec<Value> = zones.iter().map(|z| in_zone(&instant, *z)).collect();
    let utc = instant.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let mut text = format!("{utc} (Unix {})\n", instant.timestamp());
    for row in &rows {
        text.push_str(&format!(
            "{}: {} {} (UTC{}, {})\n",
            row["zone"].as_str().unwrap_or_default(),
            row["local"].as_str().unwrap_or_default(),
            row["abbreviation"].as_str().unwrap_or_default(),
            row["utc_offset"].as_str().unwrap_or_default(),
            row["weekday"].as_str().unwrap_or_default(),
        ));
    }
    let mut structured = json!({
        "utc": utc,
        "unix_seconds": instant.timestamp(),
        "unix_millis": instant.timestamp_millis(),
        "zones": rows,
    });
    if let Some(note) = note {
        text.push_str(&format!("Note: {note}\n"));
        structured["note"] = json!(note);
    }
    Ok(Output::with_structured(
        text.trim_end().to_string(),
        structured,
    ))
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::{run_invalid, run_ok};
    use serde_json::{Value, json};

    fn convert(args: Value) -> Value {
        run_ok("time_convert", args).structured.unwrap_or_default()
    }

    #[test]
    fn unix_seconds_to_zones_with_dst() {
        let s = convert(
            json!({"time": "1719835200", "to_zones": ["Europe/Berlin", "america/new_york"]}),
        );
        assert_eq!(s["utc"], "2024-07-01T12:00:00Z");
        assert_eq!(s["zones"][0]["local"], "2024-07-01 14:00:00");
        assert_eq!(s["zones"][0]["abbreviation"], "CEST");
        assert_eq!(s["zones"][1]["zone"], "America/New_York");
        assert_eq!(s["zones"][1]["utc_offset"], "-04:00");
        assert_eq!(s["zones"][1]["weekday"], "Monday");
    }

    #[test]
    fn fractional_negative_and_millisecond_unix_time() {
        assert_eq!(convert(json!({"time": "1.5"}))["unix_millis"], 1500);
        assert_eq!(convert(json!({"time": "-1.5"}))["unix_millis"], -1500);
        assert_eq!(
            convert(json!({"time": "1719835200123", "unit": "milliseconds"}))["utc"],
            "2024-07-01T12:00:00.123Z"
        );
    }

    #[test]
    fn offset_and_rfc2822_inputs() {
        assert_eq!(
            convert(json!({"time": "2024-01-01T00:00:00+05:30"}))["unix_seconds"],
            1704047400
        );
        assert_eq!(
            convert(json!({"time": "Mon, 01 Jul 2024 12:00:00 +0000"}))["unix_seconds"],
            1719835200
        );
    }

    #[test]
    fn wall_clock_in_from_zone() {
        let s = convert(json!({"time": "2024-01-15 09:30", "from_zone": "Asia/Kolkata"}));
        assert_eq!(s["utc"], "2024-01-15T04:00:00Z");
        assert_eq!(s["zones"][0]["zone"], "Asia/Kolkata");
        assert_eq!(s["zones"][1]["zone"], "UTC");
        assert_eq!(
            convert(json!({"time": "2024-01-15"}))["unix_seconds"],
            1705276800
        );
    }

    #[test]
    fn dst_gap_is_invalid_and_overlap_is_noted() {
        let msg = run_invalid(
            "time_convert",
            json!({"time": "2024-03-31 02:30", "from_zone": "Europe/Berlin"}),
        );
        assert!(msg.contains("does not exist"), "{msg}");
        let s = convert(json!({"time": "2024-10-27 02:30", "from_zone": "Europe/Berlin"}));
        assert_eq!(s["utc"], "2024-10-27T00:30:00Z");
        assert!(s["note"].as_str().unwrap_or_default().contains("twice"));
    }

    #[test]
    fn now_works() {
        let s = convert(json!({"time": "NOW"}));
        assert!(s["unix_seconds"].as_i64().unwrap_or_default() > 1_700_000_000);
    }

    #[test]
    fn rejects_bad_zone_time_and_range() {
        assert!(
            run_invalid(
                "time_convert",
                json!({"time": "now", "to_zones": ["Mars/Olympus"]})
            )
            .contains("IANA")
        );
        run_invalid("time_convert", json!({"time": "yesterday-ish"}));
        run_invalid("time_convert", json!({"time": "99999999999999999999999"}));
        run_invalid("time_convert", json!({"time": "now", "to_zones": []}));
        run_invalid("time_convert", json!({"time": "1.0000000001"}));
    }
}
