//! Thermal memory records: the audit trail of every basin detection, in the
//! federation's `thermal_memory_archive` table.
//!
//! The content keeps the federation's text form, `TPM AUTONOMIC BASIN
//! DETECTION: N signals detected. Types: a, b. Details: <JSON>`, so its other
//! tools can read it. `memory_hash` is the SHA-256 of the content, and the
//! insert does nothing on a conflicting hash: the same detection is the same
//! memory, however often it is seen.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::db::{self, Database};
use crate::detector::FindingRecord;

/// `metadata.source` of every record this daemon writes.
pub const SOURCE: &str = "tpm-autonomic-basin-detect";

/// Time the client waits for the insert, beyond the server's own
/// statement timeout.
const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Temperature of a basin detection.
pub const TEMPERATURE: f64 = 75.0;

/// One record, ready to insert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThermalRecord {
    /// `original_content`.
    pub content: String,
    /// `memory_hash`: SHA-256 of `content`, lower-case hex.
    pub hash: String,
    /// `metadata`.
    pub metadata: serde_json::Value,
}

/// Builds the record of one cycle's basin findings.
pub fn build(basin: &[FindingRecord], detected_at: DateTime<Utc>) -> ThermalRecord {
    let types: Vec<&str> = basin
        .iter()
        .map(|finding| finding.signal.as_str())
        .collect();
    let details: Vec<serde_json::Value> = basin
        .iter()
        .map(|finding| {
            json!({
                "signal": finding.signal,
                "summary": finding.summary,
                "metrics": finding.metrics,
                "details": finding.details,
            })
        })
        .collect();
    // The federation's tools parse "N signals detected" whatever N is, so
    // the plural stays even for one signal.
    let content = format!(
        "TPM AUTONOMIC BASIN DETECTION: {} signals detected. Types: {}. Details: {}",
        basin.len(),
        types.join(", "),
        serde_json::Value::Array(details)
    );
    let hash = hex::encode(Sha256::digest(content.as_bytes()));
    let metadata = json!({
        "source": SOURCE,
        "signal_types": types,
        "signals": basin,
        "detected_at": detected_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "daemon_version": env!("CARGO_PKG_VERSION"),
    });
    ThermalRecord {
        content,
        hash,
        metadata,
    }
}

/// Inserts a record. Returns true when a row was written, false when a
/// record with the same hash already existed.
pub async fn write(database: &Database, record: &ThermalRecord) -> Result<bool, String> {
    let connection = database.connection().await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
        &record.content,
        &TEMPERATURE,
        &record.hash,
        &record.metadata,
    ];
    let insert = connection.execute(
        "INSERT INTO thermal_memory_archive \
               (original_content, temperature_score, memory_hash, sacred_pattern, metadata) \
             VALUES ($1, $2, $3, false, $4) \
             ON CONFLICT (memory_hash) DO NOTHING",
        &params,
    );
    // The server's statement_timeout bounds a blocked insert; this bounds a
    // server that stopped answering at all.
    let inserted = tokio::time::timeout(CLIENT_TIMEOUT, insert)
        .await
        .map_err(|_| format!("no answer within {} s", CLIENT_TIMEOUT.as_secs()))?
        .map_err(|error| db::describe_error(&error))?;
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(signal: &str) -> FindingRecord {
        let mut metrics = serde_json::Map::new();
        metrics.insert("failed_tasks".into(), 7.into());
        FindingRecord {
            signal: signal.into(),
            basin: true,
            summary: "7 failed tasks".into(),
            severity: 7.0,
            metrics,
            details: vec![],
            plugin: signal.into(),
        }
    }

    #[test]
    fn content_keeps_federation_form() {
        let record = build(&[finding("dlq-depth"), finding("stale-kanban")], Utc::now());
        assert!(
            record.content.starts_with(
                "TPM AUTONOMIC BASIN DETECTION: 2 signals detected. Types: dlq-depth, stale-kanban. Details: ["
            ),
            "{}",
            record.content
        );
    }

    #[test]
    fn hash_is_sha256_of_content() {
        let record = build(&[finding("dlq-depth")], Utc::now());
        assert_eq!(record.hash.len(), 64);
        assert_eq!(
            record.hash,
            hex::encode(Sha256::digest(record.content.as_bytes()))
        );
    }

    #[test]
    fn same_findings_give_same_hash_at_another_time() {
        let first = build(&[finding("dlq-depth")], Utc::now());
        let later = build(
            &[finding("dlq-depth")],
            Utc::now() + chrono::TimeDelta::hours(1),
        );
        assert_eq!(first.hash, later.hash);
        assert_ne!(first.metadata["detected_at"], later.metadata["detected_at"]);
    }

    #[test]
    fn metadata_names_source() {
        let record = build(&[finding("dlq-depth")], Utc::now());
        assert_eq!(record.metadata["source"], SOURCE);
        assert_eq!(record.metadata["signal_types"][0], "dlq-depth");
    }
}
