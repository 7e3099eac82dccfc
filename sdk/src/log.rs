//! Log lines written to the host's log, tagged with the detector's name.
//!
//! Each function sends one line. The host applies its own level filter, so
//! `debug` lines may not appear in its log.

use crate::bindings::tpm::autonomic::log::log;
use crate::bindings::tpm::autonomic::types::Level;

/// Writes a line useful only while investigating.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

/// Writes a line about normal progress.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

/// Writes a line about something the operator should look at.
pub fn warning(message: impl AsRef<str>) {
    log(Level::Warning, message.as_ref());
}

/// Writes a line about a failure inside the detector.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}
