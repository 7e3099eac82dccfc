use crate::{Manifest, SettingKind, SettingSpec};

impl Manifest {
    /// Starts a manifest with no tables and no settings.
    ///
    /// `name` is the plugin name in kebab-case, unique among loaded plugins.
    /// By convention it is also the `signal` of the detector's findings.
    /// `version` is usually `env!("CARGO_PKG_VERSION")`. `description` is
    /// one line for the operator.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            tables: Vec::new(),
            settings: Vec::new(),
        }
    }

    /// Declares a table the detector reads. The host rejects a query on any
    /// table that is not declared.
    pub fn reads(mut self, table: impl Into<String>) -> Self {
        self.tables.push(table.into());
        self
    }

    /// Declares a setting with its default.
    pub fn setting(mut self, spec: SettingSpec) -> Self {
        self.settings.push(spec);
        self
    }
}

impl SettingSpec {
    /// Declares a whole-number setting, such as a count or a number of hours.
    pub fn integer(name: impl Into<String>, default: i64, description: impl Into<String>) -> Self {
        Self::with_kind(name, SettingKind::Integer, default.to_string(), description)
    }

    /// Declares a number setting, such as a ratio or a percentage. The
    /// default is written in Rust's shortest form, so `25.0` becomes `25`.
    pub fn number(name: impl Into<String>, default: f64, description: impl Into<String>) -> Self {
        Self::with_kind(name, SettingKind::Number, default.to_string(), description)
    }

    /// Declares a `true` / `false` setting.
    pub fn boolean(name: impl Into<String>, default: bool, description: impl Into<String>) -> Self {
        Self::with_kind(name, SettingKind::Boolean, default.to_string(), description)
    }

    /// Declares a free-text setting.
    pub fn text(
        name: impl Into<String>,
        default: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self::with_kind(name, SettingKind::Text, default.into(), description)
    }

    fn with_kind(
        name: impl Into<String>,
        kind: SettingKind,
        default_value: String,
        description: impl Into<String>,
    ) -> Self {
        SettingSpec {
            name: name.into(),
            kind,
            default_value,
            description: description.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_builder_collects_tables_and_settings() {
        let manifest = Manifest::new("dlq-depth", "1.2.0", "Failed tasks")
            .reads("jr_work_queue")
            .reads("duyuktv_tickets")
            .setting(SettingSpec::integer("threshold", 5, "failed tasks"));

        assert_eq!(manifest.name, "dlq-depth");
        assert_eq!(manifest.version, "1.2.0");
        assert_eq!(manifest.description, "Failed tasks");
        assert_eq!(manifest.tables, ["jr_work_queue", "duyuktv_tickets"]);
        assert_eq!(manifest.settings.len(), 1);
        assert_eq!(manifest.settings[0].name, "threshold");
    }

    #[test]
    fn setting_defaults_use_config_text_form() {
        let cases = [
            (
                SettingSpec::integer("a", -5, ""),
                SettingKind::Integer,
                "-5",
            ),
            (
                SettingSpec::number("b", 0.7, ""),
                SettingKind::Number,
                "0.7",
            ),
            (
                SettingSpec::number("c", 25.0, ""),
                SettingKind::Number,
                "25",
            ),
            (
                SettingSpec::boolean("d", true, ""),
                SettingKind::Boolean,
                "true",
            ),
            (
                SettingSpec::text("e", "in_progress", ""),
                SettingKind::Text,
                "in_progress",
            ),
        ];
        for (spec, kind, default) in cases {
            assert_eq!(spec.kind, kind, "kind of {}", spec.name);
            assert_eq!(spec.default_value, default, "default of {}", spec.name);
        }
    }
}
