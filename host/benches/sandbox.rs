//! What the sandbox costs per detector call.
//!
//! Each case runs against a real PostgreSQL cluster started by the bench:
//!
//! - `native/select-1`: the query guard, one `SELECT 1` through the query
//!   capability's executor (read-only transaction and all) and the finding,
//!   in plain Rust: the work without the sandbox.
//! - `sandbox/detect-select-1`: a fresh store, instantiation from the
//!   pre-instantiated component and one `detect` call of the bench-probe
//!   plugin doing the same query and finding.
//! - `sandbox/describe`: a fresh store, instantiation and `describe`, with
//!   no database at all: the sandbox's fixed cost.
//!
//! The sandbox overhead per call is `sandbox/detect-select-1` minus
//! `native/select-1`. Run with `cargo bench --bench sandbox`; the figures
//! and the machine are on docs/benchmarks.md.

#[path = "../../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::collections::BTreeMap;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use tpm_autonomic::config::DatabaseConfig;
use tpm_autonomic::db::Database;
use tpm_autonomic::plugin::limits::Limits;
use tpm_autonomic::plugin::PluginHost;
use tpm_autonomic::query::execute::{self, ResultLimits};
use tpm_autonomic::query::guard::QueryGuard;
use tpm_autonomic::query::QuerySettings;

fn database(url: &str) -> Database {
    let pg: tokio_postgres::Config = url.parse().expect("the test URL parses");
    Database::new(&DatabaseConfig {
        display: "bench".into(),
        pg,
        pool_size: 4,
        password: None,
    })
}

fn sandbox(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = support::PgCluster::start();
    let db = runtime.block_on(cluster.database("bench_sandbox"));
    let database = database(&db.url());

    let host = PluginHost::new(
        Limits::default(),
        QuerySettings::default(),
        BTreeMap::new(),
        None,
        4,
    )
    .expect("the engine starts");
    let plugin_path = support::daemon::component("bench-probe");
    let plugin = runtime
        .block_on(host.load_file(Path::new(&plugin_path)))
        .expect("bench-probe loads");

    // Warm the pool so that no case pays for connecting.
    runtime.block_on(database.check()).unwrap();

    let settings = QuerySettings::default();
    let guard = QueryGuard::new(&["jr_work_queue".to_string()], &settings);
    let limits = ResultLimits {
        rows: 10_000,
        bytes: 4 << 20,
    };
    c.bench_function("native/select-1", |b| {
        b.to_async(&runtime).iter(|| async {
            guard.check("SELECT 1 AS n").unwrap();
            let rows = execute::run(&database, &settings, "SELECT 1 AS n", &[], limits)
                .await
                .unwrap();
            let summary = format!("{} rows", rows.rows.len());
            std::hint::black_box(summary);
        })
    });

    c.bench_function("sandbox/detect-select-1", |b| {
        b.to_async(&runtime).iter(|| async {
            let run = host.detect(&plugin, &database).await;
            assert!(run.result.is_ok(), "{:?}", run.result);
            std::hint::black_box(run);
        })
    });

    c.bench_function("sandbox/describe", |b| {
        b.to_async(&runtime).iter(|| async {
            let manifest = host.describe_loaded(&plugin).await.unwrap();
            std::hint::black_box(manifest);
        })
    });

    // The database's time varies far more than the sandbox's on a shared
    // machine, so the overhead is also measured in pairs: one native call
    // and one sandboxed call back to back, the difference taken per pair.
    let pairs = if std::env::args().any(|a| a == "--quick") {
        200
    } else {
        5_000
    };
    let mut native = Vec::with_capacity(pairs);
    let mut sandboxed = Vec::with_capacity(pairs);
    runtime.block_on(async {
        for _ in 0..pairs {
            let started = std::time::Instant::now();
            guard.check("SELECT 1 AS n").unwrap();
            let rows = execute::run(&database, &settings, "SELECT 1 AS n", &[], limits)
                .await
                .unwrap();
            std::hint::black_box(format!("{} rows", rows.rows.len()));
            native.push(started.elapsed().as_secs_f64() * 1e6);

            let started = std::time::Instant::now();
            let run = host.detect(&plugin, &database).await;
            assert!(run.result.is_ok());
            sandboxed.push(started.elapsed().as_secs_f64() * 1e6);
        }
    });
    let mut overhead: Vec<f64> = sandboxed.iter().zip(&native).map(|(s, n)| s - n).collect();
    let median = |values: &mut Vec<f64>| {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (
            values[values.len() / 4],
            values[values.len() / 2],
            values[values.len() * 3 / 4],
        )
    };
    let (n25, n50, n75) = median(&mut native);
    let (s25, s50, s75) = median(&mut sandboxed);
    let (o25, o50, o75) = median(&mut overhead);
    println!("paired, {pairs} pairs (median, quartiles, µs):");
    println!("  native/select-1          {n50:.1} ({n25:.1}–{n75:.1})");
    println!("  sandbox/detect-select-1  {s50:.1} ({s25:.1}–{s75:.1})");
    println!("  sandbox overhead         {o50:.1} ({o25:.1}–{o75:.1})");
}

criterion_group!(benches, sandbox);
criterion_main!(benches);
