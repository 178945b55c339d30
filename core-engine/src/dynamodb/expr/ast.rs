//! The parsed forms of DynamoDB expressions, with placeholders already replaced by the names and
//! values they stand for.

use std::fmt;

use crate::dynamodb::value::AttributeValue;

/// One step of a document path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElem {
    /// A map key (or, first, a top-level attribute name).
    Attr(String),
    /// A list index.
    Index(usize),
}

/// A document path such as `a.b[2].c`; never empty, and it starts with an attribute name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElem>);

impl Path {
    /// A top-level attribute.
    pub fn attr(name: impl Into<String>) -> Self {
        Self(vec![PathElem::Attr(name.into())])
    }

    /// The top-level attribute name.
    pub fn head(&self) -> &str {
        match self.0.first() {
            Some(PathElem::Attr(name)) => name,
            _ => "",
        }
    }

    /// Whether this is just a top-level attribute.
    pub fn is_top_level(&self) -> bool {
        self.0.len() == 1
    }
}

/// As DynamoDB prints paths in errors: `[a, b, [2]]`.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, elem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match elem {
                PathElem::Attr(name) => f.write_str(name)?,
                PathElem::Index(index) => write!(f, "[{index}]")?,
            }
        }
        f.write_str("]")
    }
}

/// Something a condition compares.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// The value at a path of the item (absent if the path is not there).
    Path(Path),
    /// A literal from `ExpressionAttributeValues`.
    Value(AttributeValue),
    /// `size(path)`.
    Size(Path),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparator {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A condition (ConditionExpression, FilterExpression, KeyConditionExpression, and the legacy
/// `Expected` parameter once translated).
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// `a op b`
    Compare(Operand, Comparator, Operand),
    /// `a BETWEEN lo AND hi`
    Between(Operand, Operand, Operand),
    /// `a IN (b, c, …)`
    In(Operand, Vec<Operand>),
    /// `x AND y AND …`: two or more terms, all of which must hold. A chain is one flat node,
    /// so that neither evaluating nor dropping it recurses once per term.
    And(Vec<Condition>),
    /// `x OR y OR …`: two or more terms, one of which must hold; flat like [`Condition::And`].
    Or(Vec<Condition>),
    /// `NOT x`
    Not(Box<Condition>),
    /// `attribute_exists(path)`
    Exists(Path),
    /// `attribute_not_exists(path)`
    NotExists(Path),
    /// `attribute_type(path, :type)`
    Type(Path, Operand),
    /// `begins_with(a, b)`
    BeginsWith(Operand, Operand),
    /// `contains(a, b)`
    Contains(Operand, Operand),
}

/// An operand on the right of `SET path =`.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateOperand {
    /// The current value at a path.
    Path(Path),
    /// A literal.
    Value(AttributeValue),
    /// `if_not_exists(path, operand)`
    IfNotExists(Path, Box<UpdateOperand>),
    /// `list_append(a, b)`
    ListAppend(Box<UpdateOperand>, Box<UpdateOperand>),
}

/// The value a SET action assigns.
#[derive(Clone, Debug, PartialEq)]
pub enum SetValue {
    /// One operand.
    Operand(UpdateOperand),
    /// `a + b` (numbers).
    Plus(UpdateOperand, UpdateOperand),
    /// `a - b` (numbers).
    Minus(UpdateOperand, UpdateOperand),
}

/// One action of an UpdateExpression (or of the legacy `AttributeUpdates`).
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateAction {
    /// `SET path = value`
    Set(Path, SetValue),
    /// `REMOVE path`
    Remove(Path),
    /// `ADD path :v`: add to a number, or union into a set.
    Add(Path, AttributeValue),
    /// `DELETE path :set`: remove elements from a set.
    Delete(Path, AttributeValue),
}

impl UpdateAction {
    /// The path the action writes.
    pub fn path(&self) -> &Path {
        match self {
            Self::Set(p, _) | Self::Remove(p) | Self::Add(p, _) | Self::Delete(p, _) => p,
        }
    }
}
