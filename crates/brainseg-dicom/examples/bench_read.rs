//! Reading the corpus' largest classic series with brainseg-dicom versus `dcm2niix`.
//!
//!     cargo run --release -p brainseg-dicom --example bench_read [SERIES_FOLDER] [RUNS]
//!
//! Times (best and median of RUNS, default 5): brainseg scanning headers + reading pixels into
//! memory, brainseg converting to .nii.gz and to .nii, and `dcm2niix -z y` / `-z n` (when on
//! PATH) converting the same folder. Prints the CPU model and the load average, since the machine may be shared.
use brainseg_dicom::{convert_study, scan_study};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let folder = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/dicom/dicom/si_e11_cl_pdt2_tse_sag"
        ))
    });
    let runs: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "CPU: {cpu} ({threads} threads available); load average: {}",
        load.trim()
    );
    let files = std::fs::read_dir(&folder).map(|d| d.count()).unwrap_or(0);
    let bytes: u64 = std::fs::read_dir(&folder)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "series: {} ({files} files, {:.1} MB)",
        folder.display(),
        bytes as f64 / 1e6
    );

    let read = time(runs, || {
        let study = scan_study(&folder).expect("scan");
        for s in &study.series {
            brainseg_dicom::read_series(s).expect("read");
        }
    });
    report("brainseg-dicom read (scan + decode, in memory)", &read);
    let out = std::env::temp_dir().join(format!("bench_dicom_{}", std::process::id()));
    let convert = time(runs, || {
        let results = convert_study(&folder, &out).expect("convert");
        assert!(results.iter().all(|r| r.outcome.is_ok()));
    });
    report("brainseg-dicom convert to .nii.gz", &convert);
    // Like for like with `dcm2niix -z n`: every series read and written uncompressed.
    let plain = time(runs, || {
        let study = scan_study(&folder).expect("scan");
        for (n, s) in study.series.iter().enumerate() {
            let image = brainseg_dicom::read_series(s).expect("read");
            brainseg_dicom::write_nifti(&out.join(format!("{n}.nii")), &image).expect("write");
        }
    });
    report("brainseg-dicom read + write .nii", &plain);
    let _ = std::fs::remove_dir_all(&out);

    let dcm2niix_out = std::env::temp_dir().join(format!("bench_dcm2niix_{}", std::process::id()));
    std::fs::create_dir_all(&dcm2niix_out).expect("temp folder");
    let available = Command::new("dcm2niix").arg("-v").output().is_ok();
    if available {
        for (label, compress) in [
            ("dcm2niix -z y (.nii.gz)", "y"),
            ("dcm2niix -z n (.nii)", "n"),
        ] {
            let times = time(runs, || {
                let status = Command::new("dcm2niix")
                    .args(["-z", compress, "-b", "n", "-o"])
                    .arg(&dcm2niix_out)
                    .arg(&folder)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .expect("dcm2niix runs");
                assert!(status.success());
                for e in std::fs::read_dir(&dcm2niix_out).unwrap() {
                    let _ = std::fs::remove_file(e.unwrap().path());
                }
            });
            report(label, &times);
        }
    } else {
        println!("dcm2niix is not on PATH: no comparison");
    }
    let _ = std::fs::remove_dir_all(&dcm2niix_out);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
}

fn time(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(label: &str, times: &[Duration]) {
    println!(
        "{label:48} best {:7.1} ms, median {:7.1} ms ({} runs)",
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times.len()
    );
}
