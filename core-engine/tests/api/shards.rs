//! ListShards: pagination, filters and their errors.

use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{ShardFilter, ShardFilterType};

use crate::common::{TestEngine, code_of};

#[tokio::test]
async fn list_shards_paginates_with_next_token() {
    let engine = TestEngine::start().await;
    engine.create_stream("many", 5).await;
    let client = &engine.client;
    let first = client
        .list_shards()
        .stream_name("many")
        .max_results(2)
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = first.shards().iter().map(|s| s.shard_id.as_str()).collect();
    assert_eq!(ids, ["shardId-000000000000", "shardId-000000000001"]);
    let mut token = first.next_token.clone();
    let mut all: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    while let Some(next) = token {
        let page = client
            .list_shards()
            .next_token(next)
            .max_results(2)
            .send()
            .await
            .unwrap();
        all.extend(page.shards().iter().map(|s| s.shard_id.clone()));
        token = page.next_token;
    }
    assert_eq!(all.len(), 5);
    assert_eq!(all[4], "shardId-000000000004");

    let after = client
        .list_shards()
        .stream_name("many")
        .exclusive_start_shard_id("shardId-000000000002")
        .send()
        .await
        .unwrap();
    assert_eq!(after.shards().len(), 2);

    // A token cannot be combined with a stream name.
    let token = first.next_token.unwrap();
    let (code, _) = code_of(
        client
            .list_shards()
            .stream_name("many")
            .next_token(&token)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    let (code, _) = code_of(client.list_shards().next_token("bogus").send().await);
    assert_eq!(code, "InvalidArgumentException");
}

#[tokio::test]
async fn shard_filters_select_shards() {
    let engine = TestEngine::start().await;
    engine.create_stream("filtered", 3).await;
    let client = &engine.client;
    let list = |filter: ShardFilter| {
        let client = client.clone();
        async move {
            client
                .list_shards()
                .stream_name("filtered")
                .shard_filter(filter)
                .send()
                .await
                .map(|out| {
                    out.shards()
                        .iter()
                        .map(|s| s.shard_id.clone())
                        .collect::<Vec<_>>()
                })
        }
    };
    let filter = |kind: ShardFilterType| ShardFilter::builder().r#type(kind);
    assert_eq!(
        list(filter(ShardFilterType::AtLatest).build().unwrap())
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        list(filter(ShardFilterType::AtTrimHorizon).build().unwrap())
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        list(filter(ShardFilterType::FromTrimHorizon).build().unwrap())
            .await
            .unwrap()
            .len(),
        3
    );
    let after = filter(ShardFilterType::AfterShardId)
        .shard_id("shardId-000000000000")
        .build()
        .unwrap();
    assert_eq!(
        list(after).await.unwrap(),
        ["shardId-000000000001", "shardId-000000000002"]
    );
    let now = DateTime::from(std::time::SystemTime::now());
    assert_eq!(
        list(
            filter(ShardFilterType::AtTimestamp)
                .timestamp(now)
                .build()
                .unwrap()
        )
        .await
        .unwrap()
        .len(),
        3
    );
    assert_eq!(
        list(
            filter(ShardFilterType::FromTimestamp)
                .timestamp(now)
                .build()
                .unwrap()
        )
        .await
        .unwrap()
        .len(),
        3
    );
    let missing_id = filter(ShardFilterType::AfterShardId).build().unwrap();
    let (code, _) = code_of(list(missing_id).await);
    assert_eq!(code, "InvalidArgumentException");
    let missing_time = filter(ShardFilterType::AtTimestamp).build().unwrap();
    let (code, _) = code_of(list(missing_time).await);
    assert_eq!(code, "InvalidArgumentException");
    let (code, _) = code_of(
        client
            .list_shards()
            .stream_name("filtered")
            .max_results(0)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = code_of(client.list_shards().stream_name("absent").send().await);
    assert_eq!(code, "ResourceNotFoundException");
}
