//! `ferry shell` (owned by the client work; placeholder).

/// Arguments of `ferry shell`.
#[derive(Debug, clap::Args)]
pub struct ShellArgs {}

/// Runs `ferry shell`.
pub fn run(_args: ShellArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
