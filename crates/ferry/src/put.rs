//! `ferry put` (owned by the client work; placeholder).

/// Arguments of `ferry put`.
#[derive(Debug, clap::Args)]
pub struct PutArgs {}

/// Runs `ferry put`.
pub fn run(_args: PutArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
