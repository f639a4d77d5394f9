//! Request parameters as Prometheus takes them: from the query string and,
//! for POST, a form body; times as RFC 3339 or Unix seconds, durations as
//! seconds or `1h30m`.

/// A request's parameters, repeated keys kept (`match[]`).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

/// A parameter that could not be used: which, and why.
#[derive(Debug)]
pub struct BadParam(pub String);

impl Params {
    /// The pairs of a query string and (for POST) a form body.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        pairs.extend(form_urlencoded::parse(body).into_owned());
        Self(pairs)
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A required parameter.
    pub fn required(&self, key: &str) -> Result<&str, BadParam> {
        self.get(key)
            .ok_or_else(|| BadParam(format!("invalid parameter \"{key}\": missing")))
    }

    /// A time in Unix ms: `key`, or `default` if absent.
    pub fn time_ms(&self, key: &str, default: i64) -> Result<i64, BadParam> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => parse_time_ms(v).ok_or_else(|| {
                BadParam(format!(
                    "invalid parameter \"{key}\": cannot parse \"{v}\" to a valid timestamp"
                ))
            }),
        }
    }

    /// A duration in ms.
    pub fn duration_ms(&self, key: &str) -> Result<Option<i64>, BadParam> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => parse_duration_ms(v).map(Some).ok_or_else(|| {
                BadParam(format!(
                    "invalid parameter \"{key}\": cannot parse \"{v}\" to a valid duration"
                ))
            }),
        }
    }
}

/// Unix seconds (`1700000000`, `1700000000.123`) or RFC 3339
/// (`2023-11-14T22:13:20.123Z`, `...+01:00`) to Unix ms.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<f64>() {
        return secs
            .is_finite()
            .then(|| (secs * 1000.0).round())
            .filter(|ms| ms.abs() < 9.2e18)
            .map(|ms| ms as i64);
    }
    parse_rfc3339_ms(s)
}

fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i).filter(|f| !f.is_empty())?;
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = digits.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some((((days * 24 + hour) * 60 + min - offset_min) * 60 + sec) * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds (`15`, `0.5`) or a Prometheus duration (`1h30m`, `500ms`, `2d`) to ms;
/// `None` if malformed, zero or negative.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        return (1.0..9.2e18).contains(&ms).then_some(ms as i64);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[unit_len..];
    }
    (total > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_prometheus_takes_them() {
        assert_eq!(parse_time_ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time_ms("1700000000.123"), Some(1_700_000_000_123));
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            parse_time_ms("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), Some(0));
        for bad in [
            "",
            "yesterday",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "NaN",
        ] {
            assert_eq!(parse_time_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_as_prometheus_takes_them() {
        assert_eq!(parse_duration_ms("15"), Some(15_000));
        assert_eq!(parse_duration_ms("0.5"), Some(500));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("1w"), Some(604_800_000));
        for bad in ["", "0", "-1", "1x", "h", "1.5h"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn repeated_keys_from_query_and_body() {
        let p = Params::parse(Some("match[]=a&start=1"), b"match[]=b%7Bx%3D%22y%22%7D");
        assert_eq!(p.all("match[]"), ["a", "b{x=\"y\"}"]);
        assert_eq!(p.time_ms("start", 0).unwrap(), 1000);
        assert_eq!(p.time_ms("end", 42).unwrap(), 42);
        assert_eq!(
            p.required("query").unwrap_err().0,
            "invalid parameter \"query\": missing"
        );
    }
}
