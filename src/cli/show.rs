//! `brainseg show`: pictures of a case — labelled slice grid and GIF of each label map given (ground truth,
//! prediction), patch view, ground truth beside prediction.
use anyhow::{bail, Result};
use brainseg_core::LabelNumbering;
use brainseg_pipeline::pictures::{draw_case, load_case, PictureOptions};
use brainseg_visualize::{Convention, Overlay};
use brainseg_volume::read_label_msd;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A BraTS case folder, a 4-D NIfTI, or a dataset folder (then --case picks the case; default the first).
    #[arg(short, long)]
    pub input: PathBuf,
    /// Case id within a dataset.
    #[arg(long)]
    pub case: Option<String>,
    /// Ground-truth label map to draw instead of the case's own (e.g. for a 4-D NIfTI without labels).
    #[arg(long)]
    pub label: Option<PathBuf>,
    /// A predicted label map: drawn too (its own grid, GIF and patch mask), and beside the ground truth when
    /// there is one.
    #[arg(long)]
    pub pred: Option<PathBuf>,
    /// Label numbering of --label and --pred files [default: detected; a 4 means BraTS].
    #[arg(long, value_enum)]
    pub labels: Option<LabelNumbering>,
    /// Output folder for the pictures.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Random slices and patch from this seed (as the notebook); default: slices through the tumour.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Neurological convention (patient's left on image left); default radiological.
    #[arg(long)]
    pub neurological: bool,
    /// Blend labels over FLAIR with this opacity (0..1) instead of painting them opaque as the notebook.
    #[arg(long)]
    pub blend: Option<f32>,
    /// Point x,y,z (canonical voxel indices) for the comparison picture; default: the tumour's centre.
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub point: Option<Vec<usize>>,
    /// Skip the GIF (the slowest and largest picture).
    #[arg(long)]
    pub no_gif: bool,
}

pub fn run(args: Args) -> Result<()> {
    let case = load_case(&args.input, args.case.as_deref())?;
    let (_, x, y, z) = case.image.dim();
    let read =
        |path: &PathBuf| read_label_msd(path, args.labels, Some([x, y, z])).map(|m| m.labels);
    let truth = match &args.label {
        Some(path) => Some(read(path)?),
        None => case.label.clone(),
    };
    let pred = args.pred.as_ref().map(read).transpose()?;
    let overlay = match args.blend {
        Some(alpha) if (0.0..=1.0).contains(&alpha) => Overlay::Blend { alpha },
        Some(alpha) => bail!("--blend {alpha} must be between 0 and 1"),
        None => Overlay::Replace,
    };
    let options = PictureOptions {
        seed: args.seed,
        convention: if args.neurological {
            Convention::Neurological
        } else {
            Convention::Radiological
        },
        overlay,
        point: match args.point.as_deref().map(|p| super::three(p, "--point")) {
            Some(Ok(p)) if p.iter().zip([x, y, z]).any(|(i, n)| *i >= n) => {
                bail!("--point {p:?} is outside the volume {:?}", [x, y, z])
            }
            point => point.transpose()?,
        },
        gif: !args.no_gif,
    };
    let truth_source = match (&args.label, &truth) {
        (Some(path), _) => format!("ground truth (from {})", path.display()),
        (None, Some(_)) => "ground truth (the case's label map)".to_string(),
        (None, None) => String::new(),
    };
    let drawn_maps: Vec<String> = [
        (!truth_source.is_empty()).then_some(truth_source),
        args.pred
            .as_ref()
            .map(|path| format!("prediction (from {})", path.display())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if drawn_maps.is_empty() {
        println!(
            "{}: no label map (no --label, --pred or case label); drawing FLAIR alone",
            case.id
        );
    } else {
        println!("{}: drawing the {}", case.id, drawn_maps.join(" and the "));
        if args.pred.is_some() && truth.is_none() {
            println!("{}: no ground truth, so no comparison picture", case.id);
        }
    }
    for drawn in draw_case(&case, truth.as_ref(), pred.as_ref(), &args.out, &options)? {
        println!("wrote {} ({})", drawn.path.display(), drawn.what);
    }
    Ok(())
}
