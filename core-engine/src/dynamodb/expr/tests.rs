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

/// The size and operator limits lifted, to test what protects the stack without them.
const UNLIMITED: Limits = Limits {
    expression_bytes: usize::MAX,
    operators: usize::MAX,
    depth: Limits::DYNAMODB.depth,
};

fn unlimited() -> Expressions {
    exprs(&[], r#"{":v":{"N":"1"},":w":{"N":"2"}}"#).with_limits(UNLIMITED)
}

#[test]
fn a_chain_of_5000_terms_parses_evaluates_and_drops_without_deep_recursion() {
    // Run on a thread with a small stack: a recursion per term (as the binary tree the parser
    // built before) overflows it; a flat node does not.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let on = item(r#"{"a":{"N":"2"}}"#);
            for joiner in [" OR ", " AND "] {
                let text = vec!["a = :v"; 5000].join(joiner);
                let mut e = unlimited();
                let c = e.condition("ConditionExpression", &text).unwrap();
                let (Condition::Or(terms) | Condition::And(terms)) = &c else {
                    panic!("not flat")
                };
                assert_eq!(terms.len(), 5000);
                assert!(!eval::evaluate(&c, Some(&on)));
                let text = format!("{text} OR a = :w");
                let c = unlimited().condition("FilterExpression", &text).unwrap();
                assert!(eval::evaluate(&c, Some(&on)));
            }
            // NOT chains are read in a loop too, and an even number cancels out.
            let text = format!("{}a = :v", "NOT ".repeat(5001));
            let c = unlimited().condition("ConditionExpression", &text).unwrap();
            assert!(
                matches!(&c, Condition::Not(inner) if matches!(**inner, Condition::Compare(..)))
            );
            assert!(eval::evaluate(&c, Some(&on)));
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn nesting_is_bounded_whatever_the_other_limits() {
    let deep = format!("{}a = :v{}", "(".repeat(10_000), ")".repeat(10_000));
    let err = unlimited()
        .condition("ConditionExpression", &deep)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Invalid ConditionExpression: The expression is nested too deeply;"
    );
    let calls = format!("a = {}a{}", "size(".repeat(10_000), ")".repeat(10_000));
    let err = unlimited()
        .condition("ConditionExpression", &calls)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nested too deeply"), "{err}");
    let update = format!(
        "SET a = {}:v{}",
        "if_not_exists(b, ".repeat(10_000),
        ")".repeat(10_000)
    );
    let err = unlimited().update(&update).unwrap_err().to_string();
    assert!(err.contains("nested too deeply"), "{err}");
    // The deepest nesting allowed fits in half the stack of a thread of the blocking pool
    // (2 MiB), where DynamoDB requests run, even unoptimised.
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(|| {
            let depth = Limits::DYNAMODB.depth - 1;
            let fine = format!("{}a = :v{}", "NOT (".repeat(depth), ")".repeat(depth));
            let c = unlimited().condition("ConditionExpression", &fine).unwrap();
            eval::evaluate(&c, None);
            let fine = format!("a = {}a{}", "size(".repeat(depth), ")".repeat(depth));
            let _ = unlimited().condition("ConditionExpression", &fine);
            let fine = format!(
                "SET a = {}:v{}",
                "list_append(:v, ".repeat(depth),
                ")".repeat(depth)
            );
            let _ = unlimited().update(&fine);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn expressions_over_4_kb_are_refused_as_dynamodb_does() {
    let at_limit = format!("a{} = :v", "b".repeat(4096 - 6));
    assert_eq!(at_limit.len(), 4096);
    let mut e = exprs(&[], r#"{":v":{"N":"1"}}"#);
    e.condition("ConditionExpression", &at_limit).unwrap();
    let over = format!("a{} = :v", "b".repeat(4096 - 5));
    assert_eq!(
        cond_error(&over),
        "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 4097"
    );
    // The size is checked first, whatever the text holds.
    let err = exprs(&[], "")
        .condition("FilterExpression", &"(".repeat(20_000))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Invalid FilterExpression: Expression size has exceeded the maximum allowed size; expression size: 20000"
    );
    let text = "a".repeat(5000);
    let message = |kind: &str| {
        format!("Invalid {kind}: Expression size has exceeded the maximum allowed size;")
    };
    let err = exprs(&[], "").condition("KeyConditionExpression", &text);
    assert_eq!(
        err.unwrap_err().to_string(),
        message("KeyConditionExpression")
    );
    let err = exprs(&[], "").projection(&text);
    assert_eq!(
        err.unwrap_err().to_string(),
        message("ProjectionExpression")
    );
    let err = exprs(&[], "").update(&text);
    assert_eq!(err.unwrap_err().to_string(), message("UpdateExpression"));
}

#[test]
fn more_than_300_operators_are_refused() {
    // 150 comparisons and 149 ORs: 299 operators.
    let ok = vec!["a < :v"; 150].join(" OR ");
    exprs(&[], r#"{":v":{"N":"1"}}"#)
        .condition("ConditionExpression", &ok)
        .unwrap();
    let nested = format!("a<:v {}{}", "or (a<:v ".repeat(149), ")".repeat(149));
    exprs(&[], r#"{":v":{"N":"1"}}"#)
        .condition("ConditionExpression", &nested)
        .unwrap();
    let over = vec!["a < :v"; 151].join(" OR ");
    assert_eq!(
        cond_error(&over),
        "Invalid ConditionExpression: The expression contains too many operators; operator count: 301"
    );
    let nots = format!("{}a = :v", "NOT ".repeat(300));
    assert!(cond_error(&nots).ends_with("operator count: 301"));
    let functions = vec!["attribute_exists(a)"; 151].join(" AND ");
    assert!(cond_error(&functions).ends_with("operator count: 301"));
    let sets: Vec<String> = (0..301).map(|i| format!("a{i}=:v+:v")).collect();
    let text = format!("SET {}", sets.join(","));
    assert!(text.len() <= 4096);
    let err = exprs(&[], r#"{":v":{"N":"1"}}"#)
        .update(&text)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Invalid UpdateExpression: The expression contains too many operators; operator count: 301"
    );
    let sets: Vec<String> = (0..300).map(|i| format!("a{i}=:v+:v")).collect();
    exprs(&[], r#"{":v":{"N":"1"}}"#)
        .update(&format!("SET {}", sets.join(",")))
        .unwrap();
}

#[test]
fn document_paths_hold_at_most_32_elements() {
    let path = |n: usize| vec!["a"; n].join(".");
    exprs(&[], "").projection(&path(32)).unwrap();
    let err = exprs(&[], "")
        .projection(&path(33))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 33"
    );
    let indexes = format!("a{}", "[0]".repeat(40));
    assert!(exprs(&[], "").projection(&indexes).is_err());
}

#[test]
fn placeholders_are_bounded() {
    let long = format!("#{}", "n".repeat(255));
    let names = [(long.clone(), "x".to_owned())].into_iter().collect();
    let err = Expressions::new(Some(names), None).unwrap_err().to_string();
    assert_eq!(
        err,
        "The expression attribute map contains a key that is too long"
    );
    let ok = format!("#{}", "n".repeat(254));
    let names = [(ok, "x".to_owned())].into_iter().collect();
    Expressions::new(Some(names), None).unwrap();
    let long = format!(":{}", "v".repeat(255));
    let values = serde_json::from_str(&format!(r#"{{"{long}":{{"N":"1"}}}}"#)).unwrap();
    assert!(Expressions::new(None, Some(values)).is_err());
    // 2 MB of names and values together.
    let big = "x".repeat(1024 * 1024);
    let names = [("#a".to_owned(), big.clone())].into_iter().collect();
    let values =
        serde_json::from_str(&format!(r#"{{":v":{{"S":"{big}"}},":w":{{"S":"{big}"}}}}"#)).unwrap();
    let err = Expressions::new(Some(names), Some(values))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Combined size of ExpressionAttributeNames and ExpressionAttributeValues exceeds max size"
    );
    let names = [("#a".to_owned(), "x".repeat(3 * 1024 * 1024))]
        .into_iter()
        .collect();
    let err = Expressions::new(Some(names), None).unwrap_err().to_string();
    assert_eq!(err, "ExpressionAttributeNames exceeds max size");
}

#[test]
fn legacy_expected_with_many_entries_is_one_flat_node() {
    let entries: String = (0..5000)
        .map(|i| format!(r#""a{i}":{{"Value":{{"N":"1"}}}}"#))
        .collect::<Vec<_>>()
        .join(",");
    let expected = serde_json::from_str(&format!("{{{entries}}}")).unwrap();
    let c = crate::dynamodb::legacy::expected(expected, Some("OR"))
        .unwrap()
        .unwrap();
    let Condition::Or(terms) = &c else {
        panic!("not flat")
    };
    assert_eq!(terms.len(), 5000);
    assert!(eval::evaluate(&c, Some(&item(r#"{"a4999":{"N":"1"}}"#))));
}
