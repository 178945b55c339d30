//! Throttling, injected failures, bounded memory, expiry and shutdown.

use std::time::Duration;

use core_engine::{Engine, Fault, FaultRule};
use kpl::{Config, Producer, PutError, Record};

use crate::common::{Setup, settle};

#[tokio::test]
async fn throttled_and_failed_records_are_retried_until_delivered() {
    // Limits on, one shard, and 30% of records failing inside PutRecords on top.
    let builder = Engine::builder()
        .fault(FaultRule::new("PutRecords", Fault::InternalFailure).with_probability(0.3))
        .fault_seed(5);
    let setup = Setup::new(builder, "rough", 1).await;
    let config = Config {
        aggregation_enabled: false,
        rate_limit: 300,
        retry_min_delay: Duration::from_millis(20),
        // Each attempt fails with probability 0.3 whatever came before: a short cap gives every
        // record ~100 attempts inside its 30 s TTL, so none expires by bad luck (0.3^100).
        retry_max_delay: Duration::from_millis(250),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "rough", config)
        .await
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..3_000 {
        futures.push(
            producer
                .put(Record::new(format!("k{}", i % 7), format!("{i}")))
                .await
                .unwrap(),
        );
    }
    let outcomes = settle(futures).await;
    let mut retried = 0;
    for outcome in &outcomes {
        let delivery = outcome
            .as_ref()
            .expect("delivered despite throttling and failures");
        if delivery.attempts.len() > 1 {
            retried += 1;
            let failed = &delivery.attempts[0];
            let code = failed.error_code.as_deref().unwrap();
            assert!(
                code == "InternalFailure" || code == "ProvisionedThroughputExceededException",
                "{code}"
            );
        }
    }
    assert!(retried > 0, "the run should have needed retries");
    let read = setup.read_user_records("rough").await;
    assert_eq!(
        read.values().map(Vec::len).sum::<usize>(),
        3_000,
        "every record exactly once"
    );
}

#[tokio::test]
async fn errors_that_cannot_succeed_fail_fast_with_the_record() {
    let setup = Setup::unlimited("gone", 1).await;
    let producer = Producer::new(setup.client.clone(), "gone", Config::default())
        .await
        .unwrap();
    setup
        .client
        .delete_stream()
        .stream_name("gone")
        .send()
        .await
        .unwrap();
    let failure = producer
        .put(Record::new("k", "lost stream"))
        .await
        .unwrap()
        .await
        .expect_err("the stream is gone");
    assert_eq!(failure.attempts.len(), 1, "no retries for a missing stream");
    assert!(
        matches!(&failure.error, PutError::Rejected { code, .. } if code == "ResourceNotFoundException"),
        "{failure}"
    );
    assert_eq!(failure.record, Record::new("k", "lost stream"));
}

#[tokio::test]
async fn memory_stays_bounded_under_sustained_throttling() {
    let builder = Engine::builder().fault(FaultRule::new("PutRecords", Fault::Throttle));
    let setup = Setup::new(builder, "stuck", 1).await;
    let config = Config {
        max_outstanding_records: 100,
        record_ttl: Duration::from_secs(60),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "stuck", config)
        .await
        .unwrap();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..1_000 {
        match producer.try_put(Record::new("k", format!("{i}"))) {
            Ok(future) => accepted.push(future),
            Err(failure) => {
                assert!(matches!(failure.error, PutError::Full(_)));
                refused += 1;
            }
        }
    }
    assert_eq!(accepted.len(), 100);
    assert_eq!(refused, 900);
    assert_eq!(producer.outstanding(), 100);
    // `put` waits instead of failing.
    let waiting = tokio::time::timeout(
        Duration::from_millis(200),
        producer.put(Record::new("k", "more")),
    )
    .await;
    assert!(waiting.is_err(), "put waits while the producer is full");
    // Shutdown gives back exactly the 100 undelivered records.
    let undelivered = producer.shutdown(Duration::from_millis(300)).await;
    assert_eq!(undelivered.len(), 100);
    for outcome in settle(accepted).await {
        assert!(matches!(
            outcome.expect_err("not delivered").error,
            PutError::Shutdown
        ));
    }
}

#[tokio::test]
async fn records_expire_after_their_ttl_and_come_back() {
    let builder = Engine::builder().fault(FaultRule::new("PutRecords", Fault::Throttle));
    let setup = Setup::new(builder, "ttl", 1).await;
    let config = Config {
        record_ttl: Duration::from_millis(500),
        retry_min_delay: Duration::from_millis(20),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "ttl", config)
        .await
        .unwrap();
    let failure = producer
        .put(Record::new("k", "late"))
        .await
        .unwrap()
        .await
        .expect_err("expired");
    match &failure.error {
        PutError::Expired {
            attempts,
            last_error,
        } => {
            assert!(*attempts >= 1);
            assert_eq!(last_error, "ProvisionedThroughputExceededException");
        }
        other => panic!("expected expiry, got {other}"),
    }
    assert_eq!(
        failure.attempts.len(),
        match failure.error {
            PutError::Expired { attempts, .. } => attempts,
            _ => 0,
        }
    );
    assert_eq!(failure.record.data.as_ref(), b"late");
}

#[tokio::test]
async fn fail_if_throttled_fails_instead_of_retrying() {
    let builder = Engine::builder().fault(FaultRule::new("PutRecords", Fault::Throttle));
    let setup = Setup::new(builder, "strict", 1).await;
    let config = Config {
        fail_if_throttled: true,
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "strict", config)
        .await
        .unwrap();
    let failure = producer
        .put(Record::new("k", "x"))
        .await
        .unwrap()
        .await
        .expect_err("throttled");
    assert!(matches!(failure.error, PutError::Throttled(_)));
    assert_eq!(failure.attempts.len(), 1);
}

#[tokio::test]
async fn order_is_kept_per_key_across_retries_when_asked() {
    let builder = Engine::builder()
        .throughput_limits(false)
        .fault(FaultRule::new("PutRecords", Fault::InternalFailure).with_probability(0.2))
        .fault_seed(9);
    let setup = Setup::new(builder, "ordered", 2).await;
    let config = Config {
        preserve_order: true,
        aggregation_enabled: false,
        retry_min_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(250),
        record_max_buffered_time: Duration::from_millis(5),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "ordered", config)
        .await
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..200 {
        futures.push(
            producer
                .put(Record::new(format!("k{}", i % 3), format!("{i:04}")))
                .await
                .unwrap(),
        );
    }
    assert!(settle(futures).await.iter().all(Result::is_ok));
    for (key, records) in setup.read_user_records("ordered").await {
        let data: Vec<_> = records
            .iter()
            .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
            .collect();
        let mut sorted = data.clone();
        sorted.sort();
        assert_eq!(data, sorted, "{key} kept its order");
    }
}

#[tokio::test]
async fn order_is_kept_per_key_when_part_of_an_aggregate_expires() {
    // The first Kinesis record sent, an aggregate of the first 400 ms of puts, fails once.
    let builder = Engine::builder()
        .throughput_limits(false)
        .fault(FaultRule::new("PutRecords", Fault::InternalFailure).times(1));
    let setup = Setup::new(builder, "partial", 1).await;
    // The aggregate is sent 400 ms after its first record and retried 150-300 ms after failing,
    // past the 500 ms TTL of its oldest records but within that of its newest: some of its
    // records expire, the rest must still go before everything put after them.
    let config = Config {
        preserve_order: true,
        record_max_buffered_time: Duration::from_millis(400),
        record_ttl: Duration::from_millis(500),
        retry_min_delay: Duration::from_millis(150),
        retry_max_delay: Duration::from_millis(150),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "partial", config)
        .await
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..100 {
        let record = Record::new(format!("k{}", i % 3), format!("{i:04}"));
        futures.push(producer.put(record).await.unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let outcomes = settle(futures).await;
    let expired = outcomes
        .iter()
        .filter(|o| matches!(o, Err(f) if matches!(f.error, PutError::Expired { .. })))
        .count();
    let retried = outcomes
        .iter()
        .filter(|o| o.as_ref().is_ok_and(|d| d.attempts.len() == 2))
        .count();
    assert!(
        expired > 0 && retried > 0,
        "part of the aggregate expired ({expired}) and part was retried ({retried})"
    );
    let mut delivered: Vec<String> = outcomes
        .iter()
        .zip(0..)
        .filter(|(outcome, _)| outcome.is_ok())
        .map(|(_, i)| format!("{i:04}"))
        .collect();
    let mut read_back = Vec::new();
    for (key, records) in setup.read_user_records("partial").await {
        let data: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
            .collect();
        let mut sorted = data.clone();
        sorted.sort();
        assert_eq!(data, sorted, "{key} kept its order");
        read_back.extend(data);
    }
    read_back.sort();
    delivered.sort();
    assert_eq!(read_back, delivered, "every delivered record, once");
}

#[tokio::test]
async fn a_record_bigger_than_the_producer_may_hold_is_refused_at_put() {
    let setup = Setup::unlimited("big", 1).await;
    let arn = setup
        .client
        .describe_stream_summary()
        .stream_name("big")
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_arn;
    setup
        .client
        .update_max_record_size()
        .stream_arn(arn)
        .max_record_size_in_kib(2048)
        .send()
        .await
        .unwrap();
    let small = Config {
        max_outstanding_bytes: 1 << 20,
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "big", small)
        .await
        .unwrap();
    // Within the stream's 2 MiB, beyond the producer's 1 MiB: `put` used to wait forever.
    let record = Record::new("k", vec![7u8; 1_500_000]);
    let refused = tokio::time::timeout(Duration::from_secs(10), producer.put(record.clone()))
        .await
        .expect("put answers at once")
        .expect_err("refused");
    assert_eq!(
        refused.error,
        PutError::LargerThanBuffer {
            size: 1_500_001,
            max_outstanding_bytes: 1 << 20,
        }
    );
    assert!(!refused.error.is_retryable());
    assert_eq!(refused.record, record, "the record is handed back");
    let refused = producer.try_put(record.clone()).expect_err("refused");
    assert!(
        matches!(refused.error, PutError::LargerThanBuffer { .. }),
        "not Full, which would invite retrying forever: {}",
        refused.error
    );
    assert_eq!(producer.outstanding(), 0);
    // A producer allowed to hold it delivers it: the limit is the producer's, not the stream's.
    let roomy = Config {
        max_outstanding_bytes: 4 << 20,
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "big", roomy)
        .await
        .unwrap();
    let delivery = producer.put(record).await.unwrap().await.unwrap();
    assert_eq!(delivery.attempts.len(), 1);
}

#[tokio::test]
async fn starting_against_a_stalled_endpoint_fails_within_the_request_timeout() {
    let builder =
        Engine::builder().fault(FaultRule::new("ListShards", Fault::Latency { ms: 5_000 }));
    let setup = Setup::new(builder, "stalled", 1).await;
    let config = Config {
        request_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let started = tokio::time::timeout(
        Duration::from_secs(4),
        Producer::new(setup.client.clone(), "stalled", config),
    )
    .await
    .expect("Producer::new gives up after request_timeout");
    match started {
        Err(kpl::StartError::ShardMap { message, .. }) => {
            assert!(message.contains("no answer within"), "{message}")
        }
        other => panic!("expected a shard-map error, got {other:?}"),
    }
}
