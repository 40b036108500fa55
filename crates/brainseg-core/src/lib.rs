//! brainseg's shared vocabulary, defined once for every stage of the pipeline:
//! the four modalities and their order, the tumour classes in MSD numbering, how label files number
//! them ([`LabelNumbering`]), the BraTS evaluation regions ([`Region`]) and what a model's output
//! channels mean ([`Targets`]).
//!
//! Inside brainseg a label map is always in MSD numbering: 0 background, 1 edema, 2 non-enhancing
//! tumour (with necrosis), 3 enhancing tumour. Files on disk may use BraTS numbering; they are
//! converted on reading and on writing, nowhere else.

mod labels;
mod targets;

pub use labels::{Class, LabelNumbering, MODALITIES};
pub use targets::{Region, Targets};
