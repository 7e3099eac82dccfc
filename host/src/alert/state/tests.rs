use std::time::Duration;

use chrono::TimeDelta;

use super::*;

fn settings() -> AlertSettings {
    AlertSettings {
        repeat_interval: Duration::from_secs(4 * 3600),
        send_resolved: true,
        blind_after: 3,
        max_attempts: 4,
    }
}

fn finding(plugin: &str, severity: f64) -> FindingRecord {
    FindingRecord {
        signal: plugin.into(),
        basin: true,
        summary: format!("{severity} things"),
        severity,
        metrics: serde_json::Map::new(),
        details: Vec::new(),
        plugin: plugin.into(),
    }
}

fn ran(findings: &[FindingRecord]) -> DetectorOutcome {
    DetectorOutcome::Ran(findings.to_vec())
}

fn outcomes(items: &[(&str, DetectorOutcome)]) -> BTreeMap<String, DetectorOutcome> {
    items
        .iter()
        .map(|(name, outcome)| (name.to_string(), outcome.clone()))
        .collect()
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-02-18T14:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn new_signal_alerts_once() {
    let mut state = AlertState::default();
    let now = start();
    let cycle = outcomes(&[
        ("dlq-depth", ran(&[finding("dlq-depth", 7.0)])),
        ("stale", ran(&[])),
    ]);

    let plan = state.plan(&cycle, &[], &settings(), now, true);
    assert_eq!(plan.new, vec!["dlq-depth/dlq-depth"]);
    assert_eq!(plan.messages, vec![MessageKind::Basin]);

    let plan = state.plan(&cycle, &[], &settings(), now + TimeDelta::minutes(5), true);
    assert!(
        plan.messages.is_empty(),
        "an unchanged basin is not repeated at once: {plan:?}"
    );
    assert_eq!(state.outbox.len(), 1);
}

#[test]
fn unchanged_basin_repeats_after_interval() {
    let mut state = AlertState::default();
    let cycle = outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]);
    state.plan(&cycle, &[], &settings(), start(), true);

    let plan = state.plan(
        &cycle,
        &[],
        &settings(),
        start() + TimeDelta::hours(3),
        true,
    );
    assert!(plan.messages.is_empty());
    let plan = state.plan(
        &cycle,
        &[],
        &settings(),
        start() + TimeDelta::hours(4),
        true,
    );
    assert_eq!(plan.messages, vec![MessageKind::Basin]);
    assert!(
        state.outbox[1].parts[0].contains("still present"),
        "{}",
        state.outbox[1].parts[0]
    );
}

#[test]
fn zero_repeat_interval_alerts_every_cycle() {
    let mut state = AlertState::default();
    let settings = AlertSettings {
        repeat_interval: Duration::ZERO,
        ..settings()
    };
    let cycle = outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]);
    for minute in 0..3 {
        let plan = state.plan(
            &cycle,
            &[],
            &settings,
            start() + TimeDelta::minutes(minute),
            true,
        );
        assert_eq!(plan.messages, vec![MessageKind::Basin]);
    }
}

#[test]
fn worse_severity_alerts_again_and_better_does_not() {
    let mut state = AlertState::default();
    state.plan(
        &outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]),
        &[],
        &settings(),
        start(),
        true,
    );

    let plan = state.plan(
        &outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 6.0)]))]),
        &[],
        &settings(),
        start() + TimeDelta::minutes(5),
        true,
    );
    assert!(plan.messages.is_empty(), "{plan:?}");

    let plan = state.plan(
        &outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 9.0)]))]),
        &[],
        &settings(),
        start() + TimeDelta::minutes(10),
        true,
    );
    assert_eq!(plan.worse, vec!["dlq-depth/dlq-depth"]);
    assert_eq!(plan.messages, vec![MessageKind::Basin]);
    assert!(state.outbox.last().unwrap().parts[0].contains("⬆️"));

    // Back to 8, below the alerted 9: nothing.
    let plan = state.plan(
        &outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 8.0)]))]),
        &[],
        &settings(),
        start() + TimeDelta::minutes(15),
        true,
    );
    assert!(plan.messages.is_empty(), "{plan:?}");
}

#[test]
fn cleared_signal_sends_one_resolved() {
    let mut state = AlertState::default();
    state.plan(
        &outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]),
        &[],
        &settings(),
        start(),
        true,
    );

    let clean = outcomes(&[("dlq-depth", ran(&[]))]);
    let plan = state.plan(
        &clean,
        &[],
        &settings(),
        start() + TimeDelta::minutes(5),
        true,
    );
    assert_eq!(plan.cleared, vec!["dlq-depth/dlq-depth"]);
    assert_eq!(plan.messages, vec![MessageKind::Resolved]);
    let plan = state.plan(
        &clean,
        &[],
        &settings(),
        start() + TimeDelta::minutes(10),
        true,
    );
    assert!(plan.messages.is_empty());
}

#[test]
fn resolved_can_be_turned_off() {
    let mut state = AlertState::default();
    let settings = AlertSettings {
        send_resolved: false,
        ..settings()
    };
    state.plan(
        &outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]),
        &[],
        &settings,
        start(),
        true,
    );
    let plan = state.plan(
        &outcomes(&[("dlq-depth", ran(&[]))]),
        &[],
        &settings,
        start(),
        true,
    );
    assert_eq!(plan.cleared.len(), 1);
    assert!(plan.messages.is_empty());
}

#[test]
fn failed_detector_does_not_clear_its_signal() {
    let mut state = AlertState::default();
    state.plan(
        &outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]),
        &[],
        &settings(),
        start(),
        true,
    );

    let failed = outcomes(&[("dlq-depth", DetectorOutcome::Failed("trapped".into()))]);
    let plan = state.plan(
        &failed,
        &[],
        &settings(),
        start() + TimeDelta::minutes(5),
        true,
    );
    assert!(plan.cleared.is_empty());
    assert!(plan.messages.is_empty());
    assert!(state.active.contains_key("dlq-depth/dlq-depth"));

    // It runs again and still sees the signal: nothing new to say.
    let plan = state.plan(
        &outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]),
        &[],
        &settings(),
        start() + TimeDelta::minutes(10),
        true,
    );
    assert!(plan.new.is_empty());
    assert!(plan.messages.is_empty());
}

#[test]
fn repeated_failures_report_blind_spot_once_then_recovery() {
    let mut state = AlertState::default();
    let failed = outcomes(&[(
        "dlq-depth",
        DetectorOutcome::Failed("deadline exceeded".into()),
    )]);
    let mut kinds = Vec::new();
    for minute in 0..5 {
        let plan = state.plan(
            &failed,
            &[],
            &settings(),
            start() + TimeDelta::minutes(minute),
            true,
        );
        kinds.push(plan.messages.clone());
        if minute == 2 {
            assert_eq!(plan.blind, vec!["dlq-depth"]);
        }
    }
    let health: usize = kinds.iter().map(|k| k.len()).sum();
    assert_eq!(
        health, 1,
        "one blind-spot message for five failures: {kinds:?}"
    );
    assert!(state.outbox[0].parts[0].contains("failed 3 cycles in a row"));

    let plan = state.plan(
        &outcomes(&[("dlq-depth", ran(&[]))]),
        &[],
        &settings(),
        start() + TimeDelta::minutes(6),
        true,
    );
    assert_eq!(plan.recovered, vec!["dlq-depth"]);
    assert_eq!(plan.messages, vec![MessageKind::DetectorHealth]);
    assert!(state.outbox[1].parts[0].contains("running again"));
}

#[test]
fn short_failure_run_is_not_reported() {
    let mut state = AlertState::default();
    let failed = outcomes(&[("dlq-depth", DetectorOutcome::Failed("x".into()))]);
    state.plan(&failed, &[], &settings(), start(), true);
    state.plan(&failed, &[], &settings(), start(), true);
    let plan = state.plan(
        &outcomes(&[("dlq-depth", ran(&[]))]),
        &[],
        &settings(),
        start(),
        true,
    );
    assert!(plan.recovered.is_empty());
    assert!(state.outbox.is_empty());
}

#[test]
fn unloaded_detector_signal_is_forgotten_silently() {
    let mut state = AlertState::default();
    state.plan(
        &outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]),
        &[],
        &settings(),
        start(),
        true,
    );
    let plan = state.plan(&outcomes(&[]), &[], &settings(), start(), true);
    assert!(plan.cleared.is_empty());
    assert!(plan.messages.is_empty());
    assert!(state.active.is_empty());
}

#[test]
fn undeliverable_alert_waits_for_delivery() {
    let mut state = AlertState::default();
    let cycle = outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]);
    let plan = state.plan(&cycle, &[], &settings(), start(), false);
    assert_eq!(plan.undelivered, vec![MessageKind::Basin]);
    assert!(state.outbox.is_empty());

    // Telegram is configured later: the signal is still news.
    let plan = state.plan(
        &cycle,
        &[],
        &settings(),
        start() + TimeDelta::minutes(5),
        true,
    );
    assert_eq!(plan.messages, vec![MessageKind::Basin]);
    assert!(
        state.outbox[0].parts[0].contains("🆕"),
        "{}",
        state.outbox[0].parts[0]
    );
}

#[test]
fn state_round_trips_through_json() {
    let mut state = AlertState::default();
    state.plan(
        &outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]),
        &[],
        &settings(),
        start(),
        true,
    );
    let json = serde_json::to_string(&state).unwrap();
    let back: AlertState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
}

#[test]
fn outbox_is_bounded() {
    let mut state = AlertState::default();
    let settings = AlertSettings {
        repeat_interval: Duration::ZERO,
        ..settings()
    };
    let cycle = outcomes(&[("dlq-depth", ran(&[finding("dlq-depth", 7.0)]))]);
    for minute in 0..(MAX_OUTBOX as i64 + 5) {
        state.plan(
            &cycle,
            &[],
            &settings,
            start() + TimeDelta::minutes(minute),
            true,
        );
    }
    assert_eq!(state.outbox.len(), MAX_OUTBOX);
    assert_eq!(state.outbox[0].id, 6);
}
