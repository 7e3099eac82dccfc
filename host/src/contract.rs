//! Host bindings of the detector contract, the WIT package in `wit/`.
//!
//! The generated types are the values that cross the sandbox boundary:
//! [`SqlValue`] and [`QueryResult`] for the query capability, [`Manifest`]
//! and [`Finding`] for what a detector exports.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "basin-detector",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [PartialEq],
    });
}

pub use generated::*;

pub use exports::tpm::autonomic::detector::Guest as DetectorExports;
pub use tpm::autonomic::types::{
    Finding, Level, Manifest, Metric, MetricValue, QueryError, QueryResult, Setting, SettingKind,
    SettingSpec, SqlValue,
};

/// Name of the contract package, without its version.
pub const PACKAGE: &str = "tpm:autonomic";

/// Version of the contract package this host implements.
pub const VERSION: &str = "0.1.0";

/// The interface a detector must export, with the version.
pub fn detector_export_name() -> String {
    format!("{PACKAGE}/detector@{VERSION}")
}
