//! `format = "connect_json"`: Kafka Connect's `JsonConverter` envelope with
//! schemas enabled, `{"schema": {…}, "payload": {…}}`, so Connect sink
//! connectors (JDBC and others) read our topics as if a Connect source had
//! written them.
//!
//! The Connect schema is derived once per Arrow schema. The payload is the
//! row in the JSON the converter expects for each Connect type: timestamps
//! as epoch milliseconds (`org.apache.kafka.connect.data.Timestamp`), dates
//! as days (`Date`), times of day as milliseconds (`Time`), decimals and
//! bytes as base64 (`Decimal` carries the unscaled two's-complement
//! integer). Columns are converted to those shapes first, then written by
//! the same JSON encoder as `format = "json"`.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Decimal128Type;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, StructArray};
use arrow_cast::cast;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use serde_json::{Value, json};

const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
const DATE: &str = "org.apache.kafka.connect.data.Date";
const TIME: &str = "org.apache.kafka.connect.data.Time";
const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";

/// The Connect schema of rows with `schema`, as `JsonConverter` writes it.
pub fn connect_schema(schema: &Schema) -> Result<Value, ArrowError> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| {
            let mut s = field_schema(f.data_type(), f.is_nullable())?;
            s["field"] = json!(f.name());
            Ok(s)
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    Ok(json!({"type": "struct", "fields": fields, "optional": false}))
}

fn field_schema(data_type: &DataType, optional: bool) -> Result<Value, ArrowError> {
    let primitive = |t: &str| json!({"type": t, "optional": optional});
    let logical =
        |t: &str, name: &str| json!({"type": t, "optional": optional, "name": name, "version": 1});
    Ok(match data_type {
        DataType::Null => primitive("string"),
        DataType::Boolean => primitive("boolean"),
        DataType::Int8 => primitive("int8"),
        DataType::Int16 | DataType::UInt8 => primitive("int16"),
        DataType::Int32 | DataType::UInt16 => primitive("int32"),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => primitive("int64"),
        DataType::Float16 | DataType::Float32 => primitive("float"),
        DataType::Float64 => primitive("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => primitive("string"),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => primitive("bytes"),
        DataType::Timestamp(..) | DataType::Date64 => logical("int64", TIMESTAMP),
        DataType::Date32 => logical("int32", DATE),
        DataType::Time32(_) | DataType::Time64(_) => logical("int32", TIME),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            let mut v = logical("bytes", DECIMAL);
            v["parameters"] =
                json!({"scale": s.to_string(), "connect.decimal.precision": p.to_string()});
            v
        }
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::FixedSizeList(item, _)
        | DataType::ListView(item)
        | DataType::LargeListView(item) => {
            json!({"type": "array", "items": field_schema(item.data_type(), item.is_nullable())?, "optional": optional})
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(ArrowError::SchemaError(
                    "a map without key and value".into(),
                ));
            };
            json!({
                "type": "map",
                "keys": field_schema(kv[0].data_type(), false)?,
                "values": field_schema(kv[1].data_type(), kv[1].is_nullable())?,
                "optional": optional,
            })
        }
        DataType::Struct(fields) => {
            let fields = fields
                .iter()
                .map(|f| {
                    let mut s = field_schema(f.data_type(), f.is_nullable())?;
                    s["field"] = json!(f.name());
                    Ok(s)
                })
                .collect::<Result<Vec<_>, ArrowError>>()?;
            json!({"type": "struct", "fields": fields, "optional": optional})
        }
        DataType::Dictionary(_, value) => field_schema(value, optional)?,
        other => {
            return Err(ArrowError::NotYetImplemented(format!(
                "no Kafka Connect type for Arrow type {other}"
            )));
        }
    })
}

/// `batch` with each column in the shape `JsonConverter` reads for its
/// Connect type.
pub fn to_connect(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .map(convert)
        .collect::<Result<Vec<_>, _>>()?;
    let fields: Fields = batch
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| Arc::new(Field::new(f.name(), c.data_type().clone(), f.is_nullable())))
        .collect();
    RecordBatch::try_new(SchemaRef::new(Schema::new(fields)), columns)
}

fn convert(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    Ok(match array.data_type() {
        DataType::Null => cast(array, &DataType::Utf8)?,
        DataType::UInt8 => cast(array, &DataType::Int16)?,
        DataType::UInt16 => cast(array, &DataType::Int32)?,
        DataType::UInt32 | DataType::UInt64 => cast(array, &DataType::Int64)?,
        DataType::Float16 => cast(array, &DataType::Float32)?,
        DataType::Timestamp(..) => {
            let millis = cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
            cast(&millis, &DataType::Int64)?
        }
        DataType::Date64 => cast(array, &DataType::Int64)?,
        DataType::Date32 => cast(array, &DataType::Int32)?,
        DataType::Time32(_) | DataType::Time64(_) => {
            let millis = cast(array, &DataType::Time32(TimeUnit::Millisecond))?;
            cast(&millis, &DataType::Int32)?
        }
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal256(p, s) => {
            let wide = cast(array, &DataType::Decimal128(*p.min(&38), *s))?;
            decimal_base64(&wide)
        }
        DataType::Decimal128(..) => decimal_base64(array),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            let bytes = cast(array, &DataType::LargeBinary)?;
            let bytes = bytes.as_binary::<i64>();
            Arc::new(
                (0..bytes.len())
                    .map(|i| {
                        bytes
                            .is_valid(i)
                            .then(|| crate::base64::encode(bytes.value(i)))
                    })
                    .collect::<StringArray>(),
            )
        }
        DataType::Dictionary(_, value) => convert(&cast(array, value)?)?,
        DataType::Struct(_) => {
            let s = array.as_struct();
            let columns = s
                .columns()
                .iter()
                .map(convert)
                .collect::<Result<Vec<_>, _>>()?;
            let fields: Fields = s
                .fields()
                .iter()
                .zip(&columns)
                .map(|(f, c)| {
                    Arc::new(Field::new(f.name(), c.data_type().clone(), f.is_nullable()))
                })
                .collect();
            Arc::new(StructArray::try_new(fields, columns, s.nulls().cloned())?)
        }
        DataType::List(item) => {
            let list = array.as_list::<i32>();
            let values = convert(list.values())?;
            let field = Arc::new(Field::new(
                item.name(),
                values.data_type().clone(),
                item.is_nullable(),
            ));
            Arc::new(arrow_array::ListArray::try_new(
                field,
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?)
        }
        DataType::LargeList(item) => {
            let list = array.as_list::<i64>();
            let values = convert(list.values())?;
            let field = Arc::new(Field::new(
                item.name(),
                values.data_type().clone(),
                item.is_nullable(),
            ));
            Arc::new(arrow_array::LargeListArray::try_new(
                field,
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?)
        }
        _ => array.clone(),
    })
}

/// Decimals as Connect's `Decimal`: base64 of the unscaled value as the
/// shortest big-endian two's-complement bytes (Java's
/// `BigInteger.toByteArray`).
fn decimal_base64(array: &ArrayRef) -> ArrayRef {
    let d = array.as_primitive::<Decimal128Type>();
    Arc::new(
        (0..d.len())
            .map(|i| {
                d.is_valid(i)
                    .then(|| crate::base64::encode(&twos_complement(d.value(i))))
            })
            .collect::<StringArray>(),
    )
}

fn twos_complement(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    // Drop leading bytes that only repeat the sign.
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_the_shortest_twos_complement_like_java_big_integer() {
        assert_eq!(twos_complement(0), [0x00]);
        assert_eq!(twos_complement(127), [0x7f]);
        assert_eq!(twos_complement(128), [0x00, 0x80]);
        assert_eq!(twos_complement(-1), [0xff]);
        assert_eq!(twos_complement(-128), [0x80]);
        assert_eq!(twos_complement(-129), [0xff, 0x7f]);
        assert_eq!(twos_complement(1999), [0x07, 0xcf]);
        assert_eq!(crate::base64::encode(&twos_complement(1999)), "B88=");
    }

    #[test]
    fn schemas_use_connect_type_names_and_logical_types() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ]);
        let s = connect_schema(&schema).unwrap();
        assert_eq!(s["type"], "struct");
        assert_eq!(
            s["fields"][0],
            json!({"type": "int64", "optional": false, "field": "id"})
        );
        assert_eq!(s["fields"][1]["name"], TIMESTAMP);
        assert_eq!(s["fields"][2]["parameters"]["scale"], "2");
        assert_eq!(s["fields"][3]["items"]["type"], "string");
    }
}
