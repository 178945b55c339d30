//! A recursive-descent parser for the four expression languages.
//!
//! Grammar (keywords are case-insensitive, function names are not):
//! ```text
//! condition  := or
//! or         := and ("OR" and)*
//! and        := not ("AND" not)*
//! not        := "NOT" not | primary
//! primary    := "(" condition ")"
//!             | bool_function "(" operand ("," operand)* ")"
//!             | operand comparator operand
//!             | operand "BETWEEN" operand "AND" operand
//!             | operand "IN" "(" operand ("," operand)* ")"
//! operand    := path | :value | "size" "(" path ")"
//! path       := (name | #name) ("." (name | #name) | "[" digits "]")*
//! update     := section+ where each of SET, REMOVE, ADD, DELETE appears at most once
//! section    := "SET" set ("," set)* | "REMOVE" path ("," path)*
//!             | "ADD" path :value ("," path :value)* | "DELETE" path :value ("," …)*
//! set        := path "=" uoperand (("+" | "-") uoperand)?
//! uoperand   := path | :value | "if_not_exists" "(" path "," uoperand ")"
//!             | "list_append" "(" uoperand "," uoperand ")"
//! projection := path ("," path)*
//! ```
//! Syntax errors stop the parse at once and quote the token and its neighbours. Semantic errors
//! (an undefined placeholder, a reserved word, a wrong operand) are remembered and reported only
//! if the whole expression is syntactically valid, as DynamoDB does.
//!
//! Hostile input is bounded ([`Limits`]): DynamoDB's 300 operators and functions per expression
//! and 32 elements per document path stop the parse at once, and so does nesting (parentheses
//! and function calls) deeper than 200, the only thing the parser recurses on. `AND` and `OR`
//! chains are read in loops into flat n-ary nodes and `NOT NOT` cancels out, so no chain, however
//! long, makes the parser, the evaluator or a drop recurse once per term.

use super::Expressions;
use super::ast::{Comparator, Condition, Operand, Path, PathElem, UpdateAction};
use super::lexer::{Tok, Token, lex};
use super::reserved::is_reserved;
use crate::dynamodb::value::AttributeValue;

mod update;

const BOOL_FUNCTIONS: [&str; 5] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
];
const TYPE_NAMES: [&str; 10] = ["S", "N", "B", "NULL", "BOOL", "SS", "NS", "BS", "L", "M"];
const KEYWORDS: [&str; 5] = ["AND", "OR", "NOT", "BETWEEN", "IN"];
/// How much an expression may hold; [`Limits::DYNAMODB`] everywhere but in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Bytes of expression text (DynamoDB: 4 KB).
    pub(crate) expression_bytes: usize,
    /// Operators and functions in one expression (DynamoDB: 300).
    pub(crate) operators: usize,
    /// Parentheses and function calls nested inside each other. DynamoDB's own bound is the
    /// operator count and its ban on redundant parentheses; this one keeps the parser's
    /// recursion short whatever the other limits are: 200 levels take under 1 MiB of stack even
    /// unoptimised, half of what a thread of the blocking pool has.
    pub(crate) depth: usize,
}

impl Limits {
    /// DynamoDB's documented limits, and the engine's own nesting bound.
    pub(crate) const DYNAMODB: Self = Self {
        expression_bytes: 4096,
        operators: 300,
        depth: 200,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DYNAMODB
    }
}

/// The most elements a document path may have (DynamoDB's 32 levels of nesting).
const MAX_PATH_ELEMENTS: usize = 32;

type PResult<T> = Result<T, String>;

struct Parser<'s, 'p> {
    source: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    placeholders: &'p mut Expressions,
    semantic: Option<String>,
    depth: usize,
    operators: usize,
    limits: Limits,
}

/// Parses a condition (ConditionExpression, FilterExpression or KeyConditionExpression). The
/// error is DynamoDB's message without the `Invalid …Expression: ` prefix.
pub(crate) fn parse_condition(source: &str, ph: &mut Expressions) -> PResult<Condition> {
    Parser::new(source, ph)?.finish(|p| p.condition())
}

/// Parses an UpdateExpression into its actions.
pub(crate) fn parse_update(source: &str, ph: &mut Expressions) -> PResult<Vec<UpdateAction>> {
    Parser::new(source, ph)?.finish(|p| p.update())
}

/// Parses a ProjectionExpression into its paths.
pub(crate) fn parse_projection(source: &str, ph: &mut Expressions) -> PResult<Vec<Path>> {
    Parser::new(source, ph)?.finish(|p| {
        let mut paths = vec![p.path()?];
        while p.eat(&Tok::Comma) {
            paths.push(p.path()?);
        }
        Ok(paths)
    })
}

impl<'s, 'p> Parser<'s, 'p> {
    fn new(source: &'s str, placeholders: &'p mut Expressions) -> PResult<Self> {
        if source.trim().is_empty() {
            return Err("The expression can not be empty;".into());
        }
        let limits = placeholders.limits;
        Ok(Self {
            source,
            tokens: lex(source),
            pos: 0,
            placeholders,
            semantic: None,
            depth: 0,
            operators: 0,
            limits,
        })
    }

    fn finish<T>(mut self, body: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        let value = body(&mut self)?;
        if self.peek() != &Tok::Eof {
            return Err(self.syntax_error());
        }
        match self.semantic {
            Some(message) => Err(message),
            None => Ok(value),
        }
    }

    fn peek(&self) -> &Tok {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)].tok
    }

    fn bump(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok) -> PResult<()> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Tok::Ident(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        if self.at_keyword(keyword) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// `Syntax error; token: "x", near: "a x b"`: the token, and the source from the start of
    /// the token before it to the end of the one after it.
    fn syntax_error(&self) -> String {
        let at = self.pos.min(self.tokens.len() - 1);
        let token = &self.tokens[at];
        let from = if at > 0 {
            self.tokens[at - 1].start
        } else {
            token.start
        };
        let to = self.tokens.get(at + 1).map_or(token.end, |next| next.end);
        let near = self.source.get(from..to).unwrap_or("");
        format!(
            "Syntax error; token: \"{}\", near: \"{near}\"",
            token.text(self.source)
        )
    }

    fn semantic(&mut self, message: String) {
        self.semantic.get_or_insert(message);
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > self.limits.depth {
            return Err("The expression is nested too deeply;".into());
        }
        Ok(())
    }

    /// Counts one operator or function against DynamoDB's limit.
    fn operator(&mut self) -> PResult<()> {
        self.operators += 1;
        if self.operators > self.limits.operators {
            return Err(format!(
                "The expression contains too many operators; operator count: {}",
                self.operators
            ));
        }
        Ok(())
    }

    // ---- paths and operands

    fn path(&mut self) -> PResult<Path> {
        let first = self.path_name()?;
        let mut elems = vec![first];
        loop {
            if self.eat(&Tok::Dot) {
                elems.push(self.path_name()?);
            } else if self.peek() == &Tok::LBracket {
                self.bump();
                let Tok::Int(digits) = self.peek().clone() else {
                    return Err(self.syntax_error());
                };
                let Ok(index) = digits.parse::<usize>() else {
                    return Err(self.syntax_error());
                };
                self.bump();
                self.expect(&Tok::RBracket)?;
                elems.push(PathElem::Index(index));
            } else {
                return Ok(Path(elems));
            }
            if elems.len() > MAX_PATH_ELEMENTS {
                return Err(format!(
                    "The document path has too many nesting levels; nesting levels: {}",
                    elems.len()
                ));
            }
        }
    }

    fn path_name(&mut self) -> PResult<PathElem> {
        match self.peek().clone() {
            Tok::Ident(word) if !KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k)) => {
                if word.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err(self.syntax_error());
                }
                self.bump();
                if is_reserved(&word) {
                    self.semantic(format!(
                        "Attribute name is a reserved keyword; reserved keyword: {word}"
                    ));
                }
                Ok(PathElem::Attr(word))
            }
            Tok::Name(placeholder) => {
                self.bump();
                match self.placeholders.name(&placeholder) {
                    Some(name) => Ok(PathElem::Attr(name)),
                    None => {
                        self.semantic(format!(
                            "An expression attribute name used in the document path is not defined; attribute name: {placeholder}"
                        ));
                        Ok(PathElem::Attr(placeholder))
                    }
                }
            }
            _ => Err(self.syntax_error()),
        }
    }

    fn value(&mut self, placeholder: &str) -> AttributeValue {
        match self.placeholders.value(placeholder) {
            Some(value) => value,
            None => {
                self.semantic(format!(
                    "An expression attribute value used in expression is not defined; attribute value: {placeholder}"
                ));
                AttributeValue::Null
            }
        }
    }

    fn is_call(&self) -> bool {
        matches!(self.peek(), Tok::Ident(_)) && self.peek_at(1) == &Tok::LParen
    }

    fn operand(&mut self) -> PResult<Operand> {
        match self.peek().clone() {
            Tok::Value(placeholder) => {
                self.bump();
                Ok(Operand::Value(self.value(&placeholder)))
            }
            Tok::Ident(_) if self.is_call() => {
                let (name, args) = self.call(Self::operand)?;
                Ok(self.operand_function(&name, args))
            }
            _ => Ok(Operand::Path(self.path()?)),
        }
    }

    /// `name ( arg, … )`, with `arg` parsed by `parse_arg`.
    fn call<T>(&mut self, parse_arg: fn(&mut Self) -> PResult<T>) -> PResult<(String, Vec<T>)> {
        let Tok::Ident(name) = self.bump() else {
            return Err(self.syntax_error());
        };
        self.expect(&Tok::LParen)?;
        self.operator()?;
        self.enter()?;
        let mut args = vec![parse_arg(self)?];
        while self.eat(&Tok::Comma) {
            args.push(parse_arg(self)?);
        }
        self.depth -= 1;
        self.expect(&Tok::RParen)?;
        Ok((name, args))
    }

    fn operand_function(&mut self, name: &str, mut args: Vec<Operand>) -> Operand {
        if name == "size" {
            if args.len() != 1 {
                self.wrong_arity(name, args.len());
            } else if let Operand::Path(path) = args.remove(0) {
                return Operand::Size(path);
            } else {
                self.needs_path(name);
            }
        } else if BOOL_FUNCTIONS.contains(&name) {
            self.semantic(format!(
                "The function is not allowed to be used this way in an expression; function: {name}"
            ));
        } else {
            self.semantic(format!("Invalid function name; function: {name}"));
        }
        Operand::Value(AttributeValue::Null)
    }

    fn wrong_arity(&mut self, name: &str, count: usize) {
        self.semantic(format!(
            "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {count}"
        ));
    }

    fn needs_path(&mut self, name: &str) {
        self.semantic(format!(
            "Operator or function requires a document path; operator or function: {name}"
        ));
    }

    fn wrong_operand_type(&mut self, name: &str, value: &AttributeValue) {
        self.semantic(format!(
            "Incorrect operand type for operator or function; operator or function: {name}, operand type: {}",
            value.type_name()
        ));
    }

    // ---- conditions

    fn condition(&mut self) -> PResult<Condition> {
        self.enter()?;
        let mut terms = vec![self.and()?];
        while self.eat_keyword("OR") {
            self.operator()?;
            terms.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Condition::Or(terms)
        })
    }

    fn and(&mut self) -> PResult<Condition> {
        let mut terms = vec![self.not()?];
        while self.eat_keyword("AND") {
            self.operator()?;
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Condition::And(terms)
        })
    }

    /// `NOT NOT … x`: read in a loop; an even number of NOTs cancels out.
    fn not(&mut self) -> PResult<Condition> {
        let mut negated = false;
        while self.eat_keyword("NOT") {
            self.operator()?;
            negated = !negated;
        }
        let inner = self.primary()?;
        Ok(if negated {
            Condition::Not(Box::new(inner))
        } else {
            inner
        })
    }

    /// A parenthesised condition or a [`Self::comparison`]. Kept small: nested parentheses
    /// recurse through here, so its stack frame is paid once per level.
    fn primary(&mut self) -> PResult<Condition> {
        if self.eat(&Tok::LParen) {
            let inner = self.condition()?;
            self.expect(&Tok::RParen)?;
            return Ok(inner);
        }
        self.comparison()
    }

    /// A comparison, BETWEEN, IN or boolean function.
    #[inline(never)]
    fn comparison(&mut self) -> PResult<Condition> {
        let is_bool_function =
            matches!(self.peek(), Tok::Ident(name) if BOOL_FUNCTIONS.contains(&name.as_str()));
        if self.is_call() && is_bool_function {
            let (name, args) = self.call(Self::operand)?;
            return Ok(self.bool_function(&name, args));
        }
        let left = self.operand()?;
        let comparator = match self.peek() {
            Tok::Eq => Some(Comparator::Eq),
            Tok::Ne => Some(Comparator::Ne),
            Tok::Lt => Some(Comparator::Lt),
            Tok::Le => Some(Comparator::Le),
            Tok::Gt => Some(Comparator::Gt),
            Tok::Ge => Some(Comparator::Ge),
            _ => None,
        };
        if let Some(comparator) = comparator {
            self.bump();
            self.operator()?;
            let right = self.operand()?;
            return Ok(Condition::Compare(left, comparator, right));
        }
        if self.eat_keyword("BETWEEN") {
            self.operator()?;
            let low = self.operand()?;
            if !self.eat_keyword("AND") {
                return Err(self.syntax_error());
            }
            let high = self.operand()?;
            self.check_between(&low, &high);
            return Ok(Condition::Between(left, low, high));
        }
        if self.eat_keyword("IN") {
            self.operator()?;
            self.expect(&Tok::LParen)?;
            let mut list = vec![self.operand()?];
            while self.eat(&Tok::Comma) {
                list.push(self.operand()?);
            }
            self.expect(&Tok::RParen)?;
            if list.len() > 100 {
                self.wrong_arity("IN", list.len() + 1);
            }
            return Ok(Condition::In(left, list));
        }
        Err(self.syntax_error())
    }

    fn check_between(&mut self, low: &Operand, high: &Operand) {
        if let (Operand::Value(low), Operand::Value(high)) = (low, high) {
            if low.type_name() != high.type_name() {
                self.semantic(format!(
                    "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {low}, upper bound operand: AttributeValue: {high}"
                ));
            } else if super::eval::compare_values(low, high) == Some(std::cmp::Ordering::Greater) {
                self.semantic(format!(
                    "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {low}, upper bound operand: AttributeValue: {high}"
                ));
            }
        }
    }

    fn bool_function(&mut self, name: &str, mut args: Vec<Operand>) -> Condition {
        let placeholder = Condition::Exists(Path::attr(""));
        let arity = match name {
            "attribute_exists" | "attribute_not_exists" => 1,
            _ => 2,
        };
        if args.len() != arity {
            self.wrong_arity(name, args.len());
            return placeholder;
        }
        let second = if arity == 2 {
            Some(args.remove(1))
        } else {
            None
        };
        let first = args.remove(0);
        match (name, first, second) {
            ("attribute_exists", Operand::Path(path), None) => Condition::Exists(path),
            ("attribute_not_exists", Operand::Path(path), None) => Condition::NotExists(path),
            ("attribute_type", Operand::Path(path), Some(kind)) => {
                match &kind {
                    Operand::Value(AttributeValue::S(type_name))
                        if !TYPE_NAMES.contains(&type_name.as_str()) =>
                    {
                        self.semantic(format!(
                            "Invalid attribute type name found; type: {type_name}, valid types: {{ B,NULL,SS,BOOL,L,BS,N,NS,S,M }}"
                        ));
                    }
                    Operand::Value(AttributeValue::S(_)) => {}
                    Operand::Value(other) => self.wrong_operand_type(name, other),
                    _ => {}
                }
                Condition::Type(path, kind)
            }
            ("begins_with" | "contains", first, Some(second)) => {
                if !matches!(first, Operand::Path(_)) && name == "contains" {
                    self.needs_path(name);
                }
                if name == "begins_with" {
                    for operand in [&first, &second] {
                        if let Operand::Value(value) = operand
                            && !matches!(value, AttributeValue::S(_) | AttributeValue::B(_))
                        {
                            self.wrong_operand_type(name, value);
                        }
                    }
                }
                if name == "begins_with" {
                    Condition::BeginsWith(first, second)
                } else {
                    Condition::Contains(first, second)
                }
            }
            _ => {
                self.needs_path(name);
                placeholder
            }
        }
    }
}
