//! Query (table and index) and Scan: key conditions, order, filters, pagination, segments.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType,
    ScalarAttributeType, Select,
};

use crate::common::{Ddb, Item, attr, code_of, item, key, n, s};

async fn events() -> Ddb {
    let ddb = Ddb::start().await;
    ddb.client
        .create_table()
        .table_name("events")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .attribute_definitions(attr("owner", ScalarAttributeType::S))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by-owner")
                .key_schema(key("owner", KeyType::Hash))
                .key_schema(key("pk", KeyType::Range))
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
    for p in ["a", "b", "c"] {
        for i in 0..10 {
            let mut it = item(&[
                ("pk", s(p)),
                ("sk", n(&i.to_string())),
                ("even", AttributeValue::Bool(i % 2 == 0)),
            ]);
            if i == 0 {
                it.insert("owner".into(), s(if p == "c" { "w2" } else { "w1" }));
            }
            ddb.put("events", it).await;
        }
    }
    ddb
}

fn sks(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| match &i["sk"] {
            AttributeValue::N(v) => v.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn query_key_conditions_order_and_filters() {
    let ddb = events().await;
    let query = |condition: &str| {
        ddb.client
            .query()
            .table_name("events")
            .key_condition_expression(condition)
            .expression_attribute_values(":p", s("b"))
    };
    let all = query("pk = :p").send().await.unwrap();
    assert_eq!(all.count(), 10);
    assert_eq!(
        sks(all.items()),
        (0..10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    let out = query("pk = :p AND sk BETWEEN :lo AND :hi")
        .expression_attribute_values(":lo", n("3"))
        .expression_attribute_values(":hi", n("5"))
        .scan_index_forward(false)
        .send()
        .await
        .unwrap();
    assert_eq!(sks(out.items()), ["5", "4", "3"]);
    let out = query("pk = :p AND sk >= :lo")
        .expression_attribute_values(":lo", n("8"))
        .send()
        .await
        .unwrap();
    assert_eq!(sks(out.items()), ["8", "9"]);
    let out = query("pk = :p AND sk < :hi")
        .expression_attribute_values(":hi", n("6"))
        .filter_expression("even = :t")
        .expression_attribute_values(":t", AttributeValue::Bool(true))
        .projection_expression("sk")
        .send()
        .await
        .unwrap();
    assert_eq!(sks(out.items()), ["0", "2", "4"]);
    assert_eq!((out.count(), out.scanned_count()), (3, 6));
    assert_eq!(out.items()[0].len(), 1);
    let out = query("pk = :p").select(Select::Count).send().await.unwrap();
    assert_eq!(out.count(), 10);
    assert!(out.items.is_none());

    let (code, message) = code_of(
        ddb.client
            .query()
            .table_name("events")
            .key_condition_expression("sk = :x")
            .expression_attribute_values(":x", n("1"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("Query condition missed key schema element"),
        "{message}"
    );
    let (_, message) = code_of(
        query("pk = :p OR sk = :x")
            .expression_attribute_values(":x", n("1"))
            .send()
            .await,
    );
    assert_eq!(
        message,
        "Invalid operator used in KeyConditionExpression: OR"
    );
}

#[tokio::test]
async fn query_pages_with_limit_and_exclusive_start_key() {
    let ddb = events().await;
    let mut seen = Vec::new();
    let mut start: Option<Item> = None;
    let mut pages = 0;
    loop {
        let out = ddb
            .client
            .query()
            .table_name("events")
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("a"))
            .limit(3)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        pages += 1;
        seen.extend(sks(out.items()));
        match out.last_evaluated_key {
            Some(key) => {
                assert_eq!(key.len(), 2);
                start = Some(key);
            }
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn query_on_an_index() {
    let ddb = events().await;
    let out = ddb
        .client
        .query()
        .table_name("events")
        .index_name("by-owner")
        .key_condition_expression("#o = :w")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":w", s("w1"))
        .send()
        .await
        .unwrap();
    // KEYS_ONLY: table keys and index keys only.
    assert_eq!(
        out.items(),
        [
            item(&[("pk", s("a")), ("sk", n("0")), ("owner", s("w1"))]),
            item(&[("pk", s("b")), ("sk", n("0")), ("owner", s("w1"))]),
        ]
    );
    let page = ddb
        .client
        .query()
        .table_name("events")
        .index_name("by-owner")
        .key_condition_expression("#o = :w")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":w", s("w1"))
        .limit(1)
        .send()
        .await
        .unwrap();
    let last = page.last_evaluated_key.unwrap();
    assert_eq!(last.len(), 3);
    let rest = ddb
        .client
        .query()
        .table_name("events")
        .index_name("by-owner")
        .key_condition_expression("#o = :w")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":w", s("w1"))
        .set_exclusive_start_key(Some(last))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.items()[0]["pk"], s("b"));
    // Moving an item to another owner moves it in the index.
    ddb.client
        .update_item()
        .table_name("events")
        .key("pk", s("a"))
        .key("sk", n("0"))
        .update_expression("SET #o = :w")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":w", s("w2"))
        .send()
        .await
        .unwrap();
    let out = ddb
        .client
        .query()
        .table_name("events")
        .index_name("by-owner")
        .key_condition_expression("#o = :w")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":w", s("w2"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 2);
    let (_, message) = code_of(
        ddb.client
            .query()
            .table_name("events")
            .index_name("by-owner")
            .consistent_read(true)
            .key_condition_expression("#o = :w")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":w", s("w2"))
            .send()
            .await,
    );
    assert_eq!(
        message,
        "Consistent reads are not supported on global secondary indexes"
    );
}

#[tokio::test]
async fn scan_pages_segments_and_filters() {
    let ddb = events().await;
    let mut all = BTreeSet::new();
    let mut start: Option<Item> = None;
    loop {
        let out = ddb
            .client
            .scan()
            .table_name("events")
            .limit(7)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for it in out.items() {
            assert!(
                all.insert(format!("{:?}/{:?}", it["pk"], it["sk"])),
                "duplicate {it:?}"
            );
        }
        match out.last_evaluated_key {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    assert_eq!(all.len(), 30);

    let mut segmented = BTreeSet::new();
    for segment in 0..4 {
        let out = ddb
            .client
            .scan()
            .table_name("events")
            .segment(segment)
            .total_segments(4)
            .send()
            .await
            .unwrap();
        for it in out.items() {
            assert!(segmented.insert(format!("{:?}/{:?}", it["pk"], it["sk"])));
        }
    }
    assert_eq!(segmented, all);

    let out = ddb
        .client
        .scan()
        .table_name("events")
        .filter_expression("even = :f AND sk > :five")
        .expression_attribute_values(":f", AttributeValue::Bool(false))
        .expression_attribute_values(":five", n("5"))
        .send()
        .await
        .unwrap();
    assert_eq!((out.count(), out.scanned_count()), (6, 30));
    let out = ddb
        .client
        .scan()
        .table_name("events")
        .index_name("by-owner")
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 3);

    let (_, message) = code_of(
        ddb.client
            .scan()
            .table_name("events")
            .segment(1)
            .send()
            .await,
    );
    assert_eq!(
        message,
        "The TotalSegments parameter is required but was not present in the request when Segment parameter is present"
    );
    let (_, message) = code_of(
        ddb.client
            .scan()
            .table_name("events")
            .segment(2)
            .total_segments(2)
            .send()
            .await,
    );
    assert_eq!(
        message,
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 2 is not less than TotalSegments: 2"
    );
    let (_, message) = code_of(
        ddb.client
            .scan()
            .table_name("events")
            .exclusive_start_key("nope", s("x"))
            .send()
            .await,
    );
    assert_eq!(
        message,
        "The provided starting key is invalid: The provided key element does not match the schema"
    );
}

#[tokio::test]
async fn scan_pages_stop_at_one_megabyte() {
    let ddb = Ddb::start().await;
    ddb.table("big", None).await;
    for i in 0..12 {
        ddb.put(
            "big",
            item(&[
                ("pk", s(&format!("k{i:02}"))),
                ("blob", s(&"x".repeat(200 * 1024))),
            ]),
        )
        .await;
    }
    let first = ddb.client.scan().table_name("big").send().await.unwrap();
    assert!(
        first.count() < 12 && first.count() >= 5,
        "{}",
        first.count()
    );
    let rest = ddb
        .client
        .scan()
        .table_name("big")
        .set_exclusive_start_key(first.last_evaluated_key.clone())
        .send()
        .await
        .unwrap();
    assert!(rest.count() + first.count() >= 10);
}
