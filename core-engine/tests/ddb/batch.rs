//! BatchGetItem, BatchWriteItem, TransactWriteItems and TransactGetItems.

use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, DeleteRequest, Get, KeysAndAttributes, Put, PutRequest,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TransactGetItem, TransactWriteItem,
    Update, WriteRequest,
};

use crate::common::{Ddb, code_of, item, n, s};

#[tokio::test]
async fn batch_write_then_batch_get() {
    let ddb = Ddb::start().await;
    ddb.table("tab1", None).await;
    ddb.table("tab2", Some(ScalarAttributeType::N)).await;
    ddb.put("tab1", item(&[("pk", s("gone"))])).await;
    let put = |table_item| {
        WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .set_item(Some(table_item))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    ddb.client
        .batch_write_item()
        .request_items(
            "tab1",
            vec![
                put(item(&[("pk", s("a")), ("v", n("1"))])),
                put(item(&[("pk", s("b")), ("v", n("2"))])),
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .key("pk", s("gone"))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            ],
        )
        .request_items("tab2", vec![put(item(&[("pk", s("x")), ("sk", n("1"))]))])
        .send()
        .await
        .unwrap();
    let out = ddb
        .client
        .batch_get_item()
        .request_items(
            "tab1",
            KeysAndAttributes::builder()
                .keys(item(&[("pk", s("a"))]))
                .keys(item(&[("pk", s("b"))]))
                .keys(item(&[("pk", s("gone"))]))
                .projection_expression("v")
                .build()
                .unwrap(),
        )
        .request_items(
            "tab2",
            KeysAndAttributes::builder()
                .keys(item(&[("pk", s("x")), ("sk", n("1"))]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let responses = out.responses.unwrap();
    let mut t1: Vec<_> = responses["tab1"].iter().map(|i| i["v"].clone()).collect();
    t1.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(t1, [n("1"), n("2")]);
    assert_eq!(responses["tab2"].len(), 1);
    assert!(out.unprocessed_keys.unwrap_or_default().is_empty());

    let (code, message) = code_of(
        ddb.client
            .batch_write_item()
            .request_items(
                "tab1",
                vec![put(item(&[("pk", s("a"))])), put(item(&[("pk", s("a"))]))],
            )
            .send()
            .await,
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "ValidationException",
            "Provided list of item keys contains duplicates"
        )
    );
    let many: Vec<_> = (0..26)
        .map(|i| put(item(&[("pk", s(&i.to_string()))])))
        .collect();
    let (code, message) = code_of(
        ddb.client
            .batch_write_item()
            .request_items("tab1", many)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("Member must have length less than or equal to 25"),
        "{message}"
    );
}

#[tokio::test]
async fn transactions_apply_all_or_nothing() {
    let ddb = Ddb::start().await;
    ddb.table("acct", None).await;
    ddb.put("acct", item(&[("pk", s("alice")), ("balance", n("10"))]))
        .await;
    ddb.put("acct", item(&[("pk", s("bob")), ("balance", n("0"))]))
        .await;
    let transfer = |amount: &str| {
        ddb.client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name("acct")
                            .key("pk", s("alice"))
                            .update_expression("SET balance = balance - :a")
                            .condition_expression("balance >= :a")
                            .expression_attribute_values(":a", n(amount))
                            .return_values_on_condition_check_failure(
                                ReturnValuesOnConditionCheckFailure::AllOld,
                            )
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name("acct")
                            .key("pk", s("bob"))
                            .update_expression("ADD balance :a")
                            .expression_attribute_values(":a", n(amount))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name("acct")
                            .item("pk", s(&format!("log-{amount}")))
                            .condition_expression("attribute_not_exists(pk)")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
    };
    transfer("7").send().await.unwrap();
    let err = transfer("7").send().await.unwrap_err().into_service_error();
    let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e) = err else {
        panic!("{err:?}");
    };
    assert_eq!(
        e.message(),
        Some(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None, ConditionalCheckFailed]"
        )
    );
    let reasons = e.cancellation_reasons();
    assert_eq!(reasons[0].code(), Some("ConditionalCheckFailed"));
    assert_eq!(reasons[0].item().unwrap()["balance"], n("3"));
    assert_eq!(reasons[1].code(), Some("None"));
    // Nothing of the failed transaction was applied.
    assert_eq!(
        ddb.get("acct", item(&[("pk", s("bob"))])).await.unwrap()["balance"],
        n("7")
    );

    ddb.client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name("acct")
                        .key("pk", s("bob"))
                        .condition_expression("balance = :b")
                        .expression_attribute_values(":b", n("7"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name("acct")
                        .key("pk", s("log-7"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = ddb
        .client
        .transact_get_items()
        .transact_items(
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name("acct")
                        .key("pk", s("alice"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name("acct")
                        .key("pk", s("log-7"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let responses = got.responses();
    assert_eq!(responses[0].item().unwrap()["balance"], n("3"));
    assert!(responses[1].item().is_none());

    let (_, message) = code_of(
        ddb.client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name("acct")
                            .key("pk", s("bob"))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name("acct")
                            .key("pk", s("bob"))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await,
    );
    assert_eq!(
        message,
        "Transaction request cannot include multiple operations on one item"
    );
}
