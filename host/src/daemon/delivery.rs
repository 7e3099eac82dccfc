//! Delivery of the waiting messages, and what a dry run prints instead.
//!
//! Messages leave the outbox in order, part by part. The state is saved
//! after every part Telegram accepts, so a restart resumes after the last
//! accepted part instead of sending it again. A message that fails stays
//! first in line, and the messages behind it wait, so the Chief reads them
//! in the order they happened.

use std::time::Instant;

use super::Daemon;
use crate::alert::state::OutboxMessage;
use crate::alert::AlertSink;
use crate::db::HealthChange;
use crate::thermal::{self, ThermalRecord};

/// Messages and records that a dry run would have sent and written.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DryRunOutput {
    /// Alert messages, as they would have been sent.
    pub alerts: Vec<String>,
    /// Thermal records, as they would have been written.
    pub thermal_records: Vec<ThermalRecord>,
}

impl Daemon {
    /// Delivers the waiting messages, oldest first, until one fails.
    pub(super) async fn deliver_outbox(&mut self) {
        let started = Instant::now();
        loop {
            let Some(message) = self
                .state
                .as_ref()
                .and_then(|state| state.outbox.first().cloned())
            else {
                return;
            };
            if !self.deliver(message).await {
                return;
            }
            // One slow delivery must not hold up the next cycle.
            if started.elapsed() > self.config.interval {
                return;
            }
        }
    }

    /// Delivers one message from its first undelivered part. Returns true
    /// when it is delivered in full and removed from the outbox.
    async fn deliver(&mut self, message: OutboxMessage) -> bool {
        match &self.sink {
            AlertSink::Telegram(_) => {}
            AlertSink::DryRun => {
                self.print_message(&message);
                self.remove_from_outbox(message.id);
                return true;
            }
            AlertSink::Disabled(reason) => {
                tracing::warn!(
                    kind = %message.kind,
                    reason = %reason,
                    first_line = %message.parts.first().map(|p| first_line(p)).unwrap_or_default(),
                    "alert not sent: Telegram is not configured"
                );
                self.remove_from_outbox(message.id);
                return true;
            }
        }

        let AlertSink::Telegram(client) = self.sink.clone() else {
            unreachable!()
        };
        for (index, part) in message.parts.iter().enumerate().skip(message.delivered) {
            match client.send(part).await {
                Ok(_) => {
                    self.mark_delivered(message.id, index + 1);
                    // Saved before the next part, so an accepted part is
                    // never sent again after a restart.
                    self.save_state(true).await;
                }
                Err(error) => {
                    self.mark_attempt(message.id);
                    let waiting = self.state.as_ref().map_or(0, |state| state.outbox.len());
                    match self.telegram_health.record_down() {
                        HealthChange::WentDown => tracing::error!(
                            alert_id = message.id,
                            kind = %message.kind,
                            delivered_parts = index,
                            parts = message.parts.len(),
                            waiting,
                            error = %error,
                            "alert delivery failed; it is kept and retried next cycle"
                        ),
                        HealthChange::StillDown { failures } => tracing::error!(
                            failures,
                            waiting,
                            error = %error,
                            "alert delivery still failing"
                        ),
                        _ => {
                            tracing::debug!(error = %error, waiting, "alert delivery failed again")
                        }
                    }
                    self.save_state(true).await;
                    return false;
                }
            }
        }
        if let HealthChange::CameBack { failures, downtime } = self.telegram_health.record_up() {
            tracing::info!(
                failed_attempts = failures,
                downtime_s = downtime.as_secs(),
                "Telegram delivery works again"
            );
        }
        tracing::info!(
            alert_id = message.id,
            kind = %message.kind,
            parts = message.parts.len(),
            waited_s = (chrono::Utc::now() - message.created_at).num_seconds(),
            "alert sent"
        );
        self.remove_from_outbox(message.id);
        self.save_state(true).await;
        true
    }

    fn mark_delivered(&mut self, id: u64, delivered: usize) {
        if let Some(message) = self.outbox_message(id) {
            message.delivered = delivered;
        }
    }

    fn mark_attempt(&mut self, id: u64) {
        if let Some(message) = self.outbox_message(id) {
            message.attempts += 1;
        }
    }

    fn outbox_message(&mut self, id: u64) -> Option<&mut OutboxMessage> {
        self.state
            .as_mut()?
            .outbox
            .iter_mut()
            .find(|message| message.id == id)
    }

    fn remove_from_outbox(&mut self, id: u64) {
        if let Some(state) = self.state.as_mut() {
            state.outbox.retain(|message| message.id != id);
        }
    }

    fn print_message(&mut self, message: &OutboxMessage) {
        if let Some(output) = &mut self.dry_run_output {
            output.alerts.push(message.parts.join("\n"));
            return;
        }
        println!("----- Telegram alert (dry run: not sent) -----");
        for part in &message.parts {
            println!("{part}");
        }
        println!("----- end of alert -----");
    }

    pub(super) fn print_thermal(&mut self, record: &ThermalRecord) {
        if let Some(output) = &mut self.dry_run_output {
            output.thermal_records.push(record.clone());
            return;
        }
        println!("----- thermal memory record (dry run: not written) -----");
        println!("memory_hash:       {}", record.hash);
        println!("temperature_score: {}", thermal::TEMPERATURE);
        println!("sacred_pattern:    false");
        println!("original_content:  {}", record.content);
        println!(
            "metadata:          {}",
            serde_json::to_string(&record.metadata).unwrap_or_default()
        );
        println!("----- end of record -----");
    }
}

fn first_line(text: &str) -> String {
    super::super::alert::message::to_plain_text(text.lines().next().unwrap_or_default())
}
