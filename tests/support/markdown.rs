//! A checker for Telegram's MarkdownV2 message format, and escaping helpers.
//!
//! The rules, from the "Formatting options" section of the Bot API
//! documentation:
//!
//! - Outside entities, each of ``_ * [ ] ( ) ~ ` > # + - = | { } . !`` must be
//!   escaped with a preceding `\`. Any character with code 1 to 126 may be
//!   escaped, and `\` itself is written `\\`.
//! - Entities: `*bold*`, `_italic_`, `__underline__`, `~strikethrough~`,
//!   `||spoiler||`, `` `code` ``, ```` ```pre``` ```` (with an optional
//!   language on the first line), `[text](url)`, and `>` at the start of a
//!   line for a block quotation. `__` is always read as underline.
//! - Inside code and pre, only `` ` `` and `\` need escaping. Inside the URL
//!   of a link, only `)` and `\` need escaping.
//! - Entities nest only properly, and code, pre and links cannot contain
//!   other entities of those three kinds. Bold, italic, underline,
//!   strikethrough and spoiler can contain links, but not code or pre.
//!
//! NOTE: where the documentation leaves the outcome open, this checker
//! rejects, to be at least as strict as Telegram. It rejects `[text]`
//! without `(url)` and a `\` not followed by a character with code 1 to 126.
//! It does not recognise custom emoji (`![x](tg://emoji?...)`) or
//! expandable block quotations (`**>`).

use std::fmt;

/// Characters that must be escaped outside entities.
pub const RESERVED: &[char] = &[
    '_', '*', '[', ']', '(', ')', '~', '`', '>', '#', '+', '-', '=', '|', '{', '}', '.', '!',
];

/// A formatting entity that is opened and closed by markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Bold,
    Italic,
    Underline,
    Strikethrough,
    Spoiler,
    Code,
    Pre,
    /// The `[text]` part of a link.
    LinkText,
    /// The `(url)` part of a link.
    LinkUrl,
}

impl fmt::Display for Entity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Entity::Bold => "bold",
            Entity::Italic => "italic",
            Entity::Underline => "underline",
            Entity::Strikethrough => "strikethrough",
            Entity::Spoiler => "spoiler",
            Entity::Code => "code",
            Entity::Pre => "pre",
            Entity::LinkText => "link text",
            Entity::LinkUrl => "link URL",
        };
        formatter.write_str(name)
    }
}

/// Why a text is not valid MarkdownV2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A reserved character that is neither escaped nor part of an entity.
    Unescaped(char),
    /// An entity that is opened but never closed.
    Unclosed(Entity),
    /// An entity closed while another entity opened inside it is still open.
    Misnested { closing: Entity, open: Entity },
    /// An entity opened inside one that cannot contain it, such as code
    /// inside bold.
    Forbidden { inner: Entity, outer: Entity },
    /// `[text]` that is not followed by `(`.
    LinkWithoutUrl,
    /// A `\` at the end of the text or before a character outside 1 to 126.
    DanglingBackslash,
}

/// The first problem in a text, with the UTF-8 byte offset where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownError {
    /// Byte offset of the offending character or of the entity's opening
    /// marker.
    pub offset: usize,
    pub problem: Problem,
}

impl fmt::Display for MarkdownError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = self.offset;
        match &self.problem {
            Problem::Unescaped(character) => write!(
                formatter,
                "character '{character}' at byte offset {offset} is reserved and must be escaped with '\\'"
            ),
            Problem::Unclosed(entity) => write!(
                formatter,
                "the {entity} entity that starts at byte offset {offset} is never closed"
            ),
            Problem::Misnested { closing, open } => write!(
                formatter,
                "the {closing} entity is closed at byte offset {offset} while the {open} entity inside it is still open"
            ),
            Problem::Forbidden { inner, outer } => write!(
                formatter,
                "the {inner} entity at byte offset {offset} cannot be inside the {outer} entity"
            ),
            Problem::LinkWithoutUrl => write!(
                formatter,
                "the link text that ends at byte offset {offset} must be followed by '(' and a URL"
            ),
            Problem::DanglingBackslash => write!(
                formatter,
                "the '\\' at byte offset {offset} must be followed by a character with code 1 to 126"
            ),
        }
    }
}

impl std::error::Error for MarkdownError {}

/// Checks that `text` is valid MarkdownV2 and returns the visible text, with
/// markers, escapes and URLs removed and a pre block's language line dropped.
pub fn check(text: &str) -> Result<String, MarkdownError> {
    Parser::new(text).run()
}

/// Escapes `text` for use outside entities, so it shows exactly as given.
pub fn escape(text: &str) -> String {
    escape_with(text, |character| {
        character == '\\' || RESERVED.contains(&character)
    })
}

/// Escapes `text` for use inside `` `code` `` or a pre block.
pub fn escape_code(text: &str) -> String {
    escape_with(text, |character| character == '\\' || character == '`')
}

/// Escapes `url` for use inside the `(url)` part of a link.
pub fn escape_link_url(url: &str) -> String {
    escape_with(url, |character| character == '\\' || character == ')')
}

fn escape_with(text: &str, needs_escape: impl Fn(char) -> bool) -> String {
    let mut escaped = String::with_capacity(text.len() + text.len() / 4);
    for character in text.chars() {
        if needs_escape(character) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

fn escapable(character: char) -> bool {
    (1..=126).contains(&u32::from(character))
}

struct Parser<'a> {
    text: &'a str,
    characters: Vec<(usize, char)>,
    position: usize,
    open: Vec<(Entity, usize)>,
    plain: String,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            characters: text.char_indices().collect(),
            position: 0,
            open: Vec::new(),
            plain: String::with_capacity(text.len()),
        }
    }

    fn run(mut self) -> Result<String, MarkdownError> {
        while let Some((offset, character)) = self.current() {
            match character {
                '\\' => {
                    let escaped = self.escaped_character(offset)?;
                    self.plain.push(escaped);
                    self.position += 2;
                }
                '*' => self.toggle(Entity::Bold, offset, 1)?,
                '~' => self.toggle(Entity::Strikethrough, offset, 1)?,
                '_' if self.next_is('_') => self.toggle(Entity::Underline, offset, 2)?,
                '_' => self.toggle(Entity::Italic, offset, 1)?,
                '|' if self.next_is('|') => self.toggle(Entity::Spoiler, offset, 2)?,
                '`' if self.text[offset..].starts_with("```") => {
                    self.check_container(Entity::Pre, offset)?;
                    self.pre(offset)?;
                }
                '`' => {
                    self.check_container(Entity::Code, offset)?;
                    self.code(offset)?;
                }
                '[' => {
                    self.check_container(Entity::LinkText, offset)?;
                    self.open.push((Entity::LinkText, offset));
                    self.position += 1;
                }
                ']' if self.is_open(Entity::LinkText) => self.link_end(offset)?,
                '>' if offset == 0 || self.text[..offset].ends_with('\n') => {
                    // A block quotation marker: not part of the visible text.
                    self.position += 1;
                }
                _ if RESERVED.contains(&character) => {
                    return Err(MarkdownError {
                        offset,
                        problem: Problem::Unescaped(character),
                    });
                }
                _ => {
                    self.plain.push(character);
                    self.position += 1;
                }
            }
        }

        match self.open.first() {
            Some(&(entity, offset)) => Err(MarkdownError {
                offset,
                problem: Problem::Unclosed(entity),
            }),
            None => Ok(self.plain),
        }
    }

    fn current(&self) -> Option<(usize, char)> {
        self.characters.get(self.position).copied()
    }

    fn next_is(&self, expected: char) -> bool {
        matches!(self.characters.get(self.position + 1), Some(&(_, character)) if character == expected)
    }

    fn is_open(&self, entity: Entity) -> bool {
        self.open.iter().any(|&(open, _)| open == entity)
    }

    /// Rejects opening `inner` at `offset` inside an entity that cannot
    /// contain it. Code and pre fit in no other entity, and a link fits in
    /// any entity but another link.
    fn check_container(&self, inner: Entity, offset: usize) -> Result<(), MarkdownError> {
        let container = match inner {
            Entity::LinkText => self
                .open
                .iter()
                .find(|&&(outer, _)| outer == Entity::LinkText),
            _ => self.open.last(),
        };
        match container {
            Some(&(outer, _)) => Err(MarkdownError {
                offset,
                problem: Problem::Forbidden { inner, outer },
            }),
            None => Ok(()),
        }
    }

    /// Returns the character after the `\` at `offset`.
    fn escaped_character(&self, offset: usize) -> Result<char, MarkdownError> {
        match self.characters.get(self.position + 1) {
            Some(&(_, next)) if escapable(next) => Ok(next),
            _ => Err(MarkdownError {
                offset,
                problem: Problem::DanglingBackslash,
            }),
        }
    }

    /// Opens `entity`, or closes it when it is the innermost open entity.
    fn toggle(
        &mut self,
        entity: Entity,
        offset: usize,
        marker_len: usize,
    ) -> Result<(), MarkdownError> {
        if self.is_open(entity) {
            self.close(entity, offset)?;
        } else {
            self.open.push((entity, offset));
        }
        self.position += marker_len;
        Ok(())
    }

    fn close(&mut self, entity: Entity, offset: usize) -> Result<(), MarkdownError> {
        match self.open.last() {
            Some(&(innermost, _)) if innermost == entity => {
                self.open.pop();
                Ok(())
            }
            Some(&(innermost, _)) => Err(MarkdownError {
                offset,
                problem: Problem::Misnested {
                    closing: entity,
                    open: innermost,
                },
            }),
            None => unreachable!("close is called only for an open entity"),
        }
    }

    /// Reads `` `code` `` starting at the backtick at `start`.
    fn code(&mut self, start: usize) -> Result<(), MarkdownError> {
        self.position += 1;
        let content = self.literal_until(start, Entity::Code, '`', |parser, _| {
            parser.position += 1;
            Ok(())
        })?;
        self.plain.push_str(&content);
        Ok(())
    }

    /// Reads a ```` ```pre``` ```` block starting at the backticks at `start`.
    fn pre(&mut self, start: usize) -> Result<(), MarkdownError> {
        self.position += 3;
        let content = self.literal_until(start, Entity::Pre, '`', |parser, offset| {
            if parser.text[offset..].starts_with("```") {
                parser.position += 3;
                Ok(())
            } else {
                Err(MarkdownError {
                    offset,
                    problem: Problem::Unescaped('`'),
                })
            }
        })?;

        // The first line names the language when more lines follow.
        let visible = match content.split_once('\n') {
            Some((_language, code)) => code,
            None => content.as_str(),
        };
        self.plain.push_str(visible);
        Ok(())
    }

    /// Handles the `]` at `offset` that closes a link text, then reads the
    /// `(url)` that must follow.
    fn link_end(&mut self, offset: usize) -> Result<(), MarkdownError> {
        self.close(Entity::LinkText, offset)?;
        if !self.next_is('(') {
            return Err(MarkdownError {
                offset,
                problem: Problem::LinkWithoutUrl,
            });
        }
        let url_start = offset + 1;
        self.position += 2;
        self.literal_until(url_start, Entity::LinkUrl, ')', |parser, _| {
            parser.position += 1;
            Ok(())
        })?;
        Ok(())
    }

    /// Collects literal text up to an unescaped `terminator`, resolving
    /// escapes. At the first unescaped terminator, `at_terminator` either
    /// moves past the closing marker or returns why the text is invalid.
    fn literal_until(
        &mut self,
        start: usize,
        entity: Entity,
        terminator: char,
        at_terminator: impl Fn(&mut Self, usize) -> Result<(), MarkdownError>,
    ) -> Result<String, MarkdownError> {
        let mut content = String::new();
        while let Some((offset, character)) = self.current() {
            if character == '\\' {
                content.push(self.escaped_character(offset)?);
                self.position += 2;
            } else if character == terminator {
                at_terminator(self, offset)?;
                return Ok(content);
            } else {
                content.push(character);
                self.position += 1;
            }
        }
        Err(MarkdownError {
            offset: start,
            problem: Problem::Unclosed(entity),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TITLE: &str = "build-7 (retry) [v2.1]_final!";

    fn problem(text: &str) -> MarkdownError {
        match check(text) {
            Ok(plain) => panic!("{text:?} was accepted as {plain:?}, expected an error"),
            Err(error) => error,
        }
    }

    #[test]
    fn escaped_title_is_valid() {
        let escaped = escape(TITLE);

        assert_eq!(escaped, r"build\-7 \(retry\) \[v2\.1\]\_final\!");
        assert_eq!(check(&escaped), Ok(TITLE.to_string()));
    }

    #[test]
    fn unescaped_title_is_rejected_at_hyphen() {
        let error = problem(TITLE);

        assert_eq!(error.problem, Problem::Unescaped('-'));
        assert_eq!(error.offset, 5);
    }

    #[test]
    fn escaped_title_inside_bold_is_valid() {
        let text = format!("*Stale:* {}", escape(TITLE));

        assert_eq!(check(&text), Ok(format!("Stale: {TITLE}")));
    }

    #[test]
    fn each_reserved_character_needs_escape() {
        for &character in RESERVED {
            let text = format!("a {character} b");
            let escaped = format!("a \\{character} b");

            let error = match check(&text) {
                // `*`, `_`, `~`, `` ` `` and `[` alone open an entity that
                // never closes, which is an error at the same offset.
                Err(error) => error,
                Ok(plain) => panic!("unescaped {character:?} was accepted as {plain:?}"),
            };
            assert_eq!(
                error.offset, 2,
                "offset for unescaped {character:?}: {error}"
            );
            assert_eq!(
                check(&escaped),
                Ok(format!("a {character} b")),
                "escaped {character:?}"
            );
        }
    }

    #[test]
    fn escape_round_trips_every_reserved_character() {
        let text = "_*[]()~`>#+-=|{}.!\\ and ᏣᎳᎩ 🔥";

        assert_eq!(check(&escape(text)), Ok(text.to_string()));
    }

    #[test]
    fn balanced_entities_are_valid() {
        let cases = [
            ("*bold*", "bold"),
            ("_italic_", "italic"),
            ("__underline__", "underline"),
            ("~strike~", "strike"),
            ("||spoiler||", "spoiler"),
            ("`code`", "code"),
            ("```\npre\n```", "pre\n"),
            ("```rust\nlet x = 1;\n```", "let x = 1;\n"),
            ("[text](https://example.invalid/a)", "text"),
            (
                "*bold _italic bold ~strike~ \\*_ bold*",
                "bold italic bold strike * bold",
            ),
            ("[*bold link*](https://example.invalid)", "bold link"),
            ("**", ""),
        ];
        for (text, plain) in cases {
            assert_eq!(check(text), Ok(plain.to_string()), "{text:?}");
        }
    }

    #[test]
    fn code_needs_only_backtick_and_backslash_escaped() {
        assert_eq!(
            check("`a.b-c (d) [e]! *f*`"),
            Ok("a.b-c (d) [e]! *f*".to_string())
        );
        assert_eq!(check(r"`a\`b\\c`"), Ok(r"a`b\c".to_string()));
        assert_eq!(
            check(&format!("`{}`", escape_code(r"x`y\z"))),
            Ok(r"x`y\z".to_string())
        );
    }

    #[test]
    fn code_inside_other_entities_is_rejected() {
        let cases = [
            ("*a `b` c*", Entity::Code, Entity::Bold, 3),
            ("_a ```b``` c_", Entity::Pre, Entity::Italic, 3),
            (
                "[a `b`](https://example.invalid)",
                Entity::Code,
                Entity::LinkText,
                3,
            ),
            (
                "[a [b](https://example.invalid)](https://example.invalid)",
                Entity::LinkText,
                Entity::LinkText,
                3,
            ),
        ];
        for (text, inner, outer, offset) in cases {
            let error = problem(text);
            assert_eq!(
                error.problem,
                Problem::Forbidden { inner, outer },
                "{text:?}"
            );
            assert_eq!(error.offset, offset, "{text:?}");
        }
    }

    #[test]
    fn pre_rejects_single_unescaped_backtick() {
        let error = problem("```\na ` b\n```");

        assert_eq!(error.problem, Problem::Unescaped('`'));
        assert_eq!(error.offset, 6);
    }

    #[test]
    fn link_url_needs_parenthesis_escaped() {
        let url = "https://example.invalid/a_(b)";
        let text = format!("[x]({})", escape_link_url(url));

        assert_eq!(check(&text), Ok("x".to_string()));
        assert_eq!(
            problem("[x](https://example.invalid/a_(b))").problem,
            Problem::Unescaped(')')
        );
    }

    #[test]
    fn link_text_without_url_is_rejected() {
        let error = problem("[x] y");

        assert_eq!(error.problem, Problem::LinkWithoutUrl);
        assert_eq!(error.offset, 2);
    }

    #[test]
    fn closing_bracket_alone_is_rejected() {
        assert_eq!(problem("a ] b").problem, Problem::Unescaped(']'));
    }

    #[test]
    fn unclosed_entities_are_rejected() {
        let cases = [
            ("x *bold", Entity::Bold, 2),
            ("x _italic", Entity::Italic, 2),
            ("x __under", Entity::Underline, 2),
            ("x ~strike", Entity::Strikethrough, 2),
            ("x ||spoil", Entity::Spoiler, 2),
            ("x `code", Entity::Code, 2),
            ("x ```pre", Entity::Pre, 2),
            ("x [text", Entity::LinkText, 2),
            ("x [text](url", Entity::LinkUrl, 8),
            (r"x `code\`", Entity::Code, 2),
        ];
        for (text, entity, offset) in cases {
            let error = problem(text);
            assert_eq!(error.problem, Problem::Unclosed(entity), "{text:?}");
            assert_eq!(error.offset, offset, "{text:?}");
        }
    }

    #[test]
    fn crossed_entities_are_rejected() {
        let error = problem("*bold _italic* rest_");

        assert_eq!(
            error.problem,
            Problem::Misnested {
                closing: Entity::Bold,
                open: Entity::Italic
            }
        );
        assert_eq!(error.offset, 13);
    }

    #[test]
    fn triple_underscore_reads_underline_first() {
        let underline_inside_italic = check("_a __b___");
        let italic_inside_underline = check("__a _b___");
        let separated = check("__a _b_\r__");

        // `___` is `__` then `_`, which closes underline before italic.
        assert_eq!(underline_inside_italic, Ok("a b".to_string()));
        assert_eq!(
            italic_inside_underline,
            Err(MarkdownError {
                offset: 6,
                problem: Problem::Misnested {
                    closing: Entity::Underline,
                    open: Entity::Italic
                },
            })
        );
        assert_eq!(separated, Ok("a b\r".to_string()));
    }

    #[test]
    fn single_pipe_is_rejected() {
        assert_eq!(problem("a | b").problem, Problem::Unescaped('|'));
    }

    #[test]
    fn quote_marker_only_at_line_start() {
        assert_eq!(check(">quoted\n>more"), Ok("quoted\nmore".to_string()));
        assert_eq!(problem("a > b").problem, Problem::Unescaped('>'));
    }

    #[test]
    fn dangling_backslash_is_rejected() {
        let at_end = problem("ends with \\");
        let before_non_ascii = problem("\\Ꮳ");

        assert_eq!(at_end.problem, Problem::DanglingBackslash);
        assert_eq!(at_end.offset, 10);
        assert_eq!(before_non_ascii.problem, Problem::DanglingBackslash);
    }

    #[test]
    fn offsets_count_utf8_bytes() {
        // Each syllable is 3 bytes and the emoji 4.
        let error = problem("ᏣᎳᎩ 🔥.");

        assert_eq!(error.problem, Problem::Unescaped('.'));
        assert_eq!(error.offset, 14);
    }

    #[test]
    fn error_message_names_character_and_offset() {
        let message = problem("v2.1").to_string();

        assert!(message.contains("'.'"), "{message}");
        assert!(message.contains("byte offset 2"), "{message}");
    }
}
