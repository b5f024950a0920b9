//! `tributary offsets list|export|import|reset`: reading and writing the
//! committed checkpoints of either store, for an operator.
//!
//! The export format is a JSON document that `import` reads back, in
//! either store, so moving from the file store to Kafka is one command:
//!
//! ```text
//! tributary offsets export -c file.toml | tributary offsets import -c kafka.toml
//! ```
//!
//! ```json
//! {"version": 1, "sources": {"orders": [{"partition_hex": "736571",
//!   "checkpoint_hex": "10270000000000"}]}}
//! ```

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Checkpoints, OffsetError, OffsetStore, hex, unhex};

/// The version of the export document.
pub const EXPORT_VERSION: u64 = 1;

/// Errors of the offsets tool.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] OffsetError),
    /// The document to import is not an export of this version.
    #[error("cannot import: {0}")]
    Document(String),
    /// A source named in the command is not in the configuration.
    #[error("source `{0}` is not in the configuration")]
    UnknownSource(String),
}

/// The committed checkpoints of `sources`, as the export document.
pub fn export(store: &dyn OffsetStore, sources: &[String]) -> Result<Value, ToolError> {
    let mut out = serde_json::Map::new();
    for source in sources {
        let checkpoints = store.load(source)?;
        let entries: Vec<Value> = checkpoints
            .iter()
            .map(|(p, c)| json!({"partition_hex": hex(p), "checkpoint_hex": hex(c)}))
            .collect();
        out.insert(source.clone(), Value::Array(entries));
    }
    Ok(json!({"version": EXPORT_VERSION, "sources": out}))
}

/// Reads an export document: the checkpoints of each source in it.
pub fn parse(document: &str) -> Result<BTreeMap<String, Checkpoints>, ToolError> {
    let bad = |what: &str| ToolError::Document(what.to_owned());
    let value: Value = serde_json::from_str(document)
        .map_err(|e| ToolError::Document(format!("not JSON: {e}")))?;
    match value.get("version").and_then(Value::as_u64) {
        Some(EXPORT_VERSION) => {}
        other => {
            return Err(ToolError::Document(format!(
                "expected `\"version\": {EXPORT_VERSION}`, found {other:?}"
            )));
        }
    }
    let sources = value
        .get("sources")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("expected a `sources` object"))?;
    let mut out = BTreeMap::new();
    for (source, entries) in sources {
        let mut checkpoints = Checkpoints::new();
        let entries = entries
            .as_array()
            .ok_or_else(|| ToolError::Document(format!("source `{source}`: expected an array")))?;
        for (i, entry) in entries.iter().enumerate() {
            let field = |name: &str| {
                entry
                    .get(name)
                    .and_then(Value::as_str)
                    .and_then(unhex)
                    .ok_or_else(|| {
                        ToolError::Document(format!(
                            "source `{source}` entry {i}: `{name}` is not a hex string"
                        ))
                    })
            };
            checkpoints.insert(field("partition_hex")?, field("checkpoint_hex")?);
        }
        out.insert(source.clone(), checkpoints);
    }
    Ok(out)
}

/// Replaces the checkpoints of every source in `imported`; each must be in
/// `known` (the configuration), so a typo does not write offsets nobody
/// reads.
pub fn import(
    store: &dyn OffsetStore,
    imported: &BTreeMap<String, Checkpoints>,
    known: &[String],
) -> Result<(), ToolError> {
    if let Some(unknown) = imported.keys().find(|s| !known.contains(s)) {
        return Err(ToolError::UnknownSource(unknown.clone()));
    }
    for (source, checkpoints) in imported {
        store.commit(source, checkpoints)?;
    }
    Ok(())
}

/// The state of `source` in a daemon answering on `listen`, or `None` when
/// no daemon answers there (it is stopped). Offsets may be changed only
/// while the source does not run: it would overwrite them.
pub fn running_state(listen: std::net::SocketAddr, source: &str) -> Option<String> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(2);
    let mut stream = std::net::TcpStream::connect_timeout(&listen, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let request = format!(
        "GET /api/v1/sources/{source} HTTP/1.0\r\nHost: {listen}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.take(1 << 20).read_to_string(&mut reply).ok()?;
    let body = reply.split_once("\r\n\r\n")?.1;
    let view: Value = serde_json::from_str(body).ok()?;
    view.get("state")?.as_str().map(str::to_owned)
}

/// Whether a source in `state` may have its offsets changed.
pub fn may_change_offsets(state: Option<&str>) -> bool {
    matches!(
        state,
        None | Some("paused" | "stopped" | "finished" | "failed")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::FileStore;

    #[test]
    fn an_export_imports_back_into_another_store_identically() {
        let dir = std::env::temp_dir().join(format!("tributary-tool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let from = FileStore::open(dir.join("a")).unwrap();
        let to = FileStore::open(dir.join("b")).unwrap();
        let mut checkpoints = Checkpoints::new();
        checkpoints.insert(b"seq".to_vec(), vec![0x10, 0x27, 0, 0]);
        checkpoints.insert(vec![0xff], vec![1]);
        from.commit("orders", &checkpoints).unwrap();
        let sources = vec!["orders".to_owned(), "logs".to_owned()];
        let document = export(&from, &sources).unwrap().to_string();
        import(&to, &parse(&document).unwrap(), &sources).unwrap();
        assert_eq!(to.load("orders").unwrap(), checkpoints);
        assert!(to.load("logs").unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_documents_and_unknown_sources_are_refused() {
        assert!(parse("[]").is_err());
        assert!(parse(r#"{"version": 2, "sources": {}}"#).is_err());
        let odd =
            r#"{"version": 1, "sources": {"a": [{"partition_hex": "7", "checkpoint_hex": ""}]}}"#;
        assert!(
            parse(odd)
                .unwrap_err()
                .to_string()
                .contains("partition_hex")
        );
        let dir = std::env::temp_dir().join(format!("tributary-tool-u-{}", std::process::id()));
        let store = FileStore::open(dir.clone()).unwrap();
        let imported = parse(r#"{"version": 1, "sources": {"ordres": []}}"#).unwrap();
        let err = import(&store, &imported, &["orders".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("`ordres`"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
