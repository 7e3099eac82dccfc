//! Alerts to the Chief: the message text and its delivery.
//!
//! [`AlertSink`] is where a finished message goes: Telegram, standard
//! output in dry-run mode, or nowhere when Telegram is not configured (the
//! message is then only logged). Long messages go out as numbered parts.

pub mod message;
pub mod state;
pub mod telegram;

use telegram::{split_message, TelegramClient, MAX_MESSAGE_UNITS};

/// Where alert messages go.
#[derive(Clone)]
pub enum AlertSink {
    /// The Telegram Bot API.
    Telegram(TelegramClient),
    /// Nowhere, for `--dry-run`: the daemon prints the message instead.
    DryRun,
    /// Nowhere; the reason is why Telegram is not configured.
    Disabled(String),
}

impl AlertSink {
    /// Splits a message into parts that fit Telegram's limit.
    pub fn parts(message: &str) -> Vec<String> {
        split_message(message, MAX_MESSAGE_UNITS)
    }

    /// True when messages really leave the process.
    pub fn sends(&self) -> bool {
        matches!(self, AlertSink::Telegram(_))
    }
}
