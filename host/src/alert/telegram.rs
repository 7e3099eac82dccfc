//! Delivery to the Telegram Bot API.
//!
//! `sendMessage` is retried with exponential backoff and jitter on network
//! errors, timeouts and 5xx answers; a 429 answer waits for the
//! `retry_after` the API asks for. All waiting within one delivery is
//! bounded. Markup that Telegram cannot parse is resent once as plain text,
//! so formatting never costs an alert. The bot token is part of every
//! request URL, so no URL ever reaches a log line or an error.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::config::TelegramConfig;

/// Telegram's limit on one message, in UTF-16 code units.
pub const MAX_MESSAGE_UNITS: usize = 4096;

/// First backoff delay; each retry doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Maximum backoff delay between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Reason a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Telegram could not be reached or kept failing; trying again later may
    /// succeed.
    Unavailable(String),
    /// Telegram rejected the request in a way retries will not fix, such as
    /// a wrong token or chat id.
    Rejected {
        /// HTTP status.
        status: u16,
        /// Telegram's description.
        description: String,
    },
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Unavailable(reason) => write!(f, "Telegram unavailable: {reason}"),
            SendError::Rejected {
                status,
                description,
            } => {
                write!(
                    f,
                    "Telegram rejected the message (HTTP {status}): {description}"
                )?;
                if *status == 401 || *status == 404 {
                    write!(f, "; check TELEGRAM_BOT_TOKEN")?;
                } else if description.contains("chat not found") {
                    write!(f, "; check TELEGRAM_CHIEF_CHAT_ID")?;
                }
                Ok(())
            }
        }
    }
}

/// Form in which a message was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// With MarkdownV2 formatting.
    Formatted,
    /// As plain text, after Telegram rejected the markup.
    PlainText,
    /// Shortened, after Telegram found it too long.
    Condensed,
}

#[derive(Debug, Deserialize)]
struct ApiAnswer {
    ok: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ApiParameters>,
}

#[derive(Debug, Deserialize)]
struct ApiParameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// The result of one HTTP attempt.
enum Attempt {
    Accepted,
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    BadMarkup(String),
    TooLong(String),
    Rejected {
        status: u16,
        description: String,
    },
}

/// The line that replaces the rest of a message Telegram found too long.
const CONDENSED_NOTE: &str = "… (condensed: the full detail is in thermal memory)";

/// A client of the Bot API for one bot and one chat.
#[derive(Clone)]
pub struct TelegramClient {
    http: reqwest::Client,
    config: TelegramConfig,
    max_attempts: u32,
    /// Maximum total wait between attempts within one delivery.
    wait_budget: Duration,
}

impl TelegramClient {
    /// Creates a client. `max_attempts` bounds the attempts per message
    /// part within one delivery.
    pub fn new(config: TelegramConfig, max_attempts: u32) -> anyhow::Result<TelegramClient> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tpm-autonomic/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                anyhow::anyhow!("cannot create the HTTP client: {}", error.without_url())
            })?;
        Ok(TelegramClient {
            http,
            config,
            max_attempts,
            wait_budget: Duration::from_secs(60),
        })
    }

    /// Sets the longest total wait between attempts within one delivery.
    pub fn with_wait_budget(mut self, budget: Duration) -> TelegramClient {
        self.wait_budget = budget;
        self
    }

    /// Sends one message part (at most [`MAX_MESSAGE_UNITS`]), retrying as
    /// described in the module documentation.
    pub async fn send(&self, text: &str) -> Result<Delivered, SendError> {
        let mut waited = Duration::ZERO;
        let mut backoff = FIRST_BACKOFF;
        let mut plain = false;
        let mut condensed: Option<String> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self
                .attempt(condensed.as_deref().unwrap_or(text), plain)
                .await;
            let (reason, wait) = match outcome {
                Attempt::Accepted if condensed.is_some() => return Ok(Delivered::Condensed),
                Attempt::Accepted => {
                    return Ok(if plain {
                        Delivered::PlainText
                    } else {
                        Delivered::Formatted
                    })
                }
                Attempt::TooLong(description) if condensed.is_none() => {
                    tracing::warn!(
                        error = %description,
                        "Telegram found the alert too long; resending it condensed"
                    );
                    condensed = Some(condense(text));
                    attempt -= 1;
                    continue;
                }
                Attempt::TooLong(description) => {
                    return Err(SendError::Rejected {
                        status: 400,
                        description,
                    })
                }
                Attempt::BadMarkup(description) if !plain => {
                    tracing::warn!(
                        error = %description,
                        "Telegram rejected the alert's formatting; resending it as plain text"
                    );
                    plain = true;
                    attempt -= 1;
                    continue;
                }
                Attempt::BadMarkup(description) => {
                    return Err(SendError::Rejected {
                        status: 400,
                        description,
                    })
                }
                Attempt::Rejected {
                    status,
                    description,
                } => {
                    return Err(SendError::Rejected {
                        status,
                        description,
                    })
                }
                Attempt::Retry { reason, wait } => (reason, wait),
            };

            if attempt >= self.max_attempts {
                return Err(SendError::Unavailable(format!(
                    "{reason} (gave up after {attempt} attempts; setting alerts.max_attempts)"
                )));
            }
            let wait = match wait {
                Some(retry_after) => retry_after,
                None => {
                    let delay = with_jitter(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    delay
                }
            };
            if waited + wait > self.wait_budget {
                return Err(SendError::Unavailable(format!(
                    "{reason} (the next attempt would wait {} s, past this cycle's budget)",
                    wait.as_secs()
                )));
            }
            tracing::warn!(
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %reason,
                "Telegram delivery failed; retrying"
            );
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    async fn attempt(&self, text: &str, plain: bool) -> Attempt {
        let url = format!(
            "{}/bot{}/sendMessage",
            self.config.api_base,
            self.config.token.expose()
        );
        let body = if plain {
            let text = super::message::to_plain_text(text);
            json!({ "chat_id": self.config.chat_id, "text": text, "link_preview_options": { "is_disabled": true } })
        } else {
            json!({
                "chat_id": self.config.chat_id,
                "text": text,
                "parse_mode": "MarkdownV2",
                "link_preview_options": { "is_disabled": true },
            })
        };
        let response = match self.http.post(&url).json(&body).send().await {
            Ok(response) => response,
            Err(error) => {
                // The error's URL contains the token.
                let error = error.without_url();
                let reason = if error.is_timeout() {
                    format!(
                        "no answer within {} s (setting telegram.timeout)",
                        self.config.timeout.as_secs()
                    )
                } else {
                    crate::logging::error_chain(&error)
                };
                return Attempt::Retry { reason, wait: None };
            }
        };

        let status = response.status().as_u16();
        let answer: Option<ApiAnswer> = response.json().await.ok();
        let description = answer
            .as_ref()
            .and_then(|a| a.description.clone())
            .unwrap_or_else(|| "no description".to_string());
        match status {
            200..=299 if answer.as_ref().is_some_and(|a| a.ok) => Attempt::Accepted,
            200..=299 => Attempt::Retry {
                reason: "an answer that is not ok".into(),
                wait: None,
            },
            429 => {
                let retry_after = answer
                    .as_ref()
                    .and_then(|a| a.parameters.as_ref())
                    .and_then(|p| p.retry_after)
                    .unwrap_or(5);
                Attempt::Retry {
                    reason: format!("rate limited (HTTP 429): {description}"),
                    wait: Some(Duration::from_secs(retry_after)),
                }
            }
            400 if description.contains("can't parse entities") => Attempt::BadMarkup(description),
            400 if description.contains("too long") => Attempt::TooLong(description),
            500..=599 => Attempt::Retry {
                reason: format!("HTTP {status}: {description}"),
                wait: None,
            },
            _ => Attempt::Rejected {
                status,
                description,
            },
        }
    }
}

/// Shortens a message to half of Telegram's limit, cut at a line boundary,
/// and says where the rest is.
fn condense(text: &str) -> String {
    let budget = MAX_MESSAGE_UNITS / 2;
    let mut kept = String::new();
    for line in text.lines() {
        if utf16_len(&kept) + utf16_len(line) + 1 > budget {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    if kept.is_empty() {
        kept = text.chars().take(budget / 2).collect();
        kept.push('\n');
    }
    // The text is still MarkdownV2 here; a plain-text send removes the
    // escapes from the whole of it.
    kept + &super::message::escape(CONDENSED_NOTE)
}

fn with_jitter(delay: Duration) -> Duration {
    // Up to a quarter more, so several daemons do not retry in step.
    let extra = rand::random::<f64>() * 0.25;
    delay.mul_f64(1.0 + extra)
}

/// Length of a text as Telegram counts it, in UTF-16 code units.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Splits a MarkdownV2 message into parts that each fit in
/// [`MAX_MESSAGE_UNITS`], at line boundaries, numbered `(1/3)` and so on.
/// A message that fits is returned whole. A single line longer than a part
/// is cut between characters, never inside an escape sequence.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    if utf16_len(text) <= limit {
        return vec![text.to_string()];
    }
    // Room for the part number, such as "\(12/34\)\n".
    let budget = limit.saturating_sub(16).max(1);
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.split('\n') {
        for piece in cut_line(line, budget) {
            let needed = utf16_len(&piece) + usize::from(!current.is_empty());
            if !current.is_empty() && utf16_len(&current) + needed > budget {
                parts.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(&piece);
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    let total = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(index, part)| format!("\\({}/{}\\)\n{}", index + 1, total, part))
        .collect()
}

fn cut_line(line: &str, budget: usize) -> Vec<String> {
    if utf16_len(line) <= budget {
        return vec![line.to_string()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut units = 0;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        // Keep an escape and the character it escapes together.
        let mut token = String::from(c);
        if c == '\\' {
            if let Some(next) = chars.next() {
                token.push(next);
            }
        }
        let token_units = utf16_len(&token);
        if units + token_units > budget && !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
            units = 0;
        }
        current.push_str(&token);
        units += token_units;
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condensed_message_fits_with_note() {
        let text = vec!["line with words"; 1000].join("\n");
        let short = condense(&text);
        assert!(utf16_len(&short) <= MAX_MESSAGE_UNITS);
        assert!(short.ends_with("thermal memory\\)"), "{short}");
    }

    #[test]
    fn short_message_is_not_split() {
        assert_eq!(split_message("hello", 4096), vec!["hello".to_string()]);
    }

    #[test]
    fn long_message_splits_at_lines_and_numbers_parts() {
        let line = "x".repeat(1000);
        let text = vec![line.as_str(); 10].join("\n");
        let parts = split_message(&text, 4096);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].starts_with("\\(1/3\\)\n"));
        for part in &parts {
            assert!(utf16_len(part) <= 4096, "part of {} units", utf16_len(part));
        }
        let rejoined: usize = parts.iter().map(|p| p.matches('x').count()).sum();
        assert_eq!(rejoined, 10_000);
    }

    #[test]
    fn utf16_counts_astral_characters_twice() {
        assert_eq!(utf16_len("🔥"), 2);
        assert_eq!(utf16_len("é"), 1);
    }

    #[test]
    fn overlong_line_is_cut_outside_escapes() {
        let line = "\\.".repeat(3000);
        let parts = split_message(&line, 4096);
        assert!(parts.len() >= 2);
        for part in &parts {
            let body = part.split_once('\n').unwrap().1;
            assert!(body.starts_with('\\'), "part starts inside an escape");
            assert_eq!(body.len() % 2, 0, "part ends inside an escape");
            assert!(utf16_len(part) <= 4096);
        }
    }
}
