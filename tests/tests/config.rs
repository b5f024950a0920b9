//! Configuration errors are precise (file, line, key), all reported at
//! once, need no broker, and map to exit code 2.

use std::time::Duration;

use tributary_tests::*;

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = TempDir::new("config-errors");
    // No broker runs anywhere in this test: validation must not need one.
    let spec = ConfigSpec::new("127.0.0.1:1", dir.path())
        .drop_in("10-good.toml", datagen_source("orders", "orders", 10, 0, 1))
        .drop_in(
            "20-bad.toml",
            "[[source]]\n\
             name = \"clicks\"\n\
             type = \"datagen\"\n\
             topic = \"clicks\"\n\
             kind = \"clicks\"\n\
             rate_per_sec = \"fast\"\n\
             colour = \"blue\"\n",
        )
        .drop_in(
            "30-worse.toml",
            "[[source]]\nname = \"orders\"\ntype = \"datagen\"\ntopic = \"x\"\n",
        );
    let config = write_config(dir.path(), &spec);
    let conf_d = dir.join("conf.d");
    let bad = conf_d.join("20-bad.toml").display().to_string();
    let worse = conf_d.join("30-worse.toml").display().to_string();

    for command in ["validate", "run"] {
        let out = run_cli(
            &[command.as_ref(), "--config".as_ref(), config.as_os_str()],
            Duration::from_secs(30),
        );
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {text}");
        // Every error, from both files, in one report.
        for expected in [
            format!("{bad}:6:1: `source[clicks].rate_per_sec`: expected an integer"),
            format!("{bad}:7:1: `source[clicks].colour`: unknown option"),
            format!("{worse}:2:8: `source[orders].name`: duplicate source name"),
        ] {
            assert!(
                text.contains(&expected),
                "{command}: missing `{expected}` in:\n{text}"
            );
        }
        assert!(text.contains("3 errors"), "{command}: {text}");
    }
}

#[test]
fn misspelt_keys_and_types_get_suggestions_and_an_unknown_type_is_never_hidden() {
    let dir = TempDir::new("config-suggestions");
    let spec = ConfigSpec::new("127.0.0.1:1", dir.path())
        .drop_in(
            "10-typo.toml",
            "[[source]]\nname = \"a\"\ntype = \"csv\"\ntopic = \"a\"\npath = \"/tmp/a.csv\"\n\
             delimter = \";\"\n",
        )
        .drop_in(
            // Another error in the same source used to hide the type.
            "20-type.toml",
            "[[source]]\nname = \"b\"\ntype = \"csvv\"\ntopic = \"b\"\ndelivery = \"twice\"\n",
        );
    let config = write_config(dir.path(), &spec);
    let text = validate_refuses(&config);
    for expected in [
        "`source[a].delimter`: unknown option for plugin `csv` (did you mean `delimiter`?)",
        "`source[b].delivery`: expected one of: at_least_once, exactly_once",
        "`source[b].type`: no plugin provides source type `csvv` (did you mean `csv`?)",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn version_names_the_git_revision_librdkafka_and_the_plugin_abi() {
    let out = run_cli(&["--version"], Duration::from_secs(10));
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let revision = lines[0]
        .strip_prefix(&format!("tributary {} (git ", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        revision == "unknown"
            || (revision.len() == 12 && revision.bytes().all(|b| b.is_ascii_hexdigit())),
        "{text}"
    );
    assert!(lines[1].starts_with("librdkafka 2."), "{text}");
    assert_eq!(lines[2], "plugin ABI 2.1", "{text}");
}

#[test]
fn shipped_configs_are_valid() {
    let root = target_dir()
        .parent()
        .and_then(|t| t.parent())
        .expect("target/<profile> lives in the workspace")
        .to_path_buf();
    let quickstart = root.join("config/quickstart.toml");
    let out = run_cli(
        &[
            "validate".as_ref(),
            "--config".as_ref(),
            quickstart.as_os_str(),
        ],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", output_text(&out));

    // The annotated main file with the example drop-ins, plugins from this
    // build instead of the installed location.
    let dir = TempDir::new("shipped-config");
    let main = std::fs::read_to_string(root.join("config/tributary.toml")).unwrap();
    let plugins = format!("dirs = [{}]", toml_str(&target_dir().display().to_string()));
    let main = main.replace("dirs = [\"/usr/lib/tributary/plugins\"]", &plugins);
    let main_path = dir.join("tributary.toml");
    std::fs::write(&main_path, main).unwrap();
    let out = run_cli(
        &[
            "validate".as_ref(),
            "--config".as_ref(),
            main_path.as_os_str(),
            "--conf-dir".as_ref(),
            root.join("config/conf.d").as_os_str(),
        ],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", output_text(&out));
}
