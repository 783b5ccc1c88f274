//! GraphQL syntax (the October 2021 specification): a lexer and two small
//! recursive-descent parsers, one for executable documents (what clients
//! send) and one for the type-system subset `schema.graphql` is written in.
//! Errors carry the position and read the way GitHub's (graphql-ruby's)
//! parse errors do: `Parse error on "}" (RCURLY) at [1, 25]`.

use std::collections::BTreeMap;

/// Line and column, both from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Punct(&'static str),
    Name(String),
    Int(String),
    Float(String),
    Str(String),
    Eof,
}

impl Tok {
    /// graphql-ruby's token names, for error messages.
    fn describe(&self) -> (String, &'static str) {
        match self {
            Tok::Punct(p) => (
                (*p).to_owned(),
                match *p {
                    "!" => "BANG",
                    "$" => "VAR_SIGN",
                    "&" => "AMP",
                    "(" => "LPAREN",
                    ")" => "RPAREN",
                    "..." => "ELLIPSIS",
                    ":" => "COLON",
                    "=" => "EQUALS",
                    "@" => "DIR_SIGN",
                    "[" => "LBRACKET",
                    "]" => "RBRACKET",
                    "{" => "LCURLY",
                    "}" => "RCURLY",
                    _ => "PIPE",
                },
            ),
            Tok::Name(n) => (n.clone(), "IDENTIFIER"),
            Tok::Int(n) => (n.clone(), "INT"),
            Tok::Float(n) => (n.clone(), "FLOAT"),
            Tok::Str(s) => (s.clone(), "STRING"),
            Tok::Eof => (String::new(), "EOF"),
        }
    }
}

/// A syntax error: the message and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub message: String,
    pub pos: Pos,
}

fn lex(src: &str) -> Result<Vec<(Tok, Pos)>, SyntaxError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let err = |message: String, line, column| SyntaxError {
        message,
        pos: Pos { line, column },
    };
    while i < chars.len() {
        let c = chars[i];
        let start = Pos { line, column: col };
        match c {
            '\n' => {
                i += 1;
                line += 1;
                col = 1;
            }
            '\r' => {
                i += 1;
                if chars.get(i) != Some(&'\n') {
                    line += 1;
                    col = 1;
                }
            }
            ' ' | '\t' | ',' | '\u{feff}' => {
                i += 1;
                col += 1;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                    i += 1;
                }
            }
            '!' | '$' | '&' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' => {
                let p = match c {
                    '!' => "!",
                    '$' => "$",
                    '&' => "&",
                    '(' => "(",
                    ')' => ")",
                    ':' => ":",
                    '=' => "=",
                    '@' => "@",
                    '[' => "[",
                    ']' => "]",
                    '{' => "{",
                    '|' => "|",
                    _ => "}",
                };
                out.push((Tok::Punct(p), start));
                i += 1;
                col += 1;
            }
            '.' => {
                if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') {
                    out.push((Tok::Punct("..."), start));
                    i += 3;
                    col += 3;
                } else {
                    return Err(err(
                        format!("Parse error on \".\" (UNKNOWN_CHAR) at [{line}, {col}]"),
                        line,
                        col,
                    ));
                }
            }
            '"' => {
                if chars.get(i + 1) == Some(&'"') && chars.get(i + 2) == Some(&'"') {
                    // Block string.
                    i += 3;
                    col += 3;
                    let mut raw = String::new();
                    loop {
                        if i >= chars.len() {
                            return Err(err(
                                format!(
                                    "Parse error on unterminated string at [{}, {}]",
                                    start.line, start.column
                                ),
                                start.line,
                                start.column,
                            ));
                        }
                        if chars[i] == '"'
                            && chars.get(i + 1) == Some(&'"')
                            && chars.get(i + 2) == Some(&'"')
                        {
                            i += 3;
                            col += 3;
                            break;
                        }
                        if chars[i] == '\\'
                            && chars.get(i + 1) == Some(&'"')
                            && chars.get(i + 2) == Some(&'"')
                            && chars.get(i + 3) == Some(&'"')
                        {
                            raw.push_str("\"\"\"");
                            i += 4;
                            col += 4;
                            continue;
                        }
                        if chars[i] == '\n' {
                            line += 1;
                            col = 1;
                        } else {
                            col += 1;
                        }
                        raw.push(chars[i]);
                        i += 1;
                    }
                    out.push((Tok::Str(block_string(&raw)), start));
                } else {
                    i += 1;
                    col += 1;
                    let mut s = String::new();
                    loop {
                        let Some(&ch) = chars.get(i) else {
                            return Err(err(
                                format!(
                                    "Parse error on unterminated string at [{}, {}]",
                                    start.line, start.column
                                ),
                                start.line,
                                start.column,
                            ));
                        };
                        match ch {
                            '"' => {
                                i += 1;
                                col += 1;
                                break;
                            }
                            '\n' | '\r' => {
                                return Err(err(
                                    format!(
                                        "Parse error on unterminated string at [{}, {}]",
                                        start.line, start.column
                                    ),
                                    start.line,
                                    start.column,
                                ));
                            }
                            '\\' => {
                                let esc = chars.get(i + 1).copied().unwrap_or(' ');
                                let simple = match esc {
                                    '"' => Some('"'),
                                    '\\' => Some('\\'),
                                    '/' => Some('/'),
                                    'b' => Some('\u{8}'),
                                    'f' => Some('\u{c}'),
                                    'n' => Some('\n'),
                                    'r' => Some('\r'),
                                    't' => Some('\t'),
                                    _ => None,
                                };
                                if let Some(e) = simple {
                                    s.push(e);
                                    i += 2;
                                    col += 2;
                                } else if esc == 'u' {
                                    let hex: String = chars.iter().skip(i + 2).take(4).collect();
                                    let code = u32::from_str_radix(&hex, 16).ok();
                                    match code.and_then(char::from_u32) {
                                        Some(ch) if hex.len() == 4 => s.push(ch),
                                        _ => {
                                            return Err(err(
                                                format!(
                                                    "Parse error on bad Unicode escape sequence at [{line}, {col}]"
                                                ),
                                                line,
                                                col,
                                            ));
                                        }
                                    }
                                    i += 6;
                                    col += 6;
                                } else {
                                    return Err(err(
                                        format!(
                                            "Parse error on bad escape sequence \"\\{esc}\" at [{line}, {col}]"
                                        ),
                                        line,
                                        col,
                                    ));
                                }
                            }
                            _ => {
                                s.push(ch);
                                i += 1;
                                col += 1;
                            }
                        }
                    }
                    out.push((Tok::Str(s), start));
                }
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let mut n = String::new();
                while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
                    n.push(chars[i]);
                    i += 1;
                    col += 1;
                }
                out.push((Tok::Name(n), start));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let mut n = String::new();
                let mut float = false;
                if chars[i] == '-' {
                    n.push('-');
                    i += 1;
                    col += 1;
                }
                let digits = |i: &mut usize, col: &mut usize, n: &mut String| {
                    let before = n.len();
                    while *i < chars.len() && chars[*i].is_ascii_digit() {
                        n.push(chars[*i]);
                        *i += 1;
                        *col += 1;
                    }
                    n.len() > before
                };
                if !digits(&mut i, &mut col, &mut n) {
                    return Err(err(
                        format!("Parse error on \"{n}\" (UNKNOWN_CHAR) at [{line}, {col}]"),
                        line,
                        col,
                    ));
                }
                if chars.get(i) == Some(&'.') {
                    float = true;
                    n.push('.');
                    i += 1;
                    col += 1;
                    if !digits(&mut i, &mut col, &mut n) {
                        return Err(err(
                            format!("Parse error on \"{n}\" (UNKNOWN_CHAR) at [{line}, {col}]"),
                            line,
                            col,
                        ));
                    }
                }
                if matches!(chars.get(i), Some('e' | 'E')) {
                    float = true;
                    n.push('e');
                    i += 1;
                    col += 1;
                    if let Some(&s @ ('+' | '-')) = chars.get(i) {
                        n.push(s);
                        i += 1;
                        col += 1;
                    }
                    if !digits(&mut i, &mut col, &mut n) {
                        return Err(err(
                            format!("Parse error on \"{n}\" (UNKNOWN_CHAR) at [{line}, {col}]"),
                            line,
                            col,
                        ));
                    }
                }
                if matches!(chars.get(i), Some(c) if c.is_ascii_alphabetic() || *c == '_' || *c == '.')
                {
                    return Err(err(
                        format!(
                            "Parse error on \"{}\" (UNKNOWN_CHAR) at [{line}, {col}]",
                            chars[i]
                        ),
                        line,
                        col,
                    ));
                }
                out.push((if float { Tok::Float(n) } else { Tok::Int(n) }, start));
            }
            other => {
                return Err(err(
                    format!("Parse error on \"{other}\" (UNKNOWN_CHAR) at [{line}, {col}]"),
                    line,
                    col,
                ));
            }
        }
    }
    out.push((Tok::Eof, Pos { line, column: col }));
    Ok(out)
}

/// The block-string value: common indentation and blank first/last lines
/// removed (specification §2.9.5).
fn block_string(raw: &str) -> String {
    let lines: Vec<&str> = raw.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let indent = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                (*l).to_owned()
            } else {
                l.get(indent..).unwrap_or("").to_owned()
            }
        })
        .collect();
    while out.first().is_some_and(|l| l.trim().is_empty()) {
        out.remove(0);
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.join("\n")
}

// ---------------------------------------------------------------- AST

/// A type reference (`[IssueState!]!`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TypeRef {
    Named(String),
    List(Box<TypeRef>),
    NonNull(Box<TypeRef>),
}

impl TypeRef {
    pub fn named(&self) -> &str {
        match self {
            TypeRef::Named(n) => n,
            TypeRef::List(t) | TypeRef::NonNull(t) => t.named(),
        }
    }

    pub fn is_non_null(&self) -> bool {
        matches!(self, TypeRef::NonNull(_))
    }
}

impl std::fmt::Display for TypeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypeRef::Named(n) => f.write_str(n),
            TypeRef::List(t) => write!(f, "[{t}]"),
            TypeRef::NonNull(t) => write!(f, "{t}!"),
        }
    }
}

/// An input value as written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lit {
    Var(String),
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Enum(String),
    List(Vec<Lit>),
    Object(Vec<(String, Lit)>),
}

impl std::fmt::Display for Lit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lit::Var(v) => write!(f, "${v}"),
            Lit::Int(n) => write!(f, "{n}"),
            Lit::Float(n) => write!(f, "{n}"),
            Lit::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Lit::Bool(b) => write!(f, "{b}"),
            Lit::Null => f.write_str("null"),
            Lit::Enum(e) => f.write_str(e),
            Lit::List(l) => {
                f.write_str("[")?;
                for (i, x) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
            Lit::Object(o) => {
                f.write_str("{")?;
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Directive {
    pub name: String,
    pub args: Vec<(String, Lit)>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub args: Vec<(String, Lit)>,
    pub directives: Vec<Directive>,
    pub selection: Vec<Selection>,
    pub pos: Pos,
}

impl Field {
    /// The key the field's value is answered under.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Selection {
    Field(Field),
    Spread {
        name: String,
        directives: Vec<Directive>,
        pos: Pos,
    },
    Inline {
        on: Option<String>,
        directives: Vec<Directive>,
        selection: Vec<Selection>,
        pos: Pos,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    Query,
    Mutation,
    Subscription,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VarDef {
    pub name: String,
    pub ty: TypeRef,
    pub default: Option<Lit>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Operation {
    pub kind: OpKind,
    pub name: Option<String>,
    pub vars: Vec<VarDef>,
    pub directives: Vec<Directive>,
    pub selection: Vec<Selection>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fragment {
    pub name: String,
    pub on: String,
    pub directives: Vec<Directive>,
    pub selection: Vec<Selection>,
    pub pos: Pos,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Document {
    pub operations: Vec<Operation>,
    pub fragments: Vec<Fragment>,
}

// ---------------------------------------------------------------- type system AST

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct InputValueDef {
    pub name: String,
    pub ty: TypeRef,
    pub default: Option<Lit>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldDef {
    pub name: String,
    pub args: Vec<InputValueDef>,
    pub ty: TypeRef,
    pub deprecated: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EnumValueDef {
    pub name: String,
    pub deprecated: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

impl Kind {
    /// `__TypeKind` spelling.
    pub fn introspection_name(self) -> &'static str {
        match self {
            Kind::Scalar => "SCALAR",
            Kind::Object => "OBJECT",
            Kind::Interface => "INTERFACE",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::InputObject => "INPUT_OBJECT",
        }
    }

    pub fn is_composite(self) -> bool {
        matches!(self, Kind::Object | Kind::Interface | Kind::Union)
    }

    pub fn is_input(self) -> bool {
        matches!(self, Kind::Scalar | Kind::Enum | Kind::InputObject)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TypeDef {
    pub name: String,
    pub kind: Kind,
    pub fields: Vec<FieldDef>,
    pub interfaces: Vec<String>,
    pub members: Vec<String>,
    pub values: Vec<EnumValueDef>,
    pub inputs: Vec<InputValueDef>,
}

impl TypeDef {
    pub fn new(name: &str, kind: Kind) -> Self {
        TypeDef {
            name: name.to_owned(),
            kind,
            fields: Vec::new(),
            interfaces: Vec::new(),
            members: Vec::new(),
            values: Vec::new(),
            inputs: Vec::new(),
        }
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

// ---------------------------------------------------------------- parser

struct Parser {
    toks: Vec<(Tok, Pos)>,
    i: usize,
}

type P<T> = Result<T, SyntaxError>;

impl Parser {
    fn new(src: &str) -> P<Self> {
        Ok(Parser {
            toks: lex(src)?,
            i: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.i].0
    }

    fn pos(&self) -> Pos {
        self.toks[self.i].1
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.i].0.clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn unexpected<T>(&self) -> P<T> {
        let pos = self.pos();
        let message = match self.peek() {
            Tok::Eof => "Unexpected end of document".to_owned(),
            t => {
                let (text, kind) = t.describe();
                format!(
                    "Parse error on {} ({kind}) at [{}, {}]",
                    serde_json::Value::String(text),
                    pos.line,
                    pos.column
                )
            }
        };
        Err(SyntaxError { message, pos })
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> P<()> {
        if self.eat(p) {
            Ok(())
        } else {
            self.unexpected()
        }
    }

    fn is_name(&self, n: &str) -> bool {
        matches!(self.peek(), Tok::Name(m) if m == n)
    }

    fn name(&mut self) -> P<String> {
        match self.peek().clone() {
            Tok::Name(n) => {
                self.bump();
                Ok(n)
            }
            _ => self.unexpected(),
        }
    }

    fn type_ref(&mut self) -> P<TypeRef> {
        let t = if self.eat("[") {
            let inner = self.type_ref()?;
            self.expect("]")?;
            TypeRef::List(Box::new(inner))
        } else {
            TypeRef::Named(self.name()?)
        };
        Ok(if self.eat("!") {
            TypeRef::NonNull(Box::new(t))
        } else {
            t
        })
    }

    fn value(&mut self, constant: bool) -> P<Lit> {
        let v = match self.peek().clone() {
            Tok::Punct("$") if !constant => {
                self.bump();
                Lit::Var(self.name()?)
            }
            Tok::Int(n) => {
                self.bump();
                match n.parse::<i64>() {
                    Ok(v) => Lit::Int(v),
                    Err(_) => Lit::Float(n.parse::<f64>().unwrap_or(f64::MAX)),
                }
            }
            Tok::Float(n) => {
                self.bump();
                Lit::Float(n.parse::<f64>().unwrap_or(0.0))
            }
            Tok::Str(s) => {
                self.bump();
                Lit::Str(s)
            }
            Tok::Name(n) => {
                self.bump();
                match n.as_str() {
                    "true" => Lit::Bool(true),
                    "false" => Lit::Bool(false),
                    "null" => Lit::Null,
                    _ => Lit::Enum(n),
                }
            }
            Tok::Punct("[") => {
                self.bump();
                let mut items = Vec::new();
                while !self.eat("]") {
                    if matches!(self.peek(), Tok::Eof) {
                        return self.unexpected();
                    }
                    items.push(self.value(constant)?);
                }
                Lit::List(items)
            }
            Tok::Punct("{") => {
                self.bump();
                let mut fields = Vec::new();
                while !self.eat("}") {
                    let k = self.name()?;
                    self.expect(":")?;
                    fields.push((k, self.value(constant)?));
                }
                Lit::Object(fields)
            }
            _ => return self.unexpected(),
        };
        Ok(v)
    }

    fn arguments(&mut self, constant: bool) -> P<Vec<(String, Lit)>> {
        let mut args = Vec::new();
        if self.eat("(") {
            loop {
                let k = self.name()?;
                self.expect(":")?;
                args.push((k, self.value(constant)?));
                if self.eat(")") {
                    break;
                }
            }
        }
        Ok(args)
    }

    fn directives(&mut self, constant: bool) -> P<Vec<Directive>> {
        let mut out = Vec::new();
        while self.is_punct("@") {
            let pos = self.pos();
            self.bump();
            let name = self.name()?;
            let args = self.arguments(constant)?;
            out.push(Directive { name, args, pos });
        }
        Ok(out)
    }

    fn selection_set(&mut self) -> P<Vec<Selection>> {
        self.expect("{")?;
        let mut out = Vec::new();
        loop {
            if self.eat("}") {
                if out.is_empty() {
                    // `{}`: graphql-ruby names the closing brace.
                    self.i -= 1;
                    return self.unexpected();
                }
                return Ok(out);
            }
            let pos = self.pos();
            if self.eat("...") {
                if self.is_name("on") {
                    self.bump();
                    let on = self.name()?;
                    let directives = self.directives(false)?;
                    let selection = self.selection_set()?;
                    out.push(Selection::Inline {
                        on: Some(on),
                        directives,
                        selection,
                        pos,
                    });
                } else if matches!(self.peek(), Tok::Name(_)) {
                    let name = self.name()?;
                    let directives = self.directives(false)?;
                    out.push(Selection::Spread {
                        name,
                        directives,
                        pos,
                    });
                } else {
                    let directives = self.directives(false)?;
                    let selection = self.selection_set()?;
                    out.push(Selection::Inline {
                        on: None,
                        directives,
                        selection,
                        pos,
                    });
                }
                continue;
            }
            let first = self.name()?;
            let (alias, name) = if self.eat(":") {
                (Some(first), self.name()?)
            } else {
                (None, first)
            };
            let args = self.arguments(false)?;
            let directives = self.directives(false)?;
            let selection = if self.is_punct("{") {
                self.selection_set()?
            } else {
                Vec::new()
            };
            out.push(Selection::Field(Field {
                alias,
                name,
                args,
                directives,
                selection,
                pos,
            }));
        }
    }

    fn document(&mut self) -> P<Document> {
        let mut doc = Document::default();
        if matches!(self.peek(), Tok::Eof) {
            return self.unexpected();
        }
        while !matches!(self.peek(), Tok::Eof) {
            let pos = self.pos();
            if self.is_punct("{") {
                let selection = self.selection_set()?;
                doc.operations.push(Operation {
                    kind: OpKind::Query,
                    name: None,
                    vars: Vec::new(),
                    directives: Vec::new(),
                    selection,
                    pos,
                });
                continue;
            }
            let Tok::Name(word) = self.peek().clone() else {
                return self.unexpected();
            };
            let kind = match word.as_str() {
                "query" => OpKind::Query,
                "mutation" => OpKind::Mutation,
                "subscription" => OpKind::Subscription,
                "fragment" => {
                    self.bump();
                    let name = self.name()?;
                    if name == "on" {
                        self.i -= 1;
                        return self.unexpected();
                    }
                    if !self.is_name("on") {
                        return self.unexpected();
                    }
                    self.bump();
                    let on = self.name()?;
                    let directives = self.directives(false)?;
                    let selection = self.selection_set()?;
                    doc.fragments.push(Fragment {
                        name,
                        on,
                        directives,
                        selection,
                        pos,
                    });
                    continue;
                }
                _ => return self.unexpected(),
            };
            self.bump();
            let name = match self.peek() {
                Tok::Name(_) => Some(self.name()?),
                _ => None,
            };
            let mut vars = Vec::new();
            if self.eat("(") {
                loop {
                    let vpos = self.pos();
                    self.expect("$")?;
                    let vname = self.name()?;
                    self.expect(":")?;
                    let ty = self.type_ref()?;
                    let default = if self.eat("=") {
                        Some(self.value(true)?)
                    } else {
                        None
                    };
                    let _ = self.directives(true)?;
                    vars.push(VarDef {
                        name: vname,
                        ty,
                        default,
                        pos: vpos,
                    });
                    if self.eat(")") {
                        break;
                    }
                }
            }
            let directives = self.directives(false)?;
            let selection = self.selection_set()?;
            doc.operations.push(Operation {
                kind,
                name,
                vars,
                directives,
                selection,
                pos,
            });
        }
        Ok(doc)
    }

    /// The type-system subset `schema.graphql` uses: `type`, `interface`,
    /// `union`, `enum`, `input`, `scalar`, `@deprecated(reason:)`.
    fn type_system(&mut self) -> P<BTreeMap<String, TypeDef>> {
        let mut types = BTreeMap::new();
        while !matches!(self.peek(), Tok::Eof) {
            let word = self.name()?;
            let name = self.name()?;
            let kind = match word.as_str() {
                "type" => Kind::Object,
                "interface" => Kind::Interface,
                "union" => Kind::Union,
                "enum" => Kind::Enum,
                "input" => Kind::InputObject,
                "scalar" => Kind::Scalar,
                _ => {
                    self.i -= 2;
                    return self.unexpected();
                }
            };
            let mut t = TypeDef::new(&name, kind);
            match kind {
                Kind::Object | Kind::Interface => {
                    if self.is_name("implements") {
                        self.bump();
                        self.eat("&");
                        t.interfaces.push(self.name()?);
                        while self.eat("&") {
                            t.interfaces.push(self.name()?);
                        }
                    }
                    self.expect("{")?;
                    while !self.eat("}") {
                        let fname = self.name()?;
                        let mut args = Vec::new();
                        if self.eat("(") {
                            while !self.eat(")") {
                                args.push(self.input_value_def()?);
                            }
                        }
                        self.expect(":")?;
                        let ty = self.type_ref()?;
                        let deprecated = self.deprecation()?;
                        t.fields.push(FieldDef {
                            name: fname,
                            args,
                            ty,
                            deprecated,
                        });
                    }
                }
                Kind::Union => {
                    self.expect("=")?;
                    self.eat("|");
                    t.members.push(self.name()?);
                    while self.eat("|") {
                        t.members.push(self.name()?);
                    }
                }
                Kind::Enum => {
                    self.expect("{")?;
                    while !self.eat("}") {
                        let v = self.name()?;
                        let deprecated = self.deprecation()?;
                        t.values.push(EnumValueDef {
                            name: v,
                            deprecated,
                        });
                    }
                }
                Kind::InputObject => {
                    self.expect("{")?;
                    while !self.eat("}") {
                        t.inputs.push(self.input_value_def()?);
                    }
                }
                Kind::Scalar => {}
            }
            types.insert(name, t);
        }
        Ok(types)
    }

    fn input_value_def(&mut self) -> P<InputValueDef> {
        let name = self.name()?;
        self.expect(":")?;
        let ty = self.type_ref()?;
        let default = if self.eat("=") {
            Some(self.value(true)?)
        } else {
            None
        };
        Ok(InputValueDef { name, ty, default })
    }

    fn deprecation(&mut self) -> P<Option<String>> {
        let mut out = None;
        for d in self.directives(true)? {
            if d.name == "deprecated" {
                let reason = d
                    .args
                    .iter()
                    .find(|(k, _)| k == "reason")
                    .and_then(|(_, v)| match v {
                        Lit::Str(s) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "No longer supported".to_owned());
                out = Some(reason);
            }
        }
        Ok(out)
    }
}

/// Parses an executable document (what a client sends).
pub(crate) fn parse_document(src: &str) -> Result<Document, SyntaxError> {
    Parser::new(src)?.document()
}

/// Parses type definitions.
pub(crate) fn parse_types(src: &str) -> Result<BTreeMap<String, TypeDef>, SyntaxError> {
    Parser::new(src)?.type_system()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_gh_sends() {
        let doc = parse_document(
            r#"fragment pr on PullRequest{number,title,author{login,...on User{id,name}}}
            query PullRequestList($owner: String!, $state: [PullRequestState!] = OPEN, $limit: Int!) {
                repository(owner: $owner, name: "r") {
                    pullRequests(states: $state, first: $limit, orderBy: {field: CREATED_AT, direction: DESC}) {
                        totalCount nodes { ...pr } pageInfo { hasNextPage endCursor }
                    }
                }
            }"#,
        )
        .unwrap();
        assert_eq!(doc.fragments.len(), 1);
        assert_eq!(doc.operations[0].name.as_deref(), Some("PullRequestList"));
        assert_eq!(
            doc.operations[0].vars[1].default,
            Some(Lit::Enum("OPEN".into()))
        );
        let Selection::Field(repo) = &doc.operations[0].selection[0] else {
            panic!()
        };
        assert_eq!(repo.args[1], ("name".into(), Lit::Str("r".into())));
    }

    #[test]
    fn errors_name_the_token_and_position() {
        let e = parse_document("query { repository(owner: \"o\") { } }").unwrap_err();
        assert_eq!(e.message, "Parse error on \"}\" (RCURLY) at [1, 34]");
        let e = parse_document("{ a").unwrap_err();
        assert_eq!(e.message, "Unexpected end of document");
        let e = parse_document("").unwrap_err();
        assert_eq!(e.message, "Unexpected end of document");
    }

    #[test]
    fn strings_unescape_and_block_strings_dedent() {
        let doc =
            parse_document("{ a(x: \"q\\\"\\u00e9\", y: \"\"\"\n    one\n      two\n  \"\"\") }")
                .unwrap();
        let Selection::Field(f) = &doc.operations[0].selection[0] else {
            panic!()
        };
        assert_eq!(f.args[0].1, Lit::Str("q\"é".into()));
        assert_eq!(f.args[1].1, Lit::Str("one\n  two".into()));
    }
}
