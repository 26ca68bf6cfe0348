//! `ferry ls` (owned by the client work; placeholder).

/// Arguments of `ferry ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {}

/// Runs `ferry ls`.
pub fn run(_args: LsArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
