//! The secrets file: `KEY=VALUE` lines as the federation writes them for
//! systemd's `EnvironmentFile=`.
//!
//! Blank lines and lines starting with `#` are skipped. A line is split at
//! its first `=`, and the key and value are trimmed. A leading `export ` is
//! accepted, and a value wrapped in matching single or double quotes is
//! unwrapped. An error names the file and the line number, never the value.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// A secrets file that could not be read or has an invalid line.
#[derive(Debug, Error)]
pub enum SecretsError {
    /// The file could not be read.
    #[error("cannot read secrets file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not `KEY=VALUE`.
    #[error("secrets file {}, line {line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// Line number, starting at 1.
        line: usize,
        /// What is wrong, without the line's value.
        reason: &'static str,
    },
}

/// Reads a secrets file into `(key, value)` pairs in file order.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, SecretsError> {
    let bytes = std::fs::read(path).map_err(|source| SecretsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes).map_err(|(line, reason)| SecretsError::Line {
        path: path.to_path_buf(),
        line,
        reason,
    })
}

/// Parses secrets-file text; an error is the line number and the reason.
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, String)>, (usize, &'static str)> {
    let mut pairs = Vec::new();
    for (index, raw) in bytes.split(|&byte| byte == b'\n').enumerate() {
        let line_number = index + 1;
        let line = std::str::from_utf8(raw)
            .map_err(|_| (line_number, "the line is not valid UTF-8"))?
            .trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }

        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err((line_number, "expected KEY=VALUE, but the line has no '='"));
        };
        let key = key.trim();
        if !is_variable_name(key) {
            return Err((
                line_number,
                "the key must be letters, digits and '_', not starting with a digit",
            ));
        }
        pairs.push((key.to_string(), unquote(value.trim()).to_string()));
    }
    Ok(pairs)
}

fn is_variable_name(key: &str) -> bool {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphabetic() || first == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_format_is_parsed() {
        let text = b"# Federation secrets\n\
            \n\
            CHEROKEE_DB_PASS = s3cr=t\n\
            export TELEGRAM_BOT_TOKEN=\"123:abc\"\n\
            TELEGRAM_CHIEF_CHAT_ID='42'\n\
            EMPTY=\r\n";
        let pairs = parse(text).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("CHEROKEE_DB_PASS".to_string(), "s3cr=t".to_string()),
                ("TELEGRAM_BOT_TOKEN".to_string(), "123:abc".to_string()),
                ("TELEGRAM_CHIEF_CHAT_ID".to_string(), "42".to_string()),
                ("EMPTY".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn line_without_equals_is_reported_by_number() {
        let error = parse(b"A=1\nhunter2\n").unwrap_err();
        assert_eq!(error.0, 2);
        assert!(!error.1.contains("hunter2"));
    }

    #[test]
    fn invalid_key_is_reported() {
        assert_eq!(parse(b"1A=x").unwrap_err().0, 1);
        assert_eq!(parse(b"MY-KEY=x").unwrap_err().0, 1);
    }

    #[test]
    fn invalid_utf8_is_reported_by_number() {
        assert_eq!(
            parse(b"A=1\nB=\xff\n").unwrap_err(),
            (2, "the line is not valid UTF-8")
        );
    }

    #[test]
    fn lone_quote_is_kept() {
        let pairs = parse(b"A=\"").unwrap();
        assert_eq!(pairs[0].1, "\"");
    }
}
