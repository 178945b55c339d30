//! Resharding: splits, merges and uniform scaling, read across parents and children in order.

use std::collections::{HashMap, HashSet, VecDeque};

use aws_sdk_kinesis::types::{ScalingType, ShardFilter, ShardFilterType, ShardIteratorType};

use crate::common::{TestEngine, code_of};

/// Reads a stream the way a consumer that respects lineage does: a shard only after all its
/// parents reached their end. Gives each partition key's data in the order it was read.
async fn read_following_lineage(engine: &TestEngine, stream: &str) -> HashMap<String, Vec<String>> {
    let shards = engine
        .client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    let parents_of: HashMap<String, Vec<String>> = shards
        .iter()
        .map(|s| {
            (
                s.shard_id.clone(),
                [
                    s.parent_shard_id.clone(),
                    s.adjacent_parent_shard_id.clone(),
                ]
                .into_iter()
                .flatten()
                .collect(),
            )
        })
        .collect();
    let mut done: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<String> = shards.iter().map(|s| s.shard_id.clone()).collect();
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    let mut stalls = 0;
    while let Some(shard) = queue.pop_front() {
        if !parents_of[&shard]
            .iter()
            .all(|p| done.contains(p) || !parents_of.contains_key(p))
        {
            queue.push_back(shard);
            stalls += 1;
            assert!(stalls < 1000, "lineage never resolves");
            continue;
        }
        let mut iterator = Some(
            engine
                .iterator(stream, &shard, ShardIteratorType::TrimHorizon)
                .await,
        );
        while let Some(current) = iterator {
            let out = engine
                .client
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap();
            for record in &out.records {
                by_key
                    .entry(record.partition_key.clone().unwrap_or_default())
                    .or_default()
                    .push(String::from_utf8(record.data.as_ref().to_vec()).unwrap());
            }
            let caught_up = out.records.is_empty() && out.millis_behind_latest == Some(0);
            iterator = match out.next_shard_iterator {
                None => {
                    assert!(
                        !out.child_shards.unwrap_or_default().is_empty(),
                        "a closed shard's end names its children"
                    );
                    None
                }
                Some(_) if caught_up => None,
                next => next,
            };
        }
        done.insert(shard);
    }
    by_key
}

#[tokio::test]
async fn split_then_merge_keeps_every_key_in_order_across_the_lineage() {
    let engine = TestEngine::start().await;
    engine.create_stream("chain", 1).await;
    let client = &engine.client;
    let keys: Vec<String> = (0..20).map(|i| format!("user-{i}")).collect();
    let mut written: HashMap<String, Vec<String>> = HashMap::new();
    let write_round = |round: usize| {
        let keys = keys.clone();
        let engine = &engine;
        let mut sent = Vec::new();
        async move {
            for key in &keys {
                let data = format!("{key}-{round}");
                engine.put("chain", key, data.as_bytes()).await;
                sent.push((key.clone(), data));
            }
            sent
        }
    };
    for (key, data) in write_round(0).await {
        written.entry(key).or_default().push(data);
    }
    client
        .split_shard()
        .stream_name("chain")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    for (key, data) in write_round(1).await {
        written.entry(key).or_default().push(data);
    }
    // New records only go to the open children.
    let (shard, _) = engine.put("chain", "probe", b"x").await;
    assert_ne!(shard, "shardId-000000000000");
    written.entry("probe".into()).or_default().push("x".into());
    client
        .merge_shards()
        .stream_name("chain")
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    for (key, data) in write_round(2).await {
        written.entry(key).or_default().push(data);
    }

    let shards = client
        .list_shards()
        .stream_name("chain")
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    let ids: Vec<_> = shards.iter().map(|s| s.shard_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002",
            "shardId-000000000003"
        ]
    );
    assert!(
        shards[0]
            .sequence_number_range
            .as_ref()
            .unwrap()
            .ending_sequence_number
            .is_some()
    );
    assert_eq!(
        shards[1].parent_shard_id.as_deref(),
        Some("shardId-000000000000")
    );
    assert_eq!(
        shards[3].parent_shard_id.as_deref(),
        Some("shardId-000000000001")
    );
    assert_eq!(
        shards[3].adjacent_parent_shard_id.as_deref(),
        Some("shardId-000000000002")
    );
    let open = client
        .list_shards()
        .stream_name("chain")
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtLatest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(open.shards.unwrap().len(), 1);

    assert_eq!(read_following_lineage(&engine, "chain").await, written);
}

#[tokio::test]
async fn the_end_of_a_closed_shard_names_its_children() {
    let engine = TestEngine::start().await;
    engine.create_stream("end", 1).await;
    engine.put("end", "k", b"before").await;
    let iterator = engine
        .iterator(
            "end",
            "shardId-000000000000",
            ShardIteratorType::TrimHorizon,
        )
        .await;
    engine
        .client
        .split_shard()
        .stream_name("end")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("1000")
        .send()
        .await
        .unwrap();
    let out = engine
        .client
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .unwrap();
    assert_eq!(out.records.len(), 1);
    assert!(out.next_shard_iterator.is_none());
    let children = out.child_shards.unwrap();
    let ids: Vec<_> = children.iter().map(|c| c.shard_id.as_str()).collect();
    assert_eq!(ids, ["shardId-000000000001", "shardId-000000000002"]);
    assert_eq!(children[0].parent_shards, ["shardId-000000000000"]);
    assert_eq!(
        children[1]
            .hash_key_range
            .as_ref()
            .unwrap()
            .starting_hash_key,
        "1000"
    );
    // A closed shard still hands out iterators; reading from LATEST reaches the end at once.
    let latest = engine
        .iterator("end", "shardId-000000000000", ShardIteratorType::Latest)
        .await;
    let out = engine
        .client
        .get_records()
        .shard_iterator(latest)
        .send()
        .await
        .unwrap();
    assert!(out.next_shard_iterator.is_none() && out.child_shards.is_some_and(|c| c.len() == 2));
}

#[tokio::test]
async fn resharding_rejects_what_kinesis_rejects() {
    let engine = TestEngine::start().await;
    engine.create_stream("rules", 3).await;
    let client = &engine.client;
    let (code, message) = code_of(
        client
            .merge_shards()
            .stream_name("rules")
            .shard_to_merge("shardId-000000000000")
            .adjacent_shard_to_merge("shardId-000000000002")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("are not an adjacent pair of shards eligible for merging"),
        "{message}"
    );
    let (code, message) = code_of(
        client
            .split_shard()
            .stream_name("rules")
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key("1")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("is not both greater than one plus the shard's StartingHashKey"),
        "{message}"
    );
    let (code, _) = code_of(
        client
            .split_shard()
            .stream_name("rules")
            .shard_to_split("shardId-000000000009")
            .new_starting_hash_key("100")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    client
        .split_shard()
        .stream_name("rules")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("100")
        .send()
        .await
        .unwrap();
    let (code, message) = code_of(
        client
            .split_shard()
            .stream_name("rules")
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key("50")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("has already been merged or split"),
        "{message}"
    );
    let (code, _) = code_of(
        client
            .update_shard_count()
            .stream_name("rules")
            .target_shard_count(9)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await,
    );
    assert_eq!(code, "LimitExceededException");
    let (code, _) = code_of(
        client
            .update_shard_count()
            .stream_name("rules")
            .target_shard_count(1)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await,
    );
    assert_eq!(code, "LimitExceededException");
}

#[tokio::test]
async fn update_shard_count_scales_to_even_ranges() {
    let engine = TestEngine::start().await;
    engine.create_stream("scale", 3).await;
    for i in 0..30 {
        engine.put("scale", &format!("k{i}"), b"before").await;
    }
    let out = engine
        .client
        .update_shard_count()
        .stream_name("scale")
        .target_shard_count(5)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (out.current_shard_count, out.target_shard_count),
        (Some(3), Some(5))
    );
    let open = engine
        .client
        .list_shards()
        .stream_name("scale")
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtLatest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    assert_eq!(open.len(), 5);
    let mut starts: Vec<u128> = open
        .iter()
        .map(|s| {
            s.hash_key_range
                .as_ref()
                .unwrap()
                .starting_hash_key
                .parse()
                .unwrap()
        })
        .collect();
    starts.sort();
    // floor(2^128 / 5) = u128::MAX / 5, since 5 divides 2^128 - 1.
    let step = u128::MAX / 5;
    assert_eq!(starts, (0..5).map(|i| i * step).collect::<Vec<_>>());
    let summary = engine
        .client
        .describe_stream_summary()
        .stream_name("scale")
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary.stream_description_summary.unwrap().open_shard_count,
        5
    );
    for i in 0..30 {
        engine.put("scale", &format!("k{i}"), b"after").await;
    }
    let by_key = read_following_lineage(&engine, "scale").await;
    assert_eq!(by_key.len(), 30);
    assert!(by_key.values().all(|v| v == &["before", "after"]));
}

#[tokio::test]
async fn closed_shards_disappear_once_their_retention_passes() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("expire", 1).await;
    engine.put("expire", "k", b"old").await;
    engine
        .client
        .split_shard()
        .stream_name("expire")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("1000")
        .send()
        .await
        .unwrap();
    assert_eq!(engine.shard_ids("expire").await.len(), 3);
    clock.advance(25 * 3_600_000);
    assert_eq!(
        engine.shard_ids("expire").await,
        ["shardId-000000000001", "shardId-000000000002"]
    );
    let (code, _) = code_of(
        engine
            .client
            .get_shard_iterator()
            .stream_name("expire")
            .shard_id("shardId-000000000000")
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
}
