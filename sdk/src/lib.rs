//! Guest-side SDK for tpm-autonomic basin detectors.
//!
//! A detector is a WebAssembly component (target `wasm32-wasip2`) that the
//! tpm-autonomic host loads from `plugins/<name>.wasm` and calls once per
//! monitoring cycle. This crate wraps the `tpm:autonomic@0.1.0` contract in
//! `wit/detector.wit`, so a detector crate depends on this SDK alone:
//!
//! - Implement [`Detector`]. [`Detector::manifest`] describes the tables the
//!   detector reads and the settings it accepts, and [`Detector::detect`]
//!   runs one detection.
//! - Run read-only SQL with [`query`], and read the result by column name
//!   with [`Rows`] and [`Row`].
//! - Read settings with [`Settings`], which falls back to the manifest's
//!   defaults.
//! - Build results with [`Finding::basin`] and [`Finding::info`].
//! - Write to the host's log with the functions in [`log`].
//! - Return errors with `?`. Query, row and setting errors all convert into
//!   [`DetectError`], whose text the host logs and reports.
//! - Export the type with [`export_detector!`].
//!
//! # Example
//!
//! ```no_run
//! use tpm_autonomic_sdk::prelude::*;
//!
//! struct DlqDepth;
//!
//! impl Detector for DlqDepth {
//!     fn manifest() -> Manifest {
//!         Manifest::new("dlq-depth", "0.1.0", "Failed Jr tasks piling up in the dead-letter queue")
//!             .reads("jr_work_queue")
//!             .setting(SettingSpec::integer("threshold", 5, "failed tasks in the window that make a basin"))
//!             .setting(SettingSpec::integer("window-hours", 48, "look-back window, in hours"))
//!     }
//!
//!     fn detect(settings: &Settings) -> Result<Vec<Finding>, DetectError> {
//!         let threshold = settings.integer_in("threshold", 1..=i64::MAX)?;
//!         let window_hours = settings.integer_in("window-hours", 1..=87_600)?;
//!
//!         // Count in SQL: the host caps the rows a query may return.
//!         let rows = query(
//!             "SELECT count(*) AS failed FROM jr_work_queue \
//!              WHERE status = 'failed' \
//!              AND updated_at >= now() - make_interval(hours => $1::int)",
//!             &[Value::Integer(window_hours)],
//!         )?;
//!         let failed = rows.one()?.integer("failed")?;
//!         log::debug(format!("{failed} failed tasks in the last {window_hours} h"));
//!
//!         if failed < threshold {
//!             return Ok(Vec::new());
//!         }
//!         Ok(vec![Finding::basin(
//!             "dlq-depth",
//!             format!("{} in the last {window_hours} h", format_count(failed, "failed Jr task", "failed Jr tasks")),
//!         )
//!         .metric("failed_tasks", failed)
//!         .metric("threshold", threshold)])
//!     }
//! }
//!
//! export_detector!(DlqDepth);
//! ```
//!
//! The crate must be a `cdylib` built for `wasm32-wasip2`, which makes rustc
//! link a component rather than a core module. On other targets the SDK
//! compiles, so pure logic can be unit-tested natively, but any call into the
//! host ([`query`], the [`log`] functions) panics there.

mod detector;
mod error;
mod finding;
pub mod log;
mod manifest;
mod query;
mod rows;
mod settings;

/// Bindings that `wit-bindgen` generates from the contract.
///
/// Detectors use the re-exports at the crate root. The module is public
/// only because the code that `export_detector!` expands to refers to it.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        // The package defines a single world, which is selected without
        // naming it.
        path: "../wit",
        // Detector crates call the export macro through `export_detector!`,
        // so it must be usable from outside this crate.
        pub_export_macro: true,
        default_bindings_module: "::tpm_autonomic_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

pub use bindings::tpm::autonomic::types::{
    Finding, Manifest, Metric, MetricValue, Setting, SettingKind, SettingSpec, SqlValue as Value,
};
pub use detector::Detector;
pub use error::DetectError;
pub use finding::format_count;
pub use query::{query, QueryError, QueryErrorKind};
pub use rows::{Row, RowError, RowIter, Rows};
pub use settings::{SettingError, Settings};

/// Everything a detector needs, for `use tpm_autonomic_sdk::prelude::*`.
pub mod prelude {
    pub use crate::log;
    pub use crate::{
        export_detector, format_count, query, DetectError, Detector, Finding, Manifest,
        MetricValue, QueryError, QueryErrorKind, Row, RowError, Rows, SettingError, SettingSpec,
        Settings, Value,
    };
}

/// Exports a [`Detector`] implementation as the component's `detector`
/// interface.
///
/// Call it once per crate, at module level, with the name of the type (a
/// plain identifier, not a path).
#[macro_export]
macro_rules! export_detector {
    ($detector:ident) => {
        $crate::bindings::export!($detector with_types_in $crate::bindings);
    };
}
