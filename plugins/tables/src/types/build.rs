//! The Arrow columns a batch is assembled in, and the schema of a file's
//! columns.
//!
//! A row is kept whole or not at all: text rows are parsed cell by cell
//! straight into columns that can be truncated, and a bad value in the
//! fifth column takes the row back out of the first four; other readers
//! parse a row into a scratch buffer of [`Cell`]s first and append only a
//! row whose every cell parsed. Either way a bad value never leaves four
//! columns one row longer than the rest.

use std::sync::Arc;

use arrow_array::builder::{BooleanBufferBuilder, NullBufferBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_buffer::{Buffer, OffsetBuffer};
use arrow_schema::{ArrowError, Field, Schema, SchemaRef};

use super::cell::{Cell, CellError, parse_decimal, parse_int, parse_text, trim};
use super::exact::{Origin, exact_bool, exact_float, exact_int, exact_timestamp, parse_exact};
use super::time::{Layout, fast_iso, fast_layout};
use super::{ColumnType, UTC};

/// The columns of one file: names, types and the Arrow schema.
#[derive(Debug, Clone)]
pub struct Columns {
    /// Column names, in file order.
    pub names: Vec<String>,
    /// Their types.
    pub types: Vec<ColumnType>,
    /// Where each type came from, which decides how cells are read: an
    /// inferred column takes only what the serializers write back.
    pub origins: Vec<Origin>,
    /// The Arrow schema every batch of the file has.
    pub schema: SchemaRef,
}

impl Columns {
    /// Columns of declared types; every column is nullable.
    pub fn new(names: Vec<String>, types: Vec<ColumnType>) -> Columns {
        let origins = vec![Origin::Declared; types.len()];
        Columns::with_origins(names, types, origins)
    }

    /// Columns whose types were declared or inferred, one origin per
    /// column; every column is nullable.
    pub fn with_origins(
        names: Vec<String>,
        types: Vec<ColumnType>,
        origins: Vec<Origin>,
    ) -> Columns {
        let fields: Vec<Field> = names
            .iter()
            .zip(&types)
            .map(|(n, t)| Field::new(n, t.arrow_type(), true))
            .collect();
        Columns {
            names,
            types,
            origins,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

/// The values of one column under construction, in plain vectors rather
/// than Arrow's builders: they can be truncated, so a row is appended cell
/// by cell as it is parsed and taken back if a later cell is bad.
#[derive(Debug)]
enum Values {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bool(BooleanBufferBuilder),
    Text {
        bytes: Vec<u8>,
        /// Where each value ends in `bytes`, after a leading 0.
        offsets: Vec<i32>,
    },
    Time {
        micros: Vec<i64>,
        /// The layout [`fast_iso`] parses, if the format has one.
        layout: Option<Layout>,
    },
    Decimal(Vec<i128>, u8, i8),
}

/// One column under construction.
#[derive(Debug)]
struct ColumnBuilder {
    ty: ColumnType,
    /// Inferred types read cells by [`parse_exact`], declared ones by
    /// [`parse_text`].
    origin: Origin,
    values: Values,
    nulls: NullBufferBuilder,
}

impl ColumnBuilder {
    /// A builder for `capacity` values (`bytes` of text for strings).
    fn new(ty: &ColumnType, origin: Origin, capacity: usize, bytes: usize) -> ColumnBuilder {
        let values = match ty {
            ColumnType::Int64 => Values::Int(Vec::with_capacity(capacity)),
            ColumnType::Float64 => Values::Float(Vec::with_capacity(capacity)),
            ColumnType::Bool => Values::Bool(BooleanBufferBuilder::new(capacity)),
            ColumnType::String => {
                let mut offsets = Vec::with_capacity(capacity + 1);
                offsets.push(0);
                Values::Text {
                    bytes: Vec::with_capacity(bytes),
                    offsets,
                }
            }
            ColumnType::Timestamp(format) => Values::Time {
                micros: Vec::with_capacity(capacity),
                layout: fast_layout(format.as_deref()),
            },
            ColumnType::Decimal(p, s) => Values::Decimal(Vec::with_capacity(capacity), *p, *s),
        };
        ColumnBuilder {
            ty: ty.clone(),
            origin,
            values,
            nulls: NullBufferBuilder::new(capacity),
        }
    }

    /// Parses `text` as the column reads it: exactly when inferred,
    /// leniently when declared.
    fn parse(&self, text: &str) -> Result<Cell, CellError> {
        match self.origin {
            Origin::Inferred => parse_exact(&self.ty, text),
            Origin::Declared => parse_text(&self.ty, text),
        }
    }

    /// Appends a null.
    fn push_null(&mut self) {
        match &mut self.values {
            Values::Int(v) | Values::Time { micros: v, .. } => v.push(0),
            Values::Float(v) => v.push(0.0),
            Values::Bool(v) => v.append(false),
            Values::Text { bytes, offsets } => offsets.push(text_offset(bytes)),
            Values::Decimal(v, ..) => v.push(0),
        }
        self.nulls.append_null();
    }

    /// Appends a parsed cell; a cell of another type (a bug) as null.
    fn push_cell(&mut self, cell: Cell, text: &str) {
        match (&mut self.values, cell) {
            (Values::Int(v), Cell::Int(x)) | (Values::Time { micros: v, .. }, Cell::Micros(x)) => {
                v.push(x);
            }
            (Values::Float(v), Cell::Float(x)) => v.push(x),
            (Values::Bool(v), Cell::Bool(x)) => v.append(x),
            (Values::Text { bytes, offsets }, Cell::Text) => {
                bytes.extend_from_slice(text.as_bytes());
                offsets.push(text_offset(bytes));
            }
            (Values::Decimal(v, ..), Cell::Decimal(x)) => v.push(x),
            _ => return self.push_null(),
        }
        self.nulls.append_non_null();
    }

    /// Parses `text` as the column's type and appends it, with the result
    /// of [`Self::parse`]; `false` for a bad cell, whose error is then
    /// [`Self::error`]. The common cases are parsed by hand here; every
    /// cell they do not take, good or bad, goes to [`Self::parse`].
    ///
    /// A bare flag rather than a `Result` with the error: this runs for
    /// every cell, and a `Result` that large travels through memory,
    /// which costs about as much as parsing a short number. Inlined
    /// always for the same reason: the call alone would cost as much.
    #[inline(always)]
    fn push_text(&mut self, text: &str) -> bool {
        let inferred = self.origin == Origin::Inferred;
        let done = match &mut self.values {
            Values::Text { bytes, offsets } => {
                bytes.extend_from_slice(text.as_bytes());
                offsets.push(text_offset(bytes));
                true
            }
            Values::Int(v) if inferred => exact_int(text).map(|x| v.push(x)).is_ok(),
            Values::Int(v) => parse_int(trim(text)).map(|x| v.push(x)).is_ok(),
            Values::Float(v) if inferred => exact_float(text).map(|x| v.push(x)).is_some(),
            Values::Bool(v) if inferred => exact_bool(text).map(|x| v.append(x)).is_some(),
            Values::Decimal(v, p, s) => {
                parse_decimal(trim(text), *p, *s).map(|x| v.push(x)).is_ok()
            }
            Values::Time { micros, .. } if inferred => {
                exact_timestamp(text).map(|x| micros.push(x)).is_some()
            }
            Values::Time {
                micros,
                layout: Some(layout),
            } => fast_iso(trim(text), *layout)
                .map(|x| micros.push(x))
                .is_some(),
            _ => false,
        };
        if done {
            self.nulls.append_non_null();
            true
        } else {
            self.push_parsed(text)
        }
    }

    /// [`Self::push_text`] for what its fast paths do not take.
    #[inline(never)]
    fn push_parsed(&mut self, text: &str) -> bool {
        match self.parse(text) {
            Ok(cell) => {
                self.push_cell(cell, text);
                true
            }
            Err(_) => false,
        }
    }

    /// Why [`Self::push_text`] refused `text`.
    #[cold]
    fn error(&self, text: &str) -> CellError {
        // It refused it because `Self::parse` did, so this is that error;
        // the fallback only keeps this total.
        self.parse(text)
            .err()
            .unwrap_or_else(|| CellError::parse(&self.ty, text))
    }

    /// Drops the values after the first `len`.
    fn truncate(&mut self, len: usize) {
        match &mut self.values {
            Values::Int(v) | Values::Time { micros: v, .. } => v.truncate(len),
            Values::Float(v) => v.truncate(len),
            Values::Bool(v) => v.truncate(len),
            Values::Text { bytes, offsets } => {
                offsets.truncate(len + 1);
                bytes.truncate(offsets.last().map_or(0, |&end| end as usize));
            }
            Values::Decimal(v, ..) => v.truncate(len),
        }
        self.nulls.truncate(len);
    }

    /// The column as an array; the builder is left empty, with room for
    /// `capacity` values (`bytes` of text for strings).
    fn finish(&mut self, capacity: usize, bytes: usize) -> Result<ArrayRef, ArrowError> {
        // A null in a row that was taken back leaves a bitmap with no null
        // in it; Arrow's builders would have made none.
        let nulls = self.nulls.finish().filter(|n| n.null_count() > 0);
        let fresh = ColumnBuilder::new(&self.ty, self.origin, capacity, bytes).values;
        Ok(match std::mem::replace(&mut self.values, fresh) {
            Values::Int(v) => Arc::new(Int64Array::new(v.into(), nulls)),
            Values::Float(v) => Arc::new(Float64Array::new(v.into(), nulls)),
            Values::Bool(mut v) => Arc::new(BooleanArray::new(v.finish(), nulls)),
            Values::Text { bytes, offsets } => Arc::new(StringArray::try_new(
                OffsetBuffer::new(offsets.into()),
                Buffer::from_vec(bytes),
                nulls,
            )?),
            Values::Time { micros, .. } => {
                Arc::new(TimestampMicrosecondArray::new(micros.into(), nulls).with_timezone(UTC))
            }
            Values::Decimal(v, p, s) => {
                Arc::new(Decimal128Array::new(v.into(), nulls).with_precision_and_scale(p, s)?)
            }
        })
    }
}

/// The offset after the last value of a string column.
fn text_offset(bytes: &[u8]) -> i32 {
    // Arrow's string builder has the same limit, and the same panic; a
    // batch of rows holds far less than 2 GiB of text in one column.
    i32::try_from(bytes.len()).expect("byte array offset overflow")
}

/// Appends parsed rows and finishes them into a [`RecordBatch`].
#[derive(Debug)]
pub struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    rows: usize,
    /// Rows each batch is sized for.
    capacity: usize,
}

impl BatchBuilder {
    /// Empty builders for `columns`, sized for `capacity` rows.
    pub fn new(columns: &Columns, capacity: usize) -> BatchBuilder {
        let builders = columns
            .types
            .iter()
            .zip(&columns.origins)
            .map(|(t, o)| ColumnBuilder::new(t, *o, capacity, capacity * 16))
            .collect();
        BatchBuilder {
            schema: columns.schema.clone(),
            columns: builders,
            rows: 0,
            capacity,
        }
    }

    /// Parses `text` as column `column` reads it ([`parse_exact`] when its
    /// type was inferred, else [`parse_text`]), without appending it.
    pub fn parse(&self, column: usize, text: &str) -> Result<Cell, CellError> {
        self.columns[column].parse(text)
    }

    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row whose every cell parsed. `text(i)` returns the text
    /// of column `i`, used for [`Cell::Text`] cells.
    ///
    /// The cells come from [`parse_text`] with this builder's types, so a
    /// cell never mismatches its column; if it did (a bug), the value is
    /// written as null rather than panicking.
    pub fn append<'a>(&mut self, cells: &[Cell], text: impl Fn(usize) -> &'a str) {
        for (i, (builder, cell)) in self.columns.iter_mut().zip(cells).enumerate() {
            match cell {
                Cell::Null => builder.push_null(),
                Cell::Text => builder.push_cell(Cell::Text, text(i)),
                cell => builder.push_cell(*cell, ""),
            }
        }
        self.rows += 1;
    }

    /// Parses and appends one row of text cells, one per column in order,
    /// `None` for a null, with the results of [`Self::parse`].
    ///
    /// Cells are parsed straight into the columns, which saves handing
    /// each value over through a scratch row; on the first bad cell the
    /// row is taken back, so no column is ever left longer than the
    /// others, and its column and error are returned.
    #[inline]
    pub fn append_text<'a>(
        &mut self,
        cells: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Result<(), (usize, CellError)> {
        for (i, (column, cell)) in self.columns.iter_mut().zip(cells).enumerate() {
            match cell {
                Some(text) => {
                    if !column.push_text(text) {
                        let e = column.error(text);
                        self.truncate(self.rows);
                        return Err((i, e));
                    }
                }
                None => column.push_null(),
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Takes back the last row appended.
    pub fn pop(&mut self) {
        if let Some(rows) = self.rows.checked_sub(1) {
            self.truncate(rows);
            self.rows = rows;
        }
    }

    /// Drops every column's values after the first `rows`.
    fn truncate(&mut self, rows: usize) {
        for column in &mut self.columns {
            column.truncate(rows);
        }
    }

    /// The rows appended since the last call, as a batch. The builders are
    /// left sized like this batch: growing them again row by row would copy
    /// every buffer several times per batch.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let capacity = self.capacity;
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|column| {
                let bytes = match &column.values {
                    Values::Text { bytes, .. } => bytes.len(),
                    _ => 0,
                };
                column.finish(capacity, (bytes + bytes / 8).max(capacity * 8))
            })
            .collect::<Result<_, _>>()?;
        let rows = std::mem::take(&mut self.rows);
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::tests::Rng;

    /// Columns of every type, and a text row for them, valid or not.
    fn mixed_row(rng: &mut Rng) -> Vec<Option<String>> {
        let mut cell = |values: &[&str]| -> Option<String> {
            (rng.below(10) != 0).then(|| rng.pick(values).to_string())
        };
        vec![
            cell(&["abc", "", "é ü", " x "]),
            cell(&[
                "1",
                "-42",
                " 7 ",
                "99999999999999999999",
                "12a",
                "00501",
                "+5",
                "-0",
            ]),
            cell(&["1.5", "-0", "1e400", "NaN", "x", "1.50", "3", "3.0", "0.1"]),
            cell(&["true", "F", "yes", "0", "maybe", "TRUE", "false"]),
            cell(&[
                "2024-01-02 03:04:05",
                "2024-02-30 00:00:00",
                "2024-01-02 03:04:60",
            ]),
            cell(&[
                "2024-01-02T03:04:05Z",
                "2024-01-02 03:04:05+01:00",
                "soon",
                "2024-01-02T03:04:05.250Z",
                "2024-01-02T03:04:05.250000Z",
                "2024-01-02 03:04:05",
            ]),
            cell(&["12.5", "-0.01", "123456789", "1.234", "."]),
            cell(&["4", "-99999999999999999999.123", "1.2"]),
        ]
    }

    fn mixed_columns(origin: Origin) -> Columns {
        let types = [
            "string",
            "int64",
            "float64",
            "bool",
            "timestamp(%Y-%m-%d %H:%M:%S)",
            "timestamp",
            "decimal(10,2)",
            "decimal(38,4)",
        ]
        .map(|t| ColumnType::parse(t).unwrap());
        let names = (0..types.len()).map(|i| format!("c{i}")).collect();
        Columns::with_origins(names, types.to_vec(), vec![origin; types.len()])
    }

    #[test]
    fn text_rows_build_the_same_batch_as_parsed_cells() {
        for (origin, parse) in [
            (Origin::Declared, parse_text as fn(&ColumnType, &str) -> _),
            (Origin::Inferred, parse_exact),
        ] {
            same_batch_as_parsed_cells(origin, parse);
        }
    }

    /// Rows appended by [`BatchBuilder::append_text`], with its fast paths,
    /// give the batch of the same rows whose cells were parsed by `parse`.
    fn same_batch_as_parsed_cells(
        origin: Origin,
        parse: fn(&ColumnType, &str) -> Result<Cell, CellError>,
    ) {
        let columns = mixed_columns(origin);
        let mut rng = Rng::new(4);
        let mut direct = BatchBuilder::new(&columns, 16);
        let mut scratch = BatchBuilder::new(&columns, 16);
        for round in 0..20 {
            for _ in 0..200 {
                let row = mixed_row(&mut rng);
                // The reference: every cell parsed first, the row appended
                // only if all of them parsed.
                let cells: Result<Vec<Cell>, (usize, CellError)> = row
                    .iter()
                    .zip(&columns.types)
                    .enumerate()
                    .map(|(i, (text, ty))| match text {
                        None => Ok(Cell::Null),
                        Some(t) => parse(ty, t).map_err(|e| (i, e)),
                    })
                    .collect();
                let got = direct.append_text(row.iter().map(Option::as_deref));
                match cells {
                    Ok(cells) => {
                        assert_eq!(got, Ok(()), "{row:?}");
                        scratch.append(&cells, |i| row[i].as_deref().unwrap_or_default());
                    }
                    Err(e) => assert_eq!(got, Err(e), "{row:?}"),
                }
                assert_eq!(direct.len(), scratch.len());
            }
            let (a, b) = (direct.finish().unwrap(), scratch.finish().unwrap());
            assert_eq!(a, b, "{origin:?} round {round}");
            for (x, y) in a.columns().iter().zip(b.columns()) {
                assert_eq!(x.nulls(), y.nulls(), "{origin:?} round {round}");
            }
        }
    }

    #[test]
    fn a_bad_cell_takes_its_row_back_out_of_every_column() {
        let columns = mixed_columns(Origin::Declared);
        let mut b = BatchBuilder::new(&columns, 4);
        let good = [
            "a",
            "1",
            "1.5",
            "true",
            "2024-01-02 03:04:05",
            "2024-01-02T03:04:05Z",
            "1.5",
            "2",
        ];
        fn row<'a>(cells: &[&'a str]) -> Vec<Option<&'a str>> {
            cells.iter().map(|c| Some(*c)).collect()
        }
        assert_eq!(b.append_text(row(&good)), Ok(()));
        // A null and text before the bad last cell: all taken back.
        let mut bad = row(&good);
        bad[0] = None;
        bad[7] = Some("x");
        let err = b.append_text(bad).unwrap_err();
        assert_eq!((err.0, err.1.class), (7, "parse_error"));
        assert_eq!(b.append_text(row(&good)), Ok(()));
        // A good row taken back by the reader.
        assert_eq!(b.append_text(row(&good)), Ok(()));
        b.pop();
        assert_eq!(b.len(), 2);
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        for column in batch.columns() {
            assert_eq!(column.len(), 2);
            assert!(column.nulls().is_none(), "{column:?}");
        }
        let text = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(text.iter().collect::<Vec<_>>(), [Some("a"), Some("a")]);
    }
}
