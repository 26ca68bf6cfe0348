//! `ferry serve --config FILE`: a TOML file with a key for every option of
//! `serve` (the long name: `model = "reactor"`, `allow-write = true`,
//! `drain-timeout = 10`, `root = "/srv"`; `_` may stand for `-`), written
//! once, generically: the table becomes `--key=value` arguments placed
//! before the command line's, and clap parses the whole with every option
//! overriding itself, so the command line wins and an option added later
//! has its key for free. A switch takes `true` (or `false`: left out); a
//! repeatable option takes an array.
//!
//! SIGHUP re-reads the file: the accounts file and the certificates are
//! re-read as without a config (their own reload hooks); every other
//! change needs new listeners or a new process, so it is logged with what
//! to do (restart, or SIGUSR2 for a zero-downtime upgrade, whose new
//! binary reads the file afresh) and not half-applied.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args as _;
use clap::parser::ValueSource;

/// The `serve` command as clap sees it, options overriding themselves.
fn serve_command() -> clap::Command {
    super::ServeArgs::augment_args(clap::Command::new("serve")).args_override_self(true)
}

/// Where `serve` and its `--config` are in `argv`, if they are.
fn find(argv: &[OsString]) -> Option<(usize, PathBuf)> {
    let serve = argv.iter().skip(1).position(|a| a == "serve")? + 1;
    let mut rest = argv[serve + 1..].iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            return None;
        }
        if arg == "--config" {
            return rest.next().map(|path| (serve, PathBuf::from(path)));
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some((serve, PathBuf::from(path)));
        }
    }
    None
}

/// `argv` with the options of the `serve --config FILE` it names placed
/// right after `serve` (unchanged without one). The errors name the file
/// and the key.
pub(crate) fn expand(argv: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Some((serve, path)) = find(&argv) else { return Ok(argv) };
    let from_file = arguments(&path, &argv[serve + 1..])?;
    let mut expanded = argv[..=serve].to_vec();
    expanded.extend(from_file);
    expanded.extend_from_slice(&argv[serve + 1..]);
    Ok(expanded)
}

/// The arguments the file at `path` stands for, given the command line's
/// own `given` (a positional it gives is not added again).
fn arguments(path: &Path, given: &[OsString]) -> anyhow::Result<Vec<OsString>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the config {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("config {}", path.display()))?;
    let command = serve_command();
    let given = command
        .clone()
        .try_get_matches_from(std::iter::once(OsStr::new("serve")).chain(given.iter().map(|a| a.as_os_str())));
    let mut flags = Vec::new();
    let mut positionals = Vec::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let bad = |why: &str| anyhow::anyhow!("config {}: key {key:?}: {why}", path.display());
        if name == "config" {
            return Err(bad("a config cannot name another config"));
        }
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(&name) || (a.is_positional() && a.get_id() == name.as_str()))
        else {
            return Err(bad("unknown key (keys are the long options of `ferry serve`, and root)"));
        };
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        let takes_values = arg.get_action().takes_values();
        for value in values {
            let text = match value {
                toml::Value::Boolean(on) if !takes_values => {
                    if *on {
                        flags.push(OsString::from(format!("--{name}")));
                    }
                    continue;
                }
                _ if !takes_values => return Err(bad("a switch: give true or false")),
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(x) => x.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return Err(bad("give a string, a number, a boolean, or an array of them")),
            };
            if arg.is_positional() {
                let on_command_line = given
                    .as_ref()
                    .is_ok_and(|m| m.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine));
                if !on_command_line {
                    positionals.push(OsString::from(text));
                }
            } else {
                flags.push(OsString::from(format!("--{name}={text}")));
            }
        }
    }
    flags.extend(positionals);
    Ok(flags)
}

/// On SIGHUP: re-reads the config of `argv` (the command line as given)
/// and logs what changed and what that needs; `path` is the file, absolute.
pub(crate) fn watch(argv: Vec<OsString>) {
    let Some((_, path)) = find(&argv) else { return };
    let Ok(path) = std::path::absolute(&path) else { return };
    let argv = with_config(&argv, &path);
    let Ok(running) = options(&argv) else { return };
    ferry_server::reload::on_reload(move || match options(&argv) {
        Err(e) => tracing::error!("{e:#}; keeping the configuration in use"),
        Ok(now) => {
            let changed: Vec<String> = running
                .iter()
                .filter(|(id, value)| now.iter().find(|(i, _)| i == id).map(|(_, v)| v) != Some(value))
                .map(|(id, value)| {
                    let new = now.iter().find(|(i, _)| i == id).map_or("(default)", |(_, v)| v.as_str());
                    format!("{id}: {value} -> {new}")
                })
                .collect();
            if changed.is_empty() {
                tracing::info!("config {}: re-read; no option changed", path.display());
            } else {
                tracing::warn!(
                    "config {}: changed options need a restart or an upgrade (SIGUSR2) and are not applied: {}",
                    path.display(),
                    changed.join("; ")
                );
            }
        }
    });
}

/// `argv` with its `--config` path replaced by `path` (absolute: a daemon
/// re-reads it from `/`).
fn with_config(argv: &[OsString], path: &Path) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut next_is_path = false;
    for arg in argv {
        if next_is_path {
            out.push(path.as_os_str().to_owned());
            next_is_path = false;
        } else if arg == "--config" {
            next_is_path = true;
            out.push(arg.clone());
        } else if arg.to_str().is_some_and(|a| a.starts_with("--config=")) {
            out.push(OsString::from(format!("--config={}", path.display())));
        } else {
            out.push(arg.clone());
        }
    }
    out
}

/// Every option of `serve` with its effective value (as given or
/// defaulted), after expanding the config: what a reload compares.
fn options(argv: &[OsString]) -> anyhow::Result<Vec<(String, String)>> {
    let expanded = expand(argv.to_vec())?;
    let Some(serve) = expanded.iter().skip(1).position(|a| a == "serve").map(|i| i + 1) else {
        bail!("no serve command");
    };
    let matches = serve_command()
        .try_get_matches_from(&expanded[serve..])
        .map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim_end()))?;
    let mut options = Vec::new();
    for arg in serve_command().get_arguments() {
        let id = arg.get_id().as_str();
        let value = match matches.get_raw(id) {
            Some(values) => values.map(|v| v.to_string_lossy().into_owned()).collect::<Vec<_>>().join(","),
            None => match matches.value_source(id) {
                Some(_) => "on".to_owned(),
                None => continue,
            },
        };
        options.push((id.to_owned(), value));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn config(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.to_string_lossy().into_owned();
        (dir, path)
    }

    #[test]
    fn keys_become_options_before_the_command_line_which_wins() {
        let (_dir, path) = config(
            "model = \"reactor\"\nallow_write = true\ndrain-timeout = 5\nroot = \"/srv\"\ntls-plain = [\"http\", \"echo\"]\ninsecure = false\n",
        );
        let out = expand(argv(&["ferry", "-v", "serve", "--config", &path, "--model", "fork"])).unwrap();
        assert_eq!(
            out,
            argv(&[
                "ferry",
                "-v",
                "serve",
                "--allow-write",
                "--drain-timeout=5",
                "--model=reactor",
                "--tls-plain=http",
                "--tls-plain=echo",
                "/srv",
                "--config",
                &path,
                "--model",
                "fork"
            ])
        );
        // A root on the command line is not given twice.
        let out = expand(argv(&["ferry", "serve", "--config", &path, "/other"])).unwrap();
        assert!(!out.iter().any(|a| a == "/srv"), "{out:?}");
    }

    #[test]
    fn an_unknown_key_or_a_wrong_value_is_named() {
        let (_dir, path) = config("modle = \"reactor\"\n");
        let e = expand(argv(&["ferry", "serve", "--config", &path])).unwrap_err().to_string();
        assert!(e.contains("\"modle\"") && e.contains("unknown key") && e.contains(&path), "{e}");
        let (_dir, path) = config("allow-write = \"yes\"\n");
        let e = expand(argv(&["ferry", "serve", "--config", &path])).unwrap_err().to_string();
        assert!(e.contains("\"allow-write\"") && e.contains("switch"), "{e}");
        let (_dir, path) = config("model = \n");
        let e = format!("{:#}", expand(argv(&["ferry", "serve", "--config", &path])).unwrap_err());
        assert!(e.contains(&path), "{e}");
    }

    #[test]
    fn without_config_nothing_changes() {
        let args = argv(&["ferry", "get", "--config", "x"]);
        assert_eq!(expand(args.clone()).unwrap(), args);
    }
}
