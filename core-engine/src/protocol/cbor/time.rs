//! Timestamp units: AWS's CBOR carries epoch **milliseconds** (in tag 1, against RFC 8949, which
//! says seconds); awsJson1.1 carries epoch seconds.
//!
//! The Java SDKs write `tag 1` + an integer of milliseconds and parse a timestamp with
//! `Long.parseLong`, so integers are always milliseconds, in both directions. Floats never come
//! from an AWS SDK; a generic CBOR encoder writes them as RFC 8949 epoch seconds, so a float is
//! read as seconds, unless it is too large to be seconds in any plausible year, then as
//! milliseconds.

use std::io::Write as _;

/// Floats of at least this magnitude are milliseconds: as seconds they would be past the year
/// 5000, as milliseconds they are after March 1973.
const MILLIS_FROM: f64 = 1e11;

/// Writes epoch milliseconds as an exact JSON number of epoch seconds (`1459799926.480`).
pub(crate) fn write_millis_as_seconds(millis: i128, out: &mut Vec<u8>) {
    let sign = if millis < 0 { "-" } else { "" };
    let abs = millis.unsigned_abs();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{sign}{}.{:03}", abs / 1000, abs % 1000);
}

/// Writes a floating-point CBOR timestamp as a JSON number of epoch seconds, or says why not.
pub(crate) fn write_float_as_seconds(value: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if !value.is_finite() {
        return Err(format!("timestamp {value} is not a finite number"));
    }
    let seconds = if value.abs() >= MILLIS_FROM {
        value / 1000.0
    } else {
        value
    };
    let _ = write!(out, "{seconds:?}");
    Ok(())
}

/// Epoch milliseconds for a JSON timestamp of epoch seconds, if representable.
pub(crate) fn seconds_to_millis(seconds: f64) -> Option<i64> {
    let millis = (seconds * 1000.0).round();
    // i64::MAX as f64 rounds up to 2^63, so the bound must be exclusive.
    (millis.is_finite() && millis.abs() < 9.2e18).then_some(millis as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(ms: i128) -> String {
        let mut out = Vec::new();
        write_millis_as_seconds(ms, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn float(value: f64) -> String {
        let mut out = Vec::new();
        write_float_as_seconds(value, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn milliseconds_become_exact_decimal_seconds() {
        assert_eq!(millis(1_459_799_926_480), "1459799926.480");
        assert_eq!(millis(1_459_799_926_000), "1459799926.000");
        assert_eq!(millis(7), "0.007");
        assert_eq!(millis(0), "0.000");
        assert_eq!(millis(-1), "-0.001");
        assert_eq!(millis(-1_500), "-1.500");
        assert_eq!(millis(-(1 << 64)), "-18446744073709551.616");
    }

    #[test]
    fn floats_are_seconds_unless_only_milliseconds_make_sense() {
        assert_eq!(float(1_459_799_926.48), "1459799926.48");
        assert_eq!(float(1_459_799_926_480.0), "1459799926.48");
        assert_eq!(float(0.5), "0.5");
        let mut out = Vec::new();
        assert!(write_float_as_seconds(f64::NAN, &mut out).is_err());
        assert!(write_float_as_seconds(f64::INFINITY, &mut out).is_err());
    }

    #[test]
    fn seconds_round_trip_to_milliseconds() {
        assert_eq!(seconds_to_millis(1_459_799_926.48), Some(1_459_799_926_480));
        // Every millisecond of this century survives the trip through f64 seconds.
        for ms in (1_700_000_000_000_i64..1_700_000_100_000).step_by(7) {
            assert_eq!(seconds_to_millis(ms as f64 / 1000.0), Some(ms));
        }
        assert_eq!(seconds_to_millis(-0.001), Some(-1));
        assert_eq!(seconds_to_millis(f64::NAN), None);
        assert_eq!(seconds_to_millis(1e300), None);
    }
}
