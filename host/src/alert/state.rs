//! What the Chief has been told, and what to tell next.
//!
//! [`AlertState`] remembers the basin signals that are active and when each
//! was last alerted, the detectors that keep failing, the messages not yet
//! delivered, and the thermal records not yet written. [`AlertState::plan`]
//! turns one cycle into messages:
//!
//! - a basin alert when a signal is new, when its severity rose above the
//!   value last alerted, or when the repeat interval has passed since the
//!   last alert (zero repeats it every cycle);
//! - a short resolved message when alerted signals clear and nothing else
//!   is alerted (a detector that failed is not a signal that cleared);
//! - a detector-health message when a detector has failed `blind_after`
//!   cycles in a row (once), and when it runs again.
//!
//! The state is saved after every change, so none of this is lost or sent
//! twice across a restart or a change of leader.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::message::{self, BlindSpot};
use crate::config::AlertSettings;
use crate::detector::FindingRecord;
use crate::thermal::ThermalRecord;

/// Most messages kept for delivery; past it the oldest is dropped with an
/// error line, so a long Telegram outage cannot grow the state without end.
pub const MAX_OUTBOX: usize = 100;

/// Most thermal records kept for a later write.
pub const MAX_PENDING_THERMAL: usize = 1_000;

/// A basin signal that is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveSignal {
    /// Plugin that reports it.
    pub plugin: String,
    /// Signal id.
    pub signal: String,
    /// The latest summary.
    pub summary: String,
    /// The latest severity.
    pub severity: f64,
    /// Severity when it was last alerted.
    pub alerted_severity: f64,
    /// When it was first seen in this run of the signal.
    pub first_seen: DateTime<Utc>,
    /// True once a message with this signal was queued for delivery.
    #[serde(default)]
    pub alerted: bool,
}

/// A detector that failed in consecutive cycles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureStreak {
    /// Failed cycles in a row.
    pub failures: u32,
    /// The latest failure.
    pub reason: String,
    /// True once it was reported as a blind spot.
    pub reported: bool,
}

/// Kind of an outgoing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageKind {
    /// Basin signals.
    Basin,
    /// Alerted signals cleared.
    Resolved,
    /// Detectors failing or running again.
    DetectorHealth,
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MessageKind::Basin => "basin",
            MessageKind::Resolved => "resolved",
            MessageKind::DetectorHealth => "detector-health",
        })
    }
}

/// A message waiting for delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Number, increasing.
    pub id: u64,
    /// What it is about.
    pub kind: MessageKind,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Parts, each within Telegram's length limit.
    pub parts: Vec<String>,
    /// Parts Telegram accepted, from the first.
    pub delivered: usize,
    /// Delivery attempts so far (cycles in which delivery was tried).
    pub attempts: u32,
}

/// Everything the daemon must remember between cycles and restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// Increases with every saved change.
    pub generation: u64,
    /// When this copy was saved. Of two copies the later one wins, so a
    /// state file left from a daemon's earlier turn as leader never
    /// replaces the database's newer copy.
    #[serde(default)]
    pub saved_at: Option<DateTime<Utc>>,
    /// Active basin signals by `plugin/signal`.
    pub active: BTreeMap<String, ActiveSignal>,
    /// When the last basin alert was created.
    pub last_basin_alert: Option<DateTime<Utc>>,
    /// Detectors failing in a row, by plugin name.
    pub streaks: BTreeMap<String, FailureStreak>,
    /// Messages not yet delivered, oldest first.
    pub outbox: Vec<OutboxMessage>,
    /// Thermal records not yet written, oldest first.
    pub pending_thermal: Vec<ThermalRecord>,
    /// Number of the next message.
    pub next_message_id: u64,
}

/// One detector's outcome in a cycle, as the planner needs it.
#[derive(Debug, Clone)]
pub enum DetectorOutcome {
    /// It ran; these are its basin findings.
    Ran(Vec<FindingRecord>),
    /// It failed, for this reason.
    Failed(String),
}

/// What a cycle changed, for the log.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// Signals seen for the first time.
    pub new: Vec<String>,
    /// Signals whose severity rose above the alerted value.
    pub worse: Vec<String>,
    /// Alerted signals that cleared.
    pub cleared: Vec<String>,
    /// Detectors newly reported as blind spots.
    pub blind: Vec<String>,
    /// Detectors running again after being reported.
    pub recovered: Vec<String>,
    /// Kinds of the messages added to the outbox.
    pub messages: Vec<MessageKind>,
    /// Kinds of the messages that were due but could not be queued because
    /// nothing can deliver them (Telegram not configured).
    pub undelivered: Vec<MessageKind>,
}

fn key(plugin: &str, signal: &str) -> String {
    format!("{plugin}/{signal}")
}

impl AlertState {
    /// Applies one cycle: updates the active signals and failure streaks,
    /// and adds the messages to send to the outbox. `outcomes` holds every
    /// detector that was loaded this cycle; signals of a detector that is
    /// no longer loaded are forgotten without a message. Without
    /// `deliverable`, due messages are only reported in the plan, and the
    /// signals stay unalerted, so the Chief hears of them once delivery is
    /// possible.
    pub fn plan(
        &mut self,
        outcomes: &BTreeMap<String, DetectorOutcome>,
        informational: &[FindingRecord],
        settings: &AlertSettings,
        now: DateTime<Utc>,
        deliverable: bool,
    ) -> Plan {
        let mut plan = Plan::default();
        self.update_streaks(outcomes, settings, &mut plan);

        // Current basin findings, by key.
        let mut current: BTreeMap<String, &FindingRecord> = BTreeMap::new();
        for outcome in outcomes.values() {
            if let DetectorOutcome::Ran(findings) = outcome {
                for finding in findings {
                    current.insert(key(&finding.plugin, &finding.signal), finding);
                }
            }
        }

        // Signals that cleared: their detector ran and did not report them.
        let keys: Vec<String> = self.active.keys().cloned().collect();
        for active_key in keys {
            let plugin = self.active[&active_key].plugin.clone();
            match outcomes.get(&plugin) {
                Some(DetectorOutcome::Ran(_)) if !current.contains_key(&active_key) => {
                    self.active.remove(&active_key);
                    plan.cleared.push(active_key);
                }
                Some(_) => {}
                None => {
                    tracing::info!(
                        signal = %active_key,
                        "active signal forgotten: its detector is no longer loaded"
                    );
                    self.active.remove(&active_key);
                }
            }
        }

        for (signal_key, finding) in &current {
            match self.active.get_mut(signal_key) {
                None => {
                    self.active.insert(
                        signal_key.clone(),
                        ActiveSignal {
                            plugin: finding.plugin.clone(),
                            signal: finding.signal.clone(),
                            summary: finding.summary.clone(),
                            severity: finding.severity,
                            alerted_severity: finding.severity,
                            first_seen: now,
                            alerted: false,
                        },
                    );
                    plan.new.push(signal_key.clone());
                }
                Some(active) => {
                    if finding.severity > active.alerted_severity {
                        plan.worse.push(signal_key.clone());
                    }
                    active.summary = finding.summary.clone();
                    active.severity = finding.severity;
                }
            }
        }

        let repeat_due = match self.last_basin_alert {
            None => true,
            Some(last) => {
                settings.repeat_interval.is_zero()
                    || (now - last).to_std().unwrap_or_default() >= settings.repeat_interval
            }
        };
        let unalerted: Vec<String> = self
            .active
            .iter()
            .filter(|(_, active)| !active.alerted)
            .map(|(key, _)| key.clone())
            .collect();
        let basin_due = !self.active.is_empty()
            && (!unalerted.is_empty() || !plan.worse.is_empty() || repeat_due);

        let blind = self.blind_spots(&plan.blind);
        if !deliverable {
            if basin_due {
                plan.undelivered.push(MessageKind::Basin);
            } else if !plan.cleared.is_empty() && settings.send_resolved {
                plan.undelivered.push(MessageKind::Resolved);
            } else if !blind.is_empty() || !plan.recovered.is_empty() {
                plan.undelivered.push(MessageKind::DetectorHealth);
            }
        } else if basin_due {
            let findings: Vec<FindingRecord> = current.values().map(|f| (*f).clone()).collect();
            let unreported = self.unreported_signals(&current);
            let cleared = if settings.send_resolved {
                plan.cleared.clone()
            } else {
                Vec::new()
            };
            let text = message::basin_alert(&message::BasinAlert {
                findings: &findings,
                new: &unalerted,
                worse: &plan.worse,
                unreported: &unreported,
                cleared: &cleared,
                informational,
                blind: &blind,
                recovered: &plan.recovered,
            });
            self.enqueue(MessageKind::Basin, &text, now, &mut plan);
            for active in self.active.values_mut() {
                active.alerted_severity = active.severity;
                active.alerted = true;
            }
            self.last_basin_alert = Some(now);
        } else if !plan.cleared.is_empty() && settings.send_resolved {
            let text =
                message::resolved_alert(&plan.cleared, informational, &blind, &plan.recovered);
            self.enqueue(MessageKind::Resolved, &text, now, &mut plan);
        } else if !blind.is_empty() || !plan.recovered.is_empty() {
            let text = message::detector_health_alert(&blind, &plan.recovered);
            self.enqueue(MessageKind::DetectorHealth, &text, now, &mut plan);
        }
        if self.active.is_empty() {
            self.last_basin_alert = None;
        }
        plan
    }

    fn update_streaks(
        &mut self,
        outcomes: &BTreeMap<String, DetectorOutcome>,
        settings: &AlertSettings,
        plan: &mut Plan,
    ) {
        self.streaks
            .retain(|plugin, _| outcomes.contains_key(plugin));
        for (plugin, outcome) in outcomes {
            match outcome {
                DetectorOutcome::Ran(_) => {
                    if let Some(streak) = self.streaks.remove(plugin) {
                        if streak.reported {
                            plan.recovered.push(plugin.clone());
                        }
                    }
                }
                DetectorOutcome::Failed(reason) => {
                    let streak = self.streaks.entry(plugin.clone()).or_insert(FailureStreak {
                        failures: 0,
                        reason: String::new(),
                        reported: false,
                    });
                    streak.failures += 1;
                    streak.reason = reason.clone();
                    if streak.failures >= settings.blind_after && !streak.reported {
                        streak.reported = true;
                        plan.blind.push(plugin.clone());
                    }
                }
            }
        }
    }

    fn blind_spots(&self, plugins: &[String]) -> Vec<BlindSpot> {
        plugins
            .iter()
            .filter_map(|plugin| {
                self.streaks.get(plugin).map(|streak| BlindSpot {
                    plugin: plugin.clone(),
                    failures: streak.failures,
                    reason: streak.reason.clone(),
                })
            })
            .collect()
    }

    /// Active signals whose detector failed this cycle, so they are not in
    /// the current findings; the alert lists them with their last summary.
    fn unreported_signals(&self, current: &BTreeMap<String, &FindingRecord>) -> Vec<String> {
        self.active
            .iter()
            .filter(|(key, _)| !current.contains_key(*key))
            .map(|(key, active)| {
                format!("{key}: {} (its detector failed this cycle)", active.summary)
            })
            .collect()
    }

    fn enqueue(&mut self, kind: MessageKind, text: &str, now: DateTime<Utc>, plan: &mut Plan) {
        self.next_message_id += 1;
        self.outbox.push(OutboxMessage {
            id: self.next_message_id,
            kind,
            created_at: now,
            parts: super::AlertSink::parts(text),
            delivered: 0,
            attempts: 0,
        });
        plan.messages.push(kind);
        while self.outbox.len() > MAX_OUTBOX {
            let dropped = self.outbox.remove(0);
            tracing::error!(
                alert_id = dropped.id,
                kind = %dropped.kind,
                created_at = %dropped.created_at,
                "undelivered alert dropped: more than 100 messages are waiting for Telegram"
            );
        }
    }

    /// Keeps a thermal record for a later write.
    pub fn keep_thermal(&mut self, record: ThermalRecord) {
        if self
            .pending_thermal
            .iter()
            .any(|pending| pending.hash == record.hash)
        {
            return;
        }
        self.pending_thermal.push(record);
        while self.pending_thermal.len() > MAX_PENDING_THERMAL {
            let dropped = self.pending_thermal.remove(0);
            tracing::error!(
                memory_hash = %dropped.hash,
                "unwritten thermal record dropped: more than 1000 are waiting for the database"
            );
        }
    }

    /// Plugins with an active signal or a failure streak, for tests and
    /// the log.
    pub fn tracked_plugins(&self) -> BTreeSet<String> {
        let mut plugins: BTreeSet<String> =
            self.active.values().map(|a| a.plugin.clone()).collect();
        plugins.extend(self.streaks.keys().cloned());
        plugins
    }
}

#[cfg(test)]
mod tests;
