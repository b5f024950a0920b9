//! `include/tributary_plugin.h` is generated from `src/abi.rs` and checked
//! in for C authors; this test fails when the two disagree.
//!
//! After changing the ABI: `TRIBUTARY_BLESS=1 cargo test -p
//! tributary-plugin-sdk --test c_header`, then review the header's diff.

use std::collections::HashMap;
use std::path::Path;

/// Rewrites the Rust doc comments' references for C readers: a link or code
/// span naming a Rust item (`` [`CreateArgs::options`] ``) names the C item
/// instead (`` `tributary_create_args.options` ``), and `` `ERROR_*` ``
/// families get their C prefix.
fn c_references(header: &str, rename: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(header.len());
    let mut rest = header;
    while let Some(start) = rest.find('`') {
        let Some(len) = rest[start + 1..].find('`') else {
            break;
        };
        let inner = &rest[start + 1..start + 1 + len];
        let linked = start > 0
            && rest.as_bytes()[start - 1] == b'['
            && rest[start + 2 + len..].starts_with(']');
        let (item, field) = inner.split_once("::").unwrap_or((inner, ""));
        let family = item
            .strip_suffix("_*")
            .filter(|f| rename.keys().any(|k| k.starts_with(&format!("{f}_"))));
        let c_name = match (rename.get(item), family) {
            (Some(c), _) => Some(c.trim_start_matches("struct ").to_owned()),
            (None, Some(_)) => Some(format!("TRIBUTARY_{item}")),
            (None, None) => None,
        };
        let text = match c_name {
            Some(c) if field.is_empty() => format!("`{c}`"),
            Some(c) => format!("`{c}.{field}`"),
            None => format!("`{inner}`"),
        };
        if linked {
            out.push_str(&rest[..start - 1]);
            out.push_str(&text);
            rest = &rest[start + 3 + len..];
        } else {
            out.push_str(&rest[..start]);
            out.push_str(&text);
            rest = &rest[start + 2 + len..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn the_checked_in_c_header_matches_the_rust_abi() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let rename = config.export.rename.clone();
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/abi.rs"))
        .generate()
        .expect("the ABI module is valid input for cbindgen");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = c_references(
        &String::from_utf8(generated).expect("cbindgen writes UTF-8"),
        &rename,
    );
    let path = dir.join("include/tributary_plugin.h");
    if std::env::var_os("TRIBUTARY_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write the header");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: src/abi.rs changed. Regenerate it with \
         `TRIBUTARY_BLESS=1 cargo test -p tributary-plugin-sdk --test c_header` \
         and review the diff.",
        path.display()
    );
}
