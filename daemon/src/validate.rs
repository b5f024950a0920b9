//! Checks that need the plugins: every source's type is provided by a
//! loaded library, and its options satisfy the plugin's declared schema and
//! its own validation. Needs no broker, so operators run it before a reload.

use crate::config::{self, Config, ConfigError, OptionSchema, SourceConfig};
use crate::plugin::PluginRegistry;

/// Every problem of every source, in config order.
pub fn check_sources(config: &Config, registry: &PluginRegistry) -> Vec<ConfigError> {
    let mut errors: Vec<ConfigError> = config
        .sources
        .iter()
        .flat_map(|s| check_source(s, registry))
        .collect();
    // Sources left out for other errors: their type is still checked, so a
    // misspelt plugin name is never hidden behind another mistake.
    for t in &config.types {
        let checked = config
            .sources
            .iter()
            .any(|s| config::source_label(s.written_name()) == t.source);
        if !checked && registry.source_type(&t.source_type).is_none() {
            errors.push(ConfigError::new(
                Some(t.location.clone()),
                Some(config::source_key(&t.source, "type")),
                missing_plugin_message(&t.source_type, registry),
            ));
        }
    }
    errors
}

/// Every problem of one source.
pub fn check_source(source: &SourceConfig, registry: &PluginRegistry) -> Vec<ConfigError> {
    let label = config::source_label(&source.name);
    let Some(info) = registry.source_type(&source.source_type) else {
        return vec![ConfigError::new(
            Some(source.location.clone()),
            Some(config::source_key(&label, "type")),
            missing_plugin_message(&source.source_type, registry),
        )];
    };
    if let Some(split) = &source.split
        && !info.options.iter().any(|o| o.name == "shard")
    {
        // Reported once, for the first unit: the units share the mistake.
        return if split.index == 0 {
            vec![ConfigError::new(
                Some(split.location.clone()),
                Some(config::source_key(
                    &config::source_label(&split.source),
                    "shards",
                )),
                format!(
                    "source type `{}` cannot be split: it reads no input that units could \
                     share (types that can: those with a `shard` option)",
                    source.source_type
                ),
            )]
        } else {
            Vec::new()
        };
    }
    let schema: Vec<OptionSchema<'_>> = info
        .options
        .iter()
        .map(|o| OptionSchema {
            name: &o.name,
            kind: &o.kind,
            required: o.required,
            choices: &o.choices,
            minimum: o.minimum,
            maximum: o.maximum,
        })
        .collect();
    let mut errors = config::check_plugin_options(source, &schema);
    if !errors.is_empty() {
        // The plugin's own checks assume well-typed options.
        return errors;
    }
    let Some(plugin) = registry.get(&source.source_type) else {
        return errors;
    };
    let declares = |key: &str| info.options.iter().any(|o| o.name == key);
    let json = serde_json::Value::Object(source.plugin_options(declares)).to_string();
    for issue in plugin.validate(&source.source_type, &source.name, &json) {
        let location = issue
            .key
            .as_ref()
            .and_then(|k| source.option_locations.get(k))
            .unwrap_or(&source.location)
            .clone();
        errors.push(ConfigError::new(
            Some(location),
            Some(config::source_key(
                &label,
                issue.key.as_deref().unwrap_or("type"),
            )),
            issue.message,
        ));
    }
    errors
}

fn missing_plugin_message(source_type: &str, registry: &PluginRegistry) -> String {
    let known: Vec<&str> = registry.type_names().collect();
    let mut message = format!(
        "no plugin provides source type `{source_type}`{} (available: {})",
        crate::config::did_you_mean(source_type, known.iter().copied()),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    );
    if !registry.errors.is_empty() {
        message.push_str("; libraries that failed to load: ");
        let failed: Vec<String> = registry.errors.iter().map(ToString::to_string).collect();
        message.push_str(&failed.join("; "));
    }
    message
}
