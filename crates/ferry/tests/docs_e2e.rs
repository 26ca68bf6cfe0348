//! What the binary says about itself, from the same clap definitions as
//! its parser: `--version`, completion scripts that bash really loads, and
//! manual pages in roff that name every subcommand and flag.

mod util;

use std::process::Command;

use util::{PATIENCE, ferry, ferry_bin, run_fed};

/// Every subcommand `ferry --help` lists.
const COMMANDS: &[&str] = &["serve", "get", "put", "ls", "shell", "ping", "passwd", "token", "completions", "man"];

fn stdout_of(args: &[&str]) -> String {
    let out = ferry(args, None, b"");
    assert!(out.status.success(), "ferry {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn version_is_the_packages() {
    assert_eq!(stdout_of(&["--version"]).trim(), format!("ferry {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bash_loads_the_completions_and_every_shell_gets_a_script() {
    let script = r#"source <("$FERRY" completions bash) && complete -p ferry"#;
    let out = run_fed(Command::new("bash").args(["-c", script]).env("FERRY", ferry_bin()), b"", PATIENCE);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("complete ") && text.trim_end().ends_with(" ferry"), "{text}");
    let bash = stdout_of(&["completions", "bash"]);
    for command in COMMANDS {
        assert!(bash.contains(command), "bash completes {command}");
    }
    assert!(bash.contains("--hidden") && bash.contains("--allow-write"), "and the flags");
    assert!(stdout_of(&["completions", "zsh"]).starts_with("#compdef ferry"));
    assert!(stdout_of(&["completions", "fish"]).contains("complete -c ferry"));
    assert!(!ferry(&["completions", "tcsh"], None, b"").status.success(), "an unknown shell is refused");
}

#[test]
fn man_pages_name_every_command_and_render() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH ferry 1"), "{page}");
    for command in COMMANDS {
        assert!(page.contains(&format!("ferry\\-{command}(1)")), "ferry(1) lists {command}: {page}");
    }
    let serve = stdout_of(&["man", "serve"]);
    assert!(serve.contains(".TH ferry-serve 1"), "{serve}");
    assert!(serve.contains("\\-\\-hidden") && serve.contains("\\-\\-allow\\-write"), "{serve}");
    let out = ferry(&["man", "nosuch"], None, b"");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("serve"), "names the commands");
    // Rendered by groff, when it is installed (man-db's `man -l -` uses it).
    if Command::new("groff").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let out = run_fed(Command::new("groff").args(["-man", "-Tutf8", "-P-cbou"]), serve.as_bytes(), PATIENCE);
        assert!(out.status.success(), "groff: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("hidden") && text.contains("SYNOPSIS"), "{text}");
    }
}
