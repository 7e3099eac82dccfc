use super::*;

fn guard() -> QueryGuard {
    let declared = vec!["jr_work_queue".to_string(), "council_votes".to_string()];
    QueryGuard::new(&declared, &QuerySettings::default())
}

fn denied(sql: &str) -> String {
    match guard().check(sql) {
        Err(QueryError::Denied(reason)) => reason,
        other => panic!("expected {sql:?} to be denied, got {other:?}"),
    }
}

#[test]
fn detector_queries_pass() {
    let queries = [
        "SELECT count(*) AS failed FROM jr_work_queue \
         WHERE status = 'failed' AND updated_at > now() - make_interval(hours => $1::int)",
        "SELECT count(*) FILTER (WHERE status = 'failed') AS failed, count(*) AS finished \
         FROM jr_work_queue WHERE status IN ('completed', 'failed')",
        "SELECT left(audit_hash, 8) AS hash, confidence::float8 FROM council_votes \
         WHERE confidence < $1 ORDER BY confidence LIMIT 10",
        "WITH recent AS (SELECT * FROM jr_work_queue WHERE updated_at > now() - interval '1 day') \
         SELECT count(*) FROM recent",
        "SELECT coalesce(nullif(title, ''), '(untitled)') FROM public.jr_work_queue",
        "SELECT extract(epoch FROM now() - max(updated_at)) FROM jr_work_queue",
        "SELECT status, count(*) FROM jr_work_queue GROUP BY status \
         UNION ALL SELECT recommendation, count(*) FROM council_votes GROUP BY 1",
        "SELECT n FROM generate_series(1, 3) AS n",
        "SELECT 1",
    ];
    for sql in queries {
        if let Err(error) = guard().check(sql) {
            panic!("{sql:?} was rejected: {error}");
        }
    }
}

#[test]
fn writes_are_denied() {
    for sql in [
        "INSERT INTO jr_work_queue (title) VALUES ('x')",
        "UPDATE jr_work_queue SET status = 'done'",
        "DELETE FROM jr_work_queue",
        "DROP TABLE jr_work_queue",
        "CREATE TABLE x (a int)",
        "COPY jr_work_queue TO '/tmp/x'",
        "TRUNCATE jr_work_queue",
        "SET statement_timeout = 0",
    ] {
        let reason = denied(sql);
        assert!(reason.contains("only SELECT"), "{sql}: {reason}");
    }
}

#[test]
fn data_modifying_cte_is_denied() {
    let reason =
        denied("WITH gone AS (DELETE FROM jr_work_queue RETURNING *) SELECT count(*) FROM gone");
    assert!(reason.contains("modifies data"), "{reason}");
}

#[test]
fn select_into_is_denied() {
    let reason = denied("SELECT * INTO copy_of_queue FROM jr_work_queue");
    assert!(reason.contains("INTO"), "{reason}");
}

#[test]
fn row_locks_are_denied() {
    assert!(denied("SELECT * FROM jr_work_queue FOR UPDATE").contains("FOR UPDATE"));
    assert!(denied("SELECT * FROM jr_work_queue FOR SHARE").contains("FOR UPDATE"));
}

#[test]
fn several_statements_are_denied() {
    let reason = denied("SELECT 1; SELECT 2");
    assert!(reason.contains("2 statements"), "{reason}");
}

#[test]
fn undeclared_table_is_denied_with_declared_list() {
    let reason = denied("SELECT * FROM duyuktv_tickets");
    assert!(
        reason.contains("`duyuktv_tickets` is not declared"),
        "{reason}"
    );
    assert!(reason.contains("council_votes, jr_work_queue"), "{reason}");
}

#[test]
fn declared_but_not_allowed_table_names_setting() {
    let declared = vec!["secrets".to_string()];
    let guard = QueryGuard::new(&declared, &QuerySettings::default());
    match guard.check("SELECT * FROM secrets") {
        Err(QueryError::Denied(reason)) => {
            assert!(reason.contains("query.allowed_tables"), "{reason}")
        }
        other => panic!("expected denial, got {other:?}"),
    }
}

#[test]
fn system_catalogs_are_denied() {
    for sql in [
        "SELECT * FROM pg_authid",
        "SELECT * FROM pg_catalog.pg_authid",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM jr_work_queue, pg_shadow",
    ] {
        let reason = denied(sql);
        assert!(reason.contains("system catalog"), "{sql}: {reason}");
    }
}

#[test]
fn dangerous_functions_are_never_allowed() {
    for function in [
        "set_config('statement_timeout', '0', false)",
        "pg_sleep(10)",
        "pg_sleep_for('10 s')",
        "pg_advisory_lock(1)",
        "pg_try_advisory_lock(1)",
        "pg_read_file('/etc/passwd')",
        "lo_import('/etc/passwd')",
        "dblink('host=x', 'select 1')",
        "pg_terminate_backend(1)",
        "pg_cancel_backend(1)",
    ] {
        let reason = denied(&format!("SELECT {function}"));
        assert!(reason.contains("never allowed"), "{function}: {reason}");
    }
}

#[test]
fn unlisted_function_names_setting() {
    let reason = denied("SELECT version()");
    assert!(reason.contains("`version`"), "{reason}");
    assert!(reason.contains("query.allowed_functions"), "{reason}");
}

#[test]
fn operator_can_allow_extra_function() {
    let mut settings = QuerySettings::default();
    settings.extra_functions.insert("version".into());
    let guard = QueryGuard::new(&["jr_work_queue".to_string()], &settings);
    guard.check("SELECT version()").unwrap();
}

#[test]
fn operator_cannot_allow_never_allowed_function() {
    let mut settings = QuerySettings::default();
    settings.extra_functions.insert("pg_sleep".into());
    let guard = QueryGuard::new(&["jr_work_queue".to_string()], &settings);
    assert!(matches!(
        guard.check("SELECT pg_sleep(1)"),
        Err(QueryError::Denied(_))
    ));
}

#[test]
fn functions_in_subqueries_and_from_are_checked() {
    denied("SELECT count(*) FROM jr_work_queue WHERE EXISTS (SELECT pg_sleep(1))");
    denied("SELECT * FROM pg_sleep(1)");
    denied("SELECT * FROM jr_work_queue WHERE title = (SELECT current_setting('x'))");
}

#[test]
fn cte_cannot_hide_a_forward_table_reference() {
    // Without RECURSIVE, `pg_authid` inside the first CTE is the catalog,
    // not the CTE defined after it.
    let reason =
        denied("WITH a AS (SELECT * FROM pg_authid), pg_authid AS (SELECT 1) SELECT * FROM a");
    assert!(reason.contains("system catalog"), "{reason}");
    let reason = denied(
        "WITH a AS (SELECT * FROM duyuktv_tickets), duyuktv_tickets AS (SELECT 1) SELECT * FROM a",
    );
    assert!(reason.contains("not declared"), "{reason}");
}

#[test]
fn cte_name_is_visible_in_body_and_later_ctes() {
    guard()
        .check("WITH a AS (SELECT 1 AS n), b AS (SELECT n FROM a) SELECT * FROM b, a")
        .unwrap();
    guard()
        .check(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) \
             SELECT count(*) FROM r",
        )
        .unwrap();
}

#[test]
fn cte_scope_ends_with_its_subquery() {
    let reason = denied(
        "SELECT * FROM (WITH duyuktv_tickets AS (SELECT 1) SELECT * FROM duyuktv_tickets) s, \
         duyuktv_tickets",
    );
    assert!(reason.contains("not declared"), "{reason}");
}

#[test]
fn quoted_identifiers_keep_case() {
    let reason = denied("SELECT * FROM \"JR_WORK_QUEUE\"");
    assert!(reason.contains("JR_WORK_QUEUE"), "{reason}");
    guard().check("SELECT * FROM \"jr_work_queue\"").unwrap();
}

#[test]
fn unparsable_text_is_invalid() {
    assert!(matches!(
        guard().check("SELEKT 1"),
        Err(QueryError::Invalid(_))
    ));
}

#[test]
fn oversized_text_is_denied() {
    let sql = format!("SELECT 1 -- {}", "x".repeat(MAX_SQL_BYTES));
    assert!(matches!(guard().check(&sql), Err(QueryError::Denied(_))));
}

#[test]
fn remembered_decision_matches_first() {
    let guard = guard();
    for _ in 0..3 {
        assert!(guard.check("SELECT count(*) FROM jr_work_queue").is_ok());
        assert!(matches!(
            guard.check("SELECT pg_sleep(1)"),
            Err(QueryError::Denied(_))
        ));
    }
}
