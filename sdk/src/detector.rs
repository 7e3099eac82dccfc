use crate::bindings::exports::tpm::autonomic::detector::Guest;
use crate::bindings::tpm::autonomic::types::Setting;
use crate::{DetectError, Finding, Manifest, Settings};

/// A basin detector: the trait a detector crate implements and passes to
/// [`export_detector!`](crate::export_detector).
pub trait Detector {
    /// Describes the detector: name, version, tables it reads and settings
    /// it accepts. The host calls it once when it loads the component, with
    /// no database access, and the SDK calls it again before each
    /// [`detect`](Detector::detect) to fill in setting defaults.
    fn manifest() -> Manifest;

    /// Runs one detection.
    ///
    /// Return an empty list when no basin condition holds: the host counts
    /// that as a clean cycle. An error fails this detector for this cycle
    /// only, and the host logs and reports its text.
    fn detect(settings: &Settings) -> Result<Vec<Finding>, DetectError>;
}

impl<T: Detector> Guest for T {
    fn describe() -> Manifest {
        T::manifest()
    }

    fn detect(settings: Vec<Setting>) -> Result<Vec<Finding>, String> {
        let manifest = T::manifest();
        let settings = Settings::new(&manifest.settings, settings);
        T::detect(&settings).map_err(|error| error.to_string())
    }
}
