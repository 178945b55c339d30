//! GetItem, PutItem, UpdateItem and DeleteItem: every attribute type, return values, the legacy
//! parameters, and item-level limits.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeAction, AttributeValue, AttributeValueUpdate, ExpectedAttributeValue, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
};

use crate::common::{Ddb, code_of, item, n, s};

#[tokio::test]
async fn every_attribute_type_round_trips() {
    let ddb = Ddb::start().await;
    ddb.table("types", Some(ScalarAttributeType::N)).await;
    let full = item(&[
        ("pk", s("p")),
        ("sk", n("1")),
        ("s", s("héllo")),
        ("n", n("-12.50")),
        ("big", n("12345678901234567890123456789012345678")),
        ("tiny", n("1E-130")),
        ("b", AttributeValue::B(Blob::new(vec![0u8, 1, 255]))),
        ("bool", AttributeValue::Bool(true)),
        ("null", AttributeValue::Null(true)),
        ("ss", AttributeValue::Ss(vec!["a".into(), "b".into()])),
        ("ns", AttributeValue::Ns(vec!["1".into(), "2.5".into()])),
        (
            "bs",
            AttributeValue::Bs(vec![Blob::new(vec![1u8]), Blob::new(vec![2u8])]),
        ),
        (
            "l",
            AttributeValue::L(vec![s("x"), n("1"), AttributeValue::L(vec![])]),
        ),
        (
            "m",
            AttributeValue::M(item(&[(
                "nested",
                AttributeValue::M(item(&[("deep", AttributeValue::Bool(false))])),
            )])),
        ),
    ]);
    ddb.put("types", full.clone()).await;
    let got = ddb
        .get("types", item(&[("pk", s("p")), ("sk", n("1"))]))
        .await
        .unwrap();
    let mut expected = full.clone();
    // Numbers come back normalised.
    expected.insert("n".into(), n("-12.5"));
    expected.insert("tiny".into(), n(&format!("0.{}1", "0".repeat(129))));
    assert_eq!(got, expected);
    assert!(
        ddb.get("types", item(&[("pk", s("p")), ("sk", n("2"))]))
            .await
            .is_none()
    );

    let projected = ddb
        .client
        .get_item()
        .table_name("types")
        .key("pk", s("p"))
        .key("sk", n("1"))
        .projection_expression("#m.nested, l[1], s")
        .expression_attribute_names("#m", "m")
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        projected,
        item(&[
            (
                "m",
                AttributeValue::M(item(&[(
                    "nested",
                    AttributeValue::M(item(&[("deep", AttributeValue::Bool(false))]))
                )]))
            ),
            ("l", AttributeValue::L(vec![n("1")])),
            ("s", s("héllo")),
        ])
    );
    let legacy = ddb
        .client
        .get_item()
        .table_name("types")
        .key("pk", s("p"))
        .key("sk", n("1"))
        .attributes_to_get("bool")
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(legacy, item(&[("bool", AttributeValue::Bool(true))]));
}

#[tokio::test]
async fn put_update_delete_with_return_values() {
    let ddb = Ddb::start().await;
    ddb.table("retvals", None).await;
    let out = ddb
        .client
        .put_item()
        .table_name("retvals")
        .item("pk", s("a"))
        .item("v", n("1"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert!(out.attributes.is_none());
    let out = ddb
        .client
        .put_item()
        .table_name("retvals")
        .item("pk", s("a"))
        .item("v", n("2"))
        .item("w", s("x"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.attributes.unwrap(),
        item(&[("pk", s("a")), ("v", n("1"))])
    );

    let update = |rv: ReturnValue| {
        ddb.client
            .update_item()
            .table_name("retvals")
            .key("pk", s("a"))
            .update_expression("SET v = v + :one")
            .expression_attribute_values(":one", n("1"))
            .return_values(rv)
    };
    let out = update(ReturnValue::UpdatedOld).send().await.unwrap();
    assert_eq!(out.attributes.unwrap(), item(&[("v", n("2"))]));
    let out = update(ReturnValue::UpdatedNew).send().await.unwrap();
    assert_eq!(out.attributes.unwrap(), item(&[("v", n("4"))]));
    let out = update(ReturnValue::AllNew).send().await.unwrap();
    assert_eq!(
        out.attributes.unwrap(),
        item(&[("pk", s("a")), ("v", n("5")), ("w", s("x"))])
    );
    let out = update(ReturnValue::AllOld).send().await.unwrap();
    assert_eq!(
        out.attributes.unwrap(),
        item(&[("pk", s("a")), ("v", n("5")), ("w", s("x"))])
    );
    let out = update(ReturnValue::None).send().await.unwrap();
    assert!(out.attributes.is_none());

    // UpdateItem on a missing item creates it.
    ddb.client
        .update_item()
        .table_name("retvals")
        .key("pk", s("new"))
        .update_expression("ADD c :one")
        .expression_attribute_values(":one", n("1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ddb.get("retvals", item(&[("pk", s("new"))])).await.unwrap(),
        item(&[("pk", s("new")), ("c", n("1"))])
    );

    let out = ddb
        .client
        .delete_item()
        .table_name("retvals")
        .key("pk", s("a"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes.unwrap()["v"], n("7"));
    assert!(ddb.get("retvals", item(&[("pk", s("a"))])).await.is_none());
    // Deleting what is not there succeeds.
    ddb.client
        .delete_item()
        .table_name("retvals")
        .key("pk", s("a"))
        .send()
        .await
        .unwrap();

    let (code, message) = code_of(
        ddb.client
            .put_item()
            .table_name("retvals")
            .item("pk", s("a"))
            .return_values(ReturnValue::AllNew)
            .send()
            .await,
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "ValidationException",
            "ReturnValues can only be ALL_OLD or NONE"
        )
    );
}

#[tokio::test]
async fn legacy_expected_and_attribute_updates() {
    let ddb = Ddb::start().await;
    ddb.table("legacy", None).await;
    let put_if_absent = || {
        ddb.client
            .put_item()
            .table_name("legacy")
            .item("pk", s("lease"))
            .item("leaseCounter", n("0"))
            .expected(
                "pk",
                ExpectedAttributeValue::builder().exists(false).build(),
            )
    };
    put_if_absent().send().await.unwrap();
    let (code, message) = code_of(put_if_absent().send().await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "ConditionalCheckFailedException",
            "The conditional request failed"
        )
    );
    let bump = |expected: &str| {
        ddb.client
            .update_item()
            .table_name("legacy")
            .key("pk", s("lease"))
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
                    .value(s("w1"))
                    .build(),
            )
            .attribute_updates(
                "checkpointOwner",
                AttributeValueUpdate::builder()
                    .action(AttributeAction::Delete)
                    .build(),
            )
            .expected(
                "leaseCounter",
                ExpectedAttributeValue::builder().value(n(expected)).build(),
            )
            .return_values(ReturnValue::AllNew)
    };
    let out = bump("0").send().await.unwrap();
    assert_eq!(
        out.attributes.unwrap(),
        item(&[
            ("pk", s("lease")),
            ("leaseCounter", n("1")),
            ("leaseOwner", s("w1"))
        ])
    );
    let (code, _) = code_of(bump("0").send().await);
    assert_eq!(code, "ConditionalCheckFailedException");
    // ComparisonOperator forms.
    ddb.client
        .delete_item()
        .table_name("legacy")
        .key("pk", s("lease"))
        .expected(
            "leaseCounter",
            ExpectedAttributeValue::builder()
                .comparison_operator(aws_sdk_dynamodb::types::ComparisonOperator::Between)
                .attribute_value_list(n("0"))
                .attribute_value_list(n("5"))
                .build(),
        )
        .expected(
            "leaseOwner",
            ExpectedAttributeValue::builder()
                .comparison_operator(aws_sdk_dynamodb::types::ComparisonOperator::NotNull)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        ddb.get("legacy", item(&[("pk", s("lease"))]))
            .await
            .is_none()
    );

    let (code, message) = code_of(
        ddb.client
            .put_item()
            .table_name("legacy")
            .item("pk", s("x"))
            .expected(
                "pk",
                ExpectedAttributeValue::builder().exists(false).build(),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}"
    );
    let (_, message) = code_of(
        ddb.client
            .put_item()
            .table_name("legacy")
            .item("pk", s("x"))
            .expected("pk", ExpectedAttributeValue::builder().exists(true).build())
            .send()
            .await,
    );
    assert_eq!(
        message,
        "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: pk"
    );
}

#[tokio::test]
async fn condition_failure_can_return_the_item() {
    let ddb = Ddb::start().await;
    ddb.table("ccf", None).await;
    ddb.put("ccf", item(&[("pk", s("k")), ("owner", s("a"))]))
        .await;
    let err = ddb
        .client
        .update_item()
        .table_name("ccf")
        .key("pk", s("k"))
        .update_expression("SET #o = :me")
        .condition_expression("#o = :other")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":me", s("b"))
        .expression_attribute_values(":other", s("c"))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    let aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
        e,
    ) = err
    else {
        panic!("{err:?}");
    };
    assert_eq!(e.message(), Some("The conditional request failed"));
    assert_eq!(
        e.item().unwrap(),
        &item(&[("pk", s("k")), ("owner", s("a"))])
    );
}

#[tokio::test]
async fn keys_and_sizes_are_checked() {
    let ddb = Ddb::start().await;
    ddb.table("keys", Some(ScalarAttributeType::N)).await;
    let cases = [
        (
            item(&[("sk", n("1"))]),
            "One or more parameter values were invalid: Missing the key pk in the item",
        ),
        (
            item(&[("pk", n("1")), ("sk", n("1"))]),
            "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
        ),
        (
            item(&[("pk", s("")), ("sk", n("1"))]),
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk",
        ),
        (
            item(&[
                ("pk", s("a")),
                ("sk", n("1")),
                ("big", s(&"x".repeat(400 * 1024))),
            ]),
            "Item size has exceeded the maximum allowed size",
        ),
        (
            item(&[
                ("pk", s("a")),
                ("sk", n("123456789012345678901234567890123456789")),
            ]),
            "Attempting to store more than 38 significant digits in a Number",
        ),
        (
            item(&[("pk", s("a")), ("sk", n("1e126"))]),
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
        (
            item(&[("pk", s("a")), ("sk", n("one"))]),
            "The parameter cannot be converted to a numeric value: one",
        ),
        (
            item(&[
                ("pk", s("a")),
                ("sk", n("1")),
                ("e", AttributeValue::Ss(vec![])),
            ]),
            "One or more parameter values were invalid: An string set  may not be empty",
        ),
    ];
    for (bad, message) in cases {
        let (code, got) = code_of(
            ddb.client
                .put_item()
                .table_name("keys")
                .set_item(Some(bad))
                .send()
                .await,
        );
        assert_eq!(code, "ValidationException");
        assert_eq!(got, message);
    }
    let (code, message) = code_of(
        ddb.client
            .get_item()
            .table_name("keys")
            .key("pk", s("a"))
            .send()
            .await,
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "ValidationException",
            "The provided key element does not match the schema"
        )
    );
    let (_, message) = code_of(
        ddb.client
            .update_item()
            .table_name("keys")
            .key("pk", s("a"))
            .key("sk", n("1"))
            .update_expression("SET pk = :v")
            .expression_attribute_values(":v", s("b"))
            .send()
            .await,
    );
    assert_eq!(
        message,
        "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"
    );
    // An item just under the limit is fine.
    ddb.put(
        "keys",
        item(&[
            ("pk", s("a")),
            ("sk", n("1")),
            ("big", s(&"x".repeat(400 * 1024 - 20))),
        ]),
    )
    .await;
}
