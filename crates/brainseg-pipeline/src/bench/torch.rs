//! PyTorch beside brainseg: the reference scripts run in their own process (so their peak memory
//! is their own) on the same work, and their JSON lines read back.
use super::timing::load_average;
use super::{BenchConfig, Part};
use crate::{Error, Progress, Result};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// PyTorch's figures for one part.
#[derive(Debug, Serialize)]
pub struct TorchResult {
    pub median_s: f64,
    pub gflop_per_s: f64,
    pub peak_rss_gib: Option<f64>,
    pub load_before: Option<f64>,
    pub load_after: Option<f64>,
    /// Everything the script printed.
    pub raw: Value,
}

/// torch_unet3d.py prints no memory figure on CPU: it runs under this wrapper, which adds one.
const WITH_PEAK_MEMORY: &str = "import json, resource, runpy, sys\n\
    sys.argv = sys.argv[1:]\n\
    runpy.run_path(sys.argv[0], run_name='__main__')\n\
    print(json.dumps({'peak_rss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)\n";

/// Runs PyTorch with `python` on the same work as `part`, on `threads` threads; `gflop` is the
/// work's, for the rate. The script's standard error goes to this process's.
pub(super) fn run_torch(
    python: &Path,
    part: Part,
    threads: usize,
    gflop: f64,
    config: &BenchConfig,
    progress: &mut dyn Progress,
) -> Result<TorchResult> {
    let (script, arguments, key) = script_arguments(part, threads, config);
    run_script(python, script, &arguments, key, gflop, progress)
}

/// Runs `script` with `arguments` under `python`; its timing is the JSON key `key`.
pub(super) fn run_script(
    python: &Path,
    script: &Path,
    arguments: &[String],
    key: &str,
    gflop: f64,
    progress: &mut dyn Progress,
) -> Result<TorchResult> {
    progress.stage(&format!(
        "[bench] PyTorch: {} {} {}",
        python.display(),
        script.display(),
        arguments.join(" ")
    ));
    let load_before = load_average();
    let output = Command::new(python)
        .arg("-c")
        .arg(WITH_PEAK_MEMORY)
        .arg(script)
        .args(arguments)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::invalid(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        return Err(Error::invalid(format!(
            "{} {} failed ({})",
            python.display(),
            script.display(),
            output.status
        )));
    }
    let raw = merged_json(&String::from_utf8_lossy(&output.stdout))?;
    let median_s = raw[key]["s_per_iter_median"].as_f64().ok_or_else(|| {
        Error::invalid(format!("no {key}.s_per_iter_median in the output: {raw}"))
    })?;
    let peak_rss_gib = raw["peak_rss_kib"]
        .as_f64()
        .map(|kib| kib / (1024.0 * 1024.0));
    Ok(TorchResult {
        median_s,
        gflop_per_s: gflop / median_s,
        peak_rss_gib,
        load_before,
        load_after: load_average(),
        raw,
    })
}

/// The script for `part`, its arguments, and the key of its timing in the output.
fn script_arguments(
    part: Part,
    threads: usize,
    config: &BenchConfig,
) -> (&Path, Vec<String>, &'static str) {
    let shape = |s: [usize; 3]| format!("{}x{}x{}", s[0], s[1], s[2]);
    let mut arguments = vec![
        "--threads".to_string(),
        threads.to_string(),
        "--size".into(),
        shape(config.size),
    ];
    let flag = |name: &str, value: String| [format!("--{name}"), value];
    match part {
        Part::Forward | Part::Train => {
            let mode = if part == Part::Forward {
                "infer"
            } else {
                "train"
            };
            for [name, value] in [
                flag("device", "cpu".into()),
                flag("batch", "1".into()),
                flag("iters", config.iters.to_string()),
                flag("warmup", config.warmup.to_string()),
                flag("mode", mode.into()),
            ] {
                arguments.extend([name, value]);
            }
            (&config.torch_reference, arguments, mode)
        }
        Part::Seed | Part::Sliding | Part::Predict => {
            for [name, value] in [
                flag("reference", config.torch_reference.display().to_string()),
                flag("volume", shape(config.volume)),
                flag("tiling", part.name().into()),
                flag("overlap", config.overlap.to_string()),
                flag("batch", config.tile_batch.to_string()),
                flag("iters", config.scan_iters.to_string()),
            ] {
                arguments.extend([name, value]);
            }
            (&config.torch_scan, arguments, "scan")
        }
    }
}

/// The JSON objects among `stdout`'s lines, merged into one (later keys win).
fn merged_json(stdout: &str) -> Result<Value> {
    let mut merged = serde_json::Map::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let value: Value = serde_json::from_str(line)
            .map_err(|e| Error::invalid(format!("unreadable output line: {line} ({e})")))?;
        if let Value::Object(fields) = value {
            merged.extend(fields);
        }
    }
    Ok(Value::Object(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_get_the_parts_work() {
        let config = BenchConfig::default();
        let (script, arguments, key) = script_arguments(Part::Train, 2, &config);
        assert_eq!(script, config.torch_reference);
        assert_eq!(key, "train");
        assert_eq!(
            arguments.join(" "),
            "--threads 2 --size 160x160x16 --device cpu --batch 1 --iters 3 --warmup 1 --mode train"
        );
        // One tile per model call: predict's default, which the bench follows.
        let (script, arguments, key) = script_arguments(Part::Sliding, 1, &config);
        assert_eq!((script, key), (config.torch_scan.as_path(), "scan"));
        assert!(arguments
            .join(" ")
            .ends_with("--volume 240x240x155 --tiling sliding --overlap 0.5 --batch 1 --iters 1"));
    }

    #[test]
    fn output_lines_merge() {
        let raw = merged_json(
            "loading\n{\"train\": {\"s_per_iter_median\": 1.5}}\n{\"peak_rss_kib\": 1024}\n",
        )
        .unwrap();
        assert_eq!(raw["train"]["s_per_iter_median"], 1.5);
        assert_eq!(raw["peak_rss_kib"], 1024);
    }
}
