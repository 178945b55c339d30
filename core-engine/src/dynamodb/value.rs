//! Attribute values and their DynamoDB JSON form: `{"S":"text"}`, `{"N":"12.5"}`,
//! `{"B":"<base64>"}`, `{"BOOL":true}`, `{"NULL":true}`, `{"SS":[…]}`, `{"NS":[…]}`, `{"BS":[…]}`,
//! `{"L":[…]}` and `{"M":{…}}`.
//!
//! Requests are read in two steps: serde reads the JSON shape into [`WireValue`] (a wrong JSON
//! type is a SerializationException, as in DynamoDB), then [`WireValue::validate`] checks what
//! DynamoDB checks (exactly one type, valid numbers, non-empty duplicate-free sets, at most
//! [`MAX_NESTING_LEVELS`] levels of lists and maps), which is a ValidationException. serde_json's
//! recursion limit (128 JSON levels, so about 64 levels of values) bounds the first step, and the
//! nesting check stops the second one, before anything recurses further.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::error::DdbError;
use super::number::Number;

/// An item: attribute names to values.
pub type Item = BTreeMap<String, AttributeValue>;

/// One attribute value of any DynamoDB type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValue {
    /// String.
    S(String),
    /// Number.
    N(Number),
    /// Binary.
    B(Vec<u8>),
    /// Boolean.
    Bool(bool),
    /// Null (always `true` on the wire).
    Null,
    /// String set, in the order given.
    Ss(Vec<String>),
    /// Number set.
    Ns(Vec<Number>),
    /// Binary set.
    Bs(Vec<Vec<u8>>),
    /// List.
    L(Vec<AttributeValue>),
    /// Map.
    M(Item),
}

impl AttributeValue {
    /// The DynamoDB type descriptor: `S`, `N`, `B`, `BOOL`, `NULL`, `SS`, `NS`, `BS`, `L` or `M`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::S(_) => "S",
            Self::N(_) => "N",
            Self::B(_) => "B",
            Self::Bool(_) => "BOOL",
            Self::Null => "NULL",
            Self::Ss(_) => "SS",
            Self::Ns(_) => "NS",
            Self::Bs(_) => "BS",
            Self::L(_) => "L",
            Self::M(_) => "M",
        }
    }

    /// The type as update-expression errors name it (`STRING`, `NUMBER`, …).
    pub fn long_type_name(&self) -> &'static str {
        match self {
            Self::S(_) => "STRING",
            Self::N(_) => "NUMBER",
            Self::B(_) => "BINARY",
            Self::Bool(_) => "BOOLEAN",
            Self::Null => "NULL",
            Self::Ss(_) => "SS",
            Self::Ns(_) => "NS",
            Self::Bs(_) => "BS",
            Self::L(_) => "LIST",
            Self::M(_) => "MAP",
        }
    }

    /// Bytes this value counts for in the 400 KB item limit (DynamoDB's sizing rules: strings and
    /// binaries by length, numbers about one byte per two digits plus one, one byte for booleans
    /// and nulls, three bytes plus one per element for lists and maps).
    pub fn size(&self) -> usize {
        match self {
            Self::S(s) => s.len(),
            Self::N(n) => number_size(n),
            Self::B(b) => b.len(),
            Self::Bool(_) | Self::Null => 1,
            Self::Ss(v) => v.iter().map(String::len).sum(),
            Self::Ns(v) => v.iter().map(number_size).sum(),
            Self::Bs(v) => v.iter().map(Vec::len).sum(),
            Self::L(v) => 3 + v.iter().map(|e| 1 + e.size()).sum::<usize>(),
            Self::M(m) => 3 + m.iter().map(|(k, e)| 1 + k.len() + e.size()).sum::<usize>(),
        }
    }

    /// The string, if this is one.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            Self::S(s) => Some(s),
            _ => None,
        }
    }
}

fn number_size(n: &Number) -> usize {
    n.significant_digits().div_ceil(2) + 1
}

/// Bytes an item counts for: the sum of its attribute names and values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// The largest item DynamoDB stores.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// How deep values may nest, as in DynamoDB: a top-level attribute's value is at level 1, and
/// the elements of a list or map at level `n` are at level `n + 1`.
pub const MAX_NESTING_LEVELS: usize = 32;

fn nesting_error() -> DdbError {
    DdbError::Validation(
        "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit"
            .into(),
    )
}

/// Fails if a value of `item` is nested deeper than [`MAX_NESTING_LEVELS`] (an update can build
/// one out of values that each passed). Walks with its own stack, not by recursion.
pub(crate) fn check_nesting(item: &Item) -> Result<(), DdbError> {
    let mut pending: Vec<(&AttributeValue, usize)> = item.values().map(|v| (v, 1)).collect();
    while let Some((value, level)) = pending.pop() {
        if level > MAX_NESTING_LEVELS {
            return Err(nesting_error());
        }
        match value {
            AttributeValue::L(list) => pending.extend(list.iter().map(|v| (v, level + 1))),
            AttributeValue::M(map) => pending.extend(map.values().map(|v| (v, level + 1))),
            _ => {}
        }
    }
    Ok(())
}

impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Self::S(v) => map.serialize_entry("S", v)?,
            Self::N(v) => map.serialize_entry("N", &v.to_string())?,
            Self::B(v) => map.serialize_entry("B", &STANDARD.encode(v))?,
            Self::Bool(v) => map.serialize_entry("BOOL", v)?,
            Self::Null => map.serialize_entry("NULL", &true)?,
            Self::Ss(v) => map.serialize_entry("SS", v)?,
            Self::Ns(v) => map.serialize_entry("NS", &NumberList(v))?,
            Self::Bs(v) => map.serialize_entry("BS", &BinaryList(v))?,
            Self::L(v) => map.serialize_entry("L", v)?,
            Self::M(v) => map.serialize_entry("M", v)?,
        }
        map.end()
    }
}

struct NumberList<'a>(&'a [Number]);

impl Serialize for NumberList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for n in self.0 {
            seq.serialize_element(&n.to_string())?;
        }
        seq.end()
    }
}

struct BinaryList<'a>(&'a [Vec<u8>]);

impl Serialize for BinaryList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for b in self.0 {
            seq.serialize_element(&STANDARD.encode(b))?;
        }
        seq.end()
    }
}

/// Reads stored values back (the store writes the same JSON as the wire). The nesting limit is
/// not applied, so that a log written before it existed still opens.
impl<'de> Deserialize<'de> for AttributeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WireValue::deserialize(d)?
            .validate_at(1, usize::MAX)
            .map_err(|e| de::Error::custom(e.to_string()))
    }
}

/// An attribute value as the JSON has it, before DynamoDB's checks.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireValue {
    #[serde(rename = "S")]
    s: Option<String>,
    #[serde(rename = "N")]
    n: Option<String>,
    #[serde(rename = "B")]
    b: Option<WireBlob>,
    #[serde(rename = "BOOL")]
    bool: Option<bool>,
    #[serde(rename = "NULL")]
    null: Option<bool>,
    #[serde(rename = "SS")]
    ss: Option<Vec<String>>,
    #[serde(rename = "NS")]
    ns: Option<Vec<String>>,
    #[serde(rename = "BS")]
    bs: Option<Vec<WireBlob>>,
    #[serde(rename = "L")]
    l: Option<Vec<WireValue>>,
    #[serde(rename = "M")]
    m: Option<BTreeMap<String, WireValue>>,
}

/// A base64 blob member.
#[derive(Clone, Debug, Default)]
pub struct WireBlob(Vec<u8>);

impl<'de> Deserialize<'de> for WireBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(WireBlob)
            .map_err(|_| de::Error::custom("Base64 encoded data is not valid"))
    }
}

/// An item as the JSON has it.
pub type WireItem = BTreeMap<String, WireValue>;

impl WireValue {
    /// Checks the value as DynamoDB does and converts it, as the value of a top-level
    /// attribute (or of a placeholder).
    pub fn validate(self) -> Result<AttributeValue, DdbError> {
        self.validate_at(1, MAX_NESTING_LEVELS)
    }

    /// Checks a value found at nesting `level`, allowing at most `max_level`.
    fn validate_at(self, level: usize, max_level: usize) -> Result<AttributeValue, DdbError> {
        if level > max_level {
            return Err(nesting_error());
        }
        let set = [
            self.s.is_some(),
            self.n.is_some(),
            self.b.is_some(),
            self.bool.is_some(),
            self.null.is_some(),
            self.ss.is_some(),
            self.ns.is_some(),
            self.bs.is_some(),
            self.l.is_some(),
            self.m.is_some(),
        ]
        .iter()
        .filter(|&&x| x)
        .count();
        if set == 0 {
            return Err(DdbError::Validation(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes".into(),
            ));
        }
        if set > 1 {
            return Err(DdbError::Validation(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes".into(),
            ));
        }
        let invalid = |m: &str| {
            DdbError::Validation(format!("One or more parameter values were invalid: {m}"))
        };
        if let Some(s) = self.s {
            return Ok(AttributeValue::S(s));
        }
        if let Some(n) = self.n {
            return parse_number(&n).map(AttributeValue::N);
        }
        if let Some(b) = self.b {
            return Ok(AttributeValue::B(b.0));
        }
        if let Some(b) = self.bool {
            return Ok(AttributeValue::Bool(b));
        }
        if let Some(null) = self.null {
            if !null {
                return Err(invalid(
                    "Null attribute value types must have the value of true",
                ));
            }
            return Ok(AttributeValue::Null);
        }
        if let Some(ss) = self.ss {
            if ss.is_empty() {
                return Err(invalid("An string set  may not be empty"));
            }
            if has_duplicates(&ss) {
                return Err(invalid(&format!(
                    "Input collection {ss:?} contains duplicates."
                )));
            }
            return Ok(AttributeValue::Ss(ss));
        }
        if let Some(ns) = self.ns {
            if ns.is_empty() {
                return Err(invalid("An number set  may not be empty"));
            }
            let numbers = ns
                .iter()
                .map(|n| parse_number(n))
                .collect::<Result<Vec<_>, _>>()?;
            if has_duplicates(&numbers) {
                return Err(DdbError::Validation(
                    "Input collection contains duplicates".into(),
                ));
            }
            return Ok(AttributeValue::Ns(numbers));
        }
        if let Some(bs) = self.bs {
            if bs.is_empty() {
                return Err(invalid("Binary sets should not be empty"));
            }
            let blobs: Vec<Vec<u8>> = bs.into_iter().map(|b| b.0).collect();
            if has_duplicates(&blobs) {
                return Err(invalid("Input collection of type BS contains duplicates."));
            }
            return Ok(AttributeValue::Bs(blobs));
        }
        if let Some(l) = self.l {
            return l
                .into_iter()
                .map(|v| v.validate_at(level + 1, max_level))
                .collect::<Result<_, _>>()
                .map(AttributeValue::L);
        }
        let m = self.m.unwrap_or_default();
        validate_map(m, level + 1, max_level).map(AttributeValue::M)
    }
}

/// Checks and converts every value of an item (or key).
pub fn validate_item(item: WireItem) -> Result<Item, DdbError> {
    validate_map(item, 1, MAX_NESTING_LEVELS)
}

fn validate_map(map: WireItem, level: usize, max_level: usize) -> Result<Item, DdbError> {
    map.into_iter()
        .map(|(k, v)| Ok((k, v.validate_at(level, max_level)?)))
        .collect()
}

fn parse_number(text: &str) -> Result<Number, DdbError> {
    Number::parse(text).map_err(|e| DdbError::Validation(e.message(text)))
}

fn has_duplicates<T: Eq + std::hash::Hash>(values: &[T]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(values.len());
    !values.iter().all(|v| seen.insert(v))
}

/// A key attribute's value: the scalar types a key may have. Ordered as DynamoDB sorts range
/// keys: strings and binaries by bytes, numbers by value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyValue {
    /// A number key.
    N(Number),
    /// A string key.
    S(String),
    /// A binary key.
    B(Vec<u8>),
}

impl KeyValue {
    /// The key value held by an attribute value, if it is a scalar of key type.
    pub fn from_attr(value: &AttributeValue) -> Option<Self> {
        match value {
            AttributeValue::S(s) => Some(Self::S(s.clone())),
            AttributeValue::N(n) => Some(Self::N(n.clone())),
            AttributeValue::B(b) => Some(Self::B(b.clone())),
            _ => None,
        }
    }

    /// Bytes hashed to pick a scan segment.
    pub fn hash_bytes(&self) -> Vec<u8> {
        match self {
            Self::S(s) => s.as_bytes().to_vec(),
            Self::N(n) => n.to_string().into_bytes(),
            Self::B(b) => b.clone(),
        }
    }
}

impl fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(text) => f.write_str(&text),
            Err(_) => f.write_str("?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(json: &str) -> Result<AttributeValue, DdbError> {
        serde_json::from_str::<WireValue>(json).unwrap().validate()
    }

    #[test]
    fn every_type_round_trips_through_exact_json() {
        for json in [
            r#"{"S":"héllo"}"#,
            r#"{"N":"-12.5"}"#,
            r#"{"B":"AAEC/w=="}"#,
            r#"{"BOOL":false}"#,
            r#"{"NULL":true}"#,
            r#"{"SS":["b","a"]}"#,
            r#"{"NS":["1","2.5"]}"#,
            r#"{"BS":["AA==","AQ=="]}"#,
            r#"{"L":[{"S":"x"},{"N":"1"},{"L":[]}]}"#,
            r#"{"M":{"a":{"NULL":true},"b":{"M":{}}}}"#,
        ] {
            let value = wire(json).unwrap();
            assert_eq!(serde_json::to_string(&value).unwrap(), json);
            let stored: AttributeValue = serde_json::from_str(json).unwrap();
            assert_eq!(stored, value);
        }
        assert_eq!(
            wire(r#"{"N":"1.50E1"}"#).unwrap().to_string(),
            r#"{"N":"15"}"#
        );
        assert_eq!(
            wire(r#"{"B":"AAEC/w=="}"#).unwrap(),
            AttributeValue::B(vec![0, 1, 2, 255])
        );
    }

    #[test]
    fn invalid_values_get_dynamodb_messages() {
        for (json, message) in [
            (
                "{}",
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
            ),
            (
                r#"{"S":"a","N":"1"}"#,
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
            ),
            (
                r#"{"N":"abc"}"#,
                "The parameter cannot be converted to a numeric value: abc",
            ),
            (
                r#"{"NULL":false}"#,
                "One or more parameter values were invalid: Null attribute value types must have the value of true",
            ),
            (
                r#"{"SS":[]}"#,
                "One or more parameter values were invalid: An string set  may not be empty",
            ),
            (
                r#"{"NS":[]}"#,
                "One or more parameter values were invalid: An number set  may not be empty",
            ),
            (
                r#"{"BS":[]}"#,
                "One or more parameter values were invalid: Binary sets should not be empty",
            ),
            (
                r#"{"NS":["1","1.0"]}"#,
                "Input collection contains duplicates",
            ),
            (
                r#"{"L":[{"N":"1e200"}]}"#,
                "Number overflow. Attempting to store a number with magnitude larger than supported range",
            ),
        ] {
            let err = wire(json).unwrap_err();
            assert_eq!(err.code(), "ValidationException", "{json}");
            assert_eq!(err.to_string(), message, "{json}");
        }
        // A wrong JSON type is a serialization problem, found by serde.
        assert!(serde_json::from_str::<WireValue>(r#"{"S":5}"#).is_err());
        assert!(serde_json::from_str::<WireValue>(r#"{"B":"***"}"#).is_err());
        assert!(serde_json::from_str::<WireValue>(r#"{"X":"1"}"#).is_err());
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        let mut item = Item::new();
        item.insert("ab".into(), AttributeValue::S("xyz".into()));
        item.insert(
            "n".into(),
            AttributeValue::N(Number::parse("12345").unwrap()),
        );
        item.insert(
            "l".into(),
            AttributeValue::L(vec![AttributeValue::Bool(true)]),
        );
        // 2+3, 1+(3 digits->3+1=4), 1+(3+1+1)
        assert_eq!(item_size(&item), 5 + 5 + 6);
    }

    #[test]
    fn key_values_order_like_range_keys() {
        let n = |t: &str| KeyValue::N(Number::parse(t).unwrap());
        assert!(n("-3") < n("2"));
        assert!(n("2") < n("10"));
        assert!(KeyValue::S("a".into()) < KeyValue::S("b".into()));
        assert!(KeyValue::S("Z".into()) < KeyValue::S("a".into()));
        assert!(KeyValue::B(vec![1]) < KeyValue::B(vec![1, 0]));
    }

    /// `levels` levels of lists, the innermost holding a string: that string is at level
    /// `levels + 1` when the outer list is a top-level attribute's value.
    fn nested(levels: usize) -> String {
        format!(
            r#"{}{{"S":"x"}}{}"#,
            r#"{"L":["#.repeat(levels),
            "]}".repeat(levels)
        )
    }

    #[test]
    fn values_nest_at_most_32_levels() {
        let item = |json: &str| {
            validate_item(serde_json::from_str(&format!(r#"{{"a":{json}}}"#)).unwrap())
        };
        let ok = item(&nested(31)).unwrap();
        check_nesting(&ok).unwrap();
        let message = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";
        assert_eq!(item(&nested(32)).unwrap_err().to_string(), message);
        let maps = format!(
            r#"{}{{"S":"x"}}{}"#,
            r#"{"M":{"k":"#.repeat(32),
            "}}".repeat(32)
        );
        assert_eq!(item(&maps).unwrap_err().to_string(), message);
        // An empty list at level 32 is allowed: nothing is at level 33.
        let empty = format!(r#"{}{}"#, r#"{"L":["#.repeat(32), "]}".repeat(32));
        item(&empty).unwrap();
        // Stored values are read back whatever their depth, so an older log still opens.
        let stored: AttributeValue = serde_json::from_str(&nested(40)).unwrap();
        let mut deep = Item::new();
        deep.insert("a".into(), stored);
        assert_eq!(check_nesting(&deep).unwrap_err().to_string(), message);
    }

    #[test]
    fn json_nested_past_serdes_limit_is_a_serialization_error_not_a_crash() {
        let text = nested(10_000);
        assert!(serde_json::from_str::<WireValue>(&text).is_err());
        assert!(serde_json::from_str::<AttributeValue>(&text).is_err());
    }
}
