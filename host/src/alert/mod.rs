//! Alerts to the Chief: the message text and its delivery.
//!
//! [`AlertSink`] is where a finished message goes: Telegram, standard
//! output in dry-run mode, or nowhere when Telegram is not configured (the
//! message is then only logged). Long messages go out as numbered parts.

pub mod message;
pub mod telegram;

use telegram::{split_message, SendError, TelegramClient, MAX_MESSAGE_UNITS};

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

/// A message whose delivery stopped part-way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialDelivery {
    /// Parts Telegram accepted, from the first.
    pub delivered: usize,
    /// Why the next part was not delivered.
    pub error: SendError,
}

impl AlertSink {
    /// Splits a message into parts that fit Telegram's limit.
    pub fn parts(message: &str) -> Vec<String> {
        split_message(message, MAX_MESSAGE_UNITS)
    }

    /// Delivers message parts in order, starting at `first`. Returns the
    /// number of parts delivered in total.
    pub async fn deliver(&self, parts: &[String], first: usize) -> Result<usize, PartialDelivery> {
        match self {
            AlertSink::Telegram(client) => {
                for (index, part) in parts.iter().enumerate().skip(first) {
                    if let Err(error) = client.send(part).await {
                        return Err(PartialDelivery { delivered: index, error });
                    }
                }
                Ok(parts.len())
            }
            AlertSink::DryRun | AlertSink::Disabled(_) => Ok(parts.len()),
        }
    }

    /// True when messages really leave the process.
    pub fn sends(&self) -> bool {
        matches!(self, AlertSink::Telegram(_))
    }
}
