//! The direct decoders of the hot requests ([`super::requests`]) against the translation
//! they replace, as a check both the unit tests and the fuzz target (`core-engine/fuzz`,
//! `cbor_hot_requests`) run: for the same CBOR body, each must give what
//! `cbor_request_to_json` followed by the JSON path's parse gives, or fail exactly when it
//! fails, with a `SerializationException`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{cbor_request_to_json, input_shape, requests};
use crate::kinesis::put::{DataIn, PutRecordInput, PutRecordsInput};
use crate::protocol::json;

/// Checks both hot request decoders against the translation on `body`; panics if they
/// disagree.
pub(crate) fn check(body: &[u8]) {
    let _ = agree(body);
    let _ = agree_single(body);
}

/// One PutRecords entry, owned: data (`Err` where base64 text is not base64), key, hash key.
pub(crate) type Entry = (Option<Result<Vec<u8>, ()>>, Option<String>, Option<String>);

/// A PutRecords request, owned, so both paths' results compare.
#[derive(Debug, PartialEq)]
pub(crate) struct Records {
    pub(crate) stream_name: Option<String>,
    pub(crate) stream_arn: Option<String>,
    pub(crate) records: Option<Vec<Entry>>,
}

fn owned(input: PutRecordsInput<'_>) -> Records {
    let text = |t: Option<json::Text<'_>>| t.map(|t| t.0.into_owned());
    Records {
        stream_name: text(input.stream_name),
        stream_arn: text(input.stream_arn),
        records: input.records.map(|entries| {
            entries
                .into_iter()
                .map(|e| {
                    let data = e.data.map(|d| match d {
                        DataIn::Bytes(bytes) => Ok(bytes.into_owned()),
                        DataIn::Base64(text) => STANDARD.decode(text.0.as_bytes()).map_err(|_| ()),
                    });
                    (data, text(e.partition_key), text(e.explicit_hash_key))
                })
                .collect()
        }),
    }
}

fn direct(body: &[u8]) -> Result<Records, &'static str> {
    requests::put_records(body).map(owned).map_err(|e| e.code())
}

fn translated(body: &[u8]) -> Result<Records, &'static str> {
    let json = cbor_request_to_json(body, input_shape("PutRecords")).map_err(|e| e.code())?;
    json::decode_borrowed::<PutRecordsInput<'_>>(&json)
        .map(owned)
        .map_err(|e| e.code())
}

/// Both paths agree on `body`; gives their result.
pub(crate) fn agree(body: &[u8]) -> Result<Records, &'static str> {
    let (direct, translated) = (direct(body), translated(body));
    assert_eq!(direct, translated, "{body:02x?}");
    if let Err(code) = direct {
        assert_eq!(code, "SerializationException");
    }
    direct
}

/// A PutRecord request, owned.
pub(crate) type Single = (
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn single(input: PutRecordInput) -> Single {
    (
        input.stream_name,
        input.stream_arn,
        input.data.map(|d| d.0.to_vec()),
        input.partition_key,
        input.explicit_hash_key,
        input.sequence_number_for_ordering,
    )
}

pub(crate) fn agree_single(body: &[u8]) -> Result<Single, &'static str> {
    let direct = requests::put_record(body).map(single).map_err(|e| e.code());
    let translated = cbor_request_to_json(body, input_shape("PutRecord"))
        .and_then(|json| json::decode::<PutRecordInput>(&json))
        .map(single)
        .map_err(|e| e.code());
    assert_eq!(direct, translated, "{body:02x?}");
    if let Err(code) = direct {
        assert_eq!(code, "SerializationException");
    }
    direct
}
