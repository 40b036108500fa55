//! How long work tells the caller where it is. The library never prints: the command line
//! implements [`Progress`] with bars on a terminal and plain lines in a log.
use brainseg_train::TrainEvent;

pub trait Progress: Send {
    /// A named step of a longer job ("[2/5] training ...").
    fn stage(&mut self, _message: &str) {}
    /// `done` of `total` items of kind `what` ("cases", "tiles"); `item` names the current one.
    fn advance(&mut self, _what: &str, _done: usize, _total: usize, _item: &str) {}
    /// Items of kind `what` are finished.
    fn finish(&mut self, _what: &str) {}
    /// Something the user should know that does not stop the work.
    fn warn(&mut self, _message: &str) {}
    /// One item (a case, a series) failed; the others go on.
    fn failed(&mut self, message: &str) {
        self.warn(message)
    }
    /// One event of a training run.
    fn training(&mut self, _event: &TrainEvent) {}
}

/// Reports nothing (tests, benchmarks).
pub struct Silent;

impl Progress for Silent {}
