//! Built-in public holidays: the data of the python-holidays project, embedded.
//!
//! `data/public-holidays.txt` is written by `scripts/gen-holidays.py` from the
//! `holidays` package pinned in `scripts/requirements-chart.txt`; CI fails when
//! it is not what that version produces. The format is described there.

use chrono::NaiveDate;

const DATA: &str = include_str!("../../data/public-holidays.txt");

/// The public holidays of one country or subdivision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolidaySet {
    /// First and last day of the years the data covers.
    pub years: (NaiveDate, NaiveDate),
    /// The holidays, in date order, with their English names.
    pub days: Vec<(NaiveDate, String)>,
}

fn lines_of(country: &str) -> impl Iterator<Item = Vec<&'static str>> + '_ {
    DATA.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(move |cols| cols.first() == Some(&country))
}

fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y%m%d").ok()
}

/// The years the built-in data covers for `country` (upper-case ISO 3166-1
/// alpha-2), as first and last day.
pub fn public_holiday_coverage(country: &str) -> Option<(NaiveDate, NaiveDate)> {
    let header = lines_of(country).find(|cols| cols.get(1) == Some(&"="))?;
    let (first, last) = header.get(2)?.split_once('-')?;
    Some((
        NaiveDate::from_ymd_opt(first.parse().ok()?, 1, 1)?,
        NaiveDate::from_ymd_opt(last.parse().ok()?, 12, 31)?,
    ))
}

/// The public holidays of `country` (ISO 3166-1 alpha-2, any case) or of its
/// `subdivision`. Errors name the sub-field (`country` or `subdivision`) and list
/// what is available.
pub fn public_holidays(
    country: &str,
    subdivision: Option<&str>,
) -> Result<HolidaySet, (&'static str, String)> {
    let code = country.trim().to_ascii_uppercase();
    let lines: Vec<Vec<&str>> = lines_of(&code).collect();
    let header = lines
        .iter()
        .find(|cols| cols.get(1) == Some(&"="))
        .ok_or_else(|| {
            (
                "country",
                format!(
                    "no built-in public holidays for {country:?}: use an ISO 3166-1 alpha-2 code such as DE, FR or US (see docs/calendars.md)"
                ),
            )
        })?;
    let years = public_holiday_coverage(&code).ok_or_else(|| {
        (
            "country",
            format!("the built-in data of {code} is malformed"),
        )
    })?;
    let names: Vec<&str> = header.get(3).map_or(Vec::new(), |n| n.split('|').collect());
    let name = |i: &str| {
        i.parse::<usize>()
            .ok()
            .and_then(|i| names.get(i))
            .map_or_else(|| "holiday".to_string(), |n| n.to_string())
    };
    let mut days = std::collections::BTreeMap::new();
    if let Some(national) = lines.iter().find(|c| c.get(1) == Some(&"")) {
        for entry in national.get(3).map_or("", |s| s).split_whitespace() {
            if let Some((d, n)) = entry.split_once(':')
                && let Some(day) = parse_day(d)
            {
                days.insert(day, name(n));
            }
        }
    }
    if let Some(sub) = subdivision {
        let wanted = sub.trim();
        let known: Vec<&str> = lines
            .iter()
            .filter_map(|c| c.get(1).copied())
            .filter(|s| !s.is_empty() && *s != "=")
            .collect();
        let line = lines
            .iter()
            .find(|c| c.get(1).is_some_and(|s| s.eq_ignore_ascii_case(wanted)))
            .ok_or_else(|| {
                (
                    "subdivision",
                    if known.is_empty() {
                        format!("{code} has no subdivisions in the built-in data; leave subdivision unset")
                    } else {
                        format!(
                            "unknown subdivision {wanted:?} of {code}: one of {}",
                            known.join(", ")
                        )
                    },
                )
            })?;
        for entry in line.get(3).map_or("", |s| s).split_whitespace() {
            if let Some(rest) = entry.strip_prefix('+')
                && let Some((d, n)) = rest.split_once(':')
                && let Some(day) = parse_day(d)
            {
                days.insert(day, name(n));
            } else if let Some(rest) = entry.strip_prefix('-')
                && let Some(day) = parse_day(rest)
            {
                days.remove(&day);
            }
        }
    }
    Ok(HolidaySet {
        years,
        days: days.into_iter().collect(),
    })
}
