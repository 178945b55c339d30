//! DynamoDB numbers: exact decimals of at most 38 significant digits, magnitudes from 1E-130 up
//! to (but excluding) 1E+126. Kept as digits and an exponent rather than a float, so that values
//! round-trip exactly and compare the way DynamoDB compares them.

use std::cmp::Ordering;
use std::fmt;

/// The most significant digits a number may have.
const MAX_DIGITS: usize = 38;

/// An exact decimal: `±0.d1d2…dn × 10^exp`, with no leading or trailing zero digit. Zero has no
/// digits, exponent 0 and a positive sign, so equal values have equal representations.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    digits: Vec<u8>,
    exp: i64,
}

/// Why a text is not a DynamoDB number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// Not decimal notation.
    NotNumeric,
    /// More than 38 significant digits.
    TooPrecise,
    /// Magnitude of 1E+126 or more.
    Overflow,
    /// Non-zero magnitude below 1E-130.
    Underflow,
}

impl NumberError {
    /// DynamoDB's words for the error; `text` is the rejected input.
    pub fn message(&self, text: &str) -> String {
        match self {
            Self::NotNumeric => {
                format!("The parameter cannot be converted to a numeric value: {text}")
            }
            Self::TooPrecise => {
                "Attempting to store more than 38 significant digits in a Number".into()
            }
            Self::Overflow => {
                "Number overflow. Attempting to store a number with magnitude larger than supported range".into()
            }
            Self::Underflow => {
                "Number underflow. Attempting to store a number with magnitude smaller than supported range".into()
            }
        }
    }
}

impl Number {
    /// Zero.
    pub fn zero() -> Self {
        Self {
            negative: false,
            digits: Vec::new(),
            exp: 0,
        }
    }

    /// Parses decimal or scientific notation (`-12.5`, `1e3`, `.5`, `+7`), checking DynamoDB's
    /// precision and range.
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&sign) = bytes.first()
            && (sign == b'-' || sign == b'+')
        {
            negative = sign == b'-';
            i = 1;
        }
        let mut digits = Vec::new();
        // Position of the decimal point relative to the digits collected so far.
        let mut point: Option<i64> = None;
        let mut seen_digit = false;
        while i < bytes.len() {
            match bytes[i] {
                b @ b'0'..=b'9' => {
                    digits.push(b - b'0');
                    seen_digit = true;
                }
                b'.' if point.is_none() => point = Some(digits.len() as i64),
                b'e' | b'E' => break,
                _ => return Err(NumberError::NotNumeric),
            }
            i += 1;
        }
        if !seen_digit {
            return Err(NumberError::NotNumeric);
        }
        let mut exponent: i64 = 0;
        if i < bytes.len() {
            // bytes[i] is 'e' or 'E'.
            i += 1;
            let mut exp_negative = false;
            if let Some(&sign) = bytes.get(i)
                && (sign == b'-' || sign == b'+')
            {
                exp_negative = sign == b'-';
                i += 1;
            }
            if i >= bytes.len() {
                return Err(NumberError::NotNumeric);
            }
            for &b in &bytes[i..] {
                if !b.is_ascii_digit() {
                    return Err(NumberError::NotNumeric);
                }
                // Saturate: anything this large is out of range anyway.
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i64::from(b - b'0'))
                    .min(1 << 40);
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        let point = point.unwrap_or(digits.len() as i64);
        Self::from_parts(negative, digits, point + exponent)
    }

    /// Builds `±0.digits × 10^exp` from raw digits (which may have leading or trailing zeros),
    /// normalising and checking range and precision.
    fn from_parts(negative: bool, mut digits: Vec<u8>, mut exp: i64) -> Result<Self, NumberError> {
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading);
        exp -= leading as i64;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Ok(Self::zero());
        }
        if digits.len() > MAX_DIGITS {
            return Err(NumberError::TooPrecise);
        }
        if exp > 126 {
            return Err(NumberError::Overflow);
        }
        if exp <= -130 {
            return Err(NumberError::Underflow);
        }
        Ok(Self {
            negative,
            digits,
            exp,
        })
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Number of significant digits, used to size items.
    pub fn significant_digits(&self) -> usize {
        self.digits.len()
    }

    /// The exact sum, or an error if it does not fit a DynamoDB number.
    pub fn add(&self, other: &Self) -> Result<Self, NumberError> {
        if self.is_zero() {
            return Ok(other.clone());
        }
        if other.is_zero() {
            return Ok(self.clone());
        }
        // Align both on the exponent of their lowest digit: value = int × 10^low.
        let low_a = self.exp - self.digits.len() as i64;
        let low_b = other.exp - other.digits.len() as i64;
        let low = low_a.min(low_b);
        let high = self.exp.max(other.exp);
        let width = usize::try_from(high - low).map_err(|_| NumberError::Overflow)?;
        let a = self.aligned(high, width);
        let b = other.aligned(high, width);
        let (negative, digits) = if self.negative == other.negative {
            (self.negative, add_digits(&a, &b))
        } else {
            match a.cmp(&b) {
                Ordering::Equal => return Ok(Self::zero()),
                Ordering::Greater => (self.negative, sub_digits(&a, &b)),
                Ordering::Less => (other.negative, sub_digits(&b, &a)),
            }
        };
        // add_digits may carry into one extra leading digit.
        let exp = high + (digits.len() - width) as i64;
        Self::from_parts(negative, digits, exp)
    }

    /// The negation.
    pub fn negate(&self) -> Self {
        let mut out = self.clone();
        if !out.is_zero() {
            out.negative = !out.negative;
        }
        out
    }

    /// Digits laid out over `width` positions whose first is `10^(high-1)`.
    fn aligned(&self, high: i64, width: usize) -> Vec<u8> {
        let mut out = vec![0u8; width];
        let start = (high - self.exp) as usize;
        out[start..start + self.digits.len()].copy_from_slice(&self.digits);
        out
    }

    fn cmp_magnitude(&self, other: &Self) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        self.exp
            .cmp(&other.exp)
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

/// Adds two equally long digit strings (most significant first); the result may be one longer.
fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len() + 1];
    let mut carry = 0u8;
    for i in (0..a.len()).rev() {
        let sum = a[i] + b[i] + carry;
        out[i + 1] = sum % 10;
        carry = sum / 10;
    }
    out[0] = carry;
    if carry == 0 {
        out.remove(0);
    }
    out
}

/// Subtracts `b` from `a` (equally long, `a >= b`).
fn sub_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i8;
    for i in (0..a.len()).rev() {
        let mut diff = a[i] as i8 - b[i] as i8 - borrow;
        borrow = 0;
        if diff < 0 {
            diff += 10;
            borrow = 1;
        }
        out[i] = diff as u8;
    }
    out
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = |n: &Self| {
            if n.is_zero() {
                0
            } else if n.negative {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal if self.negative => other.cmp_magnitude(self),
            Ordering::Equal => self.cmp_magnitude(other),
            unequal => unequal,
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Plain decimal notation without exponent or redundant zeros, as DynamoDB returns numbers.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut out = String::with_capacity(self.digits.len() + 8);
        if self.negative {
            out.push('-');
        }
        let digit = |d: &u8| char::from(b'0' + d);
        let n = self.digits.len() as i64;
        if self.exp <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-self.exp) as usize));
            out.extend(self.digits.iter().map(digit));
        } else if self.exp >= n {
            out.extend(self.digits.iter().map(digit));
            out.extend(std::iter::repeat_n('0', (self.exp - n) as usize));
        } else {
            let (int, frac) = self.digits.split_at(self.exp as usize);
            out.extend(int.iter().map(digit));
            out.push('.');
            out.extend(frac.iter().map(digit));
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    #[test]
    fn normalises_to_plain_notation() {
        for (input, output) in [
            ("0", "0"),
            ("-0", "0"),
            ("0.000", "0"),
            ("1.50", "1.5"),
            ("+7", "7"),
            ("1e2", "100"),
            ("1E+2", "100"),
            ("12.5e-3", "0.0125"),
            (".5", "0.5"),
            ("5.", "5"),
            ("-00123.4500", "-123.45"),
            ("1e-130", &format!("0.{}1", "0".repeat(129))),
            (
                "9.9999999999999999999999999999999999999E+125",
                &format!("{}{}", "9".repeat(38), "0".repeat(88)),
            ),
        ] {
            assert_eq!(n(input).to_string(), output, "{input}");
        }
    }

    #[test]
    fn rejects_what_dynamodb_rejects() {
        for bad in [
            "", "-", "abc", "1.2.3", "1e", "1e+", "NaN", "Infinity", "0x10", " 1", "1 ", "--1",
            "1e5.5",
        ] {
            assert_eq!(Number::parse(bad), Err(NumberError::NotNumeric), "{bad:?}");
        }
        assert_eq!(Number::parse(&"1".repeat(39)), Err(NumberError::TooPrecise));
        assert_eq!(
            Number::parse(&format!("{}000", "1".repeat(38))).map(|n| n.significant_digits()),
            Ok(38)
        );
        assert_eq!(Number::parse("1e126"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("-1e126"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("1e-131"), Err(NumberError::Underflow));
        assert_eq!(
            Number::parse("1e99999999999999999999"),
            Err(NumberError::Overflow)
        );
        assert_eq!(
            Number::parse("1e-99999999999999999999"),
            Err(NumberError::Underflow)
        );
        assert_eq!(Number::parse("0e99999999999999999999"), Ok(Number::zero()));
        assert_eq!(
            NumberError::NotNumeric.message("x"),
            "The parameter cannot be converted to a numeric value: x"
        );
    }

    #[test]
    fn compares_numerically() {
        let ordered = [
            "-1e10", "-2", "-1.5", "-0.001", "0", "1e-129", "0.5", "1", "1.01", "2", "10", "1e125",
        ];
        for pair in ordered.windows(2) {
            assert!(n(pair[0]) < n(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(n("1.0"), n("1"));
        assert_eq!(n("100"), n("1e2"));
    }

    #[test]
    fn adds_exactly() {
        for (a, b, sum) in [
            ("1", "2", "3"),
            ("0.1", "0.2", "0.3"),
            ("99", "1", "100"),
            ("-5", "3", "-2"),
            ("5", "-5", "0"),
            ("1e20", "1", "100000000000000000001"),
            ("-0.5", "-0.25", "-0.75"),
            ("123.456", "-0.456", "123"),
            ("0", "-7", "-7"),
        ] {
            assert_eq!(n(a).add(&n(b)).unwrap().to_string(), sum, "{a} + {b}");
        }
        assert_eq!(n("1e30").add(&n("1e-30")), Err(NumberError::TooPrecise));
        assert_eq!(n("9.9e125").add(&n("1e125")), Err(NumberError::Overflow));
        assert_eq!(n("3").negate().to_string(), "-3");
    }
}
