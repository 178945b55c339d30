//! Metric math for GetMetricData's `Expression`, a small subset answered exactly:
//!
//! - numbers, the Ids of other queries (metrics or expressions), parentheses;
//! - `+ - * / ^` and unary minus, between time series and numbers: a series with a number
//!   applies to each value, two series combine at the timestamps both have;
//! - arrays `[m1, m2]` and `METRICS()` (every metric of the request, no expressions);
//! - `SUM`, `AVG`, `MIN`, `MAX`: of an array, one series with, per timestamp, the function
//!   of the values present there; of one series, a number (as CloudWatch does).
//!
//! Results that are not finite (division by zero) are left out, as CloudWatch leaves them out.
//! Anything else (other functions, `METRICS('filter')`, Metrics Insights `SELECT` queries,
//! an expression answering several series or a bare number) is refused with a message naming
//! it, which the caller sends as a `ValidationError`.

use std::collections::BTreeMap;

/// A time series: epoch milliseconds to value, oldest first.
pub(crate) type Series = BTreeMap<i64, f64>;

/// The functions this subset evaluates.
const FUNCTIONS: &str = "SUM, AVG, MIN, MAX and METRICS()";

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A literal number.
    Number(f64),
    /// The result of another query, by Id.
    Id(String),
    /// Unary minus.
    Negate(Box<Expr>),
    /// `left op right`.
    Binary(char, Box<Expr>, Box<Expr>),
    /// `[a, b, ...]`.
    Array(Vec<Expr>),
    /// `SUM(x)`, `AVG(x)`, `MIN(x)`, `MAX(x)`.
    Call(Function, Box<Expr>),
    /// `METRICS()`.
    Metrics,
}

/// An aggregating function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    Sum,
    Avg,
    Min,
    Max,
}

impl Function {
    fn apply(self, values: impl Iterator<Item = f64>) -> Option<f64> {
        let (mut count, mut sum) = (0usize, 0.0);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for value in values {
            count += 1;
            sum += value;
            min = min.min(value);
            max = max.max(value);
        }
        (count > 0).then_some(match self {
            Self::Sum => sum,
            Self::Avg => sum / count as f64,
            Self::Min => min,
            Self::Max => max,
        })
    }
}

impl Expr {
    /// The Ids the expression refers to.
    pub(crate) fn references(&self, out: &mut Vec<String>) {
        match self {
            Self::Id(id) => out.push(id.clone()),
            Self::Negate(inner) | Self::Call(_, inner) => inner.references(out),
            Self::Binary(_, left, right) => {
                left.references(out);
                right.references(out);
            }
            Self::Array(items) => items.iter().for_each(|i| i.references(out)),
            Self::Number(_) | Self::Metrics => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Text,
    Symbol(char),
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || chars[i] == 'e'
                    || chars[i] == 'E'
                    || ((chars[i] == '+' || chars[i] == '-') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let literal: String = chars[start..i].iter().collect();
            let number = literal
                .parse::<f64>()
                .map_err(|_| format!("{literal} is not a number"))?;
            out.push(Token::Number(number));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Name(chars[start..i].iter().collect()));
        } else if c == '\'' || c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|d| *d == c)
                .ok_or("a string is not closed")?;
            out.push(Token::Text);
            i += end + 2;
        } else if "+-*/^()[],".contains(c) {
            out.push(Token::Symbol(c));
            i += 1;
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    Ok(out)
}

/// Parses `text`, or says what is wrong or unsupported in it.
pub(crate) fn parse(text: &str) -> Result<Expr, String> {
    let trimmed = text.trim_start();
    if trimmed.len() >= 6 && trimmed[..6].eq_ignore_ascii_case("SELECT") {
        return Err(
            "Metrics Insights queries (SELECT ...) are not supported by this engine; use \
             MetricStat or metric math"
                .to_owned(),
        );
    }
    let tokens = tokens(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let expr = parser.sum()?;
    match parser.tokens.get(parser.at) {
        None => Ok(expr),
        Some(token) => Err(format!("unexpected {} after the expression", show(token))),
    }
}

fn show(token: &Token) -> String {
    match token {
        Token::Number(n) => n.to_string(),
        Token::Name(name) => name.clone(),
        Token::Text => "string".to_owned(),
        Token::Symbol(c) => format!("'{c}'"),
    }
}

/// How deeply parentheses, arrays, calls and unary signs may nest: the parser and the
/// evaluator recurse once per level, and an expression is up to 2048 characters.
const MAX_DEPTH: usize = 32;

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, symbol: char) -> bool {
        if self.peek() == Some(&Token::Symbol(symbol)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, symbol: char) -> Result<(), String> {
        if self.eat(symbol) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(token) => format!("expected '{symbol}', found {}", show(token)),
                None => format!("expected '{symbol}' at the end"),
            })
        }
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut left = self.product()?;
        while let Some(Token::Symbol(op @ ('+' | '-'))) = self.peek().cloned() {
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.product()?));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while let Some(Token::Symbol(op @ ('*' | '/'))) = self.peek().cloned() {
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "the expression nests more than {MAX_DEPTH} levels deep"
            ));
        }
        let expr = self.signed();
        self.depth -= 1;
        expr
    }

    fn signed(&mut self) -> Result<Expr, String> {
        if self.eat('-') {
            return Ok(Expr::Negate(Box::new(self.unary()?)));
        }
        if self.eat('+') {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr, String> {
        let base = self.atom()?;
        if self.eat('^') {
            // Right-associative: 2^3^2 is 2^(3^2).
            return Ok(Expr::Binary('^', Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let token = self
            .peek()
            .cloned()
            .ok_or("the expression ends too early")?;
        self.at += 1;
        match token {
            Token::Number(n) => Ok(Expr::Number(n)),
            Token::Symbol('(') => {
                let inner = self.sum()?;
                self.expect(')')?;
                Ok(inner)
            }
            Token::Symbol('[') => {
                let mut items = vec![self.sum()?];
                while self.eat(',') {
                    items.push(self.sum()?);
                }
                self.expect(']')?;
                Ok(Expr::Array(items))
            }
            Token::Name(name) if self.peek() == Some(&Token::Symbol('(')) => {
                self.at += 1;
                let function = match name.as_str() {
                    "METRICS" => {
                        if self.peek() == Some(&Token::Text) {
                            return Err(
                                "METRICS with a label filter is not supported by this engine; \
                                 use METRICS() or an array of Ids"
                                    .to_owned(),
                            );
                        }
                        self.expect(')')?;
                        return Ok(Expr::Metrics);
                    }
                    "SUM" => Function::Sum,
                    "AVG" => Function::Avg,
                    "MIN" => Function::Min,
                    "MAX" => Function::Max,
                    other => {
                        return Err(format!(
                            "the function {other} is not supported by this engine (it evaluates \
                             {FUNCTIONS})"
                        ));
                    }
                };
                let argument = self.sum()?;
                if self.eat(',') {
                    return Err(format!("{name} takes one argument"));
                }
                self.expect(')')?;
                Ok(Expr::Call(function, Box::new(argument)))
            }
            Token::Name(name) if name.starts_with(|c: char| c.is_ascii_lowercase()) => {
                Ok(Expr::Id(name))
            }
            other => Err(format!("unexpected {}", show(&other))),
        }
    }
}

/// A value while evaluating.
enum Value {
    Number(f64),
    Series(Series),
    Array(Vec<Series>),
}

/// Evaluates `expr` to one time series; `lookup` gives another query's result by Id, `metrics`
/// every metric of the request (for `METRICS()`).
pub(crate) fn evaluate(
    expr: &Expr,
    lookup: &mut dyn FnMut(&str) -> Result<Series, String>,
    metrics: &[Series],
) -> Result<Series, String> {
    match eval(expr, lookup, metrics)? {
        Value::Series(series) => Ok(series),
        Value::Array(mut list) if list.len() == 1 => Ok(list.remove(0)),
        Value::Array(list) => Err(format!(
            "the expression returns {} time series; this engine answers expressions returning \
             one (aggregate them, e.g. SUM([...]))",
            list.len()
        )),
        Value::Number(_) => Err(
            "the expression evaluates to a single number, not a time series; refer to at least \
             one metric"
                .to_owned(),
        ),
    }
}

fn eval(
    expr: &Expr,
    lookup: &mut dyn FnMut(&str) -> Result<Series, String>,
    metrics: &[Series],
) -> Result<Value, String> {
    Ok(match expr {
        Expr::Number(n) => Value::Number(*n),
        Expr::Id(id) => Value::Series(lookup(id)?),
        Expr::Metrics => Value::Array(metrics.to_vec()),
        Expr::Negate(inner) => binary('*', Value::Number(-1.0), eval(inner, lookup, metrics)?)?,
        Expr::Binary(op, left, right) => binary(
            *op,
            eval(left, lookup, metrics)?,
            eval(right, lookup, metrics)?,
        )?,
        Expr::Array(items) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                match eval(item, lookup, metrics)? {
                    Value::Series(series) => list.push(series),
                    Value::Array(inner) => list.extend(inner),
                    Value::Number(_) => {
                        return Err("an array may hold time series only, not numbers".to_owned());
                    }
                }
            }
            Value::Array(list)
        }
        Expr::Call(function, argument) => match eval(argument, lookup, metrics)? {
            Value::Series(series) => {
                Value::Number(function.apply(series.into_values()).unwrap_or(f64::NAN))
            }
            Value::Array(list) => {
                let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                for series in list {
                    for (t, v) in series {
                        at.entry(t).or_default().push(v);
                    }
                }
                Value::Series(
                    at.into_iter()
                        .filter_map(|(t, values)| Some((t, function.apply(values.into_iter())?)))
                        .filter(|(_, v)| v.is_finite())
                        .collect(),
                )
            }
            Value::Number(n) => Value::Number(n),
        },
    })
}

fn arithmetic(op: char, a: f64, b: f64) -> f64 {
    match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        '/' => a / b,
        _ => a.powf(b),
    }
}

fn binary(op: char, left: Value, right: Value) -> Result<Value, String> {
    let map = |series: Series, f: &dyn Fn(f64) -> f64| -> Series {
        series
            .into_iter()
            .map(|(t, v)| (t, f(v)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    };
    Ok(match (left, right) {
        (Value::Number(a), Value::Number(b)) => Value::Number(arithmetic(op, a, b)),
        (Value::Series(s), Value::Number(b)) => Value::Series(map(s, &|a| arithmetic(op, a, b))),
        (Value::Number(a), Value::Series(s)) => Value::Series(map(s, &|b| arithmetic(op, a, b))),
        (Value::Series(a), Value::Series(b)) => Value::Series(
            a.into_iter()
                .filter_map(|(t, x)| Some((t, arithmetic(op, x, *b.get(&t)?))))
                .filter(|(_, v)| v.is_finite())
                .collect(),
        ),
        (Value::Array(list), Value::Number(b)) => Value::Array(
            list.into_iter()
                .map(|s| map(s, &|a| arithmetic(op, a, b)))
                .collect(),
        ),
        (Value::Number(a), Value::Array(list)) => Value::Array(
            list.into_iter()
                .map(|s| map(s, &|b| arithmetic(op, a, b)))
                .collect(),
        ),
        _ => {
            return Err(format!(
                "'{op}' between an array and a time series (or two arrays) is not supported by \
                 this engine"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(i64, f64)]) -> Series {
        points.iter().copied().collect()
    }

    fn run(text: &str) -> Result<Series, String> {
        let m1 = series(&[(0, 2.0), (60, 4.0), (120, 6.0)]);
        let m2 = series(&[(0, 1.0), (120, 0.0)]);
        let expr = parse(text)?;
        let mut lookup = |id: &str| match id {
            "m1" => Ok(m1.clone()),
            "m2" => Ok(m2.clone()),
            other => Err(format!("unknown {other}")),
        };
        evaluate(&expr, &mut lookup, &[m1.clone(), m2.clone()])
    }

    #[test]
    fn arithmetic_functions_and_arrays_evaluate_per_timestamp() {
        assert_eq!(
            run("m1 * 2 + 1").unwrap(),
            series(&[(0, 5.0), (60, 9.0), (120, 13.0)])
        );
        assert_eq!(run("-m1 + 10").unwrap()[&60], 6.0);
        // Two series meet where both have a value; x/0 is left out.
        assert_eq!(run("m1 / m2").unwrap(), series(&[(0, 2.0)]));
        assert_eq!(
            run("SUM([m1, m2])").unwrap(),
            series(&[(0, 3.0), (60, 4.0), (120, 6.0)])
        );
        assert_eq!(run("MAX(METRICS())").unwrap()[&0], 2.0);
        assert_eq!(run("AVG([m1, m2])").unwrap()[&0], 1.5);
        // Of one series, a number: m1 minus its average.
        assert_eq!(
            run("m1 - AVG(m1)").unwrap(),
            series(&[(0, -2.0), (60, 0.0), (120, 2.0)])
        );
        assert_eq!(run("m1 ^ 2").unwrap()[&120], 36.0);
        assert_eq!(run("(m1 + 1e1) * 0.5").unwrap()[&0], 6.0);
    }

    #[test]
    fn the_longest_expressions_evaluate_and_deep_nesting_is_refused() {
        // 2048 characters of `m1+m1+...`: a left-deep tree the evaluator walks recursively.
        let long = vec!["m1"; 683].join("+");
        assert!(long.len() <= 2048);
        assert_eq!(run(&long).unwrap()[&0], 2.0 * 683.0);
        let deep = format!("{}m1{}", "(".repeat(33), ")".repeat(33));
        assert!(
            run(&deep)
                .unwrap_err()
                .contains("nests more than 32 levels")
        );
        assert!(run(&format!("{}m1", "-".repeat(40))).is_err());
        assert_eq!(run(&format!("{}m1", "-".repeat(20))).unwrap()[&0], 2.0);
    }

    #[test]
    fn unsupported_and_malformed_expressions_say_why() {
        for (text, says) in [
            ("RATE(m1)", "RATE is not supported"),
            ("METRICS('a')", "label filter"),
            ("SELECT AVG(x) FROM y", "Metrics Insights"),
            ("1 + 2", "single number"),
            ("METRICS() * 2", "returns 2 time series"),
            ("m1 +", "ends too early"),
            ("(m1", "expected ')'"),
            ("m1 $ 2", "unexpected character"),
            ("m3", "unknown m3"),
            ("METRICS() + m1", "not supported"),
        ] {
            let error = run(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
