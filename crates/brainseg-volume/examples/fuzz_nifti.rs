//! A mutation fuzzer for the NIfTI reader: seeded, reproducible, under a 2 GiB address-space cap.
//!
//! `cargo run --release -p brainseg-volume --example fuzz_nifti -- --minutes 30 --seed 1`
//!
//! Seeds are the shared BraTS 2018 files (`../shared/data/brats2018`, `../shared/data/msd-labels`,
//! when present) and small synthetic files written at start (3-D int16/int32/float32/uint8 modality
//! and label files, 4-D MSD images, `.nii` and `.nii.gz`). Each input is one seed mutated by one to
//! four operations: header fields (dims, datatype, bitpix, vox_offset, pixdim, qform/sform codes,
//! quaternion, offsets, srow, scl_slope/scl_inter, sizeof_hdr, magic, extensions), truncation,
//! random byte flips, appended bytes, and on the gzip stream: truncation, byte flips, a corrupt
//! header or trailer, extra members. The mutant is then read by one of `read_header`, `read_image`,
//! `read_label`, `read_label_msd`, or `Dataset::open` + `CaseRef::load` (the mutant as one file of
//! a BraTS case folder, an MSD dataset's 4-D image, or a single 4-D file).
//!
//! Input `i` of seed `S` is drawn from its own generator (seeded from `S` and `i`), so
//! `--seed S --replay i` rebuilds and reruns exactly that input and prints what the reader said.
//!
//! The reading runs in a worker process (this binary with `--worker`) that sets RLIMIT_AS to
//! 2 GiB and catches panics with `catch_unwind`; the supervisor counts results, notices a worker
//! that dies (an abort, a signal, the memory cap hit by an allocation that aborts) and restarts
//! it after the input that killed it. An input taking more than 10 s is counted as a hang. Inputs
//! that panic, abort or hang are saved under `<out>/crashes/` with a note of how to replay them.
//! A summary line is printed every 30 s and at the end.
use brainseg_volume::nifti_io::{read_header, write_image};
use brainseg_volume::synthetic::{generate_case, SyntheticConfig};
use brainseg_volume::{read_image, read_label, read_label_msd, write_label, Dataset};
use flate2::write::GzEncoder;
use flate2::Compression;
use ndarray::{s, Array4};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MEMORY_CAP: u64 = 2 << 30;
const HANG: Duration = Duration::from_secs(10);
const SUMMARY_EVERY: Duration = Duration::from_secs(30);
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

struct Options {
    minutes: f64,
    seed: u64,
    out: PathBuf,
    replay: Option<u64>,
    worker: bool,
    start: u64,
    until: u64,
}

fn usage() -> ! {
    eprintln!("usage: fuzz_nifti [--minutes N] [--seed S] [--out DIR] [--replay INPUT]");
    std::process::exit(2);
}

fn parse_options() -> Options {
    let mut o = Options {
        minutes: 1.0,
        seed: 1,
        out: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/fuzz_nifti"
        )),
        replay: None,
        worker: false,
        start: 0,
        until: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--minutes" => o.minutes = value().parse().unwrap_or_else(|_| usage()),
            "--seed" => o.seed = value().parse().unwrap_or_else(|_| usage()),
            "--out" => o.out = PathBuf::from(value()),
            "--replay" => o.replay = Some(value().parse().unwrap_or_else(|_| usage())),
            "--worker" => o.worker = true,
            "--start" => o.start = value().parse().unwrap_or_else(|_| usage()),
            "--until" => o.until = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    o
}

fn main() {
    let o = parse_options();
    if o.worker {
        worker(&o);
    } else if let Some(input) = o.replay {
        replay(&o, input);
    } else {
        supervise(&o);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
fn cap_memory() {
    let limit = libc::rlimit {
        rlim_cur: MEMORY_CAP,
        rlim_max: MEMORY_CAP,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    if rc != 0 {
        eprintln!("fuzz_nifti: setrlimit(RLIMIT_AS) failed");
        std::process::exit(2);
    }
}

#[cfg(not(target_os = "linux"))]
fn cap_memory() {
    eprintln!("fuzz_nifti: no memory cap on this platform");
}

// ---------------------------------------------------------------- supervisor

#[derive(Default)]
struct Counts {
    inputs: u64,
    ok: u64,
    err: u64,
    panics: u64,
    aborts: u64,
    hangs: u64,
    slowest_ms: u64,
}

impl Counts {
    fn line(&self, elapsed: Duration, seed: u64) -> String {
        format!(
            "[{:>3}:{:02}] seed {seed}: inputs {} ok {} err {} panics {} aborts {} hangs {} slowest {} ms",
            elapsed.as_secs() / 60,
            elapsed.as_secs() % 60,
            self.inputs,
            self.ok,
            self.err,
            self.panics,
            self.aborts,
            self.hangs,
            self.slowest_ms
        )
    }
}

fn supervise(o: &Options) {
    let crashes = o.out.join("crashes");
    std::fs::create_dir_all(&crashes).expect("the output folder can be created");
    let started = Instant::now();
    let until = unix_now() + (o.minutes * 60.0).round() as u64;
    let exe = std::env::current_exe().expect("own path");
    let mut counts = Counts::default();
    let mut next = o.start;
    let mut last_summary = Instant::now();
    println!(
        "fuzz_nifti: seed {}, {} minutes, memory cap {} GiB, output {}",
        o.seed,
        o.minutes,
        MEMORY_CAP >> 30,
        o.out.display()
    );
    while unix_now() < until {
        let mut child = Command::new(&exe)
            .args(["--worker", "--seed", &o.seed.to_string()])
            .args(["--start", &next.to_string(), "--until", &until.to_string()])
            .arg("--out")
            .arg(&o.out)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut running: Option<u64> = None;
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["start", i] => running = i.parse().ok(),
                ["done", i, outcome, ms] => {
                    let ms: u64 = ms.parse().unwrap_or(0);
                    counts.inputs += 1;
                    counts.slowest_ms = counts.slowest_ms.max(ms);
                    match *outcome {
                        "ok" => counts.ok += 1,
                        "err" => counts.err += 1,
                        "panic" => counts.panics += 1,
                        _ => {}
                    }
                    if ms > HANG.as_millis() as u64 {
                        counts.hangs += 1;
                    }
                    running = None;
                    next = i.parse::<u64>().unwrap_or(next) + 1;
                }
                _ => println!("{line}"),
            }
            if last_summary.elapsed() >= SUMMARY_EVERY {
                println!("{}", counts.line(started.elapsed(), o.seed));
                last_summary = Instant::now();
            }
        }
        let status = child.wait().expect("the worker is waited for");
        if let Some(i) = running {
            // The worker died inside an input: an abort (or a kill by the memory cap).
            counts.inputs += 1;
            counts.aborts += 1;
            let dest = crashes.join(format!("abort-seed{}-input{i}", o.seed));
            let _ = std::fs::copy(o.out.join("work").join("current.bin"), &dest);
            println!(
                "ABORT input {i} ({status}); saved {}; replay: --seed {} --replay {i}",
                dest.display(),
                o.seed
            );
            next = i + 1;
        } else if !status.success() {
            println!("worker failed outside an input ({status}); stopping");
            break;
        }
    }
    println!("final {}", counts.line(started.elapsed(), o.seed));
}

// ---------------------------------------------------------------- worker

static PANIC_MESSAGE: Mutex<String> = Mutex::new(String::new());

fn worker(o: &Options) {
    cap_memory();
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut m) = PANIC_MESSAGE.lock() {
            *m = info.to_string();
        }
    }));
    let work = o.out.join("work");
    let crashes = o.out.join("crashes");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("a work folder");
    let seeds = Seeds::build(&work.join("seeds"));
    let mut stdout = std::io::stdout();
    let mut input = o.start;
    while unix_now() < o.until {
        writeln!(stdout, "start {input}").ok();
        stdout.flush().ok();
        let case = Mutant::draw(&seeds, o.seed, input);
        let _ = std::fs::write(work.join("current.bin"), &case.bytes);
        let started = Instant::now();
        let outcome = run_watched(&case, &seeds, &work.join("run"), o.seed, input, &crashes);
        let ms = started.elapsed().as_millis();
        let word = match &outcome {
            Outcome::Ok => "ok",
            Outcome::Err => "err",
            Outcome::Panic(message) => {
                let dest = save_crash(&crashes, "panic", o.seed, input, &case, message);
                println!(
                    "PANIC input {input} ({}): {message}; saved {}",
                    case.describe(),
                    dest.display()
                );
                "panic"
            }
        };
        writeln!(stdout, "done {input} {word} {ms}").ok();
        stdout.flush().ok();
        input += 1;
    }
}

fn save_crash(
    crashes: &Path,
    kind: &str,
    seed: u64,
    input: u64,
    case: &Mutant,
    note: &str,
) -> PathBuf {
    let dest = crashes.join(format!("{kind}-seed{seed}-input{input}{}", case.ext()));
    let _ = std::fs::write(&dest, &case.bytes);
    let _ = std::fs::write(
        dest.with_extension("txt"),
        format!(
            "{}\n{note}\nreplay: cargo run --release -p brainseg-volume --example fuzz_nifti -- --seed {seed} --replay {input}\n",
            case.describe()
        ),
    );
    dest
}

/// Run one input on a thread; a run of more than 10 s is reported (and the input saved) as a hang,
/// then waited for so that hangs do not pile up.
fn run_watched(
    case: &Mutant,
    seeds: &Seeds,
    dir: &Path,
    seed: u64,
    input: u64,
    crashes: &Path,
) -> Outcome {
    let (send, receive) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let _ = send.send(run_caught(case, seeds, dir));
        });
        match receive.recv_timeout(HANG) {
            Ok(outcome) => outcome,
            Err(_) => {
                let dest = save_crash(crashes, "hang", seed, input, case, "took more than 10 s");
                println!(
                    "HANG input {input} ({}): saved {}",
                    case.describe(),
                    dest.display()
                );
                receive
                    .recv()
                    .unwrap_or(Outcome::Panic("the reader thread vanished".into()))
            }
        }
    })
}

enum Outcome {
    Ok,
    Err,
    Panic(String),
}

fn run_caught(case: &Mutant, seeds: &Seeds, dir: &Path) -> Outcome {
    let _ = std::fs::remove_dir_all(dir);
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Outcome::Panic(format!("harness: {e}"));
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(case, seeds, dir))) {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(_)) => Outcome::Err,
        Err(_) => Outcome::Panic(
            PANIC_MESSAGE
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default()
                .replace('\n', " "),
        ),
    }
}

/// Write the mutant where the target expects it and read it.
fn run(case: &Mutant, seeds: &Seeds, dir: &Path) -> Result<(), String> {
    let seed = &seeds.all[case.seed];
    let ext = case.ext();
    let text = |e: brainseg_volume::Error| e.to_string();
    match case.target {
        Target::Header => {
            let path = dir.join(format!("mutant{ext}"));
            write(&path, &case.bytes)?;
            read_header(&path).map(|_| ()).map_err(text)
        }
        Target::Image => {
            let path = dir.join(format!("mutant{ext}"));
            write(&path, &case.bytes)?;
            read_image(&path).map(|_| ()).map_err(text)
        }
        Target::Label => {
            let path = dir.join(format!("mutant{ext}"));
            write(&path, &case.bytes)?;
            read_label(&path).map(|_| ()).map_err(text)
        }
        Target::LabelMsd => {
            let path = dir.join(format!("mutant{ext}"));
            write(&path, &case.bytes)?;
            read_label_msd(&path, None, None).map(|_| ()).map_err(text)
        }
        Target::Dataset => {
            let root = match &seed.family {
                Family::Brats { files, slot } => {
                    // The mutant takes its own slot in a case folder of its family; the others are links.
                    let id = "Fuzz_case_1";
                    let folder = dir.join(id);
                    std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
                    for (k, (suffix, file)) in BRATS_NAMES.iter().zip(files).enumerate() {
                        if k == *slot {
                            write(&folder.join(format!("{id}{suffix}{ext}")), &case.bytes)?;
                        } else {
                            let name = format!("{id}{suffix}{}", seed_ext(file));
                            link(file, &folder.join(name))?;
                        }
                    }
                    folder
                }
                Family::Msd { label } => {
                    std::fs::create_dir_all(dir.join("imagesTr")).map_err(|e| e.to_string())?;
                    std::fs::create_dir_all(dir.join("labelsTr")).map_err(|e| e.to_string())?;
                    let image = format!("imagesTr/fuzz_001{ext}");
                    write(&dir.join(&image), &case.bytes)?;
                    let label_name = format!("labelsTr/fuzz_001{}", seed_ext(label));
                    link(label, &dir.join(&label_name))?;
                    let json = serde_json::json!({
                        "name": "fuzz",
                        "training": [{"image": format!("./{image}"), "label": format!("./{label_name}")}],
                        "test": [],
                    });
                    write(&dir.join("dataset.json"), json.to_string().as_bytes())?;
                    if case.single_file {
                        dir.join(&image)
                    } else {
                        dir.to_path_buf()
                    }
                }
                Family::Alone => {
                    let path = dir.join(format!("mutant{ext}"));
                    write(&path, &case.bytes)?;
                    path
                }
            };
            let dataset = Dataset::open(&root).map_err(text)?;
            for c in &dataset.cases {
                c.load().map_err(text)?;
            }
            Ok(())
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("harness: {}: {e}", path.display()))
}

fn link(from: &Path, to: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(from, to).map_err(|e| format!("harness: {e}"))
    }
    #[cfg(not(unix))]
    {
        std::fs::copy(from, to)
            .map(|_| ())
            .map_err(|e| format!("harness: {e}"))
    }
}

fn seed_ext(path: &Path) -> &'static str {
    if path.to_string_lossy().ends_with(".gz") {
        ".nii.gz"
    } else {
        ".nii"
    }
}

fn replay(o: &Options, input: u64) {
    cap_memory();
    let work = o.out.join("replay");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("a replay folder");
    let seeds = Seeds::build(&work.join("seeds"));
    let case = Mutant::draw(&seeds, o.seed, input);
    let path = work.join(format!("input{}", case.ext()));
    std::fs::write(&path, &case.bytes).expect("the input is written");
    println!("input {input}: {} -> {}", case.describe(), path.display());
    std::fs::create_dir_all(work.join("run")).expect("a run folder");
    let started = Instant::now();
    let result = run(&case, &seeds, &work.join("run"));
    match result {
        Ok(()) => println!("ok in {:?}", started.elapsed()),
        Err(e) => println!("err in {:?}: {e}", started.elapsed()),
    }
}

// ---------------------------------------------------------------- seeds

const BRATS_NAMES: [&str; 5] = ["_flair", "_t1", "_t1ce", "_t2", "_seg"];

/// The files a seed belongs with, for the `Dataset` target.
enum Family {
    /// A BraTS case: the 5 files (modalities, then the label); the seed is `files[slot]`.
    Brats { files: Vec<PathBuf>, slot: usize },
    /// A 4-D MSD image with its label.
    Msd { label: PathBuf },
    /// Read on its own.
    Alone,
}

struct Seed {
    path: PathBuf,
    /// The uncompressed file.
    raw: Vec<u8>,
    gz: bool,
    family: Family,
    /// Relative cost: big real files are drawn less often.
    big: bool,
}

struct Seeds {
    all: Vec<Seed>,
}

impl Seeds {
    fn build(dir: &Path) -> Seeds {
        std::fs::create_dir_all(dir).expect("a seed folder");
        let mut all = vec![];
        let shared = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
        // Real BraTS cases: the first three (each file ~ 9 M voxels).
        let mut cases: Vec<PathBuf> = std::fs::read_dir(shared.join("brats2018"))
            .map(|r| {
                r.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        cases.sort();
        for case in cases.iter().take(3) {
            let id = case
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let files: Vec<PathBuf> = BRATS_NAMES
                .iter()
                .map(|s| case.join(format!("{id}{s}.nii.gz")))
                .collect();
            if !files.iter().all(|f| f.is_file()) {
                continue;
            }
            for slot in 0..5 {
                add_seed(
                    &mut all,
                    &files[slot],
                    Family::Brats {
                        files: files.clone(),
                        slot,
                    },
                    true,
                );
            }
        }
        let mut labels: Vec<PathBuf> = std::fs::read_dir(shared.join("msd-labels"))
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        labels.sort();
        for label in labels.iter().take(2) {
            add_seed(&mut all, label, Family::Alone, true);
        }
        // Small real-header files: a real header over a 24x20x12 block of its own voxels.
        let reals: Vec<(Vec<u8>, usize)> = all
            .iter()
            .filter(|s| s.raw.len() > 352)
            .map(|s| (s.raw.clone(), 0))
            .take(5)
            .collect();
        for (k, (raw, _)) in reals.into_iter().enumerate() {
            let mut small = raw[..352].to_vec();
            for (i, d) in [3i16, 24, 20, 12, 1, 1, 1, 1].iter().enumerate() {
                small[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
            }
            let bitpix = i16::from_le_bytes([raw[72], raw[73]]).max(8) as usize;
            let vox_offset = f32::from_le_bytes([raw[108], raw[109], raw[110], raw[111]]) as usize;
            let n = 24 * 20 * 12 * bitpix / 8;
            let start = (vox_offset + raw.len().saturating_sub(vox_offset) / 2).min(raw.len() - n);
            small.truncate(vox_offset.min(352));
            small.resize(vox_offset.max(352), 0);
            small.extend_from_slice(&raw[start..start + n]);
            let path = dir.join(format!("realheader_{k}.nii"));
            std::fs::write(&path, &small).expect("a seed is written");
            add_seed(&mut all, &path, Family::Alone, false);
        }
        // Small synthetic files: BraTS-style case folders and MSD 4-D images of several types.
        for (k, (shape, spacing, dtype, gz)) in [
            ([20, 18, 12], [1.0, 1.0, 1.0], "int16", true),
            ([16, 16, 16], [2.5, 2.5, 2.42], "float32", true),
            ([17, 13, 9], [0.9, 1.1, 3.0], "uint8", false),
            ([24, 16, 10], [1.0, 1.0, 1.5], "int32", true),
        ]
        .into_iter()
        .enumerate()
        {
            let config = SyntheticConfig {
                shape,
                spacing,
                ..SyntheticConfig::default()
            };
            let case = generate_case(&config, 17 + k as u64, "fuzz");
            let image = if dtype == "uint8" {
                case.image.mapv(|v| v.clamp(0.0, 255.0).round())
            } else {
                case.image.clone()
            };
            let ext = if gz { ".nii.gz" } else { ".nii" };
            let case_dir = dir.join(format!("case_{k}"));
            std::fs::create_dir_all(&case_dir).expect("a seed folder");
            let mut files = vec![];
            for (c, name) in BRATS_NAMES.iter().enumerate().take(4) {
                let path = case_dir.join(format!("s{k}{name}{ext}"));
                let channel: Array4<f32> = image.slice(s![c..c + 1, .., .., ..]).to_owned();
                write_image(&path, &channel, &case.geometry, dtype).expect("a seed is written");
                files.push(path);
            }
            let label = case_dir.join(format!("s{k}_seg{ext}"));
            write_label(
                &label,
                case.label.as_ref().expect("labelled"),
                &case.geometry,
                None,
            )
            .expect("a seed is written");
            files.push(label.clone());
            for slot in 0..5 {
                add_seed(
                    &mut all,
                    &files[slot],
                    Family::Brats {
                        files: files.clone(),
                        slot,
                    },
                    false,
                );
            }
            let four = dir.join(format!("msd_{k}{ext}"));
            write_image(&four, &image, &case.geometry, dtype).expect("a seed is written");
            add_seed(&mut all, &four, Family::Msd { label }, false);
        }
        Seeds { all }
    }
}

fn add_seed(all: &mut Vec<Seed>, path: &Path, family: Family, big: bool) {
    let bytes = std::fs::read(path).expect("a seed is read");
    let gz = bytes.starts_with(&GZIP_MAGIC);
    let raw = if gz { gunzip(&bytes) } else { bytes };
    all.push(Seed {
        path: path.to_path_buf(),
        raw,
        gz,
        family,
        big,
    });
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("seeds are valid gzip");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(vec![], Compression::fast());
    e.write_all(bytes).expect("in memory");
    e.finish().expect("in memory")
}

// ---------------------------------------------------------------- mutations

#[derive(Clone, Copy, Debug)]
enum Target {
    Header,
    Image,
    Label,
    LabelMsd,
    Dataset,
}

struct Mutant {
    seed: usize,
    target: Target,
    gz: bool,
    /// Dataset target with an MSD seed: open the 4-D file itself rather than the dataset folder.
    single_file: bool,
    ops: Vec<String>,
    bytes: Vec<u8>,
}

impl Mutant {
    fn ext(&self) -> &'static str {
        if self.gz {
            ".nii.gz"
        } else {
            ".nii"
        }
    }

    fn describe(&self) -> String {
        format!(
            "target {:?}{} {}{}, ops [{}]",
            self.target,
            if self.single_file {
                " (single file)"
            } else {
                ""
            },
            "seed file ",
            self.seed,
            self.ops.join("; ")
        )
    }

    fn draw(seeds: &Seeds, seed: u64, input: u64) -> Mutant {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ input);
        let index = loop {
            let i = rng.random_range(0..seeds.all.len());
            // Big real files cost ~100x a small one: draw them one time in eight.
            if !seeds.all[i].big || rng.random_ratio(1, 8) {
                break i;
            }
        };
        let s = &seeds.all[index];
        let target = match rng.random_range(0..10) {
            0 => Target::Header,
            1..=3 => Target::Image,
            4 => Target::Label,
            5 => Target::LabelMsd,
            _ => Target::Dataset,
        };
        let mut raw = s.raw.clone();
        let mut ops = vec![format!(
            "{}",
            s.path.file_name().unwrap_or_default().to_string_lossy()
        )];
        let n = rng.random_range(1..=4);
        for _ in 0..n {
            ops.push(mutate_raw(&mut rng, &mut raw));
        }
        let gz = if rng.random_ratio(1, 10) { !s.gz } else { s.gz };
        let bytes = if gz {
            let mut z = gzip(&raw);
            if rng.random_ratio(1, 3) {
                ops.push(mutate_gz(&mut rng, &mut z));
            }
            z
        } else {
            raw
        };
        // One time in twenty the name lies about the compression.
        let named_gz = if rng.random_ratio(1, 20) {
            ops.push("misnamed".into());
            !gz
        } else {
            gz
        };
        Mutant {
            seed: index,
            target,
            gz: named_gz,
            single_file: rng.random_bool(0.5),
            ops,
            bytes,
        }
    }
}

const I16S: [i16; 18] = [
    0, 1, -1, 2, 3, 4, 5, 7, 8, 9, 16, 255, 256, 1000, 4096, 32767, -32768, -2,
];
const I16_FIELDS: [(&str, usize); 16] = [
    ("dim[0]", 40),
    ("dim[1]", 42),
    ("dim[2]", 44),
    ("dim[3]", 46),
    ("dim[4]", 48),
    ("dim[5]", 50),
    ("dim[6]", 52),
    ("dim[7]", 54),
    ("intent_code", 68),
    ("datatype", 70),
    ("bitpix", 72),
    ("slice_start", 74),
    ("slice_end", 120),
    ("qform_code", 252),
    ("sform_code", 254),
    ("dim[3]", 46),
];
const F32_FIELDS: [(&str, usize); 28] = [
    ("pixdim[0]", 76),
    ("pixdim[1]", 80),
    ("pixdim[2]", 84),
    ("pixdim[3]", 88),
    ("pixdim[4]", 92),
    ("vox_offset", 108),
    ("vox_offset", 108),
    ("scl_slope", 112),
    ("scl_inter", 116),
    ("cal_max", 124),
    ("slice_duration", 132),
    ("quatern_b", 256),
    ("quatern_c", 260),
    ("quatern_d", 264),
    ("qoffset_x", 268),
    ("qoffset_y", 272),
    ("qoffset_z", 276),
    ("srow_x[0]", 280),
    ("srow_x[1]", 284),
    ("srow_x[3]", 292),
    ("srow_y[0]", 296),
    ("srow_y[1]", 300),
    ("srow_y[2]", 304),
    ("srow_z[0]", 312),
    ("srow_z[2]", 320),
    ("srow_z[3]", 324),
    ("intent_p1", 56),
    ("toffset", 136),
];

fn interesting_f32(rng: &mut ChaCha8Rng) -> f32 {
    const F: [f32; 18] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        5.0,
        1e-38,
        1e38,
        f32::MAX,
        f32::MIN,
        1e-45,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        348.0,
        352.0,
        1e9,
        -352.0,
    ];
    if rng.random_ratio(1, 4) {
        rng.random_range(-1000.0..1000.0)
    } else {
        F[rng.random_range(0..F.len())]
    }
}

fn put(raw: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    if raw.len() < at + bytes.len() {
        raw.resize(at + bytes.len(), 0);
    }
    raw[at..at + bytes.len()].copy_from_slice(bytes);
}

/// One mutation of the uncompressed file; returns its description.
fn mutate_raw(rng: &mut ChaCha8Rng, raw: &mut Vec<u8>) -> String {
    match rng.random_range(0..16) {
        0..=3 => {
            let (name, at) = I16_FIELDS[rng.random_range(0..I16_FIELDS.len())];
            let v = if rng.random_ratio(1, 4) {
                rng.random::<i16>()
            } else {
                I16S[rng.random_range(0..I16S.len())]
            };
            put(raw, at, &v.to_le_bytes());
            format!("{name} = {v}")
        }
        4..=7 => {
            let (name, at) = F32_FIELDS[rng.random_range(0..F32_FIELDS.len())];
            let v = interesting_f32(rng);
            put(raw, at, &v.to_le_bytes());
            format!("{name} = {v}")
        }
        8 => {
            // A datatype with its matching bitpix (or a wrong one).
            const TYPES: [(i16, i16); 12] = [
                (1, 1),
                (2, 8),
                (4, 16),
                (8, 32),
                (16, 32),
                (32, 64),
                (64, 64),
                (128, 24),
                (256, 8),
                (512, 16),
                (1024, 64),
                (1536, 128),
            ];
            let (t, b) = TYPES[rng.random_range(0..TYPES.len())];
            let b = if rng.random_ratio(1, 4) { b * 2 } else { b };
            put(raw, 70, &t.to_le_bytes());
            put(raw, 72, &b.to_le_bytes());
            format!("datatype {t} bitpix {b}")
        }
        9 => {
            const SIZES: [i32; 6] = [348, 0x5c01_0000, 540, 0, -1, 349];
            let v = SIZES[rng.random_range(0..SIZES.len())];
            put(raw, 0, &v.to_le_bytes());
            format!("sizeof_hdr = {v:#x}")
        }
        10 => {
            const MAGICS: [&[u8; 4]; 5] = [b"n+1\0", b"ni1\0", b"n+2\0", b"\0\0\0\0", b"n+1x"];
            let m = MAGICS[rng.random_range(0..MAGICS.len())];
            put(raw, 344, m);
            format!("magic = {m:?}")
        }
        11 => {
            // An extension: extender flag, then esize and ecode.
            const SIZES: [i32; 8] = [0, 8, 16, 7, -16, i32::MAX, 1 << 20, 4096];
            let esize = SIZES[rng.random_range(0..SIZES.len())];
            put(raw, 348, &[1, 0, 0, 0]);
            put(raw, 352, &esize.to_le_bytes());
            put(raw, 356, &rng.random_range(0..50i32).to_le_bytes());
            format!("extension esize {esize}")
        }
        12 => {
            let at = match rng.random_range(0..3) {
                0 => rng.random_range(0..348.min(raw.len().max(1))),
                1 => rng.random_range(348..400).min(raw.len()),
                _ => rng.random_range(0..raw.len().max(1)),
            };
            raw.truncate(at);
            format!("truncate at {at}")
        }
        13 => {
            let k = rng.random_range(1..=8);
            for _ in 0..k {
                let at = rng.random_range(0..352);
                let bit = rng.random_range(0..8);
                put(raw, at, &[raw.get(at).copied().unwrap_or(0) ^ (1 << bit)]);
            }
            format!("{k} header bit flips")
        }
        14 => {
            let k = rng.random_range(1..=32);
            let len = raw.len().max(1);
            for _ in 0..k {
                let at = rng.random_range(0..len);
                let v = rng.random::<u8>();
                put(raw, at, &[v]);
            }
            format!("{k} random bytes")
        }
        _ => {
            let k = rng.random_range(1..4096);
            let extra: Vec<u8> = (0..k).map(|_| rng.random()).collect();
            raw.extend_from_slice(&extra);
            format!("{k} bytes appended")
        }
    }
}

/// One mutation of the gzip stream; returns its description.
fn mutate_gz(rng: &mut ChaCha8Rng, z: &mut Vec<u8>) -> String {
    let len = z.len();
    match rng.random_range(0..6) {
        0 => {
            let at = rng.random_range(0..len);
            z.truncate(at);
            format!("gzip truncated at {at} of {len}")
        }
        1 => {
            let k = rng.random_range(1..=16);
            for _ in 0..k {
                let at = rng.random_range(10..len.max(11)).min(len - 1);
                z[at] = rng.random();
            }
            format!("{k} gzip bytes changed")
        }
        2 => {
            // The trailer: CRC32 and ISIZE.
            let at = len - rng.random_range(1..=8);
            z[at] ^= 1 << rng.random_range(0..8);
            format!("gzip trailer byte {at} flipped")
        }
        3 => {
            // Header flags: FEXTRA / FNAME / FCOMMENT / FHCRC set with no such fields.
            let flag = 1u8 << rng.random_range(1..5);
            z[3] |= flag;
            format!("gzip flag {flag:#x} set")
        }
        4 => {
            // A second member: garbage, or a valid member holding garbage.
            let k = rng.random_range(1..512);
            let extra: Vec<u8> = (0..k).map(|_| rng.random()).collect();
            if rng.random_bool(0.5) {
                z.extend_from_slice(&gzip(&extra));
                format!("second gzip member of {k} bytes")
            } else {
                z.extend_from_slice(&GZIP_MAGIC);
                z.extend_from_slice(&extra);
                format!("{k} garbage bytes after a gzip magic")
            }
        }
        _ => {
            let at = rng.random_range(10..len.max(11)).min(len - 1);
            let run = rng.random_range(1..256).min(len - at);
            for b in &mut z[at..at + run] {
                *b = 0xff;
            }
            format!("gzip bytes {at}..{} set to 0xff", at + run)
        }
    }
}
