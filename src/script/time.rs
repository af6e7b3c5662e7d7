//! Times as recipes write them: seconds, or `m:ss.mmm` / `h:mm:ss.mmm`.

/// Parses a time string into seconds.
pub fn parse_time(text: &str) -> Result<f64, String> {
    let bad = || format!("`{text}` is not a time: write seconds (12.5) or m:ss.mmm (1:12.500)");
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(bad());
    }
    let mut seconds = 0.0;
    for (i, p) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let v: f64 = p.parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 || (!last && v.fract() != 0.0) || (i > 0 && v >= 60.0) {
            return Err(bad());
        }
        seconds = seconds * 60.0 + v;
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(parse_time("12.5").unwrap(), 12.5);
        assert_eq!(parse_time("1:12.500").unwrap(), 72.5);
        assert_eq!(parse_time("1:00:01").unwrap(), 3601.0);
        assert!(parse_time("1:75").is_err());
        assert!(parse_time("abc").is_err());
    }
}
