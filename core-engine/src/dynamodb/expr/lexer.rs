//! Splits an expression into tokens, each with its byte span in the source so that errors can
//! quote the text around them.

/// One token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A bare word: an attribute name, a function name or a keyword.
    Ident(String),
    /// `#name`: an attribute name placeholder.
    Name(String),
    /// `:name`: an attribute value placeholder.
    Value(String),
    /// An unsigned integer (list indexes).
    Int(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    /// A character that starts no token.
    Invalid(char),
    /// The end of the input.
    Eof,
}

/// A token and where it is.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Token {
    /// The token as DynamoDB quotes it in a syntax error.
    pub(crate) fn text<'a>(&self, source: &'a str) -> &'a str {
        if self.tok == Tok::Eof {
            "<EOF>"
        } else {
            source.get(self.start..self.end).unwrap_or("")
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Tokenises `source`; always ends with [`Tok::Eof`]. Never fails: a stray character becomes
/// [`Tok::Invalid`] for the parser to report in context.
pub(crate) fn lex(source: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        chars.next();
        let word = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
            let mut end = start + c.len_utf8();
            while let Some(&(i, next)) = chars.peek() {
                if !is_word_char(next) {
                    break;
                }
                end = i + next.len_utf8();
                chars.next();
            }
            end
        };
        let (tok, end) = match c {
            '(' => (Tok::LParen, start + 1),
            ')' => (Tok::RParen, start + 1),
            '[' => (Tok::LBracket, start + 1),
            ']' => (Tok::RBracket, start + 1),
            ',' => (Tok::Comma, start + 1),
            '.' => (Tok::Dot, start + 1),
            '=' => (Tok::Eq, start + 1),
            '+' => (Tok::Plus, start + 1),
            '-' => (Tok::Minus, start + 1),
            '<' => match chars.peek() {
                Some(&(_, '>')) => {
                    chars.next();
                    (Tok::Ne, start + 2)
                }
                Some(&(_, '=')) => {
                    chars.next();
                    (Tok::Le, start + 2)
                }
                _ => (Tok::Lt, start + 1),
            },
            '>' => match chars.peek() {
                Some(&(_, '=')) => {
                    chars.next();
                    (Tok::Ge, start + 2)
                }
                _ => (Tok::Gt, start + 1),
            },
            '#' | ':' => {
                let end = word(&mut chars);
                let name = source[start..end].to_owned();
                if end == start + 1 {
                    (Tok::Invalid(c), end)
                } else if c == '#' {
                    (Tok::Name(name), end)
                } else {
                    (Tok::Value(name), end)
                }
            }
            c if c.is_ascii_digit() => {
                let end = word(&mut chars);
                let text = &source[start..end];
                if text.bytes().all(|b| b.is_ascii_digit()) {
                    (Tok::Int(text.to_owned()), end)
                } else {
                    (Tok::Ident(text.to_owned()), end)
                }
            }
            c if is_word_char(c) => {
                let end = word(&mut chars);
                (Tok::Ident(source[start..end].to_owned()), end)
            }
            other => (Tok::Invalid(other), start + other.len_utf8()),
        };
        tokens.push(Token { tok, start, end });
    }
    tokens.push(Token {
        tok: Tok::Eof,
        start: source.len(),
        end: source.len(),
    });
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<Tok> {
        lex(source).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens_and_spans() {
        assert_eq!(
            kinds("#k = :v AND a.b[10] <> size(c)"),
            vec![
                Tok::Name("#k".into()),
                Tok::Eq,
                Tok::Value(":v".into()),
                Tok::Ident("AND".into()),
                Tok::Ident("a".into()),
                Tok::Dot,
                Tok::Ident("b".into()),
                Tok::LBracket,
                Tok::Int("10".into()),
                Tok::RBracket,
                Tok::Ne,
                Tok::Ident("size".into()),
                Tok::LParen,
                Tok::Ident("c".into()),
                Tok::RParen,
                Tok::Eof,
            ]
        );
        assert_eq!(
            kinds("a<=b>=c<d>e"),
            vec![
                Tok::Ident("a".into()),
                Tok::Le,
                Tok::Ident("b".into()),
                Tok::Ge,
                Tok::Ident("c".into()),
                Tok::Lt,
                Tok::Ident("d".into()),
                Tok::Gt,
                Tok::Ident("e".into()),
                Tok::Eof,
            ]
        );
        assert_eq!(
            kinds("# : @ é"),
            vec![
                Tok::Invalid('#'),
                Tok::Invalid(':'),
                Tok::Invalid('@'),
                Tok::Invalid('é'),
                Tok::Eof,
            ]
        );
        let tokens = lex("ab  :cd");
        assert_eq!((tokens[1].start, tokens[1].end), (4, 7));
        assert_eq!(tokens[2].text("ab  :cd"), "<EOF>");
    }
}
