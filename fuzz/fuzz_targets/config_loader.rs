//! The configuration loader on arbitrary text: the input is split at
//! `\n#--\n` into a main file and drop-ins in `conf.d/`, then loaded
//! with `${…}` substitution. Every input loads or yields errors that name
//! a file; nothing panics or reads without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tributary-fuzz-config-{}", std::process::id()));
    let conf_d = dir.join("conf.d");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&conf_d).unwrap();
    let mut parts = text.split("\n#--\n");
    let main = dir.join("tributary.toml");
    std::fs::write(&main, parts.next().unwrap_or_default()).unwrap();
    for (i, part) in parts.take(8).enumerate() {
        std::fs::write(conf_d.join(format!("{i:02}.toml")), part).unwrap();
    }
    // A secret file for `${file:secret}` references.
    std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
    if let Err(errors) = tributary::config::load(&main, Some(&conf_d)) {
        let text = errors.to_string();
        assert!(!text.is_empty());
        assert!(
            !text.contains("s3cret"),
            "an error shows a substituted secret: {text}"
        );
    }
});
