//! Progress on standard error: bars that fit the terminal and vanish when done; on a log file
//! (Slurm, nohup) one plain line per case or epoch instead.
use brainseg_pipeline::Progress;
use brainseg_train::TrainEvent;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Reporter {
    terminal: bool,
    /// The bar being drawn, and what it counts.
    bar: Option<(String, ProgressBar)>,
}

impl Reporter {
    pub fn new() -> Reporter {
        Reporter {
            terminal: std::io::stderr().is_terminal(),
            bar: None,
        }
    }

    fn bar(&mut self, what: &str, total: usize) -> &ProgressBar {
        if self.bar.as_ref().is_none_or(|(w, _)| w != what) {
            self.clear();
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                // {wide_msg} takes what is left of the line, so the bar never wraps.
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:25}] {pos}/{len} ETA {eta} {wide_msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(what.to_string());
            self.bar = Some((what.to_string(), bar));
        }
        &self.bar.as_ref().expect("just set").1
    }

    fn clear(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// Prints a line without tearing a bar.
    fn line(&self, text: &str) {
        match &self.bar {
            Some((_, bar)) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
}

impl Progress for Reporter {
    fn stage(&mut self, message: &str) {
        self.clear();
        eprintln!("{message}");
    }

    fn advance(&mut self, what: &str, done: usize, total: usize, item: &str) {
        if self.terminal {
            let bar = self.bar(what, total);
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(item.to_string());
        } else if what != "tiles" && done > 0 {
            // In a log, whole items only: a line per case, none per tile.
            eprintln!("{what} {done}/{total}: {item}");
        }
    }

    fn finish(&mut self, what: &str) {
        if self.bar.as_ref().is_some_and(|(w, _)| w == what) {
            self.clear();
        }
    }

    fn warn(&mut self, message: &str) {
        self.line(&format!("warning: {message}"));
    }

    fn failed(&mut self, message: &str) {
        self.line(&format!("error: {message}"));
    }

    fn training(&mut self, event: &TrainEvent) {
        match *event {
            TrainEvent::CaseCached { id, done, total } => {
                self.advance("decoding", done, total, id);
                if done == total {
                    self.finish("decoding");
                }
            }
            TrainEvent::Step {
                epoch,
                step,
                steps,
                loss,
            } => {
                if self.terminal {
                    let what = format!("epoch {epoch}");
                    let bar = self.bar(&what, steps);
                    bar.set_position(step as u64);
                    bar.set_message(format!("loss {loss:.4}"));
                }
            }
            TrainEvent::Validating { epoch } => {
                if let Some((_, bar)) = &self.bar {
                    bar.set_message(format!("validating epoch {epoch}"));
                }
            }
            TrainEvent::Epoch(r) => {
                self.clear();
                let f = |v: Option<f64>| v.map_or_else(|| "  -  ".into(), |v| format!("{v:.3}"));
                eprintln!(
                    "epoch {:>3}: train loss {:.4}  valid loss {:.4}  Dice WT/TC/ET {}/{}/{}  ({:.0} s)",
                    r.epoch,
                    r.train_loss,
                    r.valid_loss,
                    f(r.dice_wt),
                    f(r.dice_tc),
                    f(r.dice_et),
                    r.seconds
                );
            }
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.clear();
    }
}
