//! Test filter with the grammar of `dotnet test --filter`, deciding which tests are critical.
//!
//! ```text
//! filter     := or
//! or         := and ( '|' and )*
//! and        := primary ( '&' primary )*          ('&' binds tighter than '|')
//! primary    := '(' or ')' | condition
//! condition  := property op value | value          (a bare value means FullyQualifiedName~value)
//! op         := '=' | '!=' | '~' | '!~'            (equals, differs, contains, does not contain)
//! ```
//!
//! Properties: `FullyQualifiedName`, `Name` (alias `DisplayName`), `ClassName`, `Category`
//! (alias `TestCategory`, which also matches traits named Category or TestCategory), and any
//! other name, which matches a trait (property) of that name. Names and values compare
//! case-insensitively, as VSTest does. For properties with several values (categories,
//! traits), `=` and `~` hold when any value matches, `!=` and `!~` when none does; a test
//! without the property never matches `=` or `~` and always matches `!=` and `!~`.
//!
//! `\` escapes the characters `\ ( ) & | = ! ~` inside property names and values, as
//! `dotnet test` requires; any other escape is an error. Whitespace around names and values
//! is ignored.

use std::fmt;
use std::str::FromStr;

use super::model::TestCase;

/// Parentheses nested deeper than this are refused (recursion bound).
const MAX_NESTING: usize = 64;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    source: String,
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Condition(Condition),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Condition {
    property: Property,
    op: Op,
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Property {
    FullyQualifiedName,
    Name,
    ClassName,
    Category,
    Trait(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal,
    NotEqual,
    Contains,
    NotContains,
}

/// A malformed filter: what is wrong and the 1-based column (in characters) where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter \"{filter}\" at column {column}: {message}")]
pub struct FilterError {
    pub filter: String,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    /// Characters with their escaped flag and column.
    Cond(Vec<(char, bool, usize)>),
}

impl Filter {
    /// Parses `source`; an empty or blank filter is an error (callers treat "no filter" as
    /// "every test is critical" before getting here).
    pub fn parse(source: &str) -> Result<Self, FilterError> {
        let err = |column: usize, message: String| FilterError {
            filter: source.to_owned(),
            column,
            message,
        };
        let tokens = tokenize(source).map_err(|(c, m)| err(c, m))?;
        if tokens.is_empty() {
            return Err(err(1, "the filter is empty".to_owned()));
        }
        let end_column = source.chars().count() + 1;
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            end_column,
        };
        let expr = parser.or(0).map_err(|(c, m)| err(c, m))?;
        if let Some((tok, col)) = tokens.get(parser.pos) {
            let message = match tok {
                Tok::Close => "')' has no matching '('".to_owned(),
                _ => "expected '&' or '|' between two conditions".to_owned(),
            };
            return Err(err(*col, message));
        }
        Ok(Filter {
            source: source.to_owned(),
            expr,
        })
    }

    /// The filter as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `case` is selected by the filter.
    pub fn matches(&self, case: &TestCase) -> bool {
        eval(&self.expr, case)
    }
}

impl FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

const SPECIAL: &[char] = &['\\', '(', ')', '&', '|', '=', '!', '~'];

type Located<T> = Result<T, (usize, String)>;

fn tokenize(source: &str) -> Located<Vec<(Tok, usize)>> {
    let mut tokens = Vec::new();
    let mut cond: Vec<(char, bool, usize)> = Vec::new();
    let mut cond_col = 0;
    let flush =
        |cond: &mut Vec<(char, bool, usize)>, col: usize, tokens: &mut Vec<(Tok, usize)>| {
            if cond.iter().any(|(c, esc, _)| *esc || !c.is_whitespace()) {
                tokens.push((Tok::Cond(std::mem::take(cond)), col));
            } else {
                cond.clear();
            }
        };
    let mut chars = source.chars().enumerate().peekable();
    while let Some((index, c)) = chars.next() {
        let col = index + 1;
        match c {
            '\\' => match chars.next() {
                Some((_, next)) if SPECIAL.contains(&next) => {
                    if cond.is_empty() {
                        cond_col = col;
                    }
                    cond.push((next, true, col));
                }
                Some((_, next)) => {
                    return Err((
                        col,
                        format!(
                            "invalid escape \"\\{next}\"; only \\\\ \\( \\) \\& \\| \\= \\! \\~ are escapes"
                        ),
                    ));
                }
                None => {
                    return Err((
                        col,
                        "'\\' at the end of the filter escapes nothing".to_owned(),
                    ));
                }
            },
            '(' => {
                if cond.iter().any(|(c, esc, _)| *esc || !c.is_whitespace()) {
                    return Err((
                        col,
                        "'(' inside a condition; escape it as \\( or add '&' or '|' before it"
                            .to_owned(),
                    ));
                }
                cond.clear();
                tokens.push((Tok::Open, col));
            }
            ')' | '&' | '|' => {
                flush(&mut cond, cond_col, &mut tokens);
                let tok = match c {
                    ')' => Tok::Close,
                    '&' => Tok::And,
                    _ => Tok::Or,
                };
                tokens.push((tok, col));
            }
            _ => {
                if cond.is_empty() || cond.iter().all(|(c, esc, _)| !*esc && c.is_whitespace()) {
                    if c.is_whitespace() {
                        continue;
                    }
                    cond.clear();
                    cond_col = col;
                }
                cond.push((c, false, col));
            }
        }
    }
    flush(&mut cond, cond_col, &mut tokens);
    Ok(tokens)
}

struct Parser<'t> {
    tokens: &'t [(Tok, usize)],
    pos: usize,
    end_column: usize,
}

impl Parser<'_> {
    fn or(&mut self, depth: usize) -> Located<Expr> {
        let mut items = vec![self.and(depth)?];
        while let Some((Tok::Or, col)) = self.tokens.get(self.pos) {
            self.pos += 1;
            items.push(self.and_after(depth, *col, '|')?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> Located<Expr> {
        let mut items = vec![self.primary(depth)?];
        while let Some((Tok::And, col)) = self.tokens.get(self.pos) {
            self.pos += 1;
            items.push(self.primary_after(depth, *col, '&')?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn and_after(&mut self, depth: usize, col: usize, op: char) -> Located<Expr> {
        if self.pos >= self.tokens.len() {
            return Err((col, format!("expected a condition after '{op}'")));
        }
        self.and(depth)
    }

    fn primary_after(&mut self, depth: usize, col: usize, op: char) -> Located<Expr> {
        if self.pos >= self.tokens.len() {
            return Err((col, format!("expected a condition after '{op}'")));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Located<Expr> {
        let Some((tok, col)) = self.tokens.get(self.pos) else {
            return Err((self.end_column, "expected a condition".to_owned()));
        };
        let col = *col;
        self.pos += 1;
        match tok {
            Tok::Open => {
                if depth >= MAX_NESTING {
                    return Err((col, format!("parentheses nested deeper than {MAX_NESTING}")));
                }
                if let Some((Tok::Close, _)) = self.tokens.get(self.pos) {
                    return Err((col, "empty parentheses".to_owned()));
                }
                let inner = self.or(depth + 1)?;
                match self.tokens.get(self.pos) {
                    Some((Tok::Close, _)) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err((col, "'(' is never closed".to_owned())),
                }
            }
            Tok::Close => Err((col, "')' where a condition was expected".to_owned())),
            Tok::And => Err((col, "expected a condition before '&'".to_owned())),
            Tok::Or => Err((col, "expected a condition before '|'".to_owned())),
            Tok::Cond(chars) => condition(chars).map(Expr::Condition),
        }
    }
}

fn text_of(chars: &[(char, bool, usize)]) -> String {
    chars
        .iter()
        .map(|(c, _, _)| *c)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn condition(chars: &[(char, bool, usize)]) -> Located<Condition> {
    let mut split = None;
    let mut i = 0;
    while i < chars.len() {
        let (c, escaped, col) = chars[i];
        if !escaped {
            let found = match c {
                '!' => match chars.get(i + 1) {
                    Some(('=', false, _)) => Some((Op::NotEqual, 2)),
                    Some(('~', false, _)) => Some((Op::NotContains, 2)),
                    _ => {
                        return Err((
                            col,
                            "'!' must be followed by '=' or '~' (escape it as \\! in a value)"
                                .to_owned(),
                        ));
                    }
                },
                '=' => Some((Op::Equal, 1)),
                '~' => Some((Op::Contains, 1)),
                _ => None,
            };
            if let Some((op, len)) = found {
                if split.is_some() {
                    return Err((
                        col,
                        format!(
                            "second operator '{c}' in one condition; escape it as \\{c} in a value, or join conditions with '&' or '|'"
                        ),
                    ));
                }
                split = Some((i, op, len, col));
                i += len;
                continue;
            }
        }
        i += 1;
    }
    let Some((at, op, len, col)) = split else {
        // dotnet: a filter without an operator means FullyQualifiedName contains it.
        return Ok(Condition {
            property: Property::FullyQualifiedName,
            op: Op::Contains,
            value: text_of(chars),
        });
    };
    let name = text_of(&chars[..at]);
    let value = text_of(&chars[at + len..]);
    let op_text: String = chars[at..at + len].iter().map(|(c, _, _)| *c).collect();
    if name.is_empty() {
        return Err((col, format!("missing property name before '{op_text}'")));
    }
    if value.is_empty() {
        return Err((col, format!("missing value after '{op_text}'")));
    }
    let property = match name.to_ascii_lowercase().as_str() {
        "fullyqualifiedname" => Property::FullyQualifiedName,
        "name" | "displayname" => Property::Name,
        "classname" => Property::ClassName,
        "category" | "testcategory" => Property::Category,
        _ => Property::Trait(name),
    };
    Ok(Condition {
        property,
        op,
        value,
    })
}

fn eval(expr: &Expr, case: &TestCase) -> bool {
    match expr {
        Expr::Or(items) => items.iter().any(|e| eval(e, case)),
        Expr::And(items) => items.iter().all(|e| eval(e, case)),
        Expr::Condition(c) => eval_condition(c, case),
    }
}

fn eval_condition(c: &Condition, case: &TestCase) -> bool {
    let test = |v: &str| match c.op {
        Op::Equal | Op::NotEqual => eq_ci(v, &c.value),
        Op::Contains | Op::NotContains => contains_ci(v, &c.value),
    };
    let any = match &c.property {
        Property::FullyQualifiedName => test(&case.fully_qualified_name),
        Property::Name => test(&case.name),
        Property::ClassName => test(&case.class_name),
        Property::Category => {
            case.categories.iter().any(|v| test(v))
                || case
                    .traits
                    .iter()
                    .any(|(n, v)| (eq_ci(n, "Category") || eq_ci(n, "TestCategory")) && test(v))
        }
        Property::Trait(name) => case.traits.iter().any(|(n, v)| eq_ci(n, name) && test(v)),
    };
    match c.op {
        Op::Equal | Op::Contains => any,
        Op::NotEqual | Op::NotContains => !any,
    }
}

/// Renders a property as the filter grammar names it.
fn property_name(p: &Property) -> &str {
    match p {
        Property::FullyQualifiedName => "FullyQualifiedName",
        Property::Name => "Name",
        Property::ClassName => "ClassName",
        Property::Category => "Category",
        Property::Trait(n) => n,
    }
}

/// A value with the grammar's specials escaped.
fn escaped(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if SPECIAL.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Equal => "=",
            Op::NotEqual => "!=",
            Op::Contains => "~",
            Op::NotContains => "!~",
        };
        write!(
            f,
            "{}{op}{}",
            escaped(property_name(&self.property)),
            escaped(&self.value)
        )
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, items: &[Expr], sep: &str, wrap_or: bool| {
            for (i, e) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                match e {
                    Expr::Or(_) if wrap_or => write!(f, "({e})")?,
                    _ => write!(f, "{e}")?,
                }
            }
            Ok(())
        };
        match self {
            Expr::Or(items) => join(f, items, "|", false),
            Expr::And(items) => join(f, items, "&", true),
            Expr::Condition(c) => write!(f, "{c}"),
        }
    }
}

/// The canonical text of a condition or alternative written on its own
/// (what `critical-filter-optional` compares), or an error.
pub fn canonical(text: &str) -> Result<String, FilterError> {
    Filter::parse(text).map(|f| f.expr.to_string())
}

fn collect_conditions<'e>(e: &'e Expr, out: &mut Vec<&'e Condition>) {
    match e {
        Expr::Or(items) | Expr::And(items) => {
            for i in items {
                collect_conditions(i, out);
            }
        }
        Expr::Condition(c) => out.push(c),
    }
}

/// How many values of one property to keep for the "seen" list.
const MAX_SEEN: usize = 200;

/// What one part of the filter matched over every test of a run: each
/// top-level alternative (the tests it selects) and each condition (the
/// tests its positive form matches, so that a misspelt exclusion, which
/// excludes nothing, shows as well as a misspelt inclusion).
#[derive(Debug, Clone)]
pub struct Coverage {
    alternatives: Vec<(String, Expr, u64)>,
    conditions: Vec<(String, Condition, u64)>,
    /// Property names seen on tests (traits, and Category when any test has
    /// one), and up to `MAX_SEEN` values of each property the filter uses.
    properties_seen: std::collections::BTreeSet<String>,
    values_seen: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}

/// A part of the filter that matched no test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dead {
    /// The part, canonical.
    pub text: String,
    /// An alternative (selects no test) or a condition (matches no test).
    pub alternative: bool,
    /// Why, with what was seen and the nearest name.
    pub why: String,
}

impl Coverage {
    /// Coverage of `filter`'s parts, none observed yet.
    pub fn new(filter: &Filter) -> Coverage {
        let alternatives = match &filter.expr {
            Expr::Or(items) => items
                .iter()
                .map(|e| (e.to_string(), e.clone(), 0))
                .collect(),
            other => vec![(other.to_string(), other.clone(), 0)],
        };
        let mut conds = Vec::new();
        collect_conditions(&filter.expr, &mut conds);
        let mut conditions: Vec<(String, Condition, u64)> = Vec::new();
        for c in conds {
            let positive = Condition {
                op: match c.op {
                    Op::Equal | Op::NotEqual => Op::Equal,
                    Op::Contains | Op::NotContains => Op::Contains,
                },
                ..c.clone()
            };
            let text = c.to_string();
            if !conditions.iter().any(|(t, _, _)| eq_ci(t, &text)) {
                conditions.push((text, positive, 0));
            }
        }
        Coverage {
            alternatives,
            conditions,
            properties_seen: Default::default(),
            values_seen: Default::default(),
        }
    }

    /// Counts `case` against every part.
    pub fn observe(&mut self, case: &TestCase) {
        for (_, e, n) in &mut self.alternatives {
            if eval(e, case) {
                *n += 1;
            }
        }
        for (_, c, n) in &mut self.conditions {
            if eval_condition(c, case) {
                *n += 1;
            }
        }
        if !case.categories.is_empty() {
            self.properties_seen.insert("Category".into());
        }
        for (name, _) in &case.traits {
            if self.properties_seen.len() < MAX_SEEN {
                self.properties_seen.insert(name.clone());
            }
        }
        for (_, c, _) in &self.conditions {
            let key = property_name(&c.property).to_string();
            let values: Vec<&str> = match &c.property {
                Property::FullyQualifiedName | Property::Name | Property::ClassName => continue,
                Property::Category => case
                    .categories
                    .iter()
                    .map(String::as_str)
                    .chain(case.traits.iter().filter_map(|(n, v)| {
                        (eq_ci(n, "Category") || eq_ci(n, "TestCategory")).then_some(v.as_str())
                    }))
                    .collect(),
                Property::Trait(name) => case
                    .traits
                    .iter()
                    .filter(|(n, _)| eq_ci(n, name))
                    .map(|(_, v)| v.as_str())
                    .collect(),
            };
            let seen = self.values_seen.entry(key).or_default();
            for v in values {
                if seen.len() < MAX_SEEN {
                    seen.insert(v.to_string());
                }
            }
        }
    }

    /// Every alternative with the tests it selected.
    pub fn alternatives(&self) -> Vec<(String, u64)> {
        self.alternatives
            .iter()
            .map(|(t, _, n)| (t.clone(), *n))
            .collect()
    }

    /// The canonical texts of every alternative and condition (what an
    /// optional entry must be one of).
    pub fn parts(&self) -> Vec<String> {
        self.alternatives
            .iter()
            .map(|(t, _, _)| t.clone())
            .chain(self.conditions.iter().map(|(t, _, _)| t.clone()))
            .collect()
    }

    /// The parts that matched nothing, but for those in `optional`
    /// (canonical texts): alternatives when there are several (a single one
    /// is the minimum's business), then conditions.
    pub fn dead(&self, optional: &[String]) -> Vec<Dead> {
        let skip = |t: &str| optional.iter().any(|o| eq_ci(o, t));
        let mut out = Vec::new();
        // A filter of one condition selects nothing exactly when it is
        // dead: the minimum's reason already says so, with what was seen.
        if self.alternatives.len() == 1 && self.conditions.len() == 1 {
            return out;
        }
        let mut dead_conditions = Vec::new();
        for (text, c, n) in &self.conditions {
            if *n == 0 && !skip(text) {
                dead_conditions.push(Dead {
                    text: text.clone(),
                    alternative: false,
                    why: self.why(c),
                });
            }
        }
        if self.alternatives.len() > 1 {
            for (text, _, n) in &self.alternatives {
                if *n == 0 && !skip(text) && !dead_conditions.iter().any(|d| eq_ci(&d.text, text)) {
                    out.push(Dead {
                        text: text.clone(),
                        alternative: true,
                        why: "no test meets all its conditions together".into(),
                    });
                }
            }
        }
        out.extend(dead_conditions);
        out
    }

    fn why(&self, c: &Condition) -> String {
        let name = property_name(&c.property);
        let verb = match c.op {
            Op::Equal | Op::NotEqual => "is",
            Op::Contains | Op::NotContains => "contains",
        };
        let nearest = |word: &str, among: &std::collections::BTreeSet<String>| {
            let w = word.to_lowercase();
            among
                .iter()
                .map(|c| (strsim::levenshtein(&w, &c.to_lowercase()), c))
                .filter(|(d, c)| *d > 0 && *d <= 2.max(c.chars().count() / 4))
                .min_by_key(|(d, _)| *d)
                .map(|(_, n)| format!("; did you mean {n}?"))
                .unwrap_or_default()
        };
        let list = |set: &std::collections::BTreeSet<String>| {
            let mut v: Vec<&str> = set.iter().map(String::as_str).take(12).collect();
            if set.len() > 12 {
                v.push("…");
            }
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        match &c.property {
            Property::Trait(n) if !self.properties_seen.iter().any(|p| eq_ci(p, n)) => format!(
                "no test carries a property named '{n}' (properties seen: {}{})",
                list(&self.properties_seen),
                nearest(n, &self.properties_seen)
            ),
            Property::Category | Property::Trait(_) => {
                let empty = Default::default();
                let seen = self.values_seen.get(name).unwrap_or(&empty);
                format!(
                    "no test's {name} {verb} '{}' ({name} values seen: {}{})",
                    c.value,
                    list(seen),
                    nearest(&c.value, seen)
                )
            }
            _ => format!("no test's {name} {verb} '{}'", c.value),
        }
    }
}

fn eq_ci(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        haystack.to_lowercase().contains(&needle.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::model::Outcome;

    fn case(fqn: &str, categories: &[&str], traits: &[(&str, &str)]) -> TestCase {
        let mut c = TestCase::new(Outcome::Passed);
        c.fully_qualified_name = fqn.to_owned();
        c.name = fqn.rsplit('.').next().unwrap_or(fqn).to_owned();
        c.class_name = fqn
            .rsplit_once('.')
            .map(|(a, _)| a)
            .unwrap_or("")
            .to_owned();
        c.categories = categories.iter().map(|s| s.to_string()).collect();
        c.traits = traits
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        c
    }

    fn m(filter: &str, c: &TestCase) -> bool {
        Filter::parse(filter).unwrap().matches(c)
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let pay = case("Shop.PaymentTests.Charge", &["Payment"], &[]);
        // A | (B & C): true because of A.
        assert!(m("Category=Payment|Category=Critical&Category=Nope", &pay));
        // (A | B) & C: false because of C.
        assert!(!m(
            "(Category=Payment|Category=Critical)&Category=Nope",
            &pay
        ));
    }

    #[test]
    fn operators_and_properties() {
        let c = case(
            "Shop.PaymentTests.Charge",
            &["Critical"],
            &[("Priority", "1")],
        );
        assert!(m("FullyQualifiedName~paymenttests", &c));
        assert!(m("FullyQualifiedName=shop.paymenttests.charge", &c));
        assert!(!m("FullyQualifiedName!~Payment", &c));
        assert!(m("Name=Charge&ClassName=Shop.PaymentTests", &c));
        assert!(m("DisplayName=charge", &c));
        assert!(m("TestCategory=critical", &c));
        assert!(m("Category!=Slow", &c));
        assert!(!m("Category!=Critical", &c));
        assert!(m("Priority=1", &c));
        assert!(!m("Priority=2", &c));
        // A trait the test does not have: = never, != always.
        assert!(!m("Owner=alice", &c));
        assert!(m("Owner!=alice", &c));
        // A bare value is FullyQualifiedName~value.
        assert!(m("PaymentTests", &c));
        // xUnit-style category trait.
        let x = case("A.B", &[], &[("Category", "Critical")]);
        assert!(m("Category=Critical", &x));
    }

    #[test]
    fn escapes_follow_dotnet() {
        let c = case("Ns.Tests.Charge(100,\"EUR\")", &["a|b"], &[]);
        assert!(m(r#"FullyQualifiedName~Charge\(100"#, &c));
        assert!(m(r"Category=a\|b", &c));
        assert!(!m(r"Category=a\|c", &c));
        let e = Filter::parse(r"Category=a\b").unwrap_err();
        assert_eq!(e.column, 11, "{e}");
        assert!(e.message.contains("invalid escape"));
        let e = Filter::parse(r"Category=a\").unwrap_err();
        assert_eq!(e.column, 11);
    }

    #[test]
    fn whitespace_is_trimmed_but_kept_inside_values() {
        let c = case("A.B", &["Automated Testing"], &[]);
        assert!(m("  Category = Automated Testing  |  Name=x ", &c));
    }

    #[test]
    fn errors_point_at_the_column() {
        let cases: &[(&str, usize, &str)] = &[
            ("Category=A|", 11, "after '|'"),
            ("Category=A&", 11, "after '&'"),
            ("|Category=A", 1, "before '|'"),
            ("(Category=A", 1, "never closed"),
            ("Category=A)", 11, "no matching"),
            ("()", 1, "empty parentheses"),
            ("Category=", 9, "missing value"),
            ("=Critical", 1, "missing property name"),
            ("Category=A=B", 11, "second operator"),
            ("Category!A", 9, "'!' must be followed"),
            ("Category=A (B)", 12, "'(' inside a condition"),
            ("(Category=A)(Name=B)", 13, "expected '&' or '|'"),
            ("   ", 1, "empty"),
            ("Category=A|()", 12, "empty parentheses"),
        ];
        for (filter, column, text) in cases {
            let e = Filter::parse(filter).unwrap_err();
            assert_eq!(e.column, *column, "{filter}: {e}");
            assert!(e.message.contains(text), "{filter}: {e}");
            assert!(e.to_string().contains(&format!("column {column}")));
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}A=1{}", "(".repeat(1000), ")".repeat(1000));
        let e = Filter::parse(&deep).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
        let ok = format!("{}A=1{}", "(".repeat(10), ")".repeat(10));
        assert!(Filter::parse(&ok).is_ok());
    }

    #[test]
    fn unicode_values_compare_case_insensitively() {
        let c = case("Ns.Überweisung", &["Zahlung"], &[]);
        assert!(m("FullyQualifiedName~überweisung", &c));
        assert!(m("Category=ZAHLUNG", &c));
    }
}
