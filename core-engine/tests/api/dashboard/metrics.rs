//! `/metrics` after a known load shows exactly the counters of that load.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StartingPosition};
use core_engine::Engine;

use super::{Lease, create_lease_table, dynamodb, get, put_lease};
use crate::common::{TestEngine, code_of};

const SHARD_0: &str = "shardId-000000000000";
const SHARD_1: &str = "shardId-000000000001";
/// Explicit hash keys in the first and second halves of the key space.
const LOW: &str = "0";
const HIGH: &str = "340282366920938463463374607431768211455";

/// The samples of an exposition, by series (`name{labels}`), checking its format on the way:
/// every sample belongs to a family announced once with HELP and TYPE.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut families = BTreeMap::new();
    let mut samples = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            current = rest.split(' ').next().unwrap().to_owned();
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(name, current, "TYPE follows its HELP");
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            assert!(
                families.insert(name.to_owned(), kind.to_owned()).is_none(),
                "family {name} announced twice"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert_eq!(name, current, "sample {line} outside its family");
        assert!(
            samples
                .insert(series.to_owned(), value.parse::<f64>().unwrap())
                .is_none(),
            "series {series} twice"
        );
    }
    samples
}

fn put_entry(key: &str, hash: &str, size: usize) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(key)
        .explicit_hash_key(hash)
        .data(Blob::new(vec![b'x'; size]))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_known_load_show_its_exact_counts() {
    // A frozen clock: no throughput bucket refills unless the test says so.
    let (engine, clock) = TestEngine::with_manual_clock().await;
    let stream = "metered";
    engine.create_stream(stream, 2).await;
    let client = &engine.client;

    // Six records of 10..60 bytes (plus 2-byte keys) to shard 0, four of 100 (plus 3) to shard 1.
    let low: Vec<_> = (0..6)
        .map(|i| put_entry(&format!("a{i}"), LOW, 10 * (i + 1)))
        .collect();
    let high: Vec<_> = (0..4)
        .map(|i| put_entry(&format!("bb{i}"), HIGH, 100))
        .collect();
    let out = client
        .put_records()
        .stream_name(stream)
        .set_records(Some(low.into_iter().chain(high).collect()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count, Some(0));
    // A 1,000,000-byte record fits shard 0's 1 MiB/s; the next 100,000 bytes do not.
    let out = client
        .put_records()
        .stream_name(stream)
        .records(put_entry("big", LOW, 1_000_000))
        .records(put_entry("late", LOW, 100_000))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count, Some(1));
    assert_eq!(
        out.records[1].error_code(),
        Some("ProvisionedThroughputExceededException")
    );

    // Shard 1: five GetRecords calls pass (the first reads all four records), two more are
    // throttled (5 calls/s).
    let mut iterator = engine
        .iterator(stream, SHARD_1, ShardIteratorType::TrimHorizon)
        .await;
    for call in 0..5 {
        let out = client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .unwrap();
        assert_eq!(out.records.len(), if call == 0 { 4 } else { 0 });
        iterator = out.next_shard_iterator.unwrap();
    }
    for _ in 0..2 {
        let (code, _) = code_of(client.get_records().shard_iterator(&iterator).send().await);
        assert_eq!(code, "ProvisionedThroughputExceededException");
    }

    // Three seconds later, shard 0 is read two records then three: the big one still waits,
    // and has waited 3 s.
    clock.advance(3_000);
    let iterator = engine
        .iterator(stream, SHARD_0, ShardIteratorType::TrimHorizon)
        .await;
    let first = client
        .get_records()
        .shard_iterator(&iterator)
        .limit(2)
        .send()
        .await
        .unwrap();
    let second = client
        .get_records()
        .shard_iterator(first.next_shard_iterator.unwrap())
        .limit(3)
        .send()
        .await
        .unwrap();
    assert_eq!((first.records.len(), second.records.len()), (2, 3));
    assert_eq!(second.millis_behind_latest, Some(3_000));

    // A fan-out consumer reads shard 1's four records and stays subscribed.
    let consumer = client
        .register_stream_consumer()
        .stream_arn(format!(
            "arn:aws:kinesis:us-east-1:000000000000:stream/{stream}"
        ))
        .consumer_name("watcher")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    let mut events = client
        .subscribe_to_shard()
        .consumer_arn(&consumer)
        .shard_id(SHARD_1)
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .event_stream;
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match event {
        aws_sdk_kinesis::types::SubscribeToShardEventStream::SubscribeToShardEvent(e) => {
            assert_eq!(e.records.len(), 4)
        }
        other => panic!("unexpected {other:?}"),
    }

    // A table with three items and three writes refused by their condition.
    let ddb = dynamodb(&engine);
    let table = "metered-leases";
    create_lease_table(&ddb, table).await;
    for shard in ["shardId-a", "shardId-b", "shardId-c"] {
        let lease = Lease {
            shard,
            owner: Some("w"),
            counter: 1,
            checkpoint: "TRIM_HORIZON",
            parents: &[],
        };
        put_lease(&ddb, table, &lease).await;
    }
    let key = AttributeValue::S("shardId-a".into());
    let (code, _) = code_of(
        ddb.put_item()
            .table_name(table)
            .item("leaseKey", key.clone())
            .condition_expression("attribute_not_exists(leaseKey)")
            .send()
            .await,
    );
    assert_eq!(code, "ConditionalCheckFailedException");
    let (code, _) = code_of(
        ddb.update_item()
            .table_name(table)
            .key("leaseKey", key.clone())
            .update_expression("SET leaseOwner = :me")
            .condition_expression("leaseCounter = :seen")
            .expression_attribute_values(":me", AttributeValue::S("thief".into()))
            .expression_attribute_values(":seen", AttributeValue::N("99".into()))
            .send()
            .await,
    );
    assert_eq!(code, "ConditionalCheckFailedException");
    let check = ConditionCheck::builder()
        .table_name(table)
        .key("leaseKey", key)
        .condition_expression("attribute_not_exists(leaseKey)")
        .build()
        .unwrap();
    let (code, _) = code_of(
        ddb.transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .send()
            .await,
    );
    assert_eq!(code, "TransactionCanceledException");

    let got = get(&engine, "/metrics").await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(got.head.contains("content-type: text/plain; version=0.0.4"));
    let samples = parse(&got.body);
    let shard =
        |name: &str, shard: &str| format!("{name}{{stream=\"{stream}\",shard=\"{shard}\"}}");
    let read = |name: &str, shard: &str, api: &str| {
        format!("{name}{{stream=\"{stream}\",shard=\"{shard}\",api=\"{api}\"}}")
    };
    let low_bytes: f64 = (0..6).map(|i| 2.0 + 10.0 * (i + 1) as f64).sum();
    let mut expected = vec![
        (
            shard("shardline_kinesis_incoming_records_total", SHARD_0),
            7.0,
        ),
        (
            shard("shardline_kinesis_incoming_bytes_total", SHARD_0),
            low_bytes + 1_000_003.0,
        ),
        (
            shard("shardline_kinesis_incoming_records_total", SHARD_1),
            4.0,
        ),
        (
            shard("shardline_kinesis_incoming_bytes_total", SHARD_1),
            412.0,
        ),
        (
            shard("shardline_kinesis_throttled_requests_total", SHARD_0),
            1.0,
        ),
        (
            shard("shardline_kinesis_throttled_requests_total", SHARD_1),
            2.0,
        ),
        (shard("shardline_kinesis_shard_open", SHARD_0), 1.0),
        (
            read(
                "shardline_kinesis_outgoing_records_total",
                SHARD_0,
                "GetRecords",
            ),
            5.0,
        ),
        (
            read(
                "shardline_kinesis_outgoing_bytes_total",
                SHARD_0,
                "GetRecords",
            ),
            12.0 + 22.0 + 32.0 + 42.0 + 52.0,
        ),
        (
            read(
                "shardline_kinesis_outgoing_records_total",
                SHARD_0,
                "SubscribeToShard",
            ),
            0.0,
        ),
        (
            read(
                "shardline_kinesis_outgoing_records_total",
                SHARD_1,
                "GetRecords",
            ),
            4.0,
        ),
        (
            read(
                "shardline_kinesis_outgoing_bytes_total",
                SHARD_1,
                "GetRecords",
            ),
            412.0,
        ),
        (
            read(
                "shardline_kinesis_outgoing_records_total",
                SHARD_1,
                "SubscribeToShard",
            ),
            4.0,
        ),
        (
            read(
                "shardline_kinesis_outgoing_bytes_total",
                SHARD_1,
                "SubscribeToShard",
            ),
            412.0,
        ),
        (
            read(
                "shardline_kinesis_iterator_age_milliseconds",
                SHARD_0,
                "GetRecords",
            ),
            3_000.0,
        ),
        (
            read(
                "shardline_kinesis_iterator_age_milliseconds",
                SHARD_1,
                "GetRecords",
            ),
            0.0,
        ),
        (
            read(
                "shardline_kinesis_iterator_age_milliseconds",
                SHARD_1,
                "SubscribeToShard",
            ),
            0.0,
        ),
        (
            format!(
                "shardline_kinesis_subscriptions{{stream=\"{stream}\",shard=\"{SHARD_1}\",consumer=\"watcher\"}}"
            ),
            1.0,
        ),
        (
            format!("shardline_dynamodb_items{{table=\"{table}\"}}"),
            3.0,
        ),
        (
            format!("shardline_dynamodb_leases_held{{table=\"{table}\",owner=\"w\"}}"),
            3.0,
        ),
        (
            format!("shardline_dynamodb_conditional_check_failures_total{{table=\"{table}\"}}"),
            3.0,
        ),
    ];
    for (series, value) in expected.drain(..) {
        assert_eq!(
            samples.get(&series),
            Some(&value),
            "{series} in\n{}",
            got.body
        );
    }
    // Shard 0 was never read through fan-out: no age for it, and no subscription.
    assert!(!samples.contains_key(&read(
        "shardline_kinesis_iterator_age_milliseconds",
        SHARD_0,
        "SubscribeToShard"
    )));
    assert_eq!(
        samples
            .keys()
            .filter(|k| k.starts_with("shardline_kinesis_subscriptions"))
            .count(),
        1
    );
    drop(events);
}

#[tokio::test]
async fn the_page_and_metrics_are_served_beside_the_api_and_switched_off_with_no_admin() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("paged", 1).await;
    // The page's rates: two looks two seconds apart, with 10 records of 50 bytes (3-byte key,
    // 47 bytes of data) between.
    let first = get(&engine, "/_shardline/state.json").await;
    assert_eq!(first.status, 200);
    let state: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(
        state["streams"][0]["shards"][0]["rates"],
        serde_json::Value::Null
    );
    let mut tenth = String::new();
    for i in 0..10 {
        tenth = engine.put("paged", &format!("k{i:02}"), &[0; 47]).await.1;
    }
    clock.advance(2_000);
    let state: serde_json::Value =
        serde_json::from_str(&get(&engine, "/_shardline/state.json").await.body).unwrap();
    let shard = &state["streams"][0]["shards"][0];
    assert_eq!(shard["id"], "shardId-000000000000");
    assert_eq!(shard["open"], true);
    assert_eq!(shard["records_in"], 10);
    assert_eq!(shard["rates"]["write_records"], 5.0);
    assert_eq!(shard["rates"]["write_bytes"], 250.0);
    assert_eq!(shard["rates"]["read_records"], 0.0);

    // Lease lag: a checkpoint at the tenth record is behind by what the eleventh has waited
    // (700 ms), one at the trim horizon by what the first has waited (2.7 s). The single-stream
    // lease is matched to the one stream that has its shard; the multi-stream one names it.
    engine.put("paged", "k10", b"late").await;
    clock.advance(700);
    let ddb = dynamodb(&engine);
    create_lease_table(&ddb, "paged-app").await;
    let single = Lease {
        shard: "shardId-000000000000",
        owner: Some("w1"),
        counter: 3,
        checkpoint: &tenth,
        parents: &[],
    };
    put_lease(&ddb, "paged-app", &single).await;
    let multi = Lease {
        shard: "000000000000:paged:1750000000:shardId-000000000000",
        owner: Some("w2"),
        checkpoint: "TRIM_HORIZON",
        ..single
    };
    put_lease(&ddb, "paged-app", &multi).await;
    let state: serde_json::Value =
        serde_json::from_str(&get(&engine, "/_shardline/state.json").await.body).unwrap();
    let leases = &state["tables"][0]["leases"];
    assert_eq!(leases["stream"], "paged");
    assert_eq!(leases["owners"], serde_json::json!({"w1": 1, "w2": 1}));
    assert_eq!(leases["leases"][0]["stream"], "paged");
    assert_eq!(leases["leases"][0]["owner"], "w2");
    assert_eq!(leases["leases"][0]["lag_ms"], 2_700);
    assert_eq!(leases["leases"][1]["shard_id"], "shardId-000000000000");
    assert_eq!(leases["leases"][1]["counter"], "3");
    assert_eq!(leases["leases"][1]["lag_ms"], 700);
    let metrics = get(&engine, "/metrics").await.body;
    assert!(
        metrics.contains(
            "shardline_dynamodb_lease_lag_milliseconds{table=\"paged-app\",lease=\"shardId-000000000000\"} 700\n"
        ),
        "{metrics}"
    );

    for path in ["/", "/_shardline/", "/_shardline"] {
        let page = get(&engine, path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.head.contains("content-type: text/html"));
        assert!(page.body.contains("data-shard=\"shardId-000000000000\""));
        assert!(
            page.body
                .contains("<script src=\"/_shardline/dashboard.js\">")
        );
    }
    assert!(
        get(&engine, "/_shardline/dashboard.js")
            .await
            .body
            .contains("/_shardline/panel")
    );
    assert!(
        get(&engine, "/_shardline/panel")
            .await
            .body
            .contains("paged")
    );
    // The API on the same port is untouched, and so are the admin endpoints.
    engine.client.list_streams().send().await.unwrap();
    assert_eq!(get(&engine, "/_shardline/faults").await.body, "[]");

    // With signatures verified, the API refuses the test client's key, while the read-only
    // page and /metrics still answer without one (Prometheus and browsers cannot sign).
    let key = core_engine::auth::AccessKey::new("AKIDOTHER", "other-secret");
    let verifying = TestEngine::with(
        Engine::builder().credentials(core_engine::auth::Credentials::new().key(key)),
    )
    .await;
    let (code, _) = code_of(verifying.client.list_streams().send().await);
    assert_eq!(code, "UnrecognizedClientException");
    assert_eq!(get(&verifying, "/metrics").await.status, 200);
    assert_eq!(get(&verifying, "/").await.status, 200);

    let off = TestEngine::with(Engine::builder().admin_endpoints(false)).await;
    for path in ["/metrics", "/", "/_shardline/state.json", "/_shardline/"] {
        assert_eq!(get(&off, path).await.status, 404, "{path}");
    }
    off.client.list_streams().send().await.unwrap();
}
