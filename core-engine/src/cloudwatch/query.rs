//! The awsQuery protocol, which CloudWatch clients used before RPC v2 CBOR (and older botocore,
//! the AWS CLI v1 and the Java SDK v1 still use): a form-encoded POST to `/` with
//! `Action=PutMetricData&Version=2010-08-01&Namespace=...&MetricData.member.1.MetricName=...`,
//! answered in XML.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::CwError;

/// The XML namespace of CloudWatch's responses.
const XMLNS: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";

/// Decodes an `application/x-www-form-urlencoded` body into its pairs, in order.
pub(crate) fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, CwError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| CwError::malformed("The form-encoded request body is not UTF-8."))?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(key)?, percent_decode(value)?))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (a space) in one form component.
fn percent_decode(text: &str) -> Result<String, CwError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        CwError::malformed(format!("Malformed percent-encoding in {text:?}."))
                    })?;
                out.push(hex);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| CwError::malformed(format!("The form value {text:?} is not UTF-8.")))
}

/// A form key's place in the input: a text value, a structure, or a list by 1-based index.
enum Node {
    Text(String),
    Map(BTreeMap<String, Node>),
    List(BTreeMap<u32, Node>),
}

/// Turns the form's pairs (past `Action` and `Version`) into the JSON tree of the input:
/// `MetricData.member.1.Value=2` becomes `{"MetricData": [{"Value": "2"}]}`. Values stay text.
pub(crate) fn to_tree(pairs: &[(String, String)]) -> Result<Value, CwError> {
    let mut root = BTreeMap::new();
    for (key, value) in pairs {
        if key == "Action" || key == "Version" {
            continue;
        }
        let parts: Vec<&str> = key.split('.').collect();
        insert(&mut root, &parts, value, key)?;
    }
    Ok(map_to_value(root))
}

fn insert(
    map: &mut BTreeMap<String, Node>,
    parts: &[&str],
    value: &str,
    key: &str,
) -> Result<(), CwError> {
    let bad = || CwError::malformed(format!("The form key {key:?} is malformed."));
    let (name, rest) = parts.split_first().ok_or_else(bad)?;
    if rest.is_empty() {
        map.insert((*name).to_owned(), Node::Text(value.to_owned()));
        return Ok(());
    }
    if rest[0] == "member" {
        let index: u32 = rest
            .get(1)
            .and_then(|i| i.parse().ok())
            .filter(|i| *i > 0)
            .ok_or_else(bad)?;
        let node = map
            .entry((*name).to_owned())
            .or_insert_with(|| Node::List(BTreeMap::new()));
        let Node::List(items) = node else {
            return Err(bad());
        };
        let rest = &rest[2..];
        if rest.is_empty() {
            items.insert(index, Node::Text(value.to_owned()));
            return Ok(());
        }
        let item = items
            .entry(index)
            .or_insert_with(|| Node::Map(BTreeMap::new()));
        let Node::Map(fields) = item else {
            return Err(bad());
        };
        return insert(fields, rest, value, key);
    }
    let node = map
        .entry((*name).to_owned())
        .or_insert_with(|| Node::Map(BTreeMap::new()));
    let Node::Map(fields) = node else {
        return Err(bad());
    };
    insert(fields, rest, value, key)
}

fn map_to_value(map: BTreeMap<String, Node>) -> Value {
    Value::Object(
        map.into_iter()
            .map(|(k, v)| (k, node_to_value(v)))
            .collect::<Map<_, _>>(),
    )
}

fn node_to_value(node: Node) -> Value {
    match node {
        Node::Text(text) => Value::String(text),
        Node::Map(map) => map_to_value(map),
        // Indexes need not be contiguous on the wire; their order is what counts.
        Node::List(items) => Value::Array(items.into_values().map(node_to_value).collect()),
    }
}

/// Parses an ISO 8601 UTC timestamp as awsQuery clients send it (`2026-11-30T02:10:00Z`,
/// `2026-11-30T02:10:00.123456Z`, or with a `+00:00` offset) into epoch milliseconds.
pub(crate) fn parse_iso8601(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't'])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let (clock, offset_ms) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':').unwrap_or((&offset[1..], "0"));
        let minutes = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
        (clock, sign * minutes * 60_000)
    };
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let seconds: f64 = clock_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || !(0.0..61.0).contains(&seconds)
    {
        return None;
    }
    let days = crate::auth::time::days_from_civil(year, month, day);
    let whole = ((days * 24 + hour) * 60 + minute) * 60_000;
    Some(whole + (seconds * 1000.0).round() as i64 - offset_ms)
}

/// Formats epoch milliseconds as ISO 8601 UTC (`2026-11-30T02:10:00.000Z`), as awsQuery
/// responses carry timestamps.
pub(crate) fn format_iso8601(epoch_ms: i64) -> String {
    let seconds = epoch_ms.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = crate::auth::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        epoch_ms.rem_euclid(1000)
    )
}

/// The XML body of a successful `action` with `result` (inner XML, empty for none).
pub(crate) fn success_xml(action: &str, result: &str, request_id: &str) -> String {
    let result = if result.is_empty() {
        String::new()
    } else {
        format!("<{action}Result>{result}</{action}Result>")
    };
    format!(
        "<{action}Response xmlns=\"{XMLNS}\">{result}<ResponseMetadata><RequestId>{request_id}\
         </RequestId></ResponseMetadata></{action}Response>"
    )
}

/// The XML body of an error, as awsQuery services send it.
pub(crate) fn error_xml(error: &CwError, request_id: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{}</Type><Code>{}</Code><Message>{}\
         </Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        error.fault(),
        escape(&error.code),
        escape(&error.message)
    )
}

/// Escapes text for an XML element.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_become_trees_with_lists_in_index_order() {
        let pairs = parse_form(
            b"Action=PutMetricData&Version=2010-08-01&Namespace=My+App%2Fx\
              &MetricData.member.2.MetricName=b&MetricData.member.1.MetricName=a\
              &MetricData.member.1.Dimensions.member.1.Name=StreamName\
              &MetricData.member.1.Dimensions.member.1.Value=s&MetricData.member.1.Values.member.1=1.5",
        )
        .unwrap();
        let tree = to_tree(&pairs).unwrap();
        assert_eq!(
            tree,
            serde_json::json!({
                "Namespace": "My App/x",
                "MetricData": [
                    {"MetricName": "a", "Dimensions": [{"Name": "StreamName", "Value": "s"}], "Values": ["1.5"]},
                    {"MetricName": "b"}
                ]
            })
        );
        assert!(parse_form(b"a=%zz").is_err());
        assert!(to_tree(&parse_form(b"MetricData.member.x.Value=1").unwrap()).is_err());
    }

    #[test]
    fn iso8601_timestamps_parse_with_fractions_and_offsets() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso8601("2016-04-04T19:58:46.480Z"),
            Some(1_459_799_926_480)
        );
        assert_eq!(
            parse_iso8601("2016-04-04T19:58:46.480000Z"),
            Some(1_459_799_926_480)
        );
        assert_eq!(
            parse_iso8601("2016-04-04T21:58:46.480+02:00"),
            Some(1_459_799_926_480)
        );
        assert_eq!(parse_iso8601("2016-13-04T19:58:46Z"), None);
        assert_eq!(parse_iso8601("yesterday"), None);
        assert_eq!(
            format_iso8601(1_459_799_926_480),
            "2016-04-04T19:58:46.480Z"
        );
        assert_eq!(
            parse_iso8601(&format_iso8601(1_459_799_926_480)),
            Some(1_459_799_926_480)
        );
    }
}
