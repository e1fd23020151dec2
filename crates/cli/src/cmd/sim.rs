//! `hashmesh sim` (being written).

/// Options of `hashmesh sim`.
#[derive(clap::Args)]
pub struct SimArgs {}

/// Runs the simulated fleet.
pub async fn run(_args: SimArgs) -> anyhow::Result<()> {
    anyhow::bail!("hashmesh sim is not built yet")
}
