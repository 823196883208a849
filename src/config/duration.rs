//! Durations written as in `wrangler.toml`: a whole number followed by `s`, `m`, `h` or `d`.

/// Parses `"90s"`, `"15m"`, `"12h"`, `"7d"` into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let fix = "write a whole number followed by s, m, h or d, e.g. \"7d\" or \"15m\"";
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("\"{text}\" has no unit; {fix}"))?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration; {fix}"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("\"{text}\" is not a duration; {fix}")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("\"{text}\" is too long"))
}

/// The shortest faithful spelling of a number of seconds, for messages.
pub fn format_duration(seconds: u64) -> String {
    for (unit, scale) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds >= scale && seconds.is_multiple_of(scale) {
            return format!("{}{unit}", seconds / scale);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("45s"), Ok(45));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration(" 0s "), Ok(0));
    }

    #[test]
    fn rejects_bad_spellings_with_the_fix() {
        for bad in ["7", "d", "7x", "7 d", "-1d", "1.5h", "", "7dd", "1h30m"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("e.g. \"7d\""), "{bad}: {err}");
        }
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999999d")
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(604_800), "7d");
        assert_eq!(format_duration(90), "90s");
        assert_eq!(format_duration(900), "15m");
    }
}
