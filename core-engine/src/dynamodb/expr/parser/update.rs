//! The UpdateExpression grammar: sections (SET, REMOVE, ADD, DELETE), their actions and
//! operands, and the overlap check between actions' paths.

use super::super::ast::{Path, SetValue, UpdateAction, UpdateOperand};
use super::super::lexer::Tok;
use super::{BOOL_FUNCTIONS, PResult, Parser};
use crate::dynamodb::value::AttributeValue;

impl Parser<'_, '_> {
    pub(super) fn update(&mut self) -> PResult<Vec<UpdateAction>> {
        let mut actions = Vec::new();
        let mut seen: Vec<&'static str> = Vec::new();
        loop {
            let section = ["SET", "REMOVE", "ADD", "DELETE"]
                .into_iter()
                .find(|k| self.at_keyword(k))
                .ok_or_else(|| self.syntax_error())?;
            if seen.contains(&section) {
                self.semantic(format!(
                    "The \"{section}\" section can only be used once in an update expression;"
                ));
            }
            seen.push(section);
            self.bump();
            loop {
                actions.push(self.action(section)?);
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
            if self.peek() == &Tok::Eof {
                break;
            }
        }
        self.check_overlaps(&actions);
        Ok(actions)
    }

    fn action(&mut self, section: &str) -> PResult<UpdateAction> {
        let path = self.path()?;
        match section {
            "SET" => {
                self.expect(&Tok::Eq)?;
                let left = self.update_operand()?;
                let value = if self.eat(&Tok::Plus) {
                    self.operator()?;
                    SetValue::Plus(left, self.update_operand()?)
                } else if self.eat(&Tok::Minus) {
                    self.operator()?;
                    SetValue::Minus(left, self.update_operand()?)
                } else {
                    SetValue::Operand(left)
                };
                if let SetValue::Plus(a, b) | SetValue::Minus(a, b) = &value {
                    let operator = if matches!(value, SetValue::Plus(..)) {
                        "+"
                    } else {
                        "-"
                    };
                    for operand in [a, b] {
                        if let UpdateOperand::Value(v) = operand
                            && !matches!(v, AttributeValue::N(_))
                        {
                            self.wrong_operand_type(operator, &v.clone());
                        }
                    }
                }
                Ok(UpdateAction::Set(path, value))
            }
            "REMOVE" => Ok(UpdateAction::Remove(path)),
            _ => {
                let Tok::Value(placeholder) = self.peek().clone() else {
                    return Err(self.syntax_error());
                };
                self.bump();
                let value = self.value(&placeholder);
                let add = section == "ADD";
                let ok = match &value {
                    AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => true,
                    AttributeValue::N(_) => add,
                    // An undefined placeholder is reported already.
                    AttributeValue::Null => self.semantic.is_some(),
                    _ => false,
                };
                if !ok {
                    self.semantic(format!(
                        "Incorrect operand type for operator or function; operator: {section}, operand type: {}",
                        value.long_type_name()
                    ));
                }
                Ok(if add {
                    UpdateAction::Add(path, value)
                } else {
                    UpdateAction::Delete(path, value)
                })
            }
        }
    }

    fn update_operand(&mut self) -> PResult<UpdateOperand> {
        match self.peek().clone() {
            Tok::Value(placeholder) => {
                self.bump();
                Ok(UpdateOperand::Value(self.value(&placeholder)))
            }
            Tok::Ident(_) if self.is_call() => {
                let (name, mut args) = self.call(Self::update_operand)?;
                let placeholder = UpdateOperand::Value(AttributeValue::Null);
                match name.as_str() {
                    "if_not_exists" | "list_append" if args.len() != 2 => {
                        self.wrong_arity(&name, args.len());
                        Ok(placeholder)
                    }
                    "if_not_exists" => {
                        let fallback = args.remove(1);
                        match args.remove(0) {
                            UpdateOperand::Path(path) => {
                                Ok(UpdateOperand::IfNotExists(path, Box::new(fallback)))
                            }
                            _ => {
                                self.needs_path(&name);
                                Ok(placeholder)
                            }
                        }
                    }
                    "list_append" => {
                        for arg in &args {
                            if let UpdateOperand::Value(v) = arg
                                && !matches!(v, AttributeValue::L(_) | AttributeValue::Null)
                            {
                                self.wrong_operand_type(&name, &v.clone());
                            }
                        }
                        let second = args.remove(1);
                        Ok(UpdateOperand::ListAppend(
                            Box::new(args.remove(0)),
                            Box::new(second),
                        ))
                    }
                    other => {
                        if BOOL_FUNCTIONS.contains(&other) || other == "size" {
                            self.semantic(format!(
                                "The function is not allowed in an update expression; function: {other}"
                            ));
                        } else {
                            self.semantic(format!("Invalid function name; function: {other}"));
                        }
                        Ok(placeholder)
                    }
                }
            }
            _ => Ok(UpdateOperand::Path(self.path()?)),
        }
    }

    fn check_overlaps(&mut self, actions: &[UpdateAction]) {
        for (i, a) in actions.iter().enumerate() {
            for b in &actions[..i] {
                let (a, b) = (&b.path().0, &a.path().0);
                let shorter = a.len().min(b.len());
                if a[..shorter] == b[..shorter] {
                    self.semantic(format!(
                        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
                        Path(a.clone()),
                        Path(b.clone())
                    ));
                    return;
                }
            }
        }
    }
}
