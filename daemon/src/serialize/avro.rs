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

use arrow_array::RecordBatch;
use arrow_avro::schema::{AvroSchema, FingerprintStrategy};
use arrow_avro::writer::WriterBuilder;
use arrow_avro::writer::format::AvroSoeFormat;
use arrow_schema::{Schema, SchemaRef};

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
        let id = self
            .target
            .registry
            .register(&subject, &schema)
            .map_err(|source| SerializeError::Registry {
                subject: subject.clone(),
                source,
            })?;
        let encoder = WriterBuilder::new(named)
            .with_fingerprint_strategy(FingerprintStrategy::Id(id))
            .build_encoder::<AvroSoeFormat>()
            .map_err(avro_error)?;
        Ok(Current {
            arrow: arrow.clone(),
            encoder,
        })
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
