//! `ferry get` (owned by the client work; placeholder).

/// Arguments of `ferry get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {}

/// Runs `ferry get`.
pub fn run(_args: GetArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
