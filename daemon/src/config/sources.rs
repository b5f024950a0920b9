//! `[[source]]` tables: the common keys checked here, every other key kept
//! as a plugin option (converted to JSON) for the plugin's own check.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::Value as Json;
use toml_edit::{Item, TableLike, Value};

use super::span::{FileCtx, describe, describe_value, entries};
use super::{
    AvroFormat, ConfigError, Delivery, Format, Location, Shape, SourceConfig, SubjectStrategy,
    TopicPart, TopicTemplate, source_key, source_label,
};

const NAME_RULE: &str = "a source name must be 1 to 128 characters of A-Z, a-z, 0-9, `_`, `.`, `-`, and not `.` or `..` (it becomes part of file names and metric labels)";
/// The column `format = "string"` sends when `value_column` is not set:
/// the raw line of the `logfile` plugin.
const DEFAULT_VALUE_COLUMN: &str = "line";
/// Default of `transaction_interval_ms`: the longest an exactly-once
/// transaction stays open. See the benchmark figures in docs/operating.md.
pub const DEFAULT_TRANSACTION_INTERVAL_MS: u64 = 1000;
/// Default of `transaction_max_records`.
pub const DEFAULT_TRANSACTION_MAX_RECORDS: u64 = 1_000_000;
const TOPIC_RULE: &str = "not a valid Kafka topic name: use 1 to 249 characters of A-Z, a-z, 0-9, `.`, `_`, `-`, and not `.` or `..`";

/// Collects `[[source]]` tables across files.
pub(super) struct Sources<'a> {
    pub(super) list: &'a mut Vec<SourceConfig>,
    pub(super) names: &'a mut BTreeMap<String, Location>,
    /// The `type` of every source read, sound or not, so a type no plugin
    /// provides is reported even for a source with other errors.
    pub(super) types: &'a mut Vec<super::TypeRef>,
}

impl Sources<'_> {
    /// The `source` key of a file: `[[source]]` tables, or an inline array
    /// of inline tables.
    pub(super) fn read_all(&mut self, ctx: &mut FileCtx<'_>, item: &Item) {
        match item {
            Item::ArrayOfTables(tables) => {
                for (index, table) in tables.iter().enumerate() {
                    self.read_one(ctx, table, table.span(), index);
                }
            }
            Item::Value(Value::Array(array)) => {
                for (index, value) in array.iter().enumerate() {
                    match value.as_inline_table() {
                        Some(table) => self.read_one(ctx, table, value.span(), index),
                        None => ctx.wrong_type(
                            value.span(),
                            &format!("source[#{}]", index + 1),
                            "a table",
                            describe_value(value),
                        ),
                    }
                }
            }
            _ => ctx.wrong_type(
                item.span(),
                "source",
                "an array of tables ([[source]])",
                describe(item),
            ),
        }
    }

    fn read_one(
        &mut self,
        ctx: &mut FileCtx<'_>,
        table: &dyn TableLike,
        span: Option<Range<usize>>,
        index: usize,
    ) {
        let errors_before = ctx.errors.len();
        // Errors name the source by its written name when that is usable,
        // else by its position in the file.
        let label = match table.get("name").and_then(Item::as_str) {
            Some(name) if valid_name(name) => source_label(name),
            _ => format!("source[#{}]", index + 1),
        };
        let location = ctx.location(span);
        let mut name = None;
        let mut source_type = None;
        let mut type_location = None;
        let mut topic = None;
        let mut record_key = None;
        let mut dead_letter_topic = None;
        let mut format = Format::Json;
        let mut value_column: Option<(String, Option<Range<usize>>)> = None;
        let mut avro = AvroKeys::default();
        let mut shape = Shape::default();
        let mut topic_template: Option<TopicTemplate> = None;
        let mut max_topics: Option<(usize, Option<Range<usize>>)> = None;
        let mut enabled = true;
        let mut delivery = Delivery::AtLeastOnce;
        let mut delivery_location = None;
        let mut transaction_interval_ms = DEFAULT_TRANSACTION_INTERVAL_MS;
        let mut transaction_max_records = DEFAULT_TRANSACTION_MAX_RECORDS;
        let mut shards: Option<(u32, Location)> = None;
        let mut options = serde_json::Map::new();
        let mut option_locations = BTreeMap::new();

        for (field, key_span, item) in entries(table) {
            let key = source_key(&label, field);
            match field {
                "name" => {
                    if let Some(value) = ctx.string(item, &key) {
                        if valid_name(&value) {
                            name = Some((value, item.span()));
                        } else {
                            ctx.error(item.span(), &key, NAME_RULE);
                        }
                    }
                }
                "type" => {
                    source_type = ctx.non_empty_string(item, &key);
                    type_location = Some(ctx.location(item.span()));
                }
                "topic" => {
                    if let Some(value) = ctx.string(item, &key) {
                        match TopicTemplate::parse(&value) {
                            Ok(Some(template)) => {
                                let literal: String = template
                                    .parts
                                    .iter()
                                    .map(|p| match p {
                                        TopicPart::Literal(l) => l.as_str(),
                                        TopicPart::Column(_) => "x",
                                    })
                                    .collect();
                                if valid_topic(&literal) {
                                    topic_template = Some(template);
                                    topic = Some(value);
                                } else {
                                    ctx.error(item.span(), &key, TOPIC_RULE);
                                }
                            }
                            Ok(None) if valid_topic(&value) => topic = Some(value),
                            Ok(None) => ctx.error(item.span(), &key, TOPIC_RULE),
                            Err(e) => ctx.error(item.span(), &key, format!("topic template: {e}")),
                        }
                    }
                }
                "max_topics" => {
                    if let Some(value) = ctx.integer(item, &key, 1, 10_000) {
                        max_topics = Some((value, item.span()));
                    }
                }
                "key" => record_key = ctx.non_empty_string(item, &key),
                "dead_letter_topic" => {
                    if let Some(value) = ctx.string(item, &key) {
                        if valid_topic(&value) {
                            dead_letter_topic = Some(value);
                        } else {
                            ctx.error(item.span(), &key, TOPIC_RULE);
                        }
                    }
                }
                "format" => match ctx.string(item, &key).as_deref() {
                    Some("json") => format = Format::Json,
                    Some("string") => {
                        format = Format::String {
                            value_column: DEFAULT_VALUE_COLUMN.to_owned(),
                        }
                    }
                    Some("avro") => {
                        format = Format::Avro(AvroFormat {
                            record_name: String::new(),
                            namespace: None,
                            subject: SubjectStrategy::Topic,
                            key_avro: false,
                        });
                    }
                    Some("connect_json") => format = Format::ConnectJson,
                    Some(_) => ctx.error(
                        item.span(),
                        &key,
                        "expected one of: json, string, avro, connect_json",
                    ),
                    None => {}
                },
                "avro_record_name" | "avro_namespace" => {
                    if let Some(value) = ctx.non_empty_string(item, &key) {
                        if valid_avro_name(&value, field == "avro_namespace") {
                            avro.set(field, value, item.span());
                        } else {
                            ctx.error(item.span(), &key, AVRO_NAME_RULE);
                        }
                    }
                }
                "subject_name_strategy" => match ctx.string(item, &key).as_deref() {
                    Some(v @ ("topic" | "record" | "topic_record")) => {
                        avro.set(field, v.to_owned(), item.span());
                    }
                    Some(_) => ctx.error(
                        item.span(),
                        &key,
                        "expected one of: topic, record, topic_record",
                    ),
                    None => {}
                },
                "key_format" => match ctx.string(item, &key).as_deref() {
                    Some(v @ ("string" | "avro")) => avro.set(field, v.to_owned(), item.span()),
                    Some(_) => ctx.error(item.span(), &key, "expected one of: string, avro"),
                    None => {}
                },
                "value_column" => {
                    if let Some(column) = ctx.non_empty_string(item, &key) {
                        value_column = Some((column, item.span()));
                    }
                }
                "headers" => {
                    if let Some(columns) = string_list(ctx, item, &key) {
                        shape.headers = columns;
                    }
                }
                "timestamp" => shape.timestamp = ctx.non_empty_string(item, &key),
                "rename" => {
                    if let Some(table) = item.as_table_like() {
                        for (old, _, new) in entries(table) {
                            let k = format!("{key}.{old}");
                            if let Some(new) = ctx.non_empty_string(new, &k) {
                                shape.rename.insert(old.to_owned(), new);
                            }
                        }
                    } else {
                        ctx.error(
                            item.span(),
                            &key,
                            "expected a table of column names, such as { old = \"new\" }",
                        );
                    }
                }
                "enabled" => {
                    if let Some(value) = ctx.boolean(item, &key) {
                        enabled = value;
                    }
                }
                "delivery" => {
                    delivery_location = Some(ctx.location(key_span));
                    match ctx.string(item, &key).as_deref() {
                        Some("at_least_once") => delivery = Delivery::AtLeastOnce,
                        Some("exactly_once") => delivery = Delivery::ExactlyOnce,
                        Some(_) => ctx.error(
                            item.span(),
                            &key,
                            "expected one of: at_least_once, exactly_once",
                        ),
                        None => {}
                    }
                }
                "transaction_interval_ms" => {
                    if let Some(value) = ctx.integer(item, &key, 1, 600_000) {
                        transaction_interval_ms = value;
                    }
                }
                "transaction_max_records" => {
                    if let Some(value) = ctx.integer(item, &key, 1, i64::MAX) {
                        transaction_max_records = value;
                    }
                }
                "shards" => {
                    if let Some(value) = ctx.integer(item, &key, 1, MAX_SHARDS) {
                        shards = Some((value, ctx.location(key_span)));
                    }
                }
                "shard" => ctx.error(
                    key_span,
                    &key,
                    "set by the daemon for each unit of a split source; write `shards = N`",
                ),
                _ => {
                    option_locations.insert(field.to_owned(), ctx.location(key_span));
                    if let Some(value) = item_to_json(ctx, item, &key) {
                        options.insert(field.to_owned(), value);
                    }
                }
            }
        }
        match (&mut format, value_column) {
            (Format::String { value_column }, Some((column, _))) => *value_column = column,
            (Format::Json | Format::Avro(_) | Format::ConnectJson, Some((_, span))) => ctx.error(
                span,
                &source_key(&label, "value_column"),
                "only used with format = \"string\"",
            ),
            (_, None) => {}
        }
        match (&mut topic_template, max_topics) {
            (Some(template), Some((max, _))) => template.max_topics = max,
            (None, Some((_, span))) => ctx.error(
                span,
                &source_key(&label, "max_topics"),
                "only used when `topic` is a template such as \"applog.{level}\"",
            ),
            _ => {}
        }
        match &mut format {
            Format::Avro(settings) => {
                let name = name.as_ref().map_or("", |(n, _)| n.as_str());
                avro.apply(settings, name);
            }
            _ => {
                for (field, span) in avro.given() {
                    ctx.error(
                        span,
                        &source_key(&label, field),
                        "only used with format = \"avro\"",
                    );
                }
            }
        }
        for required in ["name", "type", "topic"] {
            if !table.contains_key(required) {
                ctx.errors.push(ConfigError::new(
                    Some(location.clone()),
                    Some(source_key(&label, required)),
                    "required key is missing",
                ));
            }
        }

        // Dead letters need somewhere to go before the first bad row, not
        // at it: the policy is checked here for every plugin that follows
        // the `on_error` convention.
        if options.get("on_error").and_then(serde_json::Value::as_str) == Some("dead_letter")
            && dead_letter_topic.is_none()
            && let Some(at) = option_locations.get("on_error")
        {
            ctx.errors.push(ConfigError::new(
                Some(at.clone()),
                Some(source_key(&label, "on_error")),
                "`dead_letter` needs `dead_letter_topic`, the topic bad rows are sent to",
            ));
        }

        if let Some((name, name_span)) = &name {
            let here = ctx.location(name_span.clone());
            match self.names.get(name) {
                Some(first) => ctx.error(
                    name_span.clone(),
                    &source_key(&label, "name"),
                    format!("duplicate source name; first defined at {first}"),
                ),
                None => {
                    self.names.insert(name.clone(), here);
                }
            }
        }

        if let Some(source_type) = &source_type
            && let Some(at) = type_location.clone()
        {
            self.types.push(super::TypeRef {
                source: label.clone(),
                source_type: source_type.clone(),
                location: at,
            });
        }
        if ctx.errors.len() != errors_before {
            return;
        }
        if let (Some((name, _)), Some(source_type), Some(topic)) = (name, source_type, topic) {
            let source = SourceConfig {
                name,
                source_type,
                topic,
                key: record_key,
                dead_letter_topic,
                format,
                shape,
                topic_template,
                enabled,
                delivery,
                transaction_interval_ms,
                transaction_max_records,
                delivery_location,
                options,
                location,
                option_locations,
                split: None,
            };
            match shards {
                Some((count, at)) if count > 1 => self.list.extend(split(&source, count, &at)),
                _ => self.list.push(source),
            }
        }
    }
}

/// The most units a source may be split into.
const MAX_SHARDS: i64 = 1024;

/// The units of a source with `shards = count`: `<name>@<i>of<count>`, each
/// with the plugin options `shard = i` and `shards = count`. `@` is outside
/// the alphabet of source names, so no source can take a unit's name; each
/// unit has its own checkpoints, transactional id, status and metrics, and
/// in a cluster each may run on another member.
fn split(source: &SourceConfig, count: u32, at: &Location) -> Vec<SourceConfig> {
    (0..count)
        .map(|index| {
            let mut unit = source.clone();
            unit.name = format!("{}@{index}of{count}", source.name);
            unit.options.insert("shard".to_owned(), Json::from(index));
            unit.options.insert("shards".to_owned(), Json::from(count));
            for key in ["shard", "shards"] {
                unit.option_locations.insert(key.to_owned(), at.clone());
            }
            unit.split = Some(super::Split {
                source: source.name.clone(),
                index,
                count,
                location: at.clone(),
            });
            unit
        })
        .collect()
}

/// An array of non-empty strings.
fn string_list(ctx: &mut FileCtx<'_>, item: &Item, key: &str) -> Option<Vec<String>> {
    let Some(array) = item.as_array() else {
        ctx.error(item.span(), key, "expected an array of column names");
        return None;
    };
    let mut out = Vec::with_capacity(array.len());
    for value in array {
        match value.as_str() {
            Some(s) if !s.is_empty() => out.push(s.to_owned()),
            _ => {
                ctx.error(value.span(), key, "expected a non-empty column name");
                return None;
            }
        }
    }
    Some(out)
}

/// 1 to 128 characters of `[A-Za-z0-9_.-]`, not `.` or `..`.
fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Kafka's own rule: 1 to 249 characters of `[A-Za-z0-9._-]`, not `.` or
/// `..`.
fn valid_topic(topic: &str) -> bool {
    (1..=249).contains(&topic.len())
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A plugin option as JSON: integers stay integers, datetimes become
/// strings, strings are substituted. Nesting depth is bounded by toml_edit's
/// parser, so the recursion is too.
fn item_to_json(ctx: &mut FileCtx<'_>, item: &Item, key: &str) -> Option<Json> {
    match item {
        Item::None => None,
        Item::Value(value) => value_to_json(ctx, value, key),
        Item::Table(table) => table_to_json(ctx, table, key),
        Item::ArrayOfTables(tables) => {
            let mut out = Vec::with_capacity(tables.len());
            let mut ok = true;
            for (index, table) in tables.iter().enumerate() {
                match table_to_json(ctx, table, &format!("{key}[{index}]")) {
                    Some(value) => out.push(value),
                    None => ok = false,
                }
            }
            ok.then_some(Json::Array(out))
        }
    }
}

fn table_to_json(ctx: &mut FileCtx<'_>, table: &dyn TableLike, key: &str) -> Option<Json> {
    let mut out = serde_json::Map::new();
    let mut ok = true;
    for (name, _, item) in entries(table) {
        match item_to_json(ctx, item, &format!("{key}.{name}")) {
            Some(value) => {
                out.insert(name.to_owned(), value);
            }
            None => ok = false,
        }
    }
    ok.then_some(Json::Object(out))
}

fn value_to_json(ctx: &mut FileCtx<'_>, value: &Value, key: &str) -> Option<Json> {
    match value {
        Value::String(raw) => ctx
            .substitute(raw.value(), value.span(), key)
            .map(Json::String),
        Value::Integer(number) => Some(Json::from(*number.value())),
        Value::Float(number) => match serde_json::Number::from_f64(*number.value()) {
            Some(number) => Some(Json::Number(number)),
            None => {
                ctx.error(
                    value.span(),
                    key,
                    "nan and infinite floats cannot be passed to plugins (JSON cannot represent them)",
                );
                None
            }
        },
        Value::Boolean(flag) => Some(Json::Bool(*flag.value())),
        Value::Datetime(datetime) => Some(Json::String(datetime.value().to_string())),
        Value::Array(array) => {
            let mut out = Vec::with_capacity(array.len());
            let mut ok = true;
            for (index, element) in array.iter().enumerate() {
                match value_to_json(ctx, element, &format!("{key}[{index}]")) {
                    Some(value) => out.push(value),
                    None => ok = false,
                }
            }
            ok.then_some(Json::Array(out))
        }
        Value::InlineTable(table) => table_to_json(ctx, table, key),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::load::load_from_str;
    use super::super::load::test_support::{SOURCE, errors_of, no_env, parse};
    use super::super::{OptionSchema, check_plugin_options};
    use super::*;

    #[test]
    fn source_keys_are_checked() {
        let text = r#"
[[source]]
name = "bad name"
type = ""
topic = ".."
format = "protobuf"

[[source]]
topic = "t"

[[source]]
name = "ok"
type = "datagen"
topic = "t"
key = 5
"#;
        let errors = errors_of(load_from_str(Path::new("/etc/t.toml"), text, &no_env));
        assert_eq!(
            errors,
            [
                format!("/etc/t.toml:3:8: `source[#1].name`: {NAME_RULE}"),
                "/etc/t.toml:4:8: `source[#1].type`: must not be empty".to_owned(),
                format!("/etc/t.toml:5:9: `source[#1].topic`: {TOPIC_RULE}"),
                "/etc/t.toml:6:10: `source[#1].format`: expected one of: json, string, avro, connect_json".to_owned(),
                "/etc/t.toml:8:1: `source[#2].name`: required key is missing".to_owned(),
                "/etc/t.toml:8:1: `source[#2].type`: required key is missing".to_owned(),
                "/etc/t.toml:15:7: `source[ok].key`: expected a string, found an integer"
                    .to_owned(),
            ]
        );
    }

    const REGISTRY: &str = "[schema_registry]\nurl = \"http://127.0.0.1:8081\"\n";

    #[test]
    fn a_topic_with_braces_is_a_template_of_columns_and_literals() {
        let config = parse(&SOURCE.replace(
            "topic = \"orders\"",
            "topic = \"app.{level}-{host}\"\nmax_topics = 7",
        ))
        .unwrap();
        let t = config.sources[0].topic_template.as_ref().unwrap();
        assert_eq!(t.max_topics, 7);
        assert_eq!(
            t.parts,
            [
                TopicPart::Literal("app.".into()),
                TopicPart::Column("level".into()),
                TopicPart::Literal("-".into()),
                TopicPart::Column("host".into()),
            ]
        );
        for bad in ["app.{level", "app.}x", "app.{}", "a b.{x}"] {
            let errors = errors_of(parse(
                &SOURCE.replace("topic = \"orders\"", &format!("topic = \"{bad}\"")),
            ));
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert!(errors[0].contains("`source[orders].topic`"), "{errors:?}");
        }
        let errors = errors_of(parse(&format!("{SOURCE}max_topics = 3\n")));
        assert!(
            errors[0].contains("only used when `topic` is a template"),
            "{errors:?}"
        );
    }

    #[test]
    fn avro_without_a_schema_registry_is_an_error() {
        let errors = errors_of(parse(&format!("{SOURCE}format = \"avro\"\n")));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("`source[orders].format`")
                && errors[0].contains("[schema_registry]"),
            "{errors:?}"
        );
    }

    #[test]
    fn avro_format_names_its_record_after_the_source_unless_told() {
        let config = parse(&format!("{SOURCE}format = \"avro\"\n{REGISTRY}")).unwrap();
        let Format::Avro(avro) = &config.sources[0].format else {
            panic!("{:?}", config.sources[0].format);
        };
        assert_eq!(avro.record_name, "orders");
        assert_eq!(avro.subject, SubjectStrategy::Topic);
        assert!(!avro.key_avro);
        let config = parse(&format!(
            "{SOURCE}format = \"avro\"\navro_record_name = \"Order\"\navro_namespace = \"shop.v1\"\n\
             subject_name_strategy = \"topic_record\"\nkey_format = \"avro\"\n{REGISTRY}"
        ))
        .unwrap();
        let Format::Avro(avro) = &config.sources[0].format else {
            panic!();
        };
        assert_eq!(
            (avro.record_name.as_str(), avro.namespace.as_deref()),
            ("Order", Some("shop.v1"))
        );
        assert_eq!(avro.subject, SubjectStrategy::TopicRecord);
        assert!(avro.key_avro);
        assert!(config.sources[0].options.is_empty());
        assert_eq!(avro_name_of("web-logs.2"), "web_logs_2");
        assert_eq!(avro_name_of("9x"), "_9x");
    }

    #[test]
    fn avro_keys_without_avro_or_with_bad_names_are_errors() {
        let errors = errors_of(parse(&format!("{SOURCE}avro_record_name = \"Order\"\n")));
        assert_eq!(
            errors,
            ["/t.toml:5:20: `source[orders].avro_record_name`: only used with format = \"avro\""]
        );
        let errors = errors_of(parse(&format!(
            "{SOURCE}format = \"avro\"\navro_record_name = \"9-Order\"\n{REGISTRY}"
        )));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("expected an Avro name"), "{errors:?}");
    }

    #[test]
    fn string_format_takes_a_value_column_defaulting_to_line() {
        let config = parse(&format!("{SOURCE}format = \"string\"\n")).unwrap();
        assert_eq!(
            config.sources[0].format,
            Format::String {
                value_column: "line".into()
            }
        );
        let config = parse(&format!(
            "{SOURCE}format = \"string\"\nvalue_column = \"message\"\n"
        ))
        .unwrap();
        assert_eq!(
            config.sources[0].format,
            Format::String {
                value_column: "message".into()
            }
        );
        assert!(!config.sources[0].options.contains_key("value_column"));
        let errors = errors_of(parse(&format!("{SOURCE}value_column = \"line\"\n")));
        assert_eq!(
            errors,
            ["/t.toml:5:16: `source[orders].value_column`: only used with format = \"string\""]
        );
        let errors = errors_of(parse(&format!(
            "{SOURCE}format = \"string\"\nvalue_column = \"\"\n"
        )));
        assert_eq!(
            errors,
            ["/t.toml:6:16: `source[orders].value_column`: must not be empty"]
        );
    }

    #[test]
    fn name_and_topic_rules() {
        assert!(valid_name("a-b_c.1"));
        assert!(valid_name(&"x".repeat(128)));
        assert!(!valid_name(&"x".repeat(129)));
        assert!(!valid_name(""));
        assert!(!valid_name(".."));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("ü"));
        assert!(valid_topic(&"t".repeat(249)));
        assert!(!valid_topic(&"t".repeat(250)));
        assert!(!valid_topic("."));
        assert!(!valid_topic("a b"));
    }

    #[test]
    fn inline_array_of_source_tables_is_accepted() {
        let text = "source = [{ name = \"a\", type = \"t\", topic = \"t\" }, 5]\n";
        let errors = errors_of(parse(text));
        assert_eq!(
            errors,
            ["/t.toml:1:52: `source[#2]`: expected a table, found an integer"]
        );
        let text = "[source]\nname = \"a\"\n";
        let errors = errors_of(parse(text));
        assert_eq!(
            errors,
            ["/t.toml:1:1: `source`: expected an array of tables ([[source]]), found a table"]
        );
    }

    #[test]
    fn source_equality_ignores_location() {
        let a = load_from_str(Path::new("/a.toml"), SOURCE, &no_env).unwrap();
        let b = load_from_str(Path::new("/b.toml"), &format!("\n\n{SOURCE}"), &no_env).unwrap();
        assert_ne!(a.sources[0].location, b.sources[0].location);
        assert_eq!(a.sources[0], b.sources[0]);
        let c = load_from_str(
            Path::new("/a.toml"),
            &format!("{SOURCE}rate = 1\n"),
            &no_env,
        )
        .unwrap();
        assert_ne!(a.sources[0], c.sources[0]);
    }

    #[test]
    fn plugin_options_carry_locations_for_later_checks() {
        let text = format!("{SOURCE}rate = \"fast\"\nmode = \"x\"\n");
        let config = load_from_str(Path::new("/t.toml"), &text, &no_env).unwrap();
        let schema = [
            OptionSchema {
                name: "rate",
                kind: "integer",
                required: false,
                choices: &[],
                minimum: None,
                maximum: None,
            },
            OptionSchema {
                name: "mode",
                kind: "string",
                required: false,
                choices: &[],
                minimum: None,
                maximum: None,
            },
        ];
        let errors: Vec<String> = check_plugin_options(&config.sources[0], &schema)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            ["/t.toml:5:1: `source[orders].rate`: expected an integer, found a string"]
        );
    }

    #[test]
    fn plugin_options_become_json_with_locations() {
        let config = parse(
            r#"# line 1
[[source]]
name = "orders"
type = "datagen"
topic = "orders.v1"
key = "id"
format = "json"
enabled = false
rate_per_sec = 100
ratio = 0.25
started = 1979-05-27T07:32:00Z
fields = ["a", 1]
shape = { kind = "zipf", s = 1 }
[source.nested]
deep = "yes"
[[source.rows]]
n = 1
"#,
        )
        .unwrap();
        let [source] = config.sources.as_slice() else {
            panic!("one source expected: {:?}", config.sources)
        };
        assert_eq!(source.name, "orders");
        assert_eq!(source.source_type, "datagen");
        assert_eq!(source.topic, "orders.v1");
        assert_eq!(source.key.as_deref(), Some("id"));
        assert_eq!(source.format, Format::Json);
        assert!(!source.enabled);
        assert_eq!(
            Json::Object(source.options.clone()),
            serde_json::json!({
                "rate_per_sec": 100,
                "ratio": 0.25,
                "started": "1979-05-27T07:32:00Z",
                "fields": ["a", 1],
                "shape": { "kind": "zipf", "s": 1 },
                "nested": { "deep": "yes" },
                "rows": [{ "n": 1 }],
            })
        );
        assert!(source.options["rate_per_sec"].is_i64());
        assert_eq!((source.location.line, source.location.column), (2, 1));
        let rate = &source.option_locations["rate_per_sec"];
        assert_eq!(
            (rate.file.to_str(), rate.line, rate.column),
            (Some("/t.toml"), 9, 1)
        );
        assert_eq!(source.option_locations["nested"].line, 14);
    }

    #[test]
    fn dead_letter_policy_needs_a_dead_letter_topic() {
        let errors = errors_of(parse(&format!("{SOURCE}on_error = \"dead_letter\"\n")));
        assert_eq!(
            errors,
            [
                "/t.toml:5:1: `source[orders].on_error`: `dead_letter` needs `dead_letter_topic`, the topic bad rows are sent to"
            ]
        );
        let config = parse(&format!(
            "{SOURCE}on_error = \"dead_letter\"\ndead_letter_topic = \"orders.dlq\"\n"
        ))
        .unwrap();
        assert_eq!(
            config.sources[0].dead_letter_topic.as_deref(),
            Some("orders.dlq")
        );
        assert!(!config.sources[0].options.contains_key("dead_letter_topic"));
        let errors = errors_of(parse(&format!("{SOURCE}dead_letter_topic = \"a b\"\n")));
        assert_eq!(
            errors,
            [format!(
                "/t.toml:5:21: `source[orders].dead_letter_topic`: {TOPIC_RULE}"
            )]
        );
    }

    #[test]
    fn non_finite_float_option_is_refused() {
        let errors = errors_of(parse(&format!(
            "{SOURCE}x = nan
y = [1.0, -inf]
"
        )));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("/t.toml:5:5: `source[orders].x`: nan and infinite"));
        assert!(errors[1].starts_with("/t.toml:6:11: `source[orders].y[1]`: nan and infinite"));
    }
}

const AVRO_NAME_RULE: &str = "expected an Avro name: a letter or `_`, then letters, digits or \
                              `_` (a namespace may join such names with dots)";

/// Whether `name` is an Avro name (or, with `dotted`, a namespace).
fn valid_avro_name(name: &str, dotted: bool) -> bool {
    let part = |p: &str| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if dotted {
        name.split('.').all(part)
    } else {
        part(name)
    }
}

/// A source name made an Avro name: other characters become `_`, and a
/// leading digit gets a `_` before it.
fn avro_name_of(source: &str) -> String {
    let mut name: String = source
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

/// The Avro keys of a `[[source]]`, kept until its `format` is known.
#[derive(Default)]
struct AvroKeys {
    given: Vec<(&'static str, String, Option<Range<usize>>)>,
}

impl AvroKeys {
    fn set(&mut self, field: &str, value: String, span: Option<Range<usize>>) {
        let field = match field {
            "avro_record_name" => "avro_record_name",
            "avro_namespace" => "avro_namespace",
            "subject_name_strategy" => "subject_name_strategy",
            _ => "key_format",
        };
        self.given.push((field, value, span));
    }

    fn get(&self, field: &str) -> Option<&str> {
        self.given
            .iter()
            .find(|(f, ..)| *f == field)
            .map(|(_, v, _)| v.as_str())
    }

    fn apply(&self, settings: &mut AvroFormat, source_name: &str) {
        settings.record_name = self
            .get("avro_record_name")
            .map_or_else(|| avro_name_of(source_name), str::to_owned);
        settings.namespace = self.get("avro_namespace").map(str::to_owned);
        settings.subject = match self.get("subject_name_strategy") {
            Some("record") => SubjectStrategy::Record,
            Some("topic_record") => SubjectStrategy::TopicRecord,
            _ => SubjectStrategy::Topic,
        };
        settings.key_avro = self.get("key_format") == Some("avro");
    }

    fn given(&self) -> impl Iterator<Item = (&'static str, Option<Range<usize>>)> + '_ {
        self.given.iter().map(|(f, _, span)| (*f, span.clone()))
    }
}
