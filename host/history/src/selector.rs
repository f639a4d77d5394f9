//! The query language this host answers: PromQL's series selectors
//! (`trade_price{symbol="BTC", feed!="history", side=~"buy|sell"}`,
//! `{__name__=~"trade_.*"}`) and constant arithmetic (`1+1`, which Grafana sends
//! to test a data source). Anything else is refused with an error that says so
//! and where.

use thiserror::Error;
use wasmeter_tsdb::{MatchOp, Matcher};

/// A query this host can answer.
#[derive(Debug, Clone)]
pub enum Expr {
    /// An instant vector selector.
    Selector(Vec<Matcher>),
    /// A constant.
    Scalar(f64),
}

/// Why a query was refused: what, and at which character (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("1:{at}: parse error: {message}")]
pub struct SelectorError {
    /// 1-based position in the query.
    pub at: usize,
    /// What was wrong.
    pub message: String,
}

/// Parses a series selector; see [`parse`] for the whole language.
pub fn parse_selector(query: &str) -> Result<Vec<Matcher>, SelectorError> {
    let mut p = Parser::new(query);
    let matchers = p.selector()?;
    p.end()?;
    Ok(matchers)
}

/// Parses a query: a series selector or constant arithmetic.
pub fn parse(query: &str) -> Result<Expr, SelectorError> {
    let mut p = Parser::new(query);
    p.skip_ws();
    let expr = match p.peek() {
        Some(c) if c.is_ascii_digit() || c == '(' || c == '-' || c == '+' || c == '.' => {
            Expr::Scalar(p.sum()?)
        }
        _ => Expr::Selector(p.selector()?),
    };
    p.end()?;
    Ok(expr)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, SelectorError> {
        Err(SelectorError {
            at: self.text[..self.pos].chars().count() + 1,
            message: message.into(),
        })
    }

    fn end(&mut self) -> Result<(), SelectorError> {
        self.skip_ws();
        match self.peek() {
            None => Ok(()),
            Some('[') => self.fail(
                "range vectors (`[5m]`) are not supported: this host answers series selectors; use query_range",
            ),
            Some('(') => self.fail(
                "functions are not supported: this host answers series selectors such as `trade_price{symbol=\"BTC\"}`",
            ),
            Some(c) => self.fail(format!(
                "unexpected `{c}`: this host answers series selectors such as `trade_price{{symbol=\"BTC\"}}` and constant arithmetic"
            )),
        }
    }

    fn ident(&mut self, metric: bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let ok = c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':');
            let first_ok = !c.is_ascii_digit() || self.pos > start;
            if !(ok && first_ok) {
                break;
            }
            self.bump();
        }
        &self.text[start..self.pos]
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, SelectorError> {
        self.skip_ws();
        let mut matchers = Vec::new();
        let name = self.ident(true);
        if !name.is_empty() {
            matchers.push(self.matcher(MatchOp::Equal, "__name__", name)?);
        }
        self.skip_ws();
        if self.peek() == Some('{') {
            self.bump();
            loop {
                self.skip_ws();
                if self.peek() == Some('}') {
                    self.bump();
                    break;
                }
                let label = self.ident(false);
                if label.is_empty() {
                    return self.fail("expected a label name");
                }
                self.skip_ws();
                let op = self.op()?;
                self.skip_ws();
                let value = self.string()?;
                matchers.push(self.matcher(op, label, &value)?);
                self.skip_ws();
                match self.bump() {
                    Some(',') => {}
                    Some('}') => break,
                    _ => return self.fail("expected `,` or `}` after a label matcher"),
                }
            }
        } else if name.is_empty() {
            return self.fail("expected a metric name or `{`");
        }
        if matchers.iter().all(|m| m.matches_empty()) {
            return self.fail("the selector must contain a matcher that does not match the empty string (e.g. a metric name)");
        }
        Ok(matchers)
    }

    fn matcher(&self, op: MatchOp, name: &str, value: &str) -> Result<Matcher, SelectorError> {
        Matcher::new(op, name, value).or_else(|e| self.fail(e.to_string()))
    }

    fn op(&mut self) -> Result<MatchOp, SelectorError> {
        let rest = &self.text[self.pos..];
        let (op, len) = if rest.starts_with("=~") {
            (MatchOp::Regex, 2)
        } else if rest.starts_with("!~") {
            (MatchOp::NotRegex, 2)
        } else if rest.starts_with("!=") {
            (MatchOp::NotEqual, 2)
        } else if rest.starts_with('=') {
            (MatchOp::Equal, 1)
        } else {
            return self.fail("expected one of `=`, `!=`, `=~`, `!~`");
        };
        self.pos += len;
        Ok(op)
    }

    /// A string literal: `"..."` or `'...'` with Go escapes, or `` `raw` ``.
    fn string(&mut self) -> Result<String, SelectorError> {
        let quote = match self.peek() {
            Some(q @ ('"' | '\'' | '`')) => q,
            _ => return self.fail("expected a quoted string"),
        };
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return self.fail("unterminated string"),
                Some(c) if c == quote => return Ok(out),
                Some('\\') if quote != '`' => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c @ ('\\' | '"' | '\'')) => out.push(c),
                    _ => return self.fail("unknown escape sequence"),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn sum(&mut self) -> Result<f64, SelectorError> {
        let mut value = self.product()?;
        loop {
            self.skip_ws();
            match self.peek() {
                Some('+') => {
                    self.bump();
                    value += self.product()?;
                }
                Some('-') => {
                    self.bump();
                    value -= self.product()?;
                }
                _ => return Ok(value),
            }
        }
    }

    fn product(&mut self) -> Result<f64, SelectorError> {
        let mut value = self.unary()?;
        loop {
            self.skip_ws();
            match self.peek() {
                Some('*') => {
                    self.bump();
                    value *= self.unary()?;
                }
                Some('/') => {
                    self.bump();
                    value /= self.unary()?;
                }
                _ => return Ok(value),
            }
        }
    }

    fn unary(&mut self) -> Result<f64, SelectorError> {
        self.skip_ws();
        match self.peek() {
            Some('-') => {
                self.bump();
                Ok(-self.unary()?)
            }
            Some('+') => {
                self.bump();
                self.unary()
            }
            Some('(') => {
                self.bump();
                let v = self.sum()?;
                self.skip_ws();
                match self.bump() {
                    Some(')') => Ok(v),
                    _ => self.fail("expected `)`"),
                }
            }
            _ => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E'))
                {
                    self.bump();
                }
                self.text[start..self.pos]
                    .parse()
                    .or_else(|_| self.fail("expected a number"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(ms: &[Matcher]) -> Vec<String> {
        ms.iter()
            .map(|m| format!("{}{}{}", m.name(), m.op().as_str(), m.value()))
            .collect()
    }

    #[test]
    fn selectors_parse_like_promql() {
        let ms = parse_selector(
            r#" trade_price{symbol="BTC", side=~'buy|sell',feed!="h\"x", q!~`a\b`,} "#,
        )
        .unwrap();
        assert_eq!(
            show(&ms),
            [
                "__name__=trade_price",
                "symbol=BTC",
                "side=~buy|sell",
                "feed!=h\"x",
                "q!~a\\b"
            ]
        );
        let ms = parse_selector(r#"{__name__=~"trade_.*"}"#).unwrap();
        assert_eq!(show(&ms), ["__name__=~trade_.*"]);
        assert_eq!(
            show(&parse_selector("up:rate5m").unwrap()),
            ["__name__=up:rate5m"]
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = |q: &str| parse(q).unwrap_err().to_string();
        assert_eq!(
            e(r#"x{a="b"}[5m]"#),
            "1:9: parse error: range vectors (`[5m]`) are not supported: this host answers series selectors; use query_range"
        );
        assert!(
            e("rate(x[5m])").starts_with("1:5: parse error: functions are not supported"),
            "{}",
            e("rate(x[5m])")
        );
        assert_eq!(
            e(r#"{a=""}"#),
            "1:7: parse error: the selector must contain a matcher that does not match the empty string (e.g. a metric name)"
        );
        assert_eq!(e(r#"x{a="b}"#), "1:8: parse error: unterminated string");
        assert_eq!(
            e(r#"x{a~"b"}"#),
            "1:4: parse error: expected one of `=`, `!=`, `=~`, `!~`"
        );
        assert!(
            e(r#"x{a=~"("}"#).contains("invalid"),
            "{}",
            e(r#"x{a=~"("}"#)
        );
        assert_eq!(e(""), "1:1: parse error: expected a metric name or `{`");
    }

    #[test]
    fn constant_arithmetic() {
        let v = |q: &str| match parse(q).unwrap() {
            Expr::Scalar(v) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(v("1+1"), 2.0);
        assert_eq!(v(" 2 * (3 - 1) / 4 "), 1.0);
        assert_eq!(v("-1.5e1"), -15.0);
    }
}
