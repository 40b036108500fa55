//! `brainseg cache`: where training keeps decoded cases, how much it holds; `--clear` empties it.
use anyhow::{bail, Result};
use brainseg_train::cache;

#[derive(clap::Args)]
pub struct Args {
    /// Remove every decoded case (runs decode them again when they need them).
    #[arg(long)]
    pub clear: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Some(dir) = cache::shared_dir() else {
        bail!(
            "no cache folder: set BRAINSEG_CACHE (or HOME); runs keep their cases in <run>/cache"
        );
    };
    let gib = |bytes: u64| bytes as f64 / (1u64 << 30) as f64;
    if args.clear {
        let freed = cache::clear(&dir)?;
        println!("cleared {} ({:.2} GiB freed)", dir.display(), gib(freed));
    } else {
        let (cases, bytes) = cache::usage(&dir);
        println!(
            "{}: {cases} decoded case(s), {:.2} GiB (brainseg cache --clear empties it; BRAINSEG_CACHE moves it)",
            dir.display(),
            gib(bytes)
        );
    }
    Ok(())
}
