//! Lease-table operations: creation on demand and fencing on `leaseCounter`.

use std::time::Duration;

use kcl::leases::{Checkpoint, CheckpointUpdate, Lease, LeaseTable};

use crate::common::Env;

#[tokio::test]
async fn table_is_created_on_demand_and_writes_are_fenced() {
    let env = Env::start().await;
    let table = LeaseTable::new(env.ddb.clone(), "fenced-app");
    table
        .create_if_not_exists(Duration::from_secs(10))
        .await
        .unwrap();
    // Idempotent.
    table
        .create_if_not_exists(Duration::from_secs(10))
        .await
        .unwrap();
    let described = env
        .ddb
        .describe_table()
        .table_name("fenced-app")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(
        described.billing_mode_summary.and_then(|b| b.billing_mode),
        Some(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
    );

    let lease = Lease::new("shardId-000000000000", Checkpoint::TrimHorizon);
    assert!(table.create_if_absent(&lease).await.unwrap());
    assert!(
        !table.create_if_absent(&lease).await.unwrap(),
        "create is if-absent"
    );

    // Eight workers race to take the lease seen at counter 0: exactly one wins.
    let races = (0..8).map(|i| {
        let table = table.clone();
        async move {
            table
                .take("shardId-000000000000", &format!("w{i}"), 0, None)
                .await
                .unwrap()
        }
    });
    let wins = futures::future::join_all(races).await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1);
    let winner = format!("w{}", wins.iter().position(|w| *w).unwrap());
    let stored = table.get("shardId-000000000000").await.unwrap().unwrap();
    assert_eq!(stored.owner.as_deref(), Some(winner.as_str()));
    assert_eq!(stored.counter, 1);
    assert_eq!(
        stored.owner_switches_since_checkpoint, 0,
        "taking an unowned lease is no owner switch"
    );

    // Renewal on a stale counter fails; on the current one it bumps the counter.
    assert!(!table.renew("shardId-000000000000", 0).await.unwrap());
    assert!(table.renew("shardId-000000000000", 1).await.unwrap());

    // Another worker steals at counter 2: the old owner's checkpoint at counter 2 is refused.
    assert!(
        table
            .take("shardId-000000000000", "thief", 2, Some(&winner))
            .await
            .unwrap()
    );
    let stolen = table.get("shardId-000000000000").await.unwrap().unwrap();
    assert_eq!(stolen.owner_switches_since_checkpoint, 1);
    let update = CheckpointUpdate {
        checkpoint: Some(Checkpoint::at("100", 0)),
        ..CheckpointUpdate::default()
    };
    assert!(
        !table
            .checkpoint("shardId-000000000000", &winner, 2, update.clone())
            .await
            .unwrap()
    );
    assert!(
        table
            .checkpoint("shardId-000000000000", "thief", 3, update)
            .await
            .unwrap()
    );
    let stored = table.get("shardId-000000000000").await.unwrap().unwrap();
    assert_eq!(stored.checkpoint, Checkpoint::at("100", 0));
    assert_eq!(
        stored.owner_switches_since_checkpoint, 0,
        "a checkpoint resets owner switches"
    );
    assert_eq!(stored.counter, 4);

    // Eviction needs the owner; updates never create items.
    assert!(
        !table
            .evict("shardId-000000000000", &winner, 4)
            .await
            .unwrap()
    );
    assert!(
        table
            .evict("shardId-000000000000", "thief", 4)
            .await
            .unwrap()
    );
    assert_eq!(
        table
            .get("shardId-000000000000")
            .await
            .unwrap()
            .unwrap()
            .owner,
        None
    );
    assert!(!table.renew("no-such-shard", 0).await.unwrap());
    assert!(table.get("no-such-shard").await.unwrap().is_none());
    table.delete("shardId-000000000000").await.unwrap();
    assert!(table.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_call_without_an_answer_is_a_retryable_timeout() {
    use core_engine::{Fault, FaultRule};
    let env = Env::start().await;
    let table =
        LeaseTable::new(env.ddb.clone(), "slow-table").with_timeout(Duration::from_millis(300));
    table
        .create_if_not_exists(Duration::from_secs(10))
        .await
        .unwrap();
    env.handle
        .faults()
        .add(FaultRule::dynamodb("Scan", Fault::Latency { ms: 5_000 }).on_table("slow-table"))
        .unwrap();
    let err = table.list().await.unwrap_err();
    assert!(err.is_timeout() && err.is_retryable(), "{err}");
    assert!(
        matches!(
            err,
            kcl::Error::Timeout {
                service: "DynamoDB",
                op: "Scan",
                ..
            }
        ),
        "{err:?}"
    );
}
