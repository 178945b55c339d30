use super::super::*;
#[test]
fn worked_example() {
    let mut a = Aggregator::new();
    a.push("pk1", None, b"hi");
    a.push("pk1", None, b"yo");
    assert_eq!(a.size(), 41);
}
