//! `format = "avro"`: each row as an Avro datum in the Confluent wire
//! format (magic byte 0, the 4-byte big-endian schema id, the datum).
//!
//! The rows are already typed Arrow batches, so the Avro schema is derived
//! from their Arrow schema (arrow-avro's mapping: nullable fields are a
//! union with null, timestamps `timestamp-millis`/`-micros`, decimals the
//! `decimal` logical type, lists, maps and structs nested) and registered
//! once per distinct schema; the encoder is built once per schema too, so
//! a steady source encodes column by column with no registry call.

use std::sync::{Arc, Mutex};

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_avro::schema::{AvroSchema, FingerprintStrategy};
use arrow_avro::writer::WriterBuilder;
use arrow_avro::writer::format::AvroSoeFormat;
use arrow_schema::{DataType, Schema, SchemaRef};

use super::{SerializeError, Serialized};
use crate::config::{AvroFormat, SubjectStrategy};
use crate::registry::SchemaRegistry;

/// Where an Avro source registers its schemas.
#[derive(Debug, Clone)]
pub struct AvroTarget {
    /// The registry.
    pub registry: Arc<SchemaRegistry>,
    /// The source's topic, for `<topic>-value` subjects.
    pub topic: String,
}

/// The Avro values of one source.
#[derive(Debug)]
pub struct AvroValues {
    settings: AvroFormat,
    target: AvroTarget,
    current: Mutex<Option<Current>>,
}

/// The encoder of the last schema seen.
struct Current {
    arrow: SchemaRef,
    encoder: arrow_avro::writer::Encoder,
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Current").finish_non_exhaustive()
    }
}

impl AvroValues {
    /// Values for a source with these settings.
    pub fn new(settings: AvroFormat, target: AvroTarget) -> AvroValues {
        AvroValues {
            settings,
            target,
            current: Mutex::new(None),
        }
    }

    /// Encodes every row of `batch` into `out`, registering its schema
    /// first when it is new.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Serialized) -> Result<(), SerializeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current
            .as_ref()
            .is_none_or(|c| c.arrow.fields() != batch.schema_ref().fields())
        {
            *current = Some(self.prepare(batch.schema_ref())?);
        }
        let Some(current) = current.as_mut() else {
            return Ok(());
        };
        current.encoder.encode(batch).map_err(avro_error)?;
        let rows = current.encoder.flush();
        let base = out.values.len();
        out.values.extend_from_slice(rows.bytes());
        out.value_ranges
            .extend(rows.offsets().windows(2).map(|w| base + w[0]..base + w[1]));
        Ok(())
    }

    /// The Avro schema of `arrow` under the configured record name, its
    /// registry id, and an encoder that prefixes each row with that id.
    fn prepare(&self, arrow: &SchemaRef) -> Result<Current, SerializeError> {
        let named = self.named(arrow);
        let schema: Arc<str> = AvroSchema::try_from(&named)?.json_string.into();
        let subject = self.subject();
        let id = self.register(subject, &schema)?;
        let encoder = WriterBuilder::new(named)
            .with_fingerprint_strategy(FingerprintStrategy::Id(id))
            .build_encoder::<AvroSoeFormat>()
            .map_err(avro_error)?;
        Ok(Current {
            arrow: arrow.clone(),
            encoder,
        })
    }

    /// The id of `schema` under `subject`.
    fn register(&self, subject: String, schema: &Arc<str>) -> Result<u32, SerializeError> {
        self.target
            .registry
            .register(&subject, schema)
            .map_err(|source| SerializeError::Registry { subject, source })
    }

    /// `arrow` with the record name (and namespace) arrow-avro reads from
    /// the schema's metadata.
    pub fn named(&self, arrow: &SchemaRef) -> Schema {
        let mut metadata = arrow.metadata().clone();
        metadata.insert("avro.name".to_owned(), self.settings.record_name.clone());
        match &self.settings.namespace {
            Some(ns) => metadata.insert("avro.namespace".to_owned(), ns.clone()),
            None => metadata.remove("avro.namespace"),
        };
        Schema::new_with_metadata(arrow.fields().clone(), metadata)
    }

    /// The subject schemas are registered under.
    pub fn subject(&self) -> String {
        let full = match &self.settings.namespace {
            Some(ns) => format!("{ns}.{}", self.settings.record_name),
            None => self.settings.record_name.clone(),
        };
        let topic = &self.target.topic;
        match self.settings.subject {
            SubjectStrategy::Topic => format!("{topic}-value"),
            SubjectStrategy::Record => full,
            SubjectStrategy::TopicRecord => format!("{topic}-{full}"),
        }
    }
}

impl AvroValues {
    /// With `key_format = "avro"`, the key column's cells as Avro datums
    /// of a primitive schema (`"long"`, `"string"`, … or a union with
    /// `"null"` for a nullable column) registered under `<topic>-key`.
    pub fn keys(
        &self,
        array: &ArrayRef,
        nullable: bool,
        out: &mut Serialized,
    ) -> Result<(), SerializeError> {
        let primitive = key_schema(array.data_type()).ok_or_else(|| {
            SerializeError::Avro(format!(
                "key_format = \"avro\" takes a key column of a primitive type (integer, float, \
                 boolean, text or binary), not {}",
                array.data_type()
            ))
        })?;
        let nullable = nullable || array.null_count() > 0;
        let schema: Arc<str> = if nullable {
            format!("[\"null\",\"{primitive}\"]").into()
        } else {
            format!("\"{primitive}\"").into()
        };
        let subject = format!("{}-key", self.target.topic);
        let id = self.register(subject, &schema)?;
        let texts = (array.data_type() != &DataType::Utf8
            && array.data_type() != &DataType::LargeUtf8
            && primitive == "string")
            .then(|| {
                arrow_cast::display::ArrayFormatter::try_new(array.as_ref(), &Default::default())
            })
            .transpose()?;
        out.key_ranges.reserve(array.len());
        for row in 0..array.len() {
            let start = out.keys.len();
            out.keys.push(0);
            out.keys.extend_from_slice(&id.to_be_bytes());
            if nullable {
                zigzag(i64::from(array.is_valid(row)), &mut out.keys);
            }
            if array.is_valid(row) {
                encode_primitive(array, row, texts.as_ref(), &mut out.keys);
            }
            out.key_ranges.push(Some(start..out.keys.len()));
        }
        Ok(())
    }
}

/// The Avro primitive a key column is written as.
fn key_schema(data_type: &DataType) -> Option<&'static str> {
    Some(match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            "int"
        }
        DataType::Int64 | DataType::UInt32 => "long",
        DataType::Float32 => "float",
        DataType::Float64 => "double",
        DataType::Boolean => "boolean",
        DataType::Binary | DataType::LargeBinary => "bytes",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::UInt64 => "string",
        DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(..)
        | DataType::Decimal128(..) => "string",
        _ => return None,
    })
}

/// Avro's variable-length zig-zag integer.
fn zigzag(v: i64, out: &mut Vec<u8>) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn encode_primitive(
    array: &ArrayRef,
    row: usize,
    texts: Option<&arrow_cast::display::ArrayFormatter<'_>>,
    out: &mut Vec<u8>,
) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    let bytes = |b: &[u8], out: &mut Vec<u8>| {
        zigzag(b.len() as i64, out);
        out.extend_from_slice(b);
    };
    if let Some(texts) = texts {
        bytes(texts.value(row).to_string().as_bytes(), out);
        return;
    }
    match array.data_type() {
        DataType::Int8 => zigzag(i64::from(array.as_primitive::<Int8Type>().value(row)), out),
        DataType::Int16 => zigzag(i64::from(array.as_primitive::<Int16Type>().value(row)), out),
        DataType::Int32 => zigzag(i64::from(array.as_primitive::<Int32Type>().value(row)), out),
        DataType::UInt8 => zigzag(i64::from(array.as_primitive::<UInt8Type>().value(row)), out),
        DataType::UInt16 => zigzag(
            i64::from(array.as_primitive::<UInt16Type>().value(row)),
            out,
        ),
        DataType::UInt32 => zigzag(
            i64::from(array.as_primitive::<UInt32Type>().value(row)),
            out,
        ),
        DataType::Int64 => zigzag(array.as_primitive::<Int64Type>().value(row), out),
        DataType::Float32 => {
            out.extend_from_slice(&array.as_primitive::<Float32Type>().value(row).to_le_bytes())
        }
        DataType::Float64 => {
            out.extend_from_slice(&array.as_primitive::<Float64Type>().value(row).to_le_bytes())
        }
        DataType::Boolean => out.push(u8::from(array.as_boolean().value(row))),
        DataType::Binary => bytes(array.as_binary::<i32>().value(row), out),
        DataType::LargeBinary => bytes(array.as_binary::<i64>().value(row), out),
        DataType::Utf8 => bytes(array.as_string::<i32>().value(row).as_bytes(), out),
        DataType::LargeUtf8 => bytes(array.as_string::<i64>().value(row).as_bytes(), out),
        _ => {}
    }
}

fn avro_error(e: arrow_avro::errors::AvroError) -> SerializeError {
    SerializeError::Avro(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SchemaRegistryConfig;

    fn values(strategy: SubjectStrategy, namespace: Option<&str>) -> AvroValues {
        let registry = SchemaRegistry::new(&SchemaRegistryConfig {
            url: "http://127.0.0.1:9".into(),
            username: None,
            password: None,
            bearer_token: None,
            ca_file: None,
            timeout_ms: 1000,
        })
        .unwrap();
        AvroValues::new(
            AvroFormat {
                record_name: "Order".into(),
                namespace: namespace.map(str::to_owned),
                subject: strategy,
                key_avro: false,
            },
            AvroTarget {
                registry: Arc::new(registry),
                topic: "orders".into(),
            },
        )
    }

    #[test]
    fn zigzag_matches_the_avro_specification() {
        let enc = |v| {
            let mut out = Vec::new();
            zigzag(v, &mut out);
            out
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(-1), [0x01]);
        assert_eq!(enc(1), [0x02]);
        assert_eq!(enc(-64), [0x7f]);
        assert_eq!(enc(64), [0x80, 0x01]);
    }

    #[test]
    fn subjects_follow_the_three_confluent_strategies() {
        assert_eq!(
            values(SubjectStrategy::Topic, None).subject(),
            "orders-value"
        );
        assert_eq!(
            values(SubjectStrategy::Record, Some("shop")).subject(),
            "shop.Order"
        );
        assert_eq!(
            values(SubjectStrategy::TopicRecord, Some("shop")).subject(),
            "orders-shop.Order"
        );
    }

    #[test]
    fn the_schema_carries_the_configured_record_name() {
        let v = values(SubjectStrategy::Topic, Some("shop"));
        let arrow = Arc::new(Schema::new(vec![arrow_schema::Field::new(
            "id",
            arrow_schema::DataType::Int64,
            true,
        )]));
        let json = AvroSchema::try_from(&v.named(&arrow)).unwrap().json_string;
        let schema: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(schema["name"], "Order", "{json}");
        assert_eq!(schema["namespace"], "shop", "{json}");
        assert_eq!(schema["fields"][0]["name"], "id", "{json}");
    }

    #[test]
    fn an_unreachable_registry_stops_the_batch_before_any_record() {
        let v = values(SubjectStrategy::Topic, None);
        let batch = RecordBatch::try_from_iter([(
            "id",
            Arc::new(arrow_array::Int64Array::from(vec![1, 2])) as arrow_array::ArrayRef,
        )])
        .unwrap();
        let mut out = Serialized::default();
        let err = v.encode(&batch, &mut out).unwrap_err();
        assert!(err.to_string().contains("orders-value"), "{err}");
        assert!(out.is_empty());
    }
}
