//! The lease-table access pattern of a KCL worker fleet, with workers racing on the same lease:
//! every conditional write has exactly one winner. Both the legacy `Expected`/`AttributeUpdates`
//! form (Java KCL) and expressions are used.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeAction, AttributeValue, AttributeValueUpdate, BillingMode, ExpectedAttributeValue,
    GlobalSecondaryIndex, KeyType, Projection, ProjectionType, ScalarAttributeType,
};

use crate::common::{Ddb, attr, item, key, n, s};

const TABLE: &str = "fleet-app";
const WORKERS: usize = 8;

fn counter(item: &std::collections::HashMap<String, AttributeValue>) -> u64 {
    match &item["leaseCounter"] {
        AttributeValue::N(v) => v.parse().unwrap(),
        other => panic!("{other:?}"),
    }
}

/// takeLease as the Java KCL does it: legacy parameters, conditioned on the counter seen.
async fn take(client: &Client, lease: &str, me: &str, seen_counter: u64) -> bool {
    client
        .update_item()
        .table_name(TABLE)
        .key("leaseKey", s(lease))
        .expected(
            "leaseCounter",
            ExpectedAttributeValue::builder()
                .value(n(&seen_counter.to_string()))
                .build(),
        )
        .attribute_updates(
            "leaseCounter",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Add)
                .value(n("1"))
                .build(),
        )
        .attribute_updates(
            "leaseOwner",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Put)
                .value(s(me))
                .build(),
        )
        .attribute_updates(
            "checkpointOwner",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Delete)
                .build(),
        )
        .attribute_updates(
            "ownerSwitchesSinceCheckpoint",
            AttributeValueUpdate::builder()
                .action(AttributeAction::Add)
                .value(n("1"))
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            assert!(
                e.into_service_error()
                    .is_conditional_check_failed_exception()
            )
        })
        .is_ok()
}

/// renewLease with an expression: counter unchanged and no handoff in progress.
async fn renew(client: &Client, lease: &str, counter: u64) -> bool {
    client
        .update_item()
        .table_name(TABLE)
        .key("leaseKey", s(lease))
        .update_expression("SET leaseCounter = leaseCounter + :one")
        .condition_expression("leaseCounter = :c AND attribute_not_exists(checkpointOwner)")
        .expression_attribute_values(":one", n("1"))
        .expression_attribute_values(":c", n(&counter.to_string()))
        .send()
        .await
        .map_err(|e| {
            assert!(
                e.into_service_error()
                    .is_conditional_check_failed_exception()
            )
        })
        .is_ok()
}

async fn read(client: &Client, lease: &str) -> std::collections::HashMap<String, AttributeValue> {
    client
        .get_item()
        .table_name(TABLE)
        .key("leaseKey", s(lease))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_fleet_racing_on_leases_has_one_winner_each_time() {
    let ddb = Ddb::start().await;
    let client = ddb.client.clone();
    client
        .create_table()
        .table_name(TABLE)
        .key_schema(key("leaseKey", KeyType::Hash))
        .attribute_definitions(attr("leaseKey", ScalarAttributeType::S))
        .attribute_definitions(attr("leaseOwner", ScalarAttributeType::S))
        .billing_mode(BillingMode::PayPerRequest)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("LeaseOwnerToLeaseKeyIndex")
                .key_schema(key("leaseOwner", KeyType::Hash))
                .key_schema(key("leaseKey", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    client
        .wait_until_table_exists()
        .table_name(TABLE)
        .wait(std::time::Duration::from_secs(10))
        .await
        .unwrap();

    // createLeaseIfNotExists: every worker tries to create every lease; one wins each.
    let shards: Vec<String> = (0..4).map(|i| format!("shardId-{i:012}")).collect();
    for shard in &shards {
        let wins = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..WORKERS {
            let (client, shard, wins) = (client.clone(), shard.clone(), wins.clone());
            tasks.push(tokio::spawn(async move {
                let created = client
                    .put_item()
                    .table_name(TABLE)
                    .item("leaseKey", s(&shard))
                    .item("leaseCounter", n("0"))
                    .item("checkpoint", s("TRIM_HORIZON"))
                    .item("checkpointSubSequenceNumber", n("0"))
                    .item("ownerSwitchesSinceCheckpoint", n("0"))
                    .expected(
                        "leaseKey",
                        ExpectedAttributeValue::builder().exists(false).build(),
                    )
                    .send()
                    .await;
                if created.is_ok() {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(wins.load(Ordering::SeqCst), 1, "creating {shard}");
    }

    // Rounds of takeLease: everyone saw the same counter; exactly one take succeeds.
    let lease = shards[0].clone();
    for round in 0..20u64 {
        let seen = counter(&read(&client, &lease).await);
        assert_eq!(seen, round);
        let winners = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for worker in 0..WORKERS {
            let (client, lease, winners) = (client.clone(), lease.clone(), winners.clone());
            tasks.push(tokio::spawn(async move {
                let me = format!("worker-{worker}");
                // Half the fleet uses the legacy form, half the expression form.
                let won = if worker % 2 == 0 {
                    take(&client, &lease, &me, seen).await
                } else {
                    client
                        .update_item()
                        .table_name(TABLE)
                        .key("leaseKey", s(&lease))
                        .update_expression("SET leaseOwner = :me, leaseCounter = leaseCounter + :one REMOVE checkpointOwner ADD ownerSwitchesSinceCheckpoint :one")
                        .condition_expression("leaseCounter = :seen")
                        .expression_attribute_values(":me", s(&me))
                        .expression_attribute_values(":one", n("1"))
                        .expression_attribute_values(":seen", n(&seen.to_string()))
                        .send()
                        .await
                        .is_ok()
                };
                if won {
                    winners.lock().unwrap().push(me);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let winners = winners.lock().unwrap().clone();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let after = read(&client, &lease).await;
        assert_eq!(after["leaseOwner"], s(&winners[0]));
        assert_eq!(counter(&after), round + 1);
    }

    // The owner renews; a racing renew with the same counter loses.
    let owner = match &read(&client, &lease).await["leaseOwner"] {
        AttributeValue::S(o) => o.clone(),
        _ => unreachable!(),
    };
    let c = counter(&read(&client, &lease).await);
    let (a, b) = tokio::join!(renew(&client, &lease, c), renew(&client, &lease, c));
    assert!(a ^ b, "exactly one renewal with counter {c} wins");

    // Checkpoint, conditioned on the counter and owner (updateLease).
    let c = counter(&read(&client, &lease).await);
    client
        .update_item()
        .table_name(TABLE)
        .key("leaseKey", s(&lease))
        .update_expression("SET checkpoint = :cp, checkpointSubSequenceNumber = :zero, ownerSwitchesSinceCheckpoint = :zero, leaseCounter = leaseCounter + :one REMOVE pendingCheckpoint")
        .condition_expression("leaseCounter = :c AND leaseOwner = :o")
        .expression_attribute_values(":cp", s("49590338271490256608559692538361571095921575989136588898"))
        .expression_attribute_values(":zero", n("0"))
        .expression_attribute_values(":one", n("1"))
        .expression_attribute_values(":c", n(&c.to_string()))
        .expression_attribute_values(":o", s(&owner))
        .send()
        .await
        .unwrap();

    // Graceful handoff (KCL 3): owner -> thief with checkpointOwner; the old owner's renew fails.
    let c = counter(&read(&client, &lease).await);
    client
        .update_item()
        .table_name(TABLE)
        .key("leaseKey", s(&lease))
        .update_expression("SET leaseOwner = :new, checkpointOwner = :old")
        .condition_expression("leaseOwner = :old AND attribute_not_exists(checkpointOwner) AND attribute_exists(leaseKey)")
        .expression_attribute_values(":new", s("thief"))
        .expression_attribute_values(":old", s(&owner))
        .send()
        .await
        .unwrap();
    assert!(
        !renew(&client, &lease, c).await,
        "renewal during handoff must fail"
    );

    // Steal with a stale counter fails, with the current one succeeds.
    assert!(!take(&client, &lease, "thief", c + 100).await);
    assert!(take(&client, &lease, "thief", c).await);
    let stolen = read(&client, &lease).await;
    assert_eq!(stolen["leaseOwner"], s("thief"));
    assert!(!stolen.contains_key("checkpointOwner"));

    // The index finds the thief's leases.
    let mine = client
        .query()
        .table_name(TABLE)
        .index_name("LeaseOwnerToLeaseKeyIndex")
        .key_condition_expression("leaseOwner = :me")
        .expression_attribute_values(":me", s("thief"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        mine.items(),
        [item(&[("leaseKey", s(&lease)), ("leaseOwner", s("thief"))])]
    );

    // Evict: owner matches -> owner removed, counter bumped; a second evict loses.
    let evict = || {
        client
            .update_item()
            .table_name(TABLE)
            .key("leaseKey", s(&lease))
            .expected(
                "leaseOwner",
                ExpectedAttributeValue::builder().value(s("thief")).build(),
            )
            .attribute_updates(
                "leaseOwner",
                AttributeValueUpdate::builder()
                    .action(AttributeAction::Delete)
                    .build(),
            )
            .attribute_updates(
                "leaseCounter",
                AttributeValueUpdate::builder()
                    .action(AttributeAction::Add)
                    .value(n("1"))
                    .build(),
            )
            .send()
    };
    let (a, b) = tokio::join!(evict(), evict());
    assert!(a.is_ok() ^ b.is_ok(), "exactly one eviction wins");
    assert!(!read(&client, &lease).await.contains_key("leaseOwner"));

    // A parallel scan lists every lease once; then the leases are deleted.
    let mut listed = Vec::new();
    for segment in 0..2 {
        let out = client
            .scan()
            .table_name(TABLE)
            .segment(segment)
            .total_segments(2)
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        listed.extend(out.items().iter().map(|i| i["leaseKey"].clone()));
    }
    assert_eq!(listed.len(), shards.len());
    for shard in &shards {
        client
            .delete_item()
            .table_name(TABLE)
            .key("leaseKey", s(shard))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        client
            .scan()
            .table_name(TABLE)
            .send()
            .await
            .unwrap()
            .count(),
        0
    );
}
