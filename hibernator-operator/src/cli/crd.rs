//! `hibernator crd [--dir DIR]`.

use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `crd`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one file per CRD into this directory instead of printing them
    /// (`charts/hibernator/crds` regenerates the chart's copies).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

pub(crate) fn run(args: &Args, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    match &args.dir {
        None => write!(out, "{}", hibernator_core::crd::all_yaml()?)?,
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for crd in hibernator_core::crd::all() {
                let path = dir.join(hibernator_core::crd::file_name(&crd));
                std::fs::write(&path, hibernator_core::crd::to_yaml(&crd)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                writeln!(out, "wrote {}", path.display())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
