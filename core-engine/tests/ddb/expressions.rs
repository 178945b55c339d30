//! Condition and update expressions through the SDK: each form, and where a malformed one is
//! wrong.

use aws_sdk_dynamodb::types::AttributeValue;

use crate::common::{Ddb, code_of, item, n, s};

async fn seeded() -> Ddb {
    let ddb = Ddb::start().await;
    ddb.table("exprs", None).await;
    ddb.put(
        "exprs",
        item(&[
            ("pk", s("k")),
            ("name", s("hello world")),
            ("count", n("10")),
            ("tags", AttributeValue::Ss(vec!["a".into(), "b".into()])),
            ("flags", AttributeValue::Ss(vec!["a".into(), "b".into()])),
            ("seq", AttributeValue::L(vec![s("x"), s("y")])),
            ("doc", AttributeValue::M(item(&[("leaf", n("1"))]))),
        ]),
    )
    .await;
    ddb
}

/// Whether a ConditionCheck-like conditional update with `condition` succeeds.
async fn holds(ddb: &Ddb, condition: &str, values: &[(&str, AttributeValue)]) -> bool {
    let mut request = ddb
        .client
        .update_item()
        .table_name("exprs")
        .key("pk", s("k"))
        .update_expression("SET touched = :t")
        .condition_expression(condition)
        .expression_attribute_names("#c", "count")
        .expression_attribute_names("#n", "name")
        .expression_attribute_values(":t", AttributeValue::Bool(true));
    for (k, v) in values {
        request = request.expression_attribute_values(*k, v.clone());
    }
    match request.send().await {
        Ok(_) => true,
        Err(e) => {
            let service = e.into_service_error();
            assert!(
                service.is_conditional_check_failed_exception(),
                "{condition}: {service:?}"
            );
            false
        }
    }
}

/// A condition, its placeholder values, and whether it holds for the seeded item.
type Case = (&'static str, Vec<(&'static str, AttributeValue)>, bool);

#[tokio::test]
async fn every_condition_form() {
    let ddb = seeded().await;
    let cases: Vec<Case> = vec![
        ("#c = :v", vec![(":v", n("10"))], true),
        ("#c <> :v", vec![(":v", n("10"))], false),
        ("#c < :v", vec![(":v", n("10.5"))], true),
        ("#c <= :v", vec![(":v", n("9"))], false),
        ("#c > :v", vec![(":v", n("-1"))], true),
        ("#c >= :v", vec![(":v", n("1e1"))], true),
        (
            "#c BETWEEN :a AND :b",
            vec![(":a", n("5")), (":b", n("10"))],
            true,
        ),
        (
            "#c IN (:a, :b)",
            vec![(":a", n("1")), (":b", n("2"))],
            false,
        ),
        (
            "#c = :a AND #n = :b",
            vec![(":a", n("10")), (":b", s("hello world"))],
            true,
        ),
        (
            "#c = :a OR #n = :b",
            vec![(":a", n("11")), (":b", s("nope"))],
            false,
        ),
        ("NOT #c = :a", vec![(":a", n("11"))], true),
        (
            "(#c = :a OR #c = :b) AND NOT (#n = :b)",
            vec![(":a", n("10")), (":b", s("x"))],
            true,
        ),
        ("attribute_exists (doc.leaf)", vec![], true),
        ("attribute_not_exists(pk)", vec![], false),
        ("attribute_type(tags, :t)", vec![(":t", s("SS"))], true),
        ("begins_with(#n, :p)", vec![(":p", s("hello"))], true),
        ("contains(#n, :p)", vec![(":p", s("o w"))], true),
        ("contains(tags, :p)", vec![(":p", s("c"))], false),
        ("contains(seq, :p)", vec![(":p", s("y"))], true),
        ("size(#n) = :v", vec![(":v", n("11"))], true),
        ("size(tags) > :v", vec![(":v", n("1"))], true),
        ("seq[1] = :v", vec![(":v", s("y"))], true),
    ];
    for (condition, values, expected) in cases {
        // Placeholders unused by one case would be rejected, so name both only where used.
        let uses_c = condition.contains("#c");
        let uses_n = condition.contains("#n");
        let mut request = ddb
            .client
            .update_item()
            .table_name("exprs")
            .key("pk", s("k"))
            .update_expression("SET touched = :t")
            .condition_expression(condition)
            .expression_attribute_values(":t", AttributeValue::Bool(true));
        if uses_c {
            request = request.expression_attribute_names("#c", "count");
        }
        if uses_n {
            request = request.expression_attribute_names("#n", "name");
        }
        for (k, v) in &values {
            request = request.expression_attribute_values(*k, v.clone());
        }
        let ok = match request.send().await {
            Ok(_) => true,
            Err(e) => {
                let service = e.into_service_error();
                assert!(
                    service.is_conditional_check_failed_exception(),
                    "{condition}: {service:?}"
                );
                false
            }
        };
        assert_eq!(ok, expected, "{condition}");
    }
    // The helper with both placeholders used.
    assert!(holds(&ddb, "#c = :v AND #n <> :v", &[(":v", n("10"))]).await);
}

#[tokio::test]
async fn every_update_form() {
    let ddb = seeded().await;
    ddb.client
        .update_item()
        .table_name("exprs")
        .key("pk", s("k"))
        .update_expression(
            "SET #c = #c - :one, seq = list_append(seq, :more), doc.added = :one, fresh = if_not_exists(fresh, :zero), #n = if_not_exists(#n, :zero) \
             REMOVE doc.leaf ADD tags :c, tally :one DELETE flags :a",
        )
        .expression_attribute_names("#c", "count")
        .expression_attribute_names("#n", "name")
        .expression_attribute_values(":one", n("1"))
        .expression_attribute_values(":zero", n("0"))
        .expression_attribute_values(":more", AttributeValue::L(vec![s("z")]))
        .expression_attribute_values(":c", AttributeValue::Ss(vec!["c".into()]))
        .expression_attribute_values(":a", AttributeValue::Ss(vec!["a".into()]))
        .send()
        .await
        .unwrap();
    let got = ddb.get("exprs", item(&[("pk", s("k"))])).await.unwrap();
    assert_eq!(got["count"], n("9"));
    assert_eq!(got["name"], s("hello world"));
    assert_eq!(got["fresh"], n("0"));
    assert_eq!(got["tally"], n("1"));
    assert_eq!(got["seq"], AttributeValue::L(vec![s("x"), s("y"), s("z")]));
    assert_eq!(got["doc"], AttributeValue::M(item(&[("added", n("1"))])));
    let AttributeValue::Ss(mut tags) = got["tags"].clone() else {
        panic!()
    };
    tags.sort();
    assert_eq!(tags, ["a", "b", "c"]);
    assert_eq!(got["flags"], AttributeValue::Ss(vec!["b".into()]));
}

#[tokio::test]
async fn malformed_expressions_say_where() {
    let ddb = seeded().await;
    let (code, message) = code_of(
        ddb.client
            .put_item()
            .table_name("exprs")
            .item("pk", s("z"))
            .condition_expression("a x b")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "Invalid ConditionExpression: Syntax error; token: \"x\", near: \"a x b\""
    );
    let (_, message) = code_of(
        ddb.client
            .update_item()
            .table_name("exprs")
            .key("pk", s("k"))
            .update_expression("SET a = ")
            .send()
            .await,
    );
    assert!(
        message.starts_with("Invalid UpdateExpression: Syntax error; token: \"<EOF>\""),
        "{message}"
    );
    let (_, message) = code_of(
        ddb.client
            .update_item()
            .table_name("exprs")
            .key("pk", s("k"))
            .update_expression("SET #s = :v")
            .expression_attribute_names("#s", "status")
            .send()
            .await,
    );
    assert_eq!(
        message,
        "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :v"
    );
    let (_, message) = code_of(
        ddb.client
            .update_item()
            .table_name("exprs")
            .key("pk", s("k"))
            .update_expression("SET status = :v")
            .expression_attribute_values(":v", n("1"))
            .send()
            .await,
    );
    assert_eq!(
        message,
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status"
    );
    let (_, message) = code_of(
        ddb.client
            .put_item()
            .table_name("exprs")
            .item("pk", s("z"))
            .condition_expression("attribute_not_exists(pk)")
            .expression_attribute_values(":unused", n("1"))
            .send()
            .await,
    );
    assert_eq!(
        message,
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}"
    );
    let (_, message) = code_of(
        ddb.client
            .update_item()
            .table_name("exprs")
            .key("pk", s("k"))
            .update_expression("SET #n = #n + :v")
            .expression_attribute_names("#n", "name")
            .expression_attribute_values(":v", n("1"))
            .send()
            .await,
    );
    assert_eq!(
        message,
        "An operand in the update expression has an incorrect data type"
    );
}
