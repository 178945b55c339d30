//! The direct hot-path decoders ([`requests`]) against the translation they replace: for the
//! same CBOR body, `requests::put_records` must give what `cbor_request_to_json` followed by
//! the JSON path's parse gives, or fail exactly when it fails, with a `SerializationException`.
//! (The answers' writers are compared with the translation next to the answers, in
//! `kinesis::put::tests` and `kinesis::get_records::tests`.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::agree::{agree, agree_single};
use super::encode::{ARRAY, BYTES, MAP, TAG, TEXT, UNSIGNED, head};
use super::*;
use crate::kinesis::put::DataIn;
use crate::protocol::json::writer::tests::Rng;

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, BYTES, b.len() as u64);
    out.extend_from_slice(b);
}

/// A PutRecords body as the Java SDK writes it.
fn java_body(stream: &str, records: &[(&[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    head(&mut out, MAP, 2);
    text(&mut out, "StreamName");
    text(&mut out, stream);
    text(&mut out, "Records");
    head(&mut out, ARRAY, records.len() as u64);
    for (data, key) in records {
        head(&mut out, MAP, 2);
        text(&mut out, "Data");
        bytes(&mut out, data);
        text(&mut out, "PartitionKey");
        text(&mut out, key);
    }
    out
}

#[test]
fn java_put_records_bodies_decode_as_the_translation_does() {
    let mib = vec![0xa5; 1 << 20];
    let two_byte_key = "ключ".repeat(40); // 320 bytes: a 2-byte length head
    let four_byte_key = "k".repeat(70_000); // a 4-byte length head
    let records: Vec<(&[u8], &str)> = vec![
        (b"", "empty data"),
        (&[0, 0xff, 0x10], "🔑 ключ \"quoted\" \\ \u{0}"),
        (&mib, "one MiB"),
        (b"x", &two_byte_key),
        (b"y", &four_byte_key),
    ];
    let body = java_body("stream-é", &records);
    let decoded = agree(&body).unwrap();
    assert_eq!(decoded.stream_name.as_deref(), Some("stream-é"));
    let entries = decoded.records.unwrap();
    assert_eq!(entries.len(), 5);
    for ((data, key), (got_data, got_key, hash)) in records.iter().zip(&entries) {
        assert_eq!(got_data.as_ref().unwrap().as_ref().unwrap(), data);
        assert_eq!(got_key.as_deref(), Some(*key));
        assert_eq!(*hash, None);
    }
    // The text members are borrowed from the body, not copied.
    let input = requests::put_records(&body).unwrap();
    let name = input.stream_name.unwrap();
    assert!(matches!(name.0, std::borrow::Cow::Borrowed(_)));
    let range = body.as_ptr_range();
    assert!(range.contains(&name.0.as_ptr()));
    let entries = input.records.unwrap();
    match &entries[2].data {
        Some(DataIn::Bytes(std::borrow::Cow::Borrowed(data))) => {
            assert!(range.contains(&data.as_ptr()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_encodings_decode_as_the_translation_does() {
    let mut bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xa0],
        // Self-described, indefinite map and array, chunked text and bytes, a null member,
        // undefined, an unknown member holding nested values and a timestamp, base64 text
        // data, an explicit hash key and a stream ARN.
        {
            let mut out = vec![0xd9, 0xd9, 0xf7, 0xbf];
            text(&mut out, "StreamARN");
            text(&mut out, "arn:aws:kinesis:us-east-1:000000000000:stream/s");
            text(&mut out, "StreamName");
            out.push(0xf6);
            text(&mut out, "Unknown");
            out.extend_from_slice(&[0x82, 0xc1, 0x1a, 0x5f, 0x5e, 0x10, 0x00, 0xa1]);
            text(&mut out, "x");
            out.extend_from_slice(&[0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
            text(&mut out, "Records");
            out.push(0x9f);
            // chunked bytes and a chunked key
            out.push(0xa3);
            text(&mut out, "Data");
            out.extend_from_slice(&[0x5f, 0x42, 1, 2, 0x41, 3, 0xff]);
            out.push(0x7f);
            text(&mut out, "Partition");
            text(&mut out, "Key");
            out.push(0xff);
            out.extend_from_slice(&[0x7f, 0x62, b'p', b'k', 0xff]);
            text(&mut out, "ExplicitHashKey");
            text(&mut out, &u128::MAX.to_string());
            // base64 text data, an undefined key, a self-described entry
            out.extend_from_slice(&[0xd9, 0xd9, 0xf7, 0xa2]);
            text(&mut out, "Data");
            text(&mut out, "aGVsbG8=");
            text(&mut out, "PartitionKey");
            out.push(0xf7);
            // not base64
            out.push(0xa1);
            text(&mut out, "Data");
            text(&mut out, "***");
            out.push(0xff);
            out.push(0xff);
            out
        },
        // Records: null, and an empty list.
        {
            let mut out = vec![0xa1];
            text(&mut out, "Records");
            out.push(0xf6);
            out
        },
        {
            let mut out = vec![0xa1];
            text(&mut out, "Records");
            out.push(0x80);
            out
        },
        // A byte string where text belongs is its base64 text, as in the translation.
        {
            let mut out = vec![0xa1];
            text(&mut out, "StreamName");
            out.extend_from_slice(&[0x41, b's']);
            out
        },
        // An unknown member given twice is ignored twice.
        {
            let mut out = vec![0xa2];
            text(&mut out, "Other");
            out.push(0x01);
            text(&mut out, "Other");
            out.push(0x02);
            out
        },
    ];
    bodies.push(java_body("s", &[]));
    for body in &bodies {
        agree(body).unwrap_or_else(|code| panic!("{code} for {body:02x?}"));
    }
    let decoded = agree(&bodies[2]).unwrap();
    let entries = decoded.records.unwrap();
    assert_eq!(entries[0].0, Some(Ok(vec![1, 2, 3])));
    assert_eq!(entries[0].1.as_deref(), Some("pk"));
    assert_eq!(entries[1].0, Some(Ok(b"hello".to_vec())));
    assert_eq!(entries[1].1, None);
    assert_eq!(entries[2].0, Some(Err(())));
}

#[test]
fn malformed_put_records_bodies_are_serialization_exceptions() {
    let member = |name: &str, value: &[u8]| {
        let mut out = vec![0xa1];
        text(&mut out, name);
        out.extend_from_slice(value);
        out
    };
    let entry = |name: &str, value: &[u8]| {
        let mut records = vec![0x81, 0xa1];
        text(&mut records, name);
        records.extend_from_slice(value);
        member("Records", &records)
    };
    let mut trailing = java_body("s", &[(b"d", "k")]);
    trailing.push(0x00);
    let mut duplicate = vec![0xa2];
    for _ in 0..2 {
        text(&mut duplicate, "StreamName");
        text(&mut duplicate, "s");
    }
    let mut non_text_key = vec![0xa1, 0x01];
    text(&mut non_text_key, "s");
    let bodies: Vec<Vec<u8>> = vec![
        vec![0x80],
        vec![0x01],
        vec![0xf6],
        vec![0xc1, 0x01],
        vec![0xff],
        vec![0xa1],
        trailing,
        duplicate,
        non_text_key,
        member("StreamName", &[0x01]),
        member("StreamName", &[0xc1, 0x61, b's']),
        member("StreamName", &[0x62, 0xff, 0xfe]),
        member("Records", &[0xa0]),
        member("Records", &[0x81, 0xf6]),
        member("Records", &[0x81, 0x80]),
        member("Records", &[0x82, 0xa0]),
        entry("Data", &[0x01]),
        entry("Data", &[0xc2, 0x41, 0x00]),
        entry("Data", &[0x5f, 0x61, b'x', 0xff]),
        entry("PartitionKey", &[0xf5]),
        entry("ExplicitHashKey", &[0x1b, 0, 0, 0, 0, 0, 0, 0, 1]),
        entry("Other", &[0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]),
        entry("Other", &[0xc2, 0x00]),
        member(
            "Records",
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        member(
            "Data",
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        member("Deep", &[0x81; 40]),
    ];
    for body in &bodies {
        assert_eq!(agree(body), Err("SerializationException"), "{body:02x?}");
    }
}

/// A random PutRecords body: the Java SDK's shape with random encodings (definite or not,
/// chunked or not, members in any order, unknown and null members thrown in).
fn random_body(rng: &mut Rng) -> Vec<u8> {
    let alphabet: Vec<char> = "aZ09-_\"\\/é漢🔑\u{0}\n ".chars().collect();
    let word = |rng: &mut Rng, max: u64| -> String {
        (0..rng.below(max))
            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
            .collect()
    };
    let mut out = Vec::new();
    let text_item = |out: &mut Vec<u8>, rng: &mut Rng, s: &str| {
        if rng.below(8) == 0 && s.len() > 1 {
            let split = s.char_indices().nth(1).map_or(s.len(), |(i, _)| i);
            out.push(0x7f);
            text(out, &s[..split]);
            text(out, &s[split..]);
            out.push(0xff);
        } else {
            text(out, s);
        }
    };
    let count = rng.below(6);
    let indefinite = rng.below(4) == 0;
    let members = 2 + rng.below(2);
    head(&mut out, MAP, members);
    let mut order = ["StreamName", "Records", "Unknown"];
    if rng.below(2) == 0 {
        order.swap(0, 1);
    }
    for name in &order[..members as usize] {
        text(&mut out, name);
        match *name {
            "StreamName" => {
                let name = word(rng, 10);
                text_item(&mut out, rng, &name);
            }
            "Unknown" => {
                head(&mut out, ARRAY, 2);
                head(&mut out, TAG, 1);
                head(&mut out, UNSIGNED, rng.below(1 << 40));
                out.push(0xf6);
            }
            _ => {
                if indefinite {
                    out.push(0x9f);
                } else {
                    head(&mut out, ARRAY, count);
                }
                for _ in 0..count {
                    let entry_members = 1 + rng.below(3);
                    head(&mut out, MAP, entry_members);
                    for member in ["PartitionKey", "Data", "ExplicitHashKey"]
                        .iter()
                        .take(entry_members as usize)
                    {
                        text(&mut out, member);
                        match (*member, rng.below(10)) {
                            (_, 0) => out.push(0xf6),
                            ("Data", 1) => text(&mut out, &STANDARD.encode(word(rng, 5))),
                            ("Data", _) => {
                                let data: Vec<u8> =
                                    (0..rng.below(300)).map(|_| rng.next() as u8).collect();
                                bytes(&mut out, &data);
                            }
                            ("ExplicitHashKey", _) => {
                                text(&mut out, &(u128::from(rng.next()) << 64).to_string());
                            }
                            _ => {
                                let key = word(rng, 30);
                                text_item(&mut out, rng, &key);
                            }
                        }
                    }
                }
                if indefinite {
                    out.push(0xff);
                }
            }
        }
    }
    out
}

#[test]
fn random_bodies_their_truncations_and_mutations_decode_as_the_translation_does() {
    let mut rng = Rng(0xc0ff_ee00_1234_5678);
    let mut passed = 0;
    for round in 0..400 {
        let body = random_body(&mut rng);
        agree(&body).unwrap_or_else(|code| panic!("{code} for {body:02x?}"));
        // Every truncation of a few, and random mutations of all.
        if round % 20 == 0 {
            for len in 0..body.len() {
                let _ = agree(&body[..len]);
            }
        }
        for _ in 0..20 {
            let mut mutated = body.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(mutated.len() as u64) as usize;
                mutated[at] = rng.next() as u8;
            }
            if agree(&mutated).is_ok() {
                passed += 1;
            }
            // The same bytes as a PutRecord body: its decoder must agree too.
            let _ = agree_single(&mutated);
        }
    }
    // Some mutations land in data or keys and still decode: both paths saw those too.
    assert!(passed > 0);
}

#[test]
fn put_record_bodies_decode_as_the_translation_does() {
    let mut java = vec![0xa4];
    text(&mut java, "StreamName");
    text(&mut java, "s");
    text(&mut java, "Data");
    bytes(&mut java, &[0, 1, 0xff]);
    text(&mut java, "PartitionKey");
    text(&mut java, &"🔑".repeat(64));
    text(&mut java, "SequenceNumberForOrdering");
    text(
        &mut java,
        "49590338271490256608559692538361571095921575989136588898",
    );
    let decoded = agree_single(&java).unwrap();
    assert_eq!(decoded.2, Some(vec![0, 1, 0xff]));
    let mut base64_text = vec![0xa2];
    text(&mut base64_text, "StreamARN");
    text(
        &mut base64_text,
        "arn:aws:kinesis:us-east-1:000000000000:stream/s",
    );
    text(&mut base64_text, "Data");
    text(&mut base64_text, "aGk=");
    assert_eq!(agree_single(&base64_text).unwrap().2, Some(b"hi".to_vec()));
    let mut not_base64 = vec![0xa1];
    text(&mut not_base64, "Data");
    text(&mut not_base64, "a");
    assert_eq!(agree_single(&not_base64), Err("SerializationException"));
    let mut mib = vec![0xa1];
    text(&mut mib, "Data");
    bytes(&mut mib, &vec![7; 1 << 20]);
    assert_eq!(agree_single(&mib).unwrap().2.unwrap().len(), 1 << 20);
    assert_eq!(agree_single(&[]).unwrap(), Default::default());
    for len in 0..java.len() {
        let _ = agree_single(&java[..len]);
    }
}
