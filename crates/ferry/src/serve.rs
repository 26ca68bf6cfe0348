//! `ferry serve` (placeholder until the driver lands).

/// Arguments of `ferry serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs `ferry serve`.
pub fn run(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
