//! Text vectors for the expression parsers and evaluator.

use super::ast::{
    Comparator, Condition, Operand, Path, PathElem, SetValue, UpdateAction, UpdateOperand,
};
use super::*;
use crate::dynamodb::number::Number;

fn exprs(names: &[(&str, &str)], values: &str) -> Expressions {
    let names = (!names.is_empty()).then(|| {
        names
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
    let values = (!values.is_empty()).then(|| serde_json::from_str(values).unwrap());
    Expressions::new(names, values).unwrap()
}

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(Number::parse(text).unwrap())
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn cond_error(text: &str) -> String {
    let mut e = exprs(&[("#n", "name")], r#"{":v":{"S":"x"},":n":{"N":"1"}}"#);
    e.condition("ConditionExpression", text)
        .unwrap_err()
        .to_string()
}

#[test]
fn parses_the_kcl_lock_client_condition() {
    let mut e = exprs(&[("#key", "leaseKey")], r#"{":value":{"S":"shard-1"}}"#);
    let c = e
        .condition(
            "ConditionExpression",
            "#key = :value AND attribute_exists (leaseKey)",
        )
        .unwrap();
    assert_eq!(
        c,
        Condition::And(vec![
            Condition::Compare(
                Operand::Path(Path::attr("leaseKey")),
                Comparator::Eq,
                Operand::Value(s("shard-1"))
            ),
            Condition::Exists(Path::attr("leaseKey"))
        ])
    );
    e.finish().unwrap();
}

#[test]
fn precedence_is_not_then_and_then_or() {
    let mut e = exprs(&[], r#"{":v":{"N":"1"}}"#);
    let c = e
        .condition("ConditionExpression", "a = :v OR NOT b = :v AND c = :v")
        .unwrap();
    let Condition::Or(terms) = c else {
        panic!("{c:?}")
    };
    let [_, Condition::And(right)] = terms.as_slice() else {
        panic!("{terms:?}")
    };
    assert!(matches!(right[0], Condition::Not(_)));
}

#[test]
fn paths_with_maps_lists_and_placeholders() {
    let mut e = exprs(&[("#n", "name")], "");
    let paths = e.projection("a.b[3].#n, c , #n").unwrap();
    assert_eq!(
        paths[0].0,
        vec![
            PathElem::Attr("a".into()),
            PathElem::Attr("b".into()),
            PathElem::Index(3),
            PathElem::Attr("name".into())
        ]
    );
    assert_eq!(paths[0].to_string(), "[a, b, [3], name]");
    assert_eq!(paths.len(), 3);
}

#[test]
fn syntax_errors_say_where() {
    assert_eq!(
        cond_error("a x b"),
        "Invalid ConditionExpression: Syntax error; token: \"x\", near: \"a x b\""
    );
    assert_eq!(
        cond_error("a ="),
        "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"=\""
    );
    assert_eq!(
        cond_error("a = :v AND"),
        "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"AND\""
    );
    assert_eq!(
        cond_error("(a = :v"),
        "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \":v\""
    );
    assert_eq!(
        cond_error("a = :v)"),
        "Invalid ConditionExpression: Syntax error; token: \")\", near: \":v)\""
    );
    assert_eq!(
        cond_error("a @ :v"),
        "Invalid ConditionExpression: Syntax error; token: \"@\", near: \"a @ :v\""
    );
    assert_eq!(
        cond_error("data-value = :v"),
        "Invalid ConditionExpression: Syntax error; token: \"-\", near: \"data-value\""
    );
    assert_eq!(
        cond_error("   "),
        "Invalid ConditionExpression: The expression can not be empty;"
    );
}

#[test]
fn semantic_errors_use_dynamodb_words() {
    assert_eq!(
        cond_error("#m = :v"),
        "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #m"
    );
    assert_eq!(
        cond_error("a = :w"),
        "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :w"
    );
    assert_eq!(
        cond_error("status = :v"),
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status"
    );
    assert_eq!(
        cond_error("foo(a)"),
        "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \")\""
    );
    assert_eq!(
        cond_error("foo(a) = :v"),
        "Invalid ConditionExpression: Invalid function name; function: foo"
    );
    assert_eq!(
        cond_error("attribute_exists(a, b)"),
        "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2"
    );
    assert_eq!(
        cond_error("attribute_exists(:v)"),
        "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists"
    );
    assert_eq!(
        cond_error("size(a)"),
        "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \")\""
    );
    assert_eq!(
        cond_error("attribute_exists(a) = :v"),
        "Invalid ConditionExpression: Syntax error; token: \"=\", near: \") = :v\""
    );
    assert_eq!(
        cond_error("begins_with(a, :n)"),
        "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"
    );
    assert_eq!(
        cond_error("a BETWEEN :v AND :n"),
        "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {\"S\":\"x\"}, upper bound operand: AttributeValue: {\"N\":\"1\"}"
    );
}

#[test]
fn placeholders_must_be_defined_valid_and_used() {
    let mut e = exprs(
        &[("#a", "a"), ("#b", "b")],
        r#"{":v":{"S":"x"},":w":{"S":"y"}}"#,
    );
    e.condition("ConditionExpression", "#a = :v").unwrap();
    assert_eq!(
        e.finish().unwrap_err().to_string(),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
    );
    let mut e = exprs(&[], r#"{":v":{"S":"x"},":w":{"S":"y"}}"#);
    e.condition("ConditionExpression", "a = :v").unwrap();
    assert_eq!(
        e.finish().unwrap_err().to_string(),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}"
    );
    let err =
        Expressions::new(Some([("a".to_string(), "b".to_string())].into()), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\""
    );
    let err = Expressions::new(
        None,
        Some(serde_json::from_str(r#"{":v":{"N":"x"}}"#).unwrap()),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value: x for key :v"
    );
    let err = Expressions::new(Some(Default::default()), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ExpressionAttributeNames must not be empty"
    );
}

#[test]
fn update_expressions_parse_every_section() {
    let mut e = exprs(
        &[("#c", "leaseCounter")],
        r#"{":one":{"N":"1"},":o":{"S":"w1"},":l":{"L":[]},":s":{"SS":["a"]}}"#,
    );
    let actions = e
        .update("set #c = #c + :one, leaseOwner = if_not_exists(leaseOwner, :o), h = list_append(h, :l) remove checkpointOwner ADD ownerSwitches :one delete tags :s")
        .unwrap();
    assert_eq!(actions.len(), 6);
    assert_eq!(
        actions[0],
        UpdateAction::Set(
            Path::attr("leaseCounter"),
            SetValue::Plus(
                UpdateOperand::Path(Path::attr("leaseCounter")),
                UpdateOperand::Value(n("1"))
            )
        )
    );
    assert_eq!(
        actions[3],
        UpdateAction::Remove(Path::attr("checkpointOwner"))
    );
    e.finish().unwrap();
}

#[test]
fn update_expression_errors() {
    let err = |text: &str| {
        let mut e = exprs(&[], r#"{":n":{"N":"1"},":s":{"S":"x"}}"#);
        e.update(text).unwrap_err().to_string()
    };
    assert_eq!(
        err("SET a = :n SET b = :n"),
        "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;"
    );
    assert_eq!(
        err("ADD a :s"),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING"
    );
    assert_eq!(
        err("DELETE a :n"),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER"
    );
    assert_eq!(
        err("SET a = :n REMOVE a.b"),
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"
    );
    assert_eq!(
        err("SET a :n"),
        "Invalid UpdateExpression: Syntax error; token: \":n\", near: \"a :n\""
    );
    assert_eq!(
        err("UPSERT a = :n"),
        "Invalid UpdateExpression: Syntax error; token: \"UPSERT\", near: \"UPSERT a\""
    );
    assert_eq!(
        err("SET a = nope(:n)"),
        "Invalid UpdateExpression: Invalid function name; function: nope"
    );
}

fn item(json: &str) -> Item {
    serde_json::from_str(json).unwrap()
}

fn check(text: &str, values: &str, on: &Item) -> bool {
    let mut e = exprs(&[], values);
    let c = e.condition("ConditionExpression", text).unwrap();
    eval::evaluate(&c, Some(on))
}

#[test]
fn conditions_evaluate_like_dynamodb() {
    let it = item(
        r#"{"s":{"S":"hello"},"n":{"N":"10"},"b":{"B":"AQID"},"ss":{"SS":["a","b"]},"l":{"L":[{"S":"x"},{"N":"2"}]},"m":{"M":{"k":{"BOOL":true}}},"z":{"NULL":true}}"#,
    );
    let v = r#"{":s":{"S":"hello"},":he":{"S":"he"},":n":{"N":"9.5"},":ten":{"N":"1e1"},":a":{"S":"a"},":x":{"S":"x"},":ss":{"SS":["b","a"]},":t":{"S":"SS"},":two":{"N":"2"},":five":{"N":"5"}}"#;
    for (text, expected) in [
        ("s = :s", true),
        ("n = :ten", true),
        ("n > :n", true),
        ("n <= :n", false),
        ("n BETWEEN :n AND :ten", true),
        ("s IN (:a, :s)", true),
        ("s <> :a", true),
        ("absent <> :a", true),
        ("absent = :a", false),
        ("absent < :a", false),
        ("s < :n", false),
        ("begins_with(s, :he)", true),
        ("contains(s, :he)", true),
        ("contains(ss, :a)", true),
        ("contains(l, :x)", true),
        ("ss = :ss", true),
        ("attribute_type(ss, :t)", true),
        ("attribute_exists(m.k)", true),
        ("attribute_not_exists(m.j)", true),
        ("attribute_exists(l[1])", true),
        ("attribute_exists(l[2])", false),
        ("size(s) = :five", true),
        ("size(l) = :two", true),
        ("size(absent) = :two", false),
        ("NOT (s = :s) OR n = :ten AND attribute_exists(z)", true),
        ("(s = :a OR s = :s) AND NOT attribute_exists(nope)", true),
    ] {
        assert_eq!(check(text, v, &it), expected, "{text}");
    }
    let mut e = exprs(&[], r#"{":k":{"S":"k"}}"#);
    let c = e
        .condition("ConditionExpression", "attribute_not_exists(leaseKey)")
        .unwrap();
    assert!(eval::evaluate(&c, None));
    let c = e.condition("ConditionExpression", "leaseKey = :k").unwrap();
    assert!(!eval::evaluate(&c, None));
}

fn updated(before: &str, text: &str, values: &str) -> Result<Item, DdbError> {
    let mut it = item(before);
    let mut e = exprs(&[], values);
    let actions = e.update(text)?;
    update::apply(&actions, &mut it)?;
    Ok(it)
}

#[test]
fn updates_apply_like_dynamodb() {
    let v = r#"{":one":{"N":"1"},":l":{"L":[{"S":"z"}]},":s":{"SS":["b","c"]},":x":{"S":"x"},":ns":{"NS":["5"]}}"#;
    let out = updated(
        r#"{"c":{"N":"41"},"l":{"L":[{"S":"a"}]},"s":{"SS":["a","b"]},"gone":{"S":"g"},"m":{"M":{}}}"#,
        "SET c = c + :one, l = list_append(l, :l), m.k = :x, d = if_not_exists(d, :one), l2 = list_append(:l, l) REMOVE gone ADD s :s, n :one DELETE ns2 :ns",
        v,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&out).unwrap(),
        r#"{"c":{"N":"42"},"d":{"N":"1"},"l":{"L":[{"S":"a"},{"S":"z"}]},"l2":{"L":[{"S":"z"},{"S":"a"}]},"m":{"M":{"k":{"S":"x"}}},"n":{"N":"1"},"s":{"SS":["a","b","c"]}}"#
    );
    let out = updated(
        r#"{"s":{"SS":["b","c"]},"l":{"L":[{"N":"0"},{"N":"1"},{"N":"2"}]}}"#,
        "DELETE s :s REMOVE l[0], l[2]",
        v,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&out).unwrap(),
        r#"{"l":{"L":[{"N":"1"}]}}"#
    );
    assert_eq!(
        updated("{}", "SET a = b + :one", v)
            .unwrap_err()
            .to_string(),
        "The provided expression refers to an attribute that does not exist in the item"
    );
    assert_eq!(
        updated(r#"{"a":{"S":"x"}}"#, "SET a = a + :one", v)
            .unwrap_err()
            .to_string(),
        "An operand in the update expression has an incorrect data type"
    );
    assert_eq!(
        updated("{}", "SET a.b = :one", v).unwrap_err().to_string(),
        "The document path provided in the update expression is invalid for update"
    );
    assert_eq!(
        updated(r#"{"a":{"S":"x"}}"#, "ADD a :one", v)
            .unwrap_err()
            .to_string(),
        "An operand in the update expression has an incorrect data type"
    );
}

#[test]
fn projections_keep_structure() {
    let it = item(
        r#"{"a":{"M":{"b":{"S":"1"},"c":{"S":"2"}}},"l":{"L":[{"S":"x"},{"S":"y"},{"S":"z"}]},"k":{"S":"k"}}"#,
    );
    let mut e = exprs(&[], "");
    let paths = e.projection("a.c, l[2], l[0], k, absent").unwrap();
    assert_eq!(
        serde_json::to_string(&eval::project(&it, &paths)).unwrap(),
        r#"{"a":{"M":{"c":{"S":"2"}}},"k":{"S":"k"},"l":{"L":[{"S":"x"},{"S":"z"}]}}"#
    );
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep = format!("{}a = :v{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(cond_error(&deep).contains("nested too deeply"));
    let nots = format!("{}a = :v", "NOT ".repeat(10_000));
    assert!(cond_error(&nots).contains("nested too deeply"));
    for text in [
        "a[99999999999999999999999] = :v",
        "a[",
        "#",
        ":",
        "size(",
        "a IN ()",
        "a BETWEEN :v",
        "é = :v",
        "a.",
        "SET",
        "REMOVE a,",
        "\u{0}",
    ] {
        fuzz_expression(text);
        let _ = cond_error(text);
    }
}
