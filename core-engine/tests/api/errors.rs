//! Every validation rule answers with AWS's error type and a message a user can act on.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};

use crate::common::{TestEngine, code_of};

fn entry(key: &str, size: usize) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(key)
        .data(Blob::new(vec![1u8; size]))
        .build()
        .unwrap()
}

#[tokio::test]
async fn create_stream_rejects_bad_input() {
    let engine = TestEngine::with(core_engine::Engine::builder().shard_limit(10)).await;
    let client = &engine.client;
    let (code, message) = code_of(
        client
            .create_stream()
            .stream_name("bad name!")
            .shard_count(1)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"), "{message}");
    let (code, message) = code_of(
        client
            .create_stream()
            .stream_name("x".repeat(129))
            .shard_count(1)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("length less than or equal to 128"),
        "{message}"
    );
    let (code, _) = code_of(
        client
            .create_stream()
            .stream_name("zero")
            .shard_count(0)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, message) = code_of(client.create_stream().stream_name("noshards").send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("Value null at 'shardCount'"), "{message}");
    let (code, message) = code_of(
        client
            .create_stream()
            .stream_name("huge")
            .shard_count(11)
            .send()
            .await,
    );
    assert_eq!(code, "LimitExceededException");
    assert!(message.contains("shard limit"), "{message}");
    engine.create_stream("dup", 1).await;
    let (code, message) = code_of(
        client
            .create_stream()
            .stream_name("dup")
            .shard_count(1)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceInUseException");
    assert_eq!(
        message,
        "Stream dup under account 000000000000 already exists."
    );
    let (code, _) = code_of(client.delete_stream().stream_name("never-was").send().await);
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn put_rejects_bad_records() {
    // Several near-1 MiB records in a row would exceed the shard's write limit.
    let engine = TestEngine::with(core_engine::Engine::builder().throughput_limits(false)).await;
    engine.create_stream("v", 1).await;
    let client = &engine.client;
    let put = |key: &str, data: Vec<u8>| {
        client
            .put_record()
            .stream_name("v")
            .partition_key(key)
            .data(Blob::new(data))
            .send()
    };

    let (code, message) = code_of(put("", b"x".to_vec()).await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("at 'partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1"), "{message}");
    let (code, _) = code_of(put(&"k".repeat(257), b"x".to_vec()).await);
    assert_eq!(code, "ValidationException");
    // 256 characters, not bytes: multi-byte characters are fine.
    put(&"é".repeat(256), b"x".to_vec()).await.unwrap();
    // 1 MiB of data is the most a record holds; with its key it is too much.
    let (code, message) = code_of(put("k", vec![0; (1 << 20) + 1]).await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("at 'data'"), "{message}");
    let (code, message) = code_of(put("key", vec![0; 1 << 20]).await);
    assert_eq!(code, "InvalidArgumentException");
    assert!(message.contains("maximum record size"), "{message}");
    put("k", vec![0; (1 << 20) - 1]).await.unwrap();

    let explicit = |hash: &str| {
        client
            .put_record()
            .stream_name("v")
            .partition_key("k")
            .explicit_hash_key(hash)
            .data(Blob::new("x"))
            .send()
    };
    let (code, _) = code_of(explicit("-1").await);
    assert_eq!(code, "ValidationException");
    let (code, message) = code_of(explicit("340282366920938463463374607431768211456").await);
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("ExplicitHashKey must be in the range: [0, 2^128-1]"),
        "{message}"
    );

    let (code, message) = code_of(
        client
            .put_record()
            .stream_name("nope")
            .partition_key("k")
            .data(Blob::new("x"))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(message, "Stream nope under account 000000000000 not found.");
}

#[tokio::test]
async fn put_records_enforces_count_and_size_limits() {
    let engine = TestEngine::start().await;
    engine.create_stream("limits", 1).await;
    let client = &engine.client;
    let too_many: Vec<_> = (0..501).map(|i| entry(&format!("k{i}"), 1)).collect();
    let (code, message) = code_of(
        client
            .put_records()
            .stream_name("limits")
            .set_records(Some(too_many))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("at 'records' failed to satisfy constraint: Member must have length less than or equal to 500"), "{message}");
    let too_big: Vec<_> = (0..11)
        .map(|i| entry(&format!("k{i}"), 1_000_000))
        .collect();
    let (code, message) = code_of(
        client
            .put_records()
            .stream_name("limits")
            .set_records(Some(too_big))
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(message.contains("10 MB"), "{message}");
    let bad_member = vec![entry("ok", 1), entry("", 1)];
    let (code, message) = code_of(
        client
            .put_records()
            .stream_name("limits")
            .set_records(Some(bad_member))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("at 'records.2.member.partitionKey'"),
        "{message}"
    );
    // Nothing from the rejected calls was written.
    assert!(
        engine
            .read_all("limits", "shardId-000000000000")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn shard_iterator_requests_are_checked() {
    let engine = TestEngine::start().await;
    engine.create_stream("it", 2).await;
    let client = &engine.client;
    let (_, seq) = engine.put("it", "k", b"x").await;
    let shard_of_seq = engine
        .client
        .put_record()
        .stream_name("it")
        .partition_key("k")
        .data(Blob::new("y"))
        .send()
        .await
        .unwrap()
        .shard_id;
    // A GetShardIterator request on stream "it", to complete per case.
    let iterator = |shard: &str, kind: ShardIteratorType| {
        client
            .get_shard_iterator()
            .stream_name("it")
            .shard_id(shard)
            .shard_iterator_type(kind)
    };
    let other_shard = if shard_of_seq == "shardId-000000000000" {
        "shardId-000000000001"
    } else {
        "shardId-000000000000"
    };

    let (code, message) = code_of(
        iterator("shardId-000000000009", ShardIteratorType::TrimHorizon)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(
        message,
        "Shard shardId-000000000009 in stream it under account 000000000000 does not exist"
    );
    let (code, message) = code_of(
        iterator(&shard_of_seq, ShardIteratorType::TrimHorizon)
            .starting_sequence_number(&seq)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("Request specified TRIM_HORIZON and also a StartingSequenceNumber"),
        "{message}"
    );
    let (code, _) = code_of(
        iterator(&shard_of_seq, ShardIteratorType::AtSequenceNumber)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    let (code, message) = code_of(
        iterator(other_shard, ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(&seq)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.starts_with("Invalid StartingSequenceNumber. It encodes"),
        "{message}"
    );
    let (code, _) = code_of(
        iterator(&shard_of_seq, ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number("12345")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    let (code, _) = code_of(
        iterator(&shard_of_seq, ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number("01")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = code_of(
        iterator(&shard_of_seq, ShardIteratorType::AtTimestamp)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    let future = aws_sdk_kinesis::primitives::DateTime::from_secs(4_000_000_000);
    let (code, message) = code_of(
        iterator(&shard_of_seq, ShardIteratorType::AtTimestamp)
            .timestamp(future)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("cannot be greater than the currentTimestampInMillis"),
        "{message}"
    );
    let (code, _) = code_of(
        client
            .get_shard_iterator()
            .stream_name("gone")
            .shard_id(&shard_of_seq)
            .shard_iterator_type(ShardIteratorType::Latest)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn get_records_requests_are_checked() {
    let engine = TestEngine::start().await;
    engine.create_stream("gr", 1).await;
    let client = &engine.client;
    let iterator = engine
        .iterator("gr", "shardId-000000000000", ShardIteratorType::Latest)
        .await;
    let (code, message) = code_of(
        client
            .get_records()
            .shard_iterator("AAAAnot-a-real-iterator")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert_eq!(message, "Invalid ShardIterator.");
    let (code, _) = code_of(
        client
            .get_records()
            .shard_iterator(&iterator)
            .limit(0)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, message) = code_of(
        client
            .get_records()
            .shard_iterator(&iterator)
            .limit(10_001)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("less than or equal to 10000"), "{message}");
    // An iterator of a deleted stream points nowhere.
    client
        .delete_stream()
        .stream_name("gr")
        .send()
        .await
        .unwrap();
    engine.create_stream("gr", 1).await;
    let (code, _) = code_of(client.get_records().shard_iterator(&iterator).send().await);
    assert_eq!(code, "ResourceNotFoundException");
}

/// `token` (URL-safe base64) with the byte at `at` XORed with `flip` and a fresh CRC32 over
/// everything but the last four bytes: what a hand-editor who knows a checksum-only layout
/// would send.
fn forge(token: &str, at: usize, flip: u8) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
    let body_len = bytes.len() - 4;
    bytes[at] ^= flip;
    let crc = crc32fast::hash(&bytes[..body_len]);
    bytes[body_len..].copy_from_slice(&crc.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn an_edited_shard_iterator_is_invalid_never_another_position() {
    let engine = TestEngine::start().await;
    engine.create_stream("signed", 2).await;
    let client = &engine.client;
    let shards = engine.shard_ids("signed").await;
    for key in 0..20 {
        engine.put("signed", &format!("k{key}"), b"secret").await;
    }
    let iterator = engine
        .iterator("signed", &shards[0], ShardIteratorType::Latest)
        .await;
    // Point it at the other shard (shard index), or at another position (its high byte).
    for (at, flip) in [(20, 1), (21, 0xff)] {
        let (code, message) = code_of(
            client
                .get_records()
                .shard_iterator(forge(&iterator, at, flip))
                .send()
                .await,
        );
        assert_eq!(code, "InvalidArgumentException");
        assert_eq!(message, "Invalid ShardIterator.");
    }
    // Any single changed character is refused too, and the genuine iterator still works.
    let mut chars: Vec<char> = iterator.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
    let (code, _) = code_of(
        client
            .get_records()
            .shard_iterator(chars.into_iter().collect::<String>())
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    let out = client
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap();
    assert!(out.records.is_empty());
    // An iterator from another engine (another key) is not accepted either.
    let other = TestEngine::start().await;
    other.create_stream("signed", 2).await;
    let foreign = other
        .iterator("signed", &shards[0], ShardIteratorType::TrimHorizon)
        .await;
    let (code, _) = code_of(client.get_records().shard_iterator(foreign).send().await);
    assert_eq!(code, "InvalidArgumentException");
}

#[tokio::test]
async fn an_edited_next_token_is_invalid() {
    let engine = TestEngine::start().await;
    engine.create_stream("pagea", 3).await;
    engine.create_stream("pageb", 3).await;
    let client = &engine.client;
    let first = client
        .list_shards()
        .stream_name("pagea")
        .max_results(1)
        .send()
        .await
        .unwrap();
    let token = first.next_token.expect("more shards");
    let page = client
        .list_shards()
        .next_token(&token)
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.shards().len(), 1);
    // The token's scope is the stream name, right after the issue time and its length: make it
    // name the other stream.
    let (code, message) = code_of(
        client
            .list_shards()
            .next_token(forge(&token, 11 + 4, b'a' ^ b'b'))
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException", "{message}");
    let streams = client.list_streams().limit(1).send().await.unwrap();
    let token = streams.next_token.expect("more streams");
    let (code, _) = code_of(
        client
            .list_streams()
            .next_token(forge(&token, 8, 0x40))
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
}

#[tokio::test]
async fn a_consumer_listing_token_of_another_stream_is_invalid() {
    let engine = TestEngine::start().await;
    let client = &engine.client;
    let mut arns = Vec::new();
    for stream in ["consumersa", "consumersb"] {
        engine.create_stream(stream, 1).await;
        let arn = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .unwrap()
            .stream_description_summary
            .unwrap()
            .stream_arn;
        for consumer in ["first", "second"] {
            client
                .register_stream_consumer()
                .stream_arn(&arn)
                .consumer_name(consumer)
                .send()
                .await
                .unwrap();
        }
        arns.push(arn);
    }
    let page = client
        .list_stream_consumers()
        .stream_arn(&arns[0])
        .max_results(1)
        .send()
        .await
        .unwrap();
    let token = page.next_token.expect("a second consumer");
    let same = client
        .list_stream_consumers()
        .stream_arn(&arns[0])
        .next_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(same.consumers().len(), 1);
    let (code, message) = code_of(
        client
            .list_stream_consumers()
            .stream_arn(&arns[1])
            .next_token(&token)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException", "{message}");
}

#[tokio::test]
async fn iterators_stay_valid_across_a_restart_of_a_durable_engine() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TestEngine::with(core_engine::Engine::builder().data_dir(dir.path())).await;
    engine.create_stream("kept", 1).await;
    engine.put("kept", "k", b"before").await;
    let iterator = engine
        .iterator(
            "kept",
            "shardId-000000000000",
            ShardIteratorType::TrimHorizon,
        )
        .await;
    engine.handle.shutdown().await;
    let engine = TestEngine::with(core_engine::Engine::builder().data_dir(dir.path())).await;
    let out = engine
        .client
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap();
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].data.as_ref(), b"before");
    let (code, _) = code_of(
        engine
            .client
            .get_records()
            .shard_iterator(forge(&iterator, 21, 0xff))
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    engine.handle.shutdown().await;
}

/// Ids that break the model's pattern are ValidationExceptions ("Member must satisfy regular
/// expression pattern"), as on AWS; well-formed ids of nothing are ResourceNotFoundException.
#[tokio::test]
async fn malformed_ids_fail_validation_and_unknown_ones_are_not_found() {
    use aws_sdk_kinesis::types::StartingPosition;

    let engine = TestEngine::start().await;
    engine.create_stream("fan", 1).await;
    let consumer = crate::fan_out::consumer(&engine, "ids").await;
    let pattern = |(code, message): (String, String), what: &str| {
        assert_eq!(code, "ValidationException", "{what}: {message}");
        assert!(
            message.contains("Member must satisfy regular expression pattern"),
            "{what}: {message}"
        );
    };
    let iterator = |shard: &str| {
        engine
            .client
            .get_shard_iterator()
            .stream_name("fan")
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
    };
    pattern(code_of(iterator("shard 0!").await), "GetShardIterator");
    let (code, _) = code_of(iterator("shardId-000000000009").await);
    assert_eq!(code, "ResourceNotFoundException");
    pattern(
        code_of(
            engine
                .client
                .split_shard()
                .stream_name("fan")
                .shard_to_split("shardId/0")
                .new_starting_hash_key("1000")
                .send()
                .await,
        ),
        "SplitShard",
    );
    pattern(
        code_of(
            engine
                .client
                .list_shards()
                .stream_name("fan")
                .exclusive_start_shard_id("shard id")
                .send()
                .await,
        ),
        "ListShards",
    );
    pattern(
        code_of(
            engine
                .client
                .describe_stream()
                .stream_name("fan")
                .exclusive_start_shard_id("shard id")
                .send()
                .await,
        ),
        "DescribeStream",
    );
    pattern(
        code_of(
            engine
                .client
                .describe_stream_summary()
                .stream_name("no such stream")
                .send()
                .await,
        ),
        "DescribeStreamSummary",
    );
    let (code, _) = code_of(
        engine
            .client
            .describe_stream_summary()
            .stream_name("no-such-stream")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    pattern(
        code_of(
            engine
                .client
                .describe_stream_consumer()
                .consumer_arn("not-a-consumer-arn")
                .send()
                .await,
        ),
        "DescribeStreamConsumer",
    );
    let (code, _) = code_of(
        engine
            .client
            .describe_stream_consumer()
            .consumer_arn(format!("{}9", consumer.trim_end_matches(char::is_numeric)))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    pattern(
        code_of(
            engine
                .client
                .subscribe_to_shard()
                .consumer_arn(&consumer)
                .shard_id("shard 0")
                .starting_position(
                    StartingPosition::builder()
                        .r#type(ShardIteratorType::Latest)
                        .build()
                        .unwrap(),
                )
                .send()
                .await,
        ),
        "SubscribeToShard",
    );
}
