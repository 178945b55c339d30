//! Every user record delivered exactly once, in order per key, and readable after deaggregation.

use std::collections::HashMap;
use std::time::Duration;

use kpl::{Config, Producer, Record};

use crate::common::{Setup, settle};

/// Puts `keys` x `per_key` records and checks what consumers read back.
/// The round number at the end of an event such as `user-7-event-12`.
fn event_round(event: &str) -> u32 {
    event
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

async fn deliver_all(config: Config, stream: &str) -> Setup {
    let setup = Setup::unlimited(stream, 4).await;
    let preserve_order = config.preserve_order;
    let producer = Producer::new(setup.client.clone(), stream, config)
        .await
        .unwrap();
    let (keys, per_key) = (50, 40);
    let mut futures = Vec::new();
    for round in 0..per_key {
        for key in 0..keys {
            let record = Record::new(format!("user-{key}"), format!("user-{key}-event-{round}"));
            futures.push(producer.put(record).await.unwrap());
        }
    }
    let outcomes = settle(futures).await;
    let shards = setup
        .client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    for outcome in &outcomes {
        let delivery = outcome.as_ref().expect("every record is delivered");
        assert!(shards.iter().any(|s| s.shard_id == delivery.shard_id));
        assert_eq!(delivery.attempts.len(), 1);
        assert!(delivery.attempts[0].error_code.is_none());
    }
    assert_eq!(producer.outstanding(), 0);
    let read = setup.read_user_records(stream).await;
    assert_eq!(read.len(), keys);
    for key in 0..keys {
        let data: Vec<String> = read[&format!("user-{key}")]
            .iter()
            .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
            .collect();
        let expected: Vec<String> = (0..per_key)
            .map(|round| format!("user-{key}-event-{round}"))
            .collect();
        if preserve_order {
            assert_eq!(data, expected, "user-{key}: exactly once, in order");
        } else {
            // Without preserve_order two PutRecords of one shard may be in flight at once and
            // land in either order; only exactly-once is promised.
            let mut sorted = data.clone();
            sorted.sort_by_key(|event| event_round(event));
            assert_eq!(sorted, expected, "user-{key}: exactly once");
        }
    }
    assert!(producer.shutdown(Duration::from_secs(5)).await.is_empty());
    setup
}

#[tokio::test]
async fn without_aggregation_each_record_is_its_own_kinesis_record() {
    let config = Config {
        aggregation_enabled: false,
        ..Config::default()
    };
    deliver_all(config, "plain").await;
}

#[tokio::test]
async fn with_preserve_order_each_key_arrives_exactly_once_in_order() {
    let config = Config {
        preserve_order: true,
        ..Config::default()
    };
    deliver_all(config, "ordered").await;
}

#[tokio::test]
async fn a_put_reports_shard_sequence_number_and_attempts() {
    let setup = Setup::unlimited("receipt", 2).await;
    let config = Config {
        aggregation_enabled: false,
        record_max_buffered_time: Duration::from_millis(10),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "receipt", config)
        .await
        .unwrap();
    let delivery = producer
        .put(Record::new("k", "hello"))
        .await
        .unwrap()
        .await
        .unwrap();
    let direct = setup
        .client
        .put_record()
        .stream_name("receipt")
        .partition_key("k")
        .data(aws_sdk_kinesis::primitives::Blob::new("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(delivery.shard_id, direct.shard_id, "same key, same shard");
    assert!(
        delivery.sequence_number.parse::<u128>().unwrap()
            < direct.sequence_number.parse::<u128>().unwrap()
    );
    assert_eq!(delivery.sub_sequence_number, None);
    assert_eq!(delivery.attempts.len(), 1);
}

#[tokio::test]
async fn invalid_records_are_refused_at_once_and_handed_back() {
    let setup = Setup::unlimited("invalid", 1).await;
    let producer = Producer::new(setup.client.clone(), "invalid", Config::default())
        .await
        .unwrap();
    let cases = [
        Record::new("", "data"),
        Record::new("k".repeat(257), "data"),
        Record::new("k", "data").with_explicit_hash_key("-1"),
        Record::new("k", vec![0u8; (1 << 20) + 1]),
    ];
    for record in cases {
        let failure = producer.try_put(record.clone()).expect_err("refused");
        assert!(
            matches!(failure.error, kpl::PutError::InvalidRecord(_)),
            "{failure}"
        );
        assert_eq!(failure.record, record);
    }
    let missing = Producer::new(setup.client.clone(), "no-such-stream", Config::default()).await;
    let error = missing.expect_err("no stream, no producer");
    assert!(
        error.to_string().contains("ResourceNotFoundException"),
        "{error}"
    );
}

#[tokio::test]
async fn flush_sends_without_waiting_for_the_buffer_time() {
    let setup = Setup::unlimited("flush", 1).await;
    let config = Config {
        record_max_buffered_time: Duration::from_secs(3600),
        aggregation_enabled: false,
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "flush", config)
        .await
        .unwrap();
    let futures: Vec<_> =
        futures::future::join_all((0..10).map(|i| producer.put(Record::new(format!("k{i}"), "x"))))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    assert!(producer.flush_all(Duration::from_secs(10)).await);
    assert!(settle(futures).await.iter().all(Result::is_ok));
    let read: HashMap<_, _> = setup.read_user_records("flush").await;
    assert_eq!(read.len(), 10);
}

#[tokio::test]
async fn aggregated_records_are_delivered_once_and_deaggregate() {
    let config = Config {
        record_max_buffered_time: Duration::from_millis(50),
        ..Config::default()
    };
    let setup = deliver_all(config, "aggregated").await;
    // The 2,000 user records travelled in far fewer Kinesis records.
    let mut kinesis_records = 0;
    for shard in setup
        .client
        .list_shards()
        .stream_name("aggregated")
        .send()
        .await
        .unwrap()
        .shards
        .unwrap()
    {
        let iterator = setup
            .client
            .get_shard_iterator()
            .stream_name("aggregated")
            .shard_id(shard.shard_id)
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        let out = setup
            .client
            .get_records()
            .shard_iterator(iterator)
            .send()
            .await
            .unwrap();
        kinesis_records += out.records.len();
        for record in &out.records {
            if user_records_in(record) > 1 {
                assert_eq!(
                    record.partition_key(),
                    Some("a"),
                    "aggregates carry the one-byte key the KPL uses"
                );
            }
        }
    }
    assert!(
        kinesis_records < 200,
        "2,000 user records in {kinesis_records} Kinesis records"
    );
}

/// How many user records a Kinesis record holds, decoded as consumers do.
fn user_records_in(record: &aws_sdk_kinesis::types::Record) -> usize {
    let data = bytes::Bytes::from(record.data.as_ref().to_vec());
    kpl::aggregation::deaggregate(record.partition_key().unwrap_or_default(), None, &data).len()
}

#[tokio::test]
async fn aggregated_deliveries_carry_sub_sequence_numbers() {
    let setup = Setup::unlimited("subseq", 1).await;
    let config = Config {
        record_max_buffered_time: Duration::from_secs(3600),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "subseq", config)
        .await
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..5 {
        futures.push(
            producer
                .put(Record::new(format!("k{i}"), format!("v{i}")))
                .await
                .unwrap(),
        );
    }
    producer.flush();
    let deliveries: Vec<_> = settle(futures)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        deliveries
            .iter()
            .all(|d| d.sequence_number == deliveries[0].sequence_number),
        "one aggregate"
    );
    let subs: Vec<_> = deliveries.iter().map(|d| d.sub_sequence_number).collect();
    assert_eq!(subs, [Some(0), Some(1), Some(2), Some(3), Some(4)]);
    let read = setup.read_user_records("subseq").await;
    assert_eq!(read["k3"][0].sub_sequence_number, 3);
    assert_eq!(read["k3"][0].data.as_ref(), b"v3");
}
