//! The text of alert messages, in Telegram's MarkdownV2.
//!
//! Every piece of text that comes from a detector or the database is
//! escaped, so a ticket titled `build-7 (retry) [v2.1]_final!` arrives as
//! written instead of making Telegram reject the message.

use std::fmt::Write as _;

use crate::detector::{metric_text, FindingRecord};

/// Characters MarkdownV2 reserves outside code entities.
const RESERVED: &[char] = &[
    '_', '*', '[', ']', '(', ')', '~', '`', '>', '#', '+', '-', '=', '|', '{', '}', '.', '!', '\\',
];

/// Escapes text for MarkdownV2 outside entities.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if RESERVED.contains(&c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Escapes text for MarkdownV2 inside a `code` entity, where only the
/// backtick and the backslash are reserved.
pub fn escape_code(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if c == '`' || c == '\\' {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A detector that keeps failing, reported in the alert as a blind spot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlindSpot {
    /// Plugin name.
    pub plugin: String,
    /// Failed cycles in a row.
    pub failures: u32,
    /// The last failure.
    pub reason: String,
}

/// The parts of a basin alert.
#[derive(Debug, Clone, Copy)]
pub struct BasinAlert<'a> {
    /// This cycle's basin findings.
    pub findings: &'a [FindingRecord],
    /// Keys (`plugin/signal`) of the signals seen for the first time.
    pub new: &'a [String],
    /// Keys of the signals that got worse since they were last alerted.
    pub worse: &'a [String],
    /// Active signals whose detector failed this cycle, as text lines.
    pub unreported: &'a [String],
    /// Keys of alerted signals that cleared.
    pub cleared: &'a [String],
    /// Informational findings, such as the work state.
    pub informational: &'a [FindingRecord],
    /// Detectors newly reported as blind spots.
    pub blind: &'a [BlindSpot],
    /// Detectors running again.
    pub recovered: &'a [String],
}

/// Builds the alert for basin signals: each with its numbers and items,
/// new and worse ones marked, then blind spots, cleared signals and the
/// work state.
pub fn basin_alert(alert: &BasinAlert<'_>) -> String {
    let mut text = String::new();
    let count = alert.findings.len() + alert.unreported.len();
    let noun = if count == 1 {
        "basin signal"
    } else {
        "basin signals"
    };
    if alert.new.is_empty() && alert.worse.is_empty() {
        let _ = writeln!(text, "🔁 *TPM Autonomic: {count} {noun} still present*");
    } else {
        let _ = writeln!(text, "🔥 *TPM Autonomic: {count} {noun}*");
    }

    for finding in alert.findings {
        let signal_key = format!("{}/{}", finding.plugin, finding.signal);
        let marker = if alert.new.contains(&signal_key) {
            "🆕 "
        } else if alert.worse.contains(&signal_key) {
            "⬆️ "
        } else {
            ""
        };
        text.push('\n');
        let _ = writeln!(
            text,
            "{marker}*{}*: {}",
            escape(&finding.signal),
            escape(&finding.summary)
        );
        if !finding.metrics.is_empty() {
            let metrics: Vec<String> = finding
                .metrics
                .iter()
                .map(|(name, value)| format!("{} {}", escape(name), escape(&metric_text(value))))
                .collect();
            let _ = writeln!(text, "  {}", metrics.join(" · "));
        }
        for detail in &finding.details {
            let _ = writeln!(text, "  • {}", escape(detail));
        }
    }
    for line in alert.unreported {
        text.push('\n');
        let _ = writeln!(text, "⚠️ {}", escape(line));
    }

    push_detector_health(&mut text, alert.blind, alert.recovered);
    if !alert.cleared.is_empty() {
        let names: Vec<String> = alert
            .cleared
            .iter()
            .map(|key| escape(signal_name(key)))
            .collect();
        let _ = write!(text, "\n✅ Cleared: {}\n", names.join(", "));
    }
    push_informational(&mut text, alert.informational);
    text.trim_end().to_string()
}

fn push_detector_health(text: &mut String, blind: &[BlindSpot], recovered: &[String]) {
    if !blind.is_empty() {
        text.push('\n');
        let _ = writeln!(text, "*Blind spots*");
        for spot in blind {
            let _ = writeln!(
                text,
                "  • {} failed {} cycles in a row: {}",
                escape(&spot.plugin),
                spot.failures,
                escape(&spot.reason)
            );
        }
    }
    if !recovered.is_empty() {
        let names: Vec<String> = recovered.iter().map(|name| escape(name)).collect();
        text.push('\n');
        let _ = writeln!(text, "Detectors running again: {}", names.join(", "));
    }
}

fn push_informational(text: &mut String, informational: &[FindingRecord]) {
    for finding in informational {
        text.push('\n');
        let _ = writeln!(
            text,
            "_{}_: {}",
            escape(&finding.signal),
            escape(&finding.summary)
        );
    }
}

/// Shows a `plugin/signal` key as the signal alone when the plugin has the
/// signal's name, as the built-in detectors do.
pub fn signal_name(key: &str) -> &str {
    match key.split_once('/') {
        Some((plugin, signal)) if plugin == signal => signal,
        _ => key,
    }
}

/// Builds the short message sent when alerted basin signals clear.
pub fn resolved_alert(
    cleared: &[String],
    informational: &[FindingRecord],
    blind: &[BlindSpot],
    recovered: &[String],
) -> String {
    let names: Vec<String> = cleared.iter().map(|key| escape(signal_name(key))).collect();
    let mut text = format!(
        "✅ *TPM Autonomic: resolved*\n\nCleared: {}\n",
        names.join(", ")
    );
    push_detector_health(&mut text, blind, recovered);
    push_informational(&mut text, informational);
    text.trim_end().to_string()
}

/// Builds the message sent when detectors become blind spots or run again
/// while no basin is alerted.
pub fn detector_health_alert(blind: &[BlindSpot], recovered: &[String]) -> String {
    let mut text = String::from("⚠️ *TPM Autonomic: detector health*\n");
    push_detector_health(&mut text, blind, recovered);
    text.trim_end().to_string()
}

/// Removes MarkdownV2 markup from a message, for the plain-text retry
/// after Telegram rejected the markup.
pub fn to_plain_text(markdown: &str) -> String {
    let mut plain = String::with_capacity(markdown.len());
    let mut chars = markdown.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    plain.push(next);
                }
            }
            '*' | '_' | '`' | '~' => {}
            other => plain.push(other),
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(signal: &str, summary: &str, details: &[&str]) -> FindingRecord {
        let mut metrics = serde_json::Map::new();
        metrics.insert("failed_tasks".into(), 7.into());
        metrics.insert("threshold".into(), 5.into());
        FindingRecord {
            signal: signal.into(),
            basin: true,
            summary: summary.into(),
            severity: 7.0,
            metrics,
            details: details.iter().map(|d| d.to_string()).collect(),
            plugin: signal.into(),
        }
    }

    #[test]
    fn reserved_characters_are_escaped() {
        assert_eq!(
            escape("build-7 (retry) [v2.1]_final!"),
            "build\\-7 \\(retry\\) \\[v2\\.1\\]\\_final\\!"
        );
    }

    #[test]
    fn code_escaping_touches_only_backtick_and_backslash() {
        assert_eq!(escape_code("a`b\\c.d"), "a\\`b\\\\c.d");
    }

    #[test]
    fn alert_lists_each_signal_with_numbers() {
        let findings = [record(
            "dlq-depth",
            "7 failed tasks in 48 h",
            &["#12 build-7 (retry)"],
        )];
        let new = ["dlq-depth/dlq-depth".to_string()];
        let text = basin_alert(&BasinAlert {
            findings: &findings,
            new: &new,
            worse: &[],
            unreported: &[],
            cleared: &[],
            informational: &[],
            blind: &[],
            recovered: &[],
        });
        assert!(
            text.starts_with("🔥 *TPM Autonomic: 1 basin signal*"),
            "{text}"
        );
        assert!(
            text.contains("🆕 *dlq\\-depth*: 7 failed tasks in 48 h"),
            "{text}"
        );
        assert!(text.contains("failed\\_tasks 7"), "{text}");
        assert!(text.contains("• \\#12 build\\-7 \\(retry\\)"), "{text}");
    }

    #[test]
    fn plain_text_drops_markup_and_escapes() {
        assert_eq!(to_plain_text("*a\\-b* _c_ \\(d\\)"), "a-b c (d)");
    }
}
