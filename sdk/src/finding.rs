use crate::{Finding, Metric, MetricValue};

impl Finding {
    /// Starts a basin finding, which makes the host alert the Chief.
    ///
    /// `signal` is the stable kebab-case signal id, by convention the
    /// plugin name. `summary` is one line of plain text: the host escapes
    /// it for the alert's markup.
    pub fn basin(signal: impl Into<String>, summary: impl Into<String>) -> Self {
        Self::with_basin(signal, summary, true)
    }

    /// Starts an informational finding, which the host logs and records
    /// but never alerts on.
    pub fn info(signal: impl Into<String>, summary: impl Into<String>) -> Self {
        Self::with_basin(signal, summary, false)
    }

    /// Sets how far past its threshold the signal is; it must grow as the
    /// signal gets worse. The host alerts again, before its repeat
    /// interval, when the severity rises above the value it last alerted.
    /// The default is 0, which never triggers an early alert.
    pub fn severity(mut self, severity: f64) -> Self {
        self.severity = severity;
        self
    }

    /// Adds a metric, named in snake_case (such as `failed_tasks`), that is
    /// shown in the alert and stored in the audit record.
    pub fn metric(mut self, name: impl Into<String>, value: impl Into<MetricValue>) -> Self {
        self.metrics.push(Metric {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Adds one plain-text line that lists an item behind the finding, such
    /// as a stale ticket. Lines are shown in the order they are added.
    pub fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }

    /// Adds several detail lines, in order.
    pub fn details<I>(mut self, lines: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.details.extend(lines.into_iter().map(Into::into));
        self
    }

    fn with_basin(signal: impl Into<String>, summary: impl Into<String>, basin: bool) -> Self {
        Finding {
            signal: signal.into(),
            basin,
            summary: summary.into(),
            severity: 0.0,
            metrics: Vec::new(),
            details: Vec::new(),
        }
    }
}

impl From<i64> for MetricValue {
    fn from(value: i64) -> Self {
        MetricValue::Integer(value)
    }
}

impl From<i32> for MetricValue {
    fn from(value: i32) -> Self {
        MetricValue::Integer(value.into())
    }
}

impl From<u32> for MetricValue {
    fn from(value: u32) -> Self {
        MetricValue::Integer(value.into())
    }
}

impl From<usize> for MetricValue {
    /// Converts a length or count. A value above `i64::MAX`, which no
    /// in-memory collection reaches, is clamped to it.
    fn from(value: usize) -> Self {
        MetricValue::Integer(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<f64> for MetricValue {
    fn from(value: f64) -> Self {
        MetricValue::Number(value)
    }
}

impl From<&str> for MetricValue {
    fn from(value: &str) -> Self {
        MetricValue::Text(value.to_string())
    }
}

impl From<String> for MetricValue {
    fn from(value: String) -> Self {
        MetricValue::Text(value)
    }
}

/// Formats a count with the matching noun, for summaries:
/// `format_count(1, "vote", "votes")` is `1 vote`, and
/// `format_count(3, "vote", "votes")` is `3 votes`.
pub fn format_count(count: i64, singular: &str, plural: &str) -> String {
    let noun = if count == 1 { singular } else { plural };
    format!("{count} {noun}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basin_finding_builder() {
        let finding = Finding::basin("dlq-depth", "6 failed Jr tasks")
            .metric("failed_tasks", 6_i64)
            .metric("failure_percent", 37.5)
            .metric("status", "failed")
            .detail("#12 Rebuild index")
            .details(["#9 Rotate keys", "#3 Backfill"]);

        assert_eq!(finding.signal, "dlq-depth");
        assert!(finding.basin);
        assert_eq!(finding.summary, "6 failed Jr tasks");
        assert_eq!(
            finding.metrics,
            [
                Metric {
                    name: "failed_tasks".into(),
                    value: MetricValue::Integer(6)
                },
                Metric {
                    name: "failure_percent".into(),
                    value: MetricValue::Number(37.5)
                },
                Metric {
                    name: "status".into(),
                    value: MetricValue::Text("failed".into())
                },
            ]
        );
        assert_eq!(
            finding.details,
            ["#12 Rebuild index", "#9 Rotate keys", "#3 Backfill"]
        );
    }

    #[test]
    fn info_finding_is_not_basin() {
        let finding = Finding::info("work-state", "12 pending Jr tasks");
        assert!(!finding.basin);
        assert!(finding.metrics.is_empty());
        assert!(finding.details.is_empty());
    }

    #[test]
    fn metric_value_conversions() {
        assert_eq!(MetricValue::from(3_i32), MetricValue::Integer(3));
        assert_eq!(MetricValue::from(3_u32), MetricValue::Integer(3));
        assert_eq!(MetricValue::from(3_usize), MetricValue::Integer(3));
        assert_eq!(
            MetricValue::from(String::from("a")),
            MetricValue::Text("a".into())
        );
    }

    #[test]
    fn format_count_picks_noun() {
        assert_eq!(format_count(0, "vote", "votes"), "0 votes");
        assert_eq!(format_count(1, "vote", "votes"), "1 vote");
        assert_eq!(format_count(2, "vote", "votes"), "2 votes");
        assert_eq!(format_count(-1, "vote", "votes"), "-1 votes");
    }
}
