//! council-disagreement: council votes with low confidence, a sign that the
//! specialists disagree and the federation may sit at a basin boundary.
//!
//! Basin when at least one vote of the last `window-hours` hours has a
//! confidence strictly below `confidence-threshold`. Votes with a NULL
//! confidence or a NULL `voted_at` never count.

use tpm_autonomic_sdk::prelude::*;

const SIGNAL: &str = "council-disagreement";

/// Ten years, far beyond any useful look-back. The bound turns a typo into
/// a clear setting error instead of an overflow in `make_interval`.
const MAX_WINDOW_HOURS: i64 = 87_600;

/// Caps the alert's list, so a typo cannot make it fetch thousands of rows.
const MAX_LISTED: i64 = 100;

// `confidence` may be NUMERIC or double precision: casting to float8
// compares both with the float parameter, and `0.7::numeric::float8` equals
// the parameter 0.7, so a vote at the threshold does not count. NULL
// confidence and NULL voted_at fail the comparisons and drop out.
// `now() - make_interval(…)` is a timestamptz, which PostgreSQL compares
// with a `timestamp` column in the session time zone.
const COUNT_SQL: &str = "\
SELECT count(*) AS low_confidence_votes,
       min(confidence::float8) AS lowest_confidence
FROM council_votes
WHERE voted_at >= now() - make_interval(hours => $1::int)
  AND confidence::float8 < $2";

const LIST_SQL: &str = "\
SELECT left(audit_hash, 8) AS audit_hash_prefix,
       confidence::float8 AS confidence,
       recommendation
FROM council_votes
WHERE voted_at >= now() - make_interval(hours => $1::int)
  AND confidence::float8 < $2
ORDER BY confidence::float8, voted_at DESC
LIMIT $3";

struct CouncilDisagreement;

impl Detector for CouncilDisagreement {
    fn manifest() -> Manifest {
        Manifest::new(
            SIGNAL,
            env!("CARGO_PKG_VERSION"),
            "Council votes with low confidence, a sign that the specialists disagree",
        )
        .reads("council_votes")
        .setting(SettingSpec::number(
            "confidence-threshold",
            0.7,
            "votes with a confidence strictly below this value count",
        ))
        .setting(SettingSpec::integer(
            "window-hours",
            24,
            "look-back window, in hours",
        ))
        .setting(SettingSpec::integer(
            "max-listed",
            10,
            "lowest-confidence votes listed in the alert",
        ))
    }

    fn detect(settings: &Settings) -> Result<Vec<Finding>, DetectError> {
        let limits = Limits::from_settings(settings)?;
        let params = [
            Value::Integer(limits.window_hours),
            Value::Float(limits.confidence_threshold),
        ];

        let rows = query(COUNT_SQL, &params)?;
        let counts = rows.one()?;
        let count = counts.integer("low_confidence_votes")?;
        log::debug(format!(
            "{count} low-confidence votes in the last {} h",
            limits.window_hours
        ));
        let Some(finding) = limits.assess(count) else {
            return Ok(Vec::new());
        };
        // Not NULL here: at least one vote with a non-NULL confidence counted.
        let mut finding = finding.metric("lowest_confidence", counts.float("lowest_confidence")?);

        if limits.max_listed > 0 {
            let [window, threshold] = params;
            let rows = query(
                LIST_SQL,
                &[window, threshold, Value::Integer(limits.max_listed)],
            )?;
            for row in &rows {
                finding = finding.detail(vote_line(
                    row.optional_text("audit_hash_prefix")?,
                    row.float("confidence")?,
                    row.optional_text("recommendation")?,
                ));
            }
        }
        Ok(vec![finding])
    }
}

export_detector!(CouncilDisagreement);

struct Limits {
    confidence_threshold: f64,
    window_hours: i64,
    max_listed: i64,
}

impl Limits {
    fn from_settings(settings: &Settings) -> Result<Self, SettingError> {
        Ok(Limits {
            confidence_threshold: settings.number("confidence-threshold")?,
            window_hours: settings.integer_in("window-hours", 1..=MAX_WINDOW_HOURS)?,
            max_listed: settings.integer_in("max-listed", 0..=MAX_LISTED)?,
        })
    }

    /// Builds the basin finding, without `lowest_confidence` and detail
    /// lines, when any vote counts.
    fn assess(&self, low_confidence_votes: i64) -> Option<Finding> {
        if low_confidence_votes < 1 {
            return None;
        }
        let summary = format!(
            "{} in the last {} h had confidence below {}",
            format_count(low_confidence_votes, "council vote", "council votes"),
            self.window_hours,
            self.confidence_threshold
        );
        Some(
            // More low-confidence votes is a deeper disagreement.
            Finding::basin(SIGNAL, summary)
                .severity(low_confidence_votes as f64)
                .metric("low_confidence_votes", low_confidence_votes)
                .metric("confidence_threshold", self.confidence_threshold)
                .metric("window_hours", self.window_hours),
        )
    }
}

fn vote_line(hash_prefix: Option<&str>, confidence: f64, recommendation: Option<&str>) -> String {
    let hash_prefix = hash_prefix.unwrap_or("(no hash)");
    let recommendation = recommendation.unwrap_or("no recommendation");
    format!("{hash_prefix} confidence {confidence} ({recommendation})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_limits() -> Limits {
        let settings = Settings::new(&CouncilDisagreement::manifest().settings, Vec::new());
        Limits::from_settings(&settings).unwrap()
    }

    #[test]
    fn one_vote_is_a_basin() {
        let limits = default_limits();
        assert!(limits.assess(0).is_none());
        assert!(limits.assess(1).is_some());
    }

    #[test]
    fn summary_and_metrics() {
        let finding = default_limits().assess(3).unwrap();

        assert_eq!(finding.signal, "council-disagreement");
        assert!(finding.basin);
        assert_eq!(
            finding.summary,
            "3 council votes in the last 24 h had confidence below 0.7"
        );
        let names: Vec<&str> = finding
            .metrics
            .iter()
            .map(|metric| metric.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "low_confidence_votes",
                "confidence_threshold",
                "window_hours"
            ]
        );
        assert_eq!(finding.metrics[1].value, MetricValue::Number(0.7));
    }

    #[test]
    fn summary_for_one_vote() {
        let finding = default_limits().assess(1).unwrap();
        assert_eq!(
            finding.summary,
            "1 council vote in the last 24 h had confidence below 0.7"
        );
    }

    #[test]
    fn vote_line_handles_nulls() {
        assert_eq!(
            vote_line(Some("b82aea3e"), 0.55, Some("PROCEED")),
            "b82aea3e confidence 0.55 (PROCEED)"
        );
        assert_eq!(
            vote_line(None, 0.5, None),
            "(no hash) confidence 0.5 (no recommendation)"
        );
    }
}
