//! `ferry completions SHELL` and `ferry man [COMMAND]`: shell completion
//! scripts (clap_complete) and manual pages in roff (clap_mangen), both
//! made at run time from the same clap definitions as the parser, so they
//! always match the binary that prints them (no build step to forget, and
//! `cargo install` users get them too: `ferry man serve | man -l -`).

use std::io::Write as _;

use anyhow::{Context as _, bail};
use clap::CommandFactory as _;

/// Arguments of `ferry completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for. Install, e.g.:
    /// bash: `ferry completions bash > ~/.local/share/bash-completion/completions/ferry`;
    /// zsh: `ferry completions zsh > "${fpath[1]}/_ferry"`;
    /// fish: `ferry completions fish > ~/.config/fish/completions/ferry.fish`.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Arguments of `ferry man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (`serve`, `get`, ...): ferry-serve(1).
    /// Without it, ferry(1), which lists them. Read one with `ferry man | man -l -`.
    #[arg(value_name = "COMMAND")]
    command: Option<String>,
}

/// Prints the completion script for a shell on standard output.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ferry", &mut out);
    std::io::stdout().write_all(&out).context("cannot write the completion script")
}

/// Prints a manual page in roff on standard output.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    cmd.build();
    let page = match &args.command {
        None => clap_mangen::Man::new(cmd),
        Some(name) => match cmd.find_subcommand(name) {
            // Titled ferry-NAME, as git's pages are.
            Some(sub) => clap_mangen::Man::new(sub.clone()).title(format!("ferry-{name}")),
            None => {
                let names: Vec<_> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
                bail!("no command {name:?} (one of: {})", names.join(", "));
            }
        },
    };
    let mut out = Vec::new();
    page.render(&mut out).context("cannot render the manual page")?;
    std::io::stdout().write_all(&out).context("cannot write the manual page")
}
