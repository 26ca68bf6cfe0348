//! Command-line quantities people write by hand: durations (`90s`, `30m`,
//! `24h`, `7d`) and byte sizes (`512M`, `20G`, powers of 1024).

use std::time::Duration;

/// Parses a duration: a whole number with an optional unit `s`, `m`, `h`
/// or `d` (seconds without one).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_unit(text);
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit '{unit}' (use s, m, h or d)")),
    };
    let n: u64 = number.parse().map_err(|_| format!("'{text}' is not a duration like 90s, 30m, 24h or 7d"))?;
    n.checked_mul(scale).map(Duration::from_secs).ok_or_else(|| format!("'{text}' is too long"))
}

/// Parses a byte size: a whole number with an optional unit `K`, `M`, `G`
/// or `T` (powers of 1024; a trailing `B` or `iB` is allowed).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_unit(text);
    let unit = unit.trim_end_matches("iB").trim_end_matches(['B', 'b']);
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("unknown unit in '{text}' (use K, M, G or T)")),
    };
    let n: u64 = number.parse().map_err(|_| format!("'{text}' is not a size like 4096, 512M or 20G"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("'{text}' is too large"))
}

fn split_unit(text: &str) -> (&str, &str) {
    let at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    text.split_at(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("20GiB"), Ok(20 << 30));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
