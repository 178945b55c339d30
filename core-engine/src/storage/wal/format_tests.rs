//! Byte-level vectors and robustness tests for the codec in `format.rs`.

use bytes::Bytes;

use super::super::{RecoveredBatch, ShardRecord, StoredRecord};
use super::format::*;

fn record(shard: u32, seq: u128, arrival: i64, key: &str, data: &'static [u8]) -> ShardRecord {
    ShardRecord {
        shard_index: shard,
        record: StoredRecord {
            sequence_number: seq,
            arrival_ms: arrival,
            partition_key: key.to_owned(),
            data: Bytes::from_static(data),
            encrypted: false,
        },
    }
}

fn vector_records() -> Vec<ShardRecord> {
    vec![
        record(
            1,
            0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            1_700_000_000_000,
            "pk",
            b"hi",
        ),
        record(2, 5, -1, "", b""),
    ]
}

/// The frame of `vector_records()` in stream 7; CRC computed independently (Python zlib.crc32).
#[rustfmt::skip]
const VECTOR_FRAME: [u8; 96] = [
    0x58, 0x00, 0x00, 0x00,                         // payload length 88
    0xe9, 0x3d, 0xc9, 0x6a,                         // CRC32 0x6ac93de9
    0x07, 0, 0, 0, 0, 0, 0, 0,                      // stream id 7
    0x02, 0, 0, 0,                                  // 2 records
    0x01, 0, 0, 0,                                  // shard 1
    0x10, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, // sequence number, low half
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // sequence number, high half
    0x00, 0x68, 0xe5, 0xcf, 0x8b, 0x01, 0x00, 0x00, // arrival 1_700_000_000_000
    0x02, 0, 0, 0, b'p', b'k',                      // partition key
    0x02, 0, 0, 0, b'h', b'i',                      // data
    0x02, 0, 0, 0,                                  // shard 2
    0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // sequence number 5
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // arrival -1
    0, 0, 0, 0,                                     // empty partition key
    0, 0, 0, 0,                                     // empty data
];

fn encode(stream: u64, records: &[ShardRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(stream, records, None, &mut out).expect("encodes");
    out
}

#[test]
fn frame_vector_encodes_to_exact_bytes() {
    assert_eq!(encode(7, &vector_records()), VECTOR_FRAME);
}

#[test]
fn frame_vector_decodes_back() {
    let buf = Bytes::from_static(&VECTOR_FRAME);
    let (batch, len) = decode_frame(&buf).expect("decodes");
    assert_eq!(len, VECTOR_FRAME.len());
    assert_eq!(
        batch,
        RecoveredBatch {
            stream_id: 7,
            records: vector_records(),
            sealed: None,
        }
    );
}

#[test]
fn frames_decode_back_to_back_and_report_their_length() {
    let mut buf = encode(1, &[]);
    // The largest stream id a plain frame can carry (the top bit marks a sealed batch).
    encode_frame(SEALED_FLAG - 1, &vector_records(), None, &mut buf).expect("encodes");
    let buf = Bytes::from(buf);
    let (first, len) = decode_frame(&buf).expect("first");
    assert_eq!((first.stream_id, first.records.len(), len), (1, 0, 20));
    let (second, len2) = decode_frame(&buf.slice(len..)).expect("second");
    assert_eq!(second.stream_id, SEALED_FLAG - 1);
    assert_eq!(second.records, vector_records());
    assert_eq!(len + len2, buf.len());
}

#[test]
fn segment_header_vector() {
    let header = segment_header(0x0102);
    assert_eq!(
        header,
        [
            b'S', b'H', b'R', b'D', b'L', b'W', b'A', b'L', // magic
            1, 0, 0, 0, // version
            0x02, 0x01, 0, 0, 0, 0, 0, 0, // first LSN
        ]
    );
    assert_eq!(check_segment_header(&header), Ok(0x0102));
    assert!(check_segment_header(&header[..19]).is_err());
    let mut bad_version = header;
    bad_version[8] = 2;
    assert!(check_segment_header(&bad_version).is_err());
    let mut bad_magic = header;
    bad_magic[0] = b'X';
    assert!(check_segment_header(&bad_magic).is_err());
}

#[test]
fn metadata_vector_and_corruption() {
    let file = encode_metadata(br#"{"a":1}"#);
    #[rustfmt::skip]
    let expected = [
        b'S', b'H', b'R', b'D', b'L', b'M', b'E', b'T', // magic
        1, 0, 0, 0,                                     // version
        7, 0, 0, 0, 0, 0, 0, 0,                         // snapshot length
        0xaf, 0xac, 0x1b, 0x56,                         // CRC32 0x561bacaf
        b'{', b'"', b'a', b'"', b':', b'1', b'}',
    ];
    assert_eq!(file, expected);
    assert_eq!(decode_metadata(&file).as_deref(), Ok(&br#"{"a":1}"#[..]));
    assert_eq!(decode_metadata(&encode_metadata(b"")), Ok(Vec::new()));
    for cut in 0..file.len() {
        assert!(decode_metadata(&file[..cut]).is_err(), "cut at {cut}");
    }
    for bit in 0..file.len() * 8 {
        let mut flipped = file.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(decode_metadata(&flipped).is_err(), "bit {bit}");
    }
    let mut longer = file.clone();
    longer.push(0);
    assert!(decode_metadata(&longer).is_err());
}

#[test]
fn every_truncation_is_an_error() {
    for cut in 0..VECTOR_FRAME.len() {
        let buf = Bytes::copy_from_slice(&VECTOR_FRAME[..cut]);
        assert!(
            matches!(decode_frame(&buf), Err(FrameError::Truncated { .. })),
            "cut at {cut}"
        );
    }
}

#[test]
fn every_bit_flip_is_an_error() {
    for bit in 0..VECTOR_FRAME.len() * 8 {
        let mut frame = VECTOR_FRAME;
        frame[bit / 8] ^= 1 << (bit % 8);
        let buf = Bytes::copy_from_slice(&frame);
        assert!(decode_frame(&buf).is_err(), "bit {bit}");
    }
}

#[test]
fn absurd_and_zero_lengths_are_errors() {
    let mut frame = VECTOR_FRAME;
    for len in [u32::MAX, MAX_PAYLOAD_LEN as u32 + 1] {
        frame[..4].copy_from_slice(&len.to_le_bytes());
        let buf = Bytes::copy_from_slice(&frame);
        assert_eq!(decode_frame(&buf), Err(FrameError::TooLong(len)));
    }
    // Zeroes, as a filesystem may leave after a crash: CRC32 of nothing is 0, so an empty
    // payload is refused by the frame itself.
    let zeros = Bytes::from_static(&[0; 64]);
    assert_eq!(decode_frame(&zeros), Err(FrameError::Empty));
    assert!(decode_frame(&Bytes::new()).is_err());
}

/// Re-checksums `payload` so that the mutation reaches the payload parser.
fn with_valid_crc(payload: &[u8]) -> Bytes {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

#[test]
fn malformed_payloads_with_valid_crc_are_errors() {
    let payload = &VECTOR_FRAME[8..];
    let cases: [(&str, usize, &[u8]); 5] = [
        ("huge record count", 8, &[0xff, 0xff, 0xff, 0xff]),
        ("count one too many", 8, &[3, 0, 0, 0]),
        ("key length past end", 40, &[0xff, 0xff, 0xff, 0x7f]),
        ("data length past end", 46, &[0xff, 0xff, 0xff, 0xff]),
        ("key not UTF-8", 44, &[0xc3, 0x28]),
    ];
    for (what, at, bytes) in cases {
        let mut p = payload.to_vec();
        p[at..at + bytes.len()].copy_from_slice(bytes);
        assert!(decode_frame(&with_valid_crc(&p)).is_err(), "{what}");
    }
    let mut trailing = payload.to_vec();
    trailing.push(0);
    assert_eq!(
        decode_frame(&with_valid_crc(&trailing)).map(|_| ()),
        Err(FrameError::Payload("trailing bytes after the last record"))
    );
    assert!(decode_frame(&with_valid_crc(&payload[..11])).is_err());
}

#[test]
fn mutating_every_position_never_panics() {
    // Deterministic xorshift so failures reproduce.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let payload = &VECTOR_FRAME[8..];
    for pos in 0..VECTOR_FRAME.len() {
        for value in [0x00, 0xff, 0x80, 0x7f, next() as u8, next() as u8] {
            let mut frame = VECTOR_FRAME;
            frame[pos] = value;
            let _ = decode_frame(&Bytes::copy_from_slice(&frame));
            for cut in [pos, pos + 1, VECTOR_FRAME.len()] {
                let _ = decode_frame(&Bytes::copy_from_slice(&frame[..cut]));
            }
            if let Some(i) = pos.checked_sub(8) {
                let mut p = payload.to_vec();
                p[i] = value;
                let _ = decode_frame(&with_valid_crc(&p));
                let _ = decode_frame(&with_valid_crc(&p[..i]));
            }
        }
    }
}

#[test]
fn oversized_batch_is_refused_before_encoding() {
    let big = ShardRecord {
        shard_index: 0,
        record: StoredRecord {
            sequence_number: 0,
            arrival_ms: 0,
            partition_key: String::new(),
            data: Bytes::from(vec![0u8; MAX_PAYLOAD_LEN]),
            encrypted: false,
        },
    };
    let mut out = Vec::new();
    let err = encode_frame(1, &[big], None, &mut out).expect_err("too large");
    assert_eq!(err, MAX_PAYLOAD_LEN + 12 + 36);
    assert!(out.is_empty());
}

/// A sealed batch: the stream id field carries the flag, nothing of the records is in the
/// clear, it opens with its key only, and the records come back marked encrypted.
#[test]
fn sealed_frames_hide_the_records_and_open_with_their_key_only() {
    use super::super::crypto::DataKey;
    let (key, _) = DataKey::generate();
    let mut records = vector_records();
    records.push(record(
        0,
        9,
        9,
        "partition-key-marker",
        b"secret-data-marker",
    ));
    let mut out = Vec::new();
    encode_frame(7, &records, Some(&key), &mut out).expect("encodes");
    let plain = encode(7, &records);
    // Header (8), flagged stream id (8), newest arrival (8), nonce (12), sealed body, tag (16).
    assert_eq!(out.len(), plain.len() + 8 + 12 + 16);
    assert_eq!(&out[8..16], &(7 | SEALED_FLAG).to_le_bytes());
    assert_eq!(&out[16..24], &1_700_000_000_000i64.to_le_bytes());
    for marker in [&b"partition-key-marker"[..], b"secret-data-marker"] {
        assert!(plain.windows(marker.len()).any(|w| w == marker));
        assert!(!out.windows(marker.len()).any(|w| w == marker));
    }
    let buf = Bytes::from(out);
    let (batch, len) = decode_frame(&buf).expect("decodes");
    assert_eq!(
        (batch.stream_id, batch.records.len(), len),
        (7, 0, buf.len())
    );
    let sealed = batch.sealed.expect("sealed");
    assert_eq!(sealed.newest_arrival_ms, Some(1_700_000_000_000));
    let (other, _) = DataKey::generate();
    assert!(sealed.clone().open(&other).is_err());
    let opened = sealed.open(&key).expect("opens");
    for r in &mut records {
        r.record.encrypted = true;
    }
    assert_eq!(opened, records);
}

#[test]
fn a_sealed_frame_with_a_flipped_ciphertext_bit_does_not_open() {
    use super::super::crypto::DataKey;
    let (key, _) = DataKey::generate();
    let mut out = Vec::new();
    encode_frame(3, &vector_records(), Some(&key), &mut out).expect("encodes");
    // The CRC is not what protects it here: patch it after the flip.
    out[40] ^= 1;
    let crc = crc32fast::hash(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    let (batch, _) = decode_frame(&Bytes::from(out)).expect("frame reads");
    assert!(batch.sealed.expect("sealed").open(&key).is_err());
}

#[test]
fn a_sealed_frame_whose_clear_arrival_time_was_changed_does_not_open() {
    use super::super::crypto::DataKey;
    let (key, _) = DataKey::generate();
    let mut out = Vec::new();
    encode_frame(3, &vector_records(), Some(&key), &mut out).expect("encodes");
    out[16] ^= 1;
    let crc = crc32fast::hash(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    let (batch, _) = decode_frame(&Bytes::from(out)).expect("frame reads");
    assert!(batch.sealed.expect("sealed").open(&key).is_err());
}
