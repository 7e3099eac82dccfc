//! What a loaded detector exposes, checked by the host: its manifest, its
//! effective settings and its findings.
//!
//! Everything a detector returns is untrusted: a manifest or finding that
//! breaks a rule here is rejected with a reason that names the field and,
//! for limits, the setting.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::contract::{Finding, Manifest, MetricValue, Setting, SettingKind};
use crate::plugin::limits::Limits;

/// Longest plugin name, signal id, setting name or metric name, in bytes.
const MAX_NAME_BYTES: usize = 64;

/// Checks a manifest returned by `describe()`.
pub fn validate_manifest(manifest: &Manifest, limits: &Limits) -> Result<(), String> {
    check_kebab("plugin name", &manifest.name)?;
    if manifest.version.trim().is_empty() || manifest.version.len() > MAX_NAME_BYTES {
        return Err(format!(
            "version {:?} must be 1 to {MAX_NAME_BYTES} bytes",
            manifest.version
        ));
    }
    if manifest.description.len() as u64 > limits.summary_bytes {
        return Err(format!(
            "description is {} bytes; the limit is {} (setting limits.summary_size)",
            manifest.description.len(),
            limits.summary_bytes
        ));
    }
    if manifest.tables.is_empty() {
        return Err("the manifest declares no tables; list every table the detector reads".into());
    }
    for table in &manifest.tables {
        let valid = !table.is_empty()
            && table.len() <= MAX_NAME_BYTES
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        if !valid {
            return Err(format!(
                "declared table {table:?} is not a plain table name"
            ));
        }
    }
    let mut names = BTreeSet::new();
    for spec in &manifest.settings {
        check_kebab("setting name", &spec.name)?;
        if !names.insert(spec.name.as_str()) {
            return Err(format!("setting `{}` is declared twice", spec.name));
        }
        parse_setting(spec.kind, &spec.default_value)
            .map_err(|reason| format!("default of setting `{}` is invalid: {reason}", spec.name))?;
    }
    Ok(())
}

fn check_kebab(what: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} must be kebab-case: lower-case letters, digits and '-', \
             at most {MAX_NAME_BYTES} bytes"
        ))
    }
}

/// Validates a setting value against its kind and returns its normal text
/// form.
pub fn parse_setting(kind: SettingKind, text: &str) -> Result<String, String> {
    let text = text.trim();
    match kind {
        SettingKind::Integer => text
            .parse::<i64>()
            .map(|value| value.to_string())
            .map_err(|_| format!("expected a whole number, got {text:?}")),
        SettingKind::Number => match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(text.to_string()),
            _ => Err(format!("expected a number, got {text:?}")),
        },
        SettingKind::Boolean => match text {
            "true" | "false" => Ok(text.to_string()),
            _ => Err(format!("expected true or false, got {text:?}")),
        },
        SettingKind::Text => Ok(text.to_string()),
    }
}

fn toml_to_text(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(value) => Ok(value.to_string()),
        toml::Value::Float(value) => Ok(value.to_string()),
        toml::Value::Boolean(value) => Ok(value.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(toml_to_text)
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        other => Err(format!("a {} cannot be a setting value", other.type_str())),
    }
}

/// Resolves the effective settings of a detector: each declared setting
/// with its configured value or its default. A configured setting the
/// detector does not declare is an error, so a typo is never ignored.
pub fn resolve_settings(
    manifest: &Manifest,
    configured: Option<&BTreeMap<String, toml::Value>>,
) -> Result<Vec<Setting>, String> {
    let empty = BTreeMap::new();
    let configured = configured.unwrap_or(&empty);
    for name in configured.keys() {
        if !manifest.settings.iter().any(|spec| spec.name == *name) {
            let known: Vec<&str> = manifest.settings.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "plugins.{}.{name} is not a setting of this detector; it accepts: {}",
                manifest.name,
                if known.is_empty() {
                    "no settings".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }

    let mut settings = Vec::with_capacity(manifest.settings.len());
    for spec in &manifest.settings {
        let value = match configured.get(&spec.name) {
            Some(value) => {
                let text = toml_to_text(value)
                    .and_then(|text| parse_setting(spec.kind, &text))
                    .map_err(|reason| {
                        format!("invalid plugins.{}.{}: {reason}", manifest.name, spec.name)
                    })?;
                text
            }
            None => parse_setting(spec.kind, &spec.default_value)?,
        };
        settings.push(Setting {
            name: spec.name.clone(),
            value,
        });
    }
    Ok(settings)
}

/// Checks the findings of one call against the limits.
pub fn validate_findings(findings: &[Finding], limits: &Limits) -> Result<(), String> {
    if findings.len() as u64 > limits.findings {
        return Err(format!(
            "{} findings; the limit is {} per call (setting limits.findings)",
            findings.len(),
            limits.findings
        ));
    }
    for finding in findings {
        check_kebab("signal id", &finding.signal)?;
        check_text(&finding.summary, "summary", &finding.signal, limits)?;
        if !finding.severity.is_finite() {
            return Err(format!(
                "severity of `{}` must be a finite number",
                finding.signal
            ));
        }
        if finding.summary.contains('\n') {
            return Err(format!("summary of `{}` must be one line", finding.signal));
        }
        if finding.details.len() as u64 > limits.details {
            return Err(format!(
                "`{}` has {} detail lines; the limit is {} (setting limits.details)",
                finding.signal,
                finding.details.len(),
                limits.details
            ));
        }
        for detail in &finding.details {
            check_text(detail, "detail line", &finding.signal, limits)?;
        }
        if finding.metrics.len() as u64 > limits.metrics {
            return Err(format!(
                "`{}` has {} metrics; the limit is {} (setting limits.metrics)",
                finding.signal,
                finding.metrics.len(),
                limits.metrics
            ));
        }
        for metric in &finding.metrics {
            let valid_name = !metric.name.is_empty()
                && metric.name.len() <= MAX_NAME_BYTES
                && metric
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                return Err(format!(
                    "metric name {:?} of `{}` must be letters, digits and '_'",
                    metric.name, finding.signal
                ));
            }
            if let MetricValue::Text(text) = &metric.value {
                check_text(text, "metric text", &finding.signal, limits)?;
            }
        }
    }
    Ok(())
}

fn check_text(text: &str, what: &str, signal: &str, limits: &Limits) -> Result<(), String> {
    if text.len() as u64 > limits.summary_bytes {
        return Err(format!(
            "{what} of `{signal}` is {} bytes; the limit is {} (setting limits.summary_size)",
            text.len(),
            limits.summary_bytes
        ));
    }
    Ok(())
}

/// A finding in the form stored in thermal memory and printed in reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingRecord {
    /// Signal id.
    pub signal: String,
    /// Whether it is a basin signal.
    pub basin: bool,
    /// One line for a person.
    pub summary: String,
    /// How far past its threshold the signal is; higher is worse.
    pub severity: f64,
    /// Metrics by name, in the detector's order.
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// Item lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// The plugin that reported it.
    pub plugin: String,
}

impl FindingRecord {
    /// Converts a validated finding.
    pub fn new(plugin: &str, finding: &Finding) -> FindingRecord {
        let mut metrics = serde_json::Map::new();
        for metric in &finding.metrics {
            metrics.insert(metric.name.clone(), metric_json(&metric.value));
        }
        FindingRecord {
            signal: finding.signal.clone(),
            basin: finding.basin,
            summary: finding.summary.clone(),
            severity: finding.severity,
            metrics,
            details: finding.details.clone(),
            plugin: plugin.to_string(),
        }
    }
}

/// A metric value as JSON; a non-finite number becomes its text.
pub fn metric_json(value: &MetricValue) -> serde_json::Value {
    match value {
        MetricValue::Integer(value) => (*value).into(),
        MetricValue::Number(value) => serde_json::Number::from_f64(*value)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| serde_json::Value::String(value.to_string())),
        MetricValue::Text(text) => text.clone().into(),
    }
}

/// A metric value as text for a person: whole numbers without a decimal
/// point, other numbers with at most three decimals.
pub fn metric_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() => {
                let text = format!("{float:.3}");
                let text = text.trim_end_matches('0').trim_end_matches('.');
                text.to_string()
            }
            _ => number.to_string(),
        },
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{Metric, SettingSpec};

    fn manifest() -> Manifest {
        Manifest {
            name: "dlq-depth".into(),
            version: "1.0.0".into(),
            description: "Failed tasks".into(),
            tables: vec!["jr_work_queue".into()],
            settings: vec![SettingSpec {
                name: "threshold".into(),
                kind: SettingKind::Integer,
                default_value: "5".into(),
                description: "failed tasks that make a basin".into(),
            }],
        }
    }

    #[test]
    fn valid_manifest_passes() {
        validate_manifest(&manifest(), &Limits::default()).unwrap();
    }

    #[test]
    fn manifest_name_must_be_kebab_case() {
        let mut bad = manifest();
        bad.name = "DLQ Depth".into();
        let error = validate_manifest(&bad, &Limits::default()).unwrap_err();
        assert!(error.contains("kebab-case"), "{error}");
    }

    #[test]
    fn default_settings_are_used_when_unconfigured() {
        let settings = resolve_settings(&manifest(), None).unwrap();
        assert_eq!(settings.len(), 1);
        assert_eq!(settings[0].value, "5");
    }

    #[test]
    fn configured_setting_overrides_default() {
        let configured = BTreeMap::from([("threshold".to_string(), toml::Value::Integer(7))]);
        let settings = resolve_settings(&manifest(), Some(&configured)).unwrap();
        assert_eq!(settings[0].value, "7");
    }

    #[test]
    fn unknown_setting_is_rejected_with_known_names() {
        let configured = BTreeMap::from([("treshold".to_string(), toml::Value::Integer(7))]);
        let error = resolve_settings(&manifest(), Some(&configured)).unwrap_err();
        assert!(error.contains("plugins.dlq-depth.treshold"), "{error}");
        assert!(error.contains("threshold"), "{error}");
    }

    #[test]
    fn setting_of_wrong_kind_is_rejected() {
        let configured =
            BTreeMap::from([("threshold".to_string(), toml::Value::String("five".into()))]);
        let error = resolve_settings(&manifest(), Some(&configured)).unwrap_err();
        assert!(error.contains("expected a whole number"), "{error}");
    }

    fn finding(summary: &str) -> Finding {
        Finding {
            signal: "dlq-depth".into(),
            basin: true,
            summary: summary.into(),
            severity: 7.0,
            metrics: vec![Metric {
                name: "failed_tasks".into(),
                value: MetricValue::Integer(7),
            }],
            details: vec![],
        }
    }

    #[test]
    fn findings_over_limit_are_rejected() {
        let limits = Limits {
            findings: 2,
            ..Limits::default()
        };
        let findings = vec![finding("a"), finding("b"), finding("c")];
        let error = validate_findings(&findings, &limits).unwrap_err();
        assert!(error.contains("limits.findings"), "{error}");
        validate_findings(&findings[..2], &limits).unwrap();
    }

    #[test]
    fn long_summary_is_rejected() {
        let limits = Limits {
            summary_bytes: 10,
            ..Limits::default()
        };
        let error = validate_findings(&[finding("01234567890")], &limits).unwrap_err();
        assert!(error.contains("limits.summary_size"), "{error}");
        validate_findings(&[finding("0123456789")], &limits).unwrap();
    }

    #[test]
    fn metric_text_drops_trailing_zeros() {
        assert_eq!(metric_text(&serde_json::json!(0.7)), "0.7");
        assert_eq!(metric_text(&serde_json::json!(7)), "7");
        assert_eq!(metric_text(&serde_json::json!(33.3333)), "33.333");
    }
}
