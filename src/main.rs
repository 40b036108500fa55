//! `brainseg`: the command line. It owns arguments, progress and exit codes; the pipeline lives in the
//! `brainseg-*` library crates, one per stage.
use clap::Parser;

mod cli;

/// mimalloc, told to keep freed memory for reuse (see `main`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`'s place in mimalloc's `mi_option_e` (the same in its v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Each layer allocates and frees buffers of hundreds of MiB; handed back to the kernel, they
    // come back as fresh pages that fault and are zeroed one by one (15% of a forward pass).
    // Kept, they are reused (resident memory stays at its peak); a user's MIMALLOC_PURGE_DELAY wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an option value; mimalloc reads options at each purge decision.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    remove_temp_files_on_interrupt();
    let args = cli::Cli::try_parse().unwrap_or_else(|e| {
        if !e.use_stderr() {
            e.exit() // --help, --version
        }
        let text = e.render().to_string(); // lines with usage; the first names flag and problem
        let line = text.lines().find(|l| !l.trim().is_empty());
        eprintln!("{}", line.unwrap_or("error: bad arguments"));
        std::process::exit(2);
    });
    if let Err(error) = cli::run(args) {
        // One line: the context chain joined by ": ", naming the file and the problem.
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// On SIGINT, SIGTERM or SIGHUP: remove the temporary files being written (outputs appear only
/// when complete, so nothing partial is left), then exit 128 + the signal, as shells report it.
fn remove_temp_files_on_interrupt() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            brainseg_volume::remove_temp_files_in_flight();
            eprintln!("interrupted: no partial output left");
            std::process::exit(128 + signal);
        }
    });
}
