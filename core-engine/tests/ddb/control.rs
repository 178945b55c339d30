//! The control-plane calls infrastructure-as-code tools make around CreateTable: continuous
//! backups, tags, limits, endpoints and time to live.

use aws_sdk_dynamodb::types::{Tag, TimeToLiveSpecification, TimeToLiveStatus};
use core_engine::Engine;

use crate::common::{Ddb, code_of};

const ARN: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/tbl";

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

fn ttl(enabled: bool, attribute: &str) -> TimeToLiveSpecification {
    TimeToLiveSpecification::builder()
        .enabled(enabled)
        .attribute_name(attribute)
        .build()
        .unwrap()
}

/// Every tag of `arn`, following NextToken, as (key, value) pairs.
async fn all_tags(ddb: &Ddb, arn: &str) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    let mut token = None;
    loop {
        let page = ddb
            .client
            .list_tags_of_resource()
            .resource_arn(arn)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        tags.extend(
            page.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned())),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return tags;
        }
    }
}

#[tokio::test]
async fn continuous_backups_are_enabled_without_point_in_time_recovery() {
    let ddb = Ddb::start().await;
    ddb.table("tbl", None).await;
    let out = ddb
        .client
        .describe_continuous_backups()
        .table_name("tbl")
        .send()
        .await
        .unwrap();
    let description = out.continuous_backups_description().unwrap();
    assert_eq!(description.continuous_backups_status().as_str(), "ENABLED");
    assert_eq!(
        description
            .point_in_time_recovery_description()
            .unwrap()
            .point_in_time_recovery_status()
            .unwrap()
            .as_str(),
        "DISABLED"
    );
    let missing = ddb
        .client
        .describe_continuous_backups()
        .table_name("nope")
        .send()
        .await;
    assert!(
        missing
            .as_ref()
            .is_err_and(|e| e.as_service_error().unwrap().is_table_not_found_exception())
    );
    assert_eq!(
        code_of(missing),
        (
            "TableNotFoundException".into(),
            "Table not found: nope".into()
        )
    );
}

#[tokio::test]
async fn tags_are_added_replaced_removed_and_paged() {
    let ddb = Ddb::start().await;
    ddb.table("tbl", None).await;
    assert!(all_tags(&ddb, ARN).await.is_empty());
    let mut request = ddb.client.tag_resource().resource_arn(ARN);
    for i in 0..25 {
        request = request.tags(tag(&format!("k{i:02}"), &format!("v{i}")));
    }
    request.send().await.unwrap();
    // An existing key is replaced, an empty value is allowed.
    ddb.client
        .tag_resource()
        .resource_arn(ARN)
        .tags(tag("k00", ""))
        .send()
        .await
        .unwrap();
    let first = ddb
        .client
        .list_tags_of_resource()
        .resource_arn(ARN)
        .send()
        .await
        .unwrap();
    assert!(first.next_token().is_some());
    let tags = all_tags(&ddb, ARN).await;
    assert_eq!(tags.len(), 25);
    assert_eq!(tags[0], ("k00".into(), String::new()));
    assert_eq!(tags[24], ("k24".into(), "v24".into()));
    ddb.client
        .untag_resource()
        .resource_arn(ARN)
        .tag_keys("k00")
        .tag_keys("absent")
        .send()
        .await
        .unwrap();
    let tags = all_tags(&ddb, ARN).await;
    assert_eq!(tags.len(), 24);
    assert_eq!(tags[0].0, "k01");
}

#[tokio::test]
async fn create_table_keeps_its_tags() {
    let ddb = Ddb::start().await;
    crate::common::create_table(&ddb.client, "plain", "pk", None).await;
    ddb.client
        .create_table()
        .table_name("tbl")
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(crate::common::key(
            "pk",
            aws_sdk_dynamodb::types::KeyType::Hash,
        ))
        .attribute_definitions(crate::common::attr(
            "pk",
            aws_sdk_dynamodb::types::ScalarAttributeType::S,
        ))
        .tags(tag("env", "test"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        all_tags(&ddb, ARN).await,
        [("env".to_owned(), "test".to_owned())]
    );
}

#[tokio::test]
async fn bad_tags_and_arns_get_aws_errors() {
    let ddb = Ddb::start().await;
    ddb.table("tbl", None).await;
    let (code, message) = code_of(
        ddb.client
            .tag_resource()
            .resource_arn(ARN)
            .tags(tag("aws:owner", "x"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("aws:"), "{message}");
    let (code, message) = code_of(
        ddb.client
            .tag_resource()
            .resource_arn(ARN)
            .tags(tag(&"k".repeat(129), "x"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("tags.1.member.key"), "{message}");
    let (code, _) = code_of(
        ddb.client
            .tag_resource()
            .resource_arn(ARN)
            .tags(tag("", "x"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = code_of(
        ddb.client
            .tag_resource()
            .resource_arn(ARN)
            .tags(tag("k", &"v".repeat(257)))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    // 50 tags are allowed, a 51st is not, and a refused request changes nothing.
    let mut request = ddb.client.tag_resource().resource_arn(ARN);
    for i in 0..50 {
        request = request.tags(tag(&format!("k{i}"), "v"));
    }
    request.send().await.unwrap();
    let (code, message) = code_of(
        ddb.client
            .tag_resource()
            .resource_arn(ARN)
            .tags(tag("one-more", "v"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("50"), "{message}");
    assert_eq!(all_tags(&ddb, ARN).await.len(), 50);

    let unknown = "arn:aws:dynamodb:us-east-1:000000000000:table/nope";
    let other_region = "arn:aws:dynamodb:eu-west-1:000000000000:table/tbl";
    for arn in [unknown, other_region] {
        let (code, _) = code_of(
            ddb.client
                .list_tags_of_resource()
                .resource_arn(arn)
                .send()
                .await,
        );
        assert_eq!(code, "ResourceNotFoundException", "{arn}");
        let (code, _) = code_of(
            ddb.client
                .untag_resource()
                .resource_arn(arn)
                .tag_keys("k")
                .send()
                .await,
        );
        assert_eq!(code, "ResourceNotFoundException", "{arn}");
    }
    for arn in [
        "not-an-arn",
        "arn:aws:kinesis:us-east-1:000000000000:stream/tbl",
        "arn:aws:dynamodb:us-east-1:000000000000:table/",
    ] {
        let (code, _) = code_of(
            ddb.client
                .tag_resource()
                .resource_arn(arn)
                .tags(tag("k", "v"))
                .send()
                .await,
        );
        assert_eq!(code, "ValidationException", "{arn}");
    }
}

#[tokio::test]
async fn limits_and_endpoints_are_answered() {
    let ddb = Ddb::start().await;
    let limits = ddb.client.describe_limits().send().await.unwrap();
    assert_eq!(limits.account_max_read_capacity_units(), Some(80000));
    assert_eq!(limits.account_max_write_capacity_units(), Some(80000));
    assert_eq!(limits.table_max_read_capacity_units(), Some(40000));
    assert_eq!(limits.table_max_write_capacity_units(), Some(40000));
    let endpoints = ddb.client.describe_endpoints().send().await.unwrap();
    let endpoint = &endpoints.endpoints()[0];
    assert_eq!(endpoint.address(), "dynamodb.us-east-1.amazonaws.com");
    assert_eq!(endpoint.cache_period_in_minutes(), 1440);
}

#[tokio::test]
async fn time_to_live_is_enabled_and_disabled_as_aws_allows() {
    let ddb = Ddb::start().await;
    ddb.table("tbl", None).await;
    let status =
        |out: aws_sdk_dynamodb::operation::describe_time_to_live::DescribeTimeToLiveOutput| {
            let description = out.time_to_live_description().unwrap().clone();
            (
                description.time_to_live_status().cloned(),
                description.attribute_name().map(str::to_owned),
            )
        };
    let describe = || ddb.client.describe_time_to_live().table_name("tbl").send();
    assert_eq!(
        status(describe().await.unwrap()),
        (Some(TimeToLiveStatus::Disabled), None)
    );
    let (code, message) = code_of(
        ddb.client
            .update_time_to_live()
            .table_name("tbl")
            .time_to_live_specification(ttl(false, "expires"))
            .send()
            .await,
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("ValidationException", "TimeToLive is already disabled")
    );
    let out = ddb
        .client
        .update_time_to_live()
        .table_name("tbl")
        .time_to_live_specification(ttl(true, "expires"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.time_to_live_specification(),
        Some(&ttl(true, "expires"))
    );
    assert_eq!(
        status(describe().await.unwrap()),
        (Some(TimeToLiveStatus::Enabled), Some("expires".into()))
    );
    let (code, message) = code_of(
        ddb.client
            .update_time_to_live()
            .table_name("tbl")
            .time_to_live_specification(ttl(true, "other"))
            .send()
            .await,
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("ValidationException", "TimeToLive is already enabled")
    );
    let (code, message) = code_of(
        ddb.client
            .update_time_to_live()
            .table_name("tbl")
            .time_to_live_specification(ttl(false, "other"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("different AttributeName"), "{message}");
    ddb.client
        .update_time_to_live()
        .table_name("tbl")
        .time_to_live_specification(ttl(false, "expires"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(describe().await.unwrap()),
        (Some(TimeToLiveStatus::Disabled), None)
    );
    let (code, _) = code_of(
        ddb.client
            .describe_time_to_live()
            .table_name("nope")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = code_of(
        ddb.client
            .update_time_to_live()
            .table_name("nope")
            .time_to_live_specification(ttl(true, "expires"))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = code_of(
        ddb.client
            .update_time_to_live()
            .table_name("tbl")
            .time_to_live_specification(ttl(true, ""))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
}

#[tokio::test]
async fn tags_and_time_to_live_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ddb = Ddb::with(Engine::builder().data_dir(dir.path())).await;
        ddb.table("tbl", None).await;
        ddb.client
            .tag_resource()
            .resource_arn(ARN)
            .tags(tag("env", "prod"))
            .tags(tag("team", "core"))
            .send()
            .await
            .unwrap();
        ddb.client
            .untag_resource()
            .resource_arn(ARN)
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        ddb.client
            .update_time_to_live()
            .table_name("tbl")
            .time_to_live_specification(ttl(true, "expires"))
            .send()
            .await
            .unwrap();
        ddb.handle.shutdown().await;
    }
    let ddb = Ddb::with(Engine::builder().data_dir(dir.path())).await;
    assert_eq!(
        all_tags(&ddb, ARN).await,
        [("env".to_owned(), "prod".to_owned())]
    );
    let description = ddb
        .client
        .describe_time_to_live()
        .table_name("tbl")
        .send()
        .await
        .unwrap()
        .time_to_live_description()
        .unwrap()
        .clone();
    assert_eq!(
        description.time_to_live_status(),
        Some(&TimeToLiveStatus::Enabled)
    );
    assert_eq!(description.attribute_name(), Some("expires"));
}

/// Waits (up to a generous deadline) until `table` holds exactly the `pk`s in `expected`.
async fn wait_for_keys(ddb: &Ddb, table: &str, expected: &[&str]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let scan = ddb
            .client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let mut keys: Vec<String> = scan
            .items()
            .iter()
            .map(|item| item["pk"].as_s().unwrap().clone())
            .collect();
        keys.sort();
        if keys == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{table} holds {keys:?}, expected {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn expired_items_are_deleted_on_the_engine_clock_and_stay_deleted_after_a_restart() {
    use crate::common::{item, n, s};
    let dir = tempfile::tempdir().unwrap();
    let now_s: i64 = 1_750_000_000;
    let clock = std::sync::Arc::new(core_engine::ManualClock::new(now_s * 1000));
    let builder = || {
        Engine::builder()
            .data_dir(dir.path())
            .clock(clock.clone())
            .retention_check_interval(std::time::Duration::from_millis(20))
    };
    {
        let ddb = Ddb::with(builder()).await;
        ddb.table("tbl", None).await;
        let past = (now_s - 10).to_string();
        let soon = (now_s + 100).to_string();
        let ancient = (now_s - 6 * 365 * 24 * 3600).to_string();
        ddb.put("tbl", item(&[("pk", s("past")), ("exp", n(&past))]))
            .await;
        ddb.put("tbl", item(&[("pk", s("soon")), ("exp", n(&soon))]))
            .await;
        // Never deleted: more than five years past, not a number, or no attribute.
        ddb.put("tbl", item(&[("pk", s("ancient")), ("exp", n(&ancient))]))
            .await;
        ddb.put("tbl", item(&[("pk", s("text")), ("exp", s(&past))]))
            .await;
        ddb.put("tbl", item(&[("pk", s("none"))])).await;
        // Nothing expires while TTL is disabled.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        wait_for_keys(&ddb, "tbl", &["ancient", "none", "past", "soon", "text"]).await;
        ddb.client
            .update_time_to_live()
            .table_name("tbl")
            .time_to_live_specification(ttl(true, "exp"))
            .send()
            .await
            .unwrap();
        wait_for_keys(&ddb, "tbl", &["ancient", "none", "soon", "text"]).await;
        clock.advance(101_000);
        wait_for_keys(&ddb, "tbl", &["ancient", "none", "text"]).await;
        ddb.handle.shutdown().await;
    }
    let ddb = Ddb::with(builder()).await;
    wait_for_keys(&ddb, "tbl", &["ancient", "none", "text"]).await;
}
