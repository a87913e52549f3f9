//! The small condition language of `success-condition` and
//! `failure-condition`.
//!
//! ```text
//! condition := or
//! or        := and ( ("||" | "or") and )*
//! and       := not ( ("&&" | "and") not )*
//! not       := ("!" | "not") not | "(" condition ")" | "true" | "false" | compare
//! compare   := value ( "<" | "<=" | ">" | ">=" | "==" | "!=" ) value
//! value     := number | "-" number | "result" | "result[" index "]"
//! ```
//!
//! `result` is the measurement: a list of numbers (a Prometheus vector, or a
//! single value). Bare `result` means `result[0]`. A comparison with NaN is
//! false; an index past the end is an evaluation error (the measurement
//! becomes `Error`, as in Argo Rollouts). Numbers are decimal, with an
//! optional fraction and exponent (`0.05`, `1e3`).

use thiserror::Error;

/// Why a condition could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExprError {
    /// The text is not a condition; the message says where.
    #[error("{0}")]
    Syntax(String),
    /// `result[i]` names a value the measurement does not have.
    #[error("result[{index}] does not exist: the measurement has {len} value(s)")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// How many values there were.
        len: usize,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// A number or a reference to the measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Num(f64),
    Result(usize),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `a || b`
    Or(Box<Condition>, Box<Condition>),
    /// `a && b`
    And(Box<Condition>, Box<Condition>),
    /// `!a`
    Not(Box<Condition>),
    /// `true` / `false`
    Const(bool),
    /// `value op value`
    Compare(CompareNode),
}

/// One comparison (kept opaque).
#[derive(Debug, Clone, PartialEq)]
pub struct CompareNode {
    left: Value,
    op: Op,
    right: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(Op),
    And,
    Or,
    Not,
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Minus,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let two = |t: Tok| (t, 2);
        let (tok, len) = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('&', Some('&')) => two(Tok::And),
            ('|', Some('|')) => two(Tok::Or),
            ('<', Some('=')) => two(Tok::Op(Op::Le)),
            ('>', Some('=')) => two(Tok::Op(Op::Ge)),
            ('=', Some('=')) => two(Tok::Op(Op::Eq)),
            ('!', Some('=')) => two(Tok::Op(Op::Ne)),
            ('<', _) => (Tok::Op(Op::Lt), 1),
            ('>', _) => (Tok::Op(Op::Gt), 1),
            ('!', _) => (Tok::Not, 1),
            ('(', _) => (Tok::Open, 1),
            (')', _) => (Tok::Close, 1),
            ('[', _) => (Tok::OpenBracket, 1),
            (']', _) => (Tok::CloseBracket, 1),
            ('-', _) => (Tok::Minus, 1),
            (c, _) if c.is_ascii_digit() || c == '.' => {
                let start = i;
                let mut j = i;
                while j < chars.len()
                    && (chars[j].is_ascii_digit()
                        || chars[j] == '.'
                        || chars[j] == 'e'
                        || chars[j] == 'E'
                        || ((chars[j] == '-' || chars[j] == '+')
                            && j > start
                            && matches!(chars[j - 1], 'e' | 'E')))
                {
                    j += 1;
                }
                let s: String = chars[start..j].iter().collect();
                let n: f64 = s.parse().map_err(|_| {
                    ExprError::Syntax(format!("`{s}` at position {} is not a number", start + 1))
                })?;
                (Tok::Num(n), j - start)
            }
            (c, _) if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let word: String = chars[start..j].iter().collect();
                let tok = match word.as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Ident(word),
                };
                (tok, j - start)
            }
            (c, _) => {
                return Err(ExprError::Syntax(format!(
                    "unexpected `{c}` at position {}",
                    i + 1
                )))
            }
        };
        out.push(tok);
        i += len;
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Condition, ExprError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, ExprError> {
        let mut left = self.not()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = Condition::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, ExprError> {
        match self.peek() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Condition::Not(Box::new(self.not()?)))
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let inner = self.or()?;
                match self.bump() {
                    Some(Tok::Close) => Ok(inner),
                    _ => Err(ExprError::Syntax("missing `)`".into())),
                }
            }
            Some(Tok::Ident(w)) if w == "true" || w == "false" => {
                let b = w == "true";
                self.pos += 1;
                Ok(Condition::Const(b))
            }
            _ => self.compare(),
        }
    }

    fn compare(&mut self) -> Result<Condition, ExprError> {
        let left = self.value()?;
        let op = match self.bump() {
            Some(Tok::Op(op)) => op,
            _ => {
                return Err(ExprError::Syntax(
                    "expected a comparison (< <= > >= == !=) after a value".into(),
                ))
            }
        };
        let right = self.value()?;
        Ok(Condition::Compare(CompareNode { left, op, right }))
    }

    fn value(&mut self) -> Result<Value, ExprError> {
        match self.bump() {
            Some(Tok::Num(n)) => Ok(Value::Num(n)),
            Some(Tok::Minus) => match self.bump() {
                Some(Tok::Num(n)) => Ok(Value::Num(-n)),
                _ => Err(ExprError::Syntax("expected a number after `-`".into())),
            },
            Some(Tok::Ident(w)) if w == "result" => {
                if self.peek() != Some(&Tok::OpenBracket) {
                    return Ok(Value::Result(0));
                }
                self.pos += 1;
                let index = match self.bump() {
                    Some(Tok::Num(n)) if n >= 0.0 && n.fract() == 0.0 => n as usize,
                    _ => {
                        return Err(ExprError::Syntax(
                            "expected a non-negative whole index in `result[...]`".into(),
                        ))
                    }
                };
                match self.bump() {
                    Some(Tok::CloseBracket) => Ok(Value::Result(index)),
                    _ => Err(ExprError::Syntax("missing `]` after `result[...`".into())),
                }
            }
            Some(Tok::Ident(w)) => Err(ExprError::Syntax(format!(
                "unknown name `{w}`: only `result`, `result[N]`, numbers, true and false are allowed"
            ))),
            Some(t) => Err(ExprError::Syntax(format!(
                "expected `result` or a number, found {t:?}"
            ))),
            None => Err(ExprError::Syntax(
                "the condition ends where a value was expected".into(),
            )),
        }
    }
}

impl Condition {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Condition, ExprError> {
        let toks = tokenize(text)?;
        if toks.is_empty() {
            return Err(ExprError::Syntax("the condition is empty".into()));
        }
        let mut p = Parser { toks, pos: 0 };
        let c = p.or()?;
        if p.pos < p.toks.len() {
            return Err(ExprError::Syntax(format!(
                "unexpected {:?} after a complete condition",
                p.toks[p.pos]
            )));
        }
        Ok(c)
    }

    /// Evaluates the condition against a measurement.
    pub fn eval(&self, result: &[f64]) -> Result<bool, ExprError> {
        Ok(match self {
            Condition::Or(a, b) => a.eval(result)? || b.eval(result)?,
            Condition::And(a, b) => a.eval(result)? && b.eval(result)?,
            Condition::Not(a) => !a.eval(result)?,
            Condition::Const(b) => *b,
            Condition::Compare(c) => {
                let l = value(c.left, result)?;
                let r = value(c.right, result)?;
                match c.op {
                    Op::Lt => l < r,
                    Op::Le => l <= r,
                    Op::Gt => l > r,
                    Op::Ge => l >= r,
                    Op::Eq => l == r,
                    Op::Ne => l != r,
                }
            }
        })
    }

    /// The first number a comparison against `result` uses, for reporting
    /// a gate's threshold (`result < 0.05` → 0.05).
    pub fn threshold(&self) -> Option<f64> {
        match self {
            Condition::Or(a, b) | Condition::And(a, b) => a.threshold().or_else(|| b.threshold()),
            Condition::Not(a) => a.threshold(),
            Condition::Const(_) => None,
            Condition::Compare(c) => match (c.left, c.right) {
                (Value::Num(n), _) | (_, Value::Num(n)) => Some(n),
                _ => None,
            },
        }
    }
}

fn value(v: Value, result: &[f64]) -> Result<f64, ExprError> {
    match v {
        Value::Num(n) => Ok(n),
        Value::Result(index) => result.get(index).copied().ok_or(ExprError::OutOfRange {
            index,
            len: result.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, result: &[f64]) -> Result<bool, ExprError> {
        Condition::parse(text)?.eval(result)
    }

    #[test]
    fn comparisons() {
        assert_eq!(eval("result < 0.05", &[0.01]), Ok(true));
        assert_eq!(eval("result < 0.05", &[0.05]), Ok(false));
        assert_eq!(eval("result <= 0.05", &[0.05]), Ok(true));
        assert_eq!(eval("result[1] >= 0.95", &[0.0, 0.99]), Ok(true));
        assert_eq!(eval("result == 3", &[3.0]), Ok(true));
        assert_eq!(eval("result != 3", &[3.0]), Ok(false));
        assert_eq!(eval("0.5 > result", &[0.1]), Ok(true));
        assert_eq!(eval("result > -1e-3", &[0.0]), Ok(true));
        assert_eq!(eval("result < 2e3", &[1999.0]), Ok(true));
    }

    #[test]
    fn logic_and_precedence() {
        assert_eq!(eval("result > 1 && result < 3", &[2.0]), Ok(true));
        assert_eq!(eval("result > 1 and result < 3", &[4.0]), Ok(false));
        assert_eq!(
            eval("result < 1 || result > 3 && result < 5", &[0.5]),
            Ok(true)
        );
        assert_eq!(eval("!(result < 1)", &[0.5]), Ok(false));
        assert_eq!(eval("not result < 1 or false", &[2.0]), Ok(true));
        assert_eq!(eval("true", &[]), Ok(true));
    }

    #[test]
    fn nan_compares_false() {
        assert_eq!(eval("result < 1", &[f64::NAN]), Ok(false));
        assert_eq!(eval("result >= 1", &[f64::NAN]), Ok(false));
    }

    #[test]
    fn errors() {
        assert_eq!(
            eval("result[2] < 1", &[1.0]),
            Err(ExprError::OutOfRange { index: 2, len: 1 })
        );
        assert!(matches!(eval("result", &[1.0]), Err(ExprError::Syntax(_))));
        assert!(matches!(eval("foo < 1", &[1.0]), Err(ExprError::Syntax(_))));
        assert!(matches!(
            eval("result < ", &[1.0]),
            Err(ExprError::Syntax(_))
        ));
        assert!(matches!(
            eval("(result < 1", &[1.0]),
            Err(ExprError::Syntax(_))
        ));
        assert!(matches!(
            eval("result < 1 )", &[1.0]),
            Err(ExprError::Syntax(_))
        ));
        assert!(matches!(
            eval("result ~ 1", &[1.0]),
            Err(ExprError::Syntax(_))
        ));
        assert!(matches!(eval("", &[1.0]), Err(ExprError::Syntax(_))));
    }

    #[test]
    fn threshold_is_the_first_constant() {
        let t = |s: &str| Condition::parse(s).ok().and_then(|c| c.threshold());
        assert_eq!(t("result < 0.05"), Some(0.05));
        assert_eq!(t("0.95 <= result[0]"), Some(0.95));
        assert_eq!(t("true"), None);
    }
}
