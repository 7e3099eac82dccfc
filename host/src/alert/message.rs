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

/// Builds the alert for one cycle's basin findings. `informational` are the
/// non-basin findings (the work state), shown at the end.
pub fn basin_alert(
    basin: &[FindingRecord],
    informational: &[FindingRecord],
    blind: &[BlindSpot],
    recovered: &[String],
) -> String {
    let mut text = String::new();
    let count = basin.len();
    let noun = if count == 1 { "basin signal" } else { "basin signals" };
    let _ = writeln!(text, "🔥 *TPM Autonomic: {count} {noun}*");

    for finding in basin {
        text.push('\n');
        let _ = writeln!(text, "*{}*: {}", escape(&finding.signal), escape(&finding.summary));
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

    for finding in informational {
        text.push('\n');
        let _ = writeln!(text, "_{}_: {}", escape(&finding.signal), escape(&finding.summary));
    }
    text.trim_end().to_string()
}

/// Builds the short message sent when alerted basin signals clear.
pub fn resolved_alert(cleared: &[String], informational: &[FindingRecord]) -> String {
    let names: Vec<String> = cleared.iter().map(|name| escape(name)).collect();
    let mut text = format!("✅ *TPM Autonomic: resolved*\n\nCleared: {}", names.join(", "));
    for finding in informational {
        let _ = write!(text, "\n\n_{}_: {}", escape(&finding.signal), escape(&finding.summary));
    }
    text
}

/// Builds the message sent when blind spots appear or clear while no basin
/// is alerted.
pub fn detector_health_alert(blind: &[BlindSpot], recovered: &[String]) -> String {
    let mut text = String::from("⚠️ *TPM Autonomic: detector health*\n");
    for spot in blind {
        let _ = write!(
            text,
            "\n  • {} failed {} cycles in a row: {}",
            escape(&spot.plugin),
            spot.failures,
            escape(&spot.reason)
        );
    }
    if !recovered.is_empty() {
        let names: Vec<String> = recovered.iter().map(|name| escape(name)).collect();
        let _ = write!(text, "\n\nRunning again: {}", names.join(", "));
    }
    text
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
        let text = basin_alert(
            &[record("dlq-depth", "7 failed tasks in 48 h", &["#12 build-7 (retry)"])],
            &[],
            &[],
            &[],
        );
        assert!(text.starts_with("🔥 *TPM Autonomic: 1 basin signal*"), "{text}");
        assert!(text.contains("*dlq\\-depth*: 7 failed tasks in 48 h"), "{text}");
        assert!(text.contains("failed\\_tasks 7"), "{text}");
        assert!(text.contains("• \\#12 build\\-7 \\(retry\\)"), "{text}");
    }

    #[test]
    fn plain_text_drops_markup_and_escapes() {
        assert_eq!(to_plain_text("*a\\-b* _c_ \\(d\\)"), "a-b c (d)");
    }
}
