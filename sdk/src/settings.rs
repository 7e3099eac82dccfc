use std::fmt;
use std::ops::RangeInclusive;

use crate::bindings::tpm::autonomic::types::Setting;
use crate::SettingSpec;

/// The effective settings of one `detect` call: the value the operator
/// configured for each setting, or the manifest's default.
///
/// Values arrive as text. The typed readers parse them and fail with a
/// [`SettingError`] that names the setting and the value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    values: Vec<(String, String)>,
}

impl Settings {
    /// Merges the settings the host passed with the manifest's defaults.
    ///
    /// The SDK calls this before [`Detector::detect`](crate::Detector::detect).
    /// It is public so that detector tests can build settings, for example
    /// `Settings::new(&MyDetector::manifest().settings, Vec::new())` for the
    /// defaults. A configured value wins over the default. Values for names
    /// the manifest does not declare are kept as they are.
    pub fn new(specs: &[SettingSpec], configured: Vec<Setting>) -> Self {
        let mut values: Vec<(String, String)> = specs
            .iter()
            .map(|spec| (spec.name.clone(), spec.default_value.clone()))
            .collect();
        for setting in configured {
            match values.iter_mut().find(|(name, _)| *name == setting.name) {
                Some(entry) => entry.1 = setting.value,
                None => values.push((setting.name, setting.value)),
            }
        }
        Settings { values }
    }

    /// Returns the raw text of a setting.
    ///
    /// # Errors
    ///
    /// [`SettingError::Undeclared`] when the setting has neither a value nor
    /// a default, which means the manifest does not declare it.
    pub fn raw(&self, name: &str) -> Result<&str, SettingError> {
        self.values
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| SettingError::Undeclared {
                name: name.to_string(),
            })
    }

    /// Reads a whole-number setting, such as `5` or `-3`. Surrounding
    /// whitespace is ignored.
    pub fn integer(&self, name: &str) -> Result<i64, SettingError> {
        let value = self.raw(name)?;
        value
            .trim()
            .parse::<i64>()
            .map_err(|_| SettingError::invalid(name, value, "is not a whole number"))
    }

    /// Reads a whole-number setting and checks that it lies in `range`.
    pub fn integer_in(&self, name: &str, range: RangeInclusive<i64>) -> Result<i64, SettingError> {
        let number = self.integer(name)?;
        if range.contains(&number) {
            Ok(number)
        } else {
            Err(SettingError::out_of_range(
                name,
                self.raw(name)?,
                range.start(),
                range.end(),
            ))
        }
    }

    /// Reads a number setting, such as `0.7` or `25`. NaN and the
    /// infinities are rejected. Surrounding whitespace is ignored.
    pub fn number(&self, name: &str) -> Result<f64, SettingError> {
        let value = self.raw(name)?;
        match value.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(number),
            _ => Err(SettingError::invalid(name, value, "is not a finite number")),
        }
    }

    /// Reads a number setting and checks that it lies in `range`.
    pub fn number_in(&self, name: &str, range: RangeInclusive<f64>) -> Result<f64, SettingError> {
        let number = self.number(name)?;
        if range.contains(&number) {
            Ok(number)
        } else {
            Err(SettingError::out_of_range(
                name,
                self.raw(name)?,
                range.start(),
                range.end(),
            ))
        }
    }

    /// Reads a `true` / `false` setting (lower case, as the configuration
    /// file writes it). Surrounding whitespace is ignored.
    pub fn boolean(&self, name: &str) -> Result<bool, SettingError> {
        let value = self.raw(name)?;
        match value.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(SettingError::invalid(name, value, "is not true or false")),
        }
    }

    /// Reads a text setting exactly as configured.
    pub fn text(&self, name: &str) -> Result<&str, SettingError> {
        self.raw(name)
    }

    /// Reads a comma-separated text setting, such as `done, closed`, as its
    /// items with surrounding whitespace removed. Empty items are dropped,
    /// so an empty setting gives an empty list.
    pub fn text_list(&self, name: &str) -> Result<Vec<&str>, SettingError> {
        let value = self.raw(name)?;
        Ok(value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect())
    }
}

/// A setting that is missing or whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingError {
    /// The setting has no value and no default: the manifest does not
    /// declare it.
    Undeclared {
        /// The requested setting.
        name: String,
    },
    /// The value does not parse as the setting's type or is out of range.
    Invalid {
        /// The setting.
        name: String,
        /// The value as configured.
        value: String,
        /// The problem with the value, worded to follow it, such as
        /// `is not a whole number`.
        reason: String,
    },
}

impl SettingError {
    /// Creates an [`Invalid`](SettingError::Invalid) error, for checks a
    /// detector makes beyond the typed readers. `reason` completes the
    /// sentence "the value …", for example `is not a known status`.
    pub fn invalid(name: &str, value: &str, reason: impl Into<String>) -> Self {
        SettingError::Invalid {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    fn out_of_range(
        name: &str,
        value: &str,
        min: impl fmt::Display,
        max: impl fmt::Display,
    ) -> Self {
        Self::invalid(
            name,
            value,
            format!("is outside the allowed range {min} to {max}"),
        )
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingError::Undeclared { name } => write!(
                f,
                "setting \"{name}\" has no value and is not declared in the detector's manifest"
            ),
            SettingError::Invalid {
                name,
                value,
                reason,
            } => write!(
                f,
                "invalid setting \"{name}\": the value \"{value}\" {reason}"
            ),
        }
    }
}

impl std::error::Error for SettingError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<SettingSpec> {
        vec![
            SettingSpec::integer("threshold", 5, "failed tasks"),
            SettingSpec::number("confidence-threshold", 0.7, "confidence"),
            SettingSpec::boolean("enabled", true, "switch"),
            SettingSpec::text("status", "in_progress", "status"),
            SettingSpec::text("closed-statuses", "done, closed,,cancelled ", "statuses"),
        ]
    }

    fn configured(pairs: &[(&str, &str)]) -> Settings {
        let values = pairs
            .iter()
            .map(|(name, value)| Setting {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect();
        Settings::new(&specs(), values)
    }

    #[test]
    fn missing_setting_uses_manifest_default() {
        let settings = configured(&[]);

        assert_eq!(settings.integer("threshold"), Ok(5));
        assert_eq!(settings.number("confidence-threshold"), Ok(0.7));
        assert_eq!(settings.boolean("enabled"), Ok(true));
        assert_eq!(settings.text("status"), Ok("in_progress"));
    }

    #[test]
    fn configured_value_overrides_default() {
        let settings = configured(&[("threshold", "12"), ("status", "blocked")]);

        assert_eq!(settings.integer("threshold"), Ok(12));
        assert_eq!(settings.text("status"), Ok("blocked"));
    }

    #[test]
    fn undeclared_setting_is_an_error() {
        let settings = configured(&[("extra", "1")]);

        assert_eq!(settings.integer("extra"), Ok(1));
        let error = settings.integer("window-hours").unwrap_err();
        assert_eq!(
            error,
            SettingError::Undeclared {
                name: "window-hours".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "setting \"window-hours\" has no value and is not declared in the detector's manifest"
        );
    }

    #[test]
    fn integer_parsing() {
        assert_eq!(
            configured(&[("threshold", " 7 ")]).integer("threshold"),
            Ok(7)
        );
        assert_eq!(
            configured(&[("threshold", "-3")]).integer("threshold"),
            Ok(-3)
        );

        for bad in ["abc", "", "5.0", "1e3", "99999999999999999999"] {
            let error = configured(&[("threshold", bad)])
                .integer("threshold")
                .unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("invalid setting \"threshold\": the value \"{bad}\" is not a whole number")
            );
        }
    }

    #[test]
    fn number_parsing() {
        let read = |value: &str| {
            configured(&[("confidence-threshold", value)]).number("confidence-threshold")
        };

        assert_eq!(read("0.69"), Ok(0.69));
        assert_eq!(read("25"), Ok(25.0));
        assert_eq!(read(" -1.5 "), Ok(-1.5));

        for bad in ["NaN", "inf", "-infinity", "0,7", "seven", ""] {
            let error = read(bad).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "invalid setting \"confidence-threshold\": the value \"{bad}\" is not a finite number"
                )
            );
        }
    }

    #[test]
    fn boolean_parsing() {
        assert_eq!(
            configured(&[("enabled", "false")]).boolean("enabled"),
            Ok(false)
        );
        assert_eq!(
            configured(&[("enabled", "true ")]).boolean("enabled"),
            Ok(true)
        );

        for bad in ["yes", "1", "TRUE", ""] {
            let error = configured(&[("enabled", bad)])
                .boolean("enabled")
                .unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("invalid setting \"enabled\": the value \"{bad}\" is not true or false")
            );
        }
    }

    #[test]
    fn integer_range_check() {
        let read =
            |value: &str| configured(&[("threshold", value)]).integer_in("threshold", 1..=100);

        assert_eq!(read("1"), Ok(1));
        assert_eq!(read("100"), Ok(100));
        assert_eq!(
            read("0").unwrap_err().to_string(),
            "invalid setting \"threshold\": the value \"0\" is outside the allowed range 1 to 100"
        );
        assert!(read("101").is_err());
        assert!(read("x").is_err());
    }

    #[test]
    fn number_range_check() {
        let read = |value: &str| {
            configured(&[("confidence-threshold", value)])
                .number_in("confidence-threshold", 0.0..=1.0)
        };

        assert_eq!(read("0"), Ok(0.0));
        assert_eq!(read("1"), Ok(1.0));
        assert_eq!(
            read("1.5").unwrap_err().to_string(),
            "invalid setting \"confidence-threshold\": the value \"1.5\" is outside the allowed range 0 to 1"
        );
    }

    #[test]
    fn text_list_trims_and_drops_empty_items() {
        let settings = configured(&[]);
        assert_eq!(
            settings.text_list("closed-statuses"),
            Ok(vec!["done", "closed", "cancelled"])
        );

        let empty = configured(&[("closed-statuses", " , ")]);
        assert_eq!(empty.text_list("closed-statuses"), Ok(Vec::<&str>::new()));
    }

    #[test]
    fn custom_invalid_error_text() {
        let error = SettingError::invalid("status", "", "is empty");
        assert_eq!(
            error.to_string(),
            "invalid setting \"status\": the value \"\" is empty"
        );
    }
}
