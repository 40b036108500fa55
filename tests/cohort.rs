//! A cohort predicted in parts (`predict --part K/N`) as parallel processes, one killed with
//! SIGKILL mid-run and run again: every case segmented exactly once, label maps byte-equal to a
//! single-process `predict`; killing a part at any moment never leaves a case counted as done that
//! is not complete; partial outputs are redone; `cohort status` merges the parts.
#[macro_use]
mod common;

use brainseg_volume::synthetic::{write_dataset, SyntheticConfig};
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PARTS: usize = 3;

/// A synthetic cohort, a tiny model and a single-process prediction of every case.
struct Cohort {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    model: PathBuf,
    ids: Vec<String>,
    /// Label maps of a single-process `predict`, by case id.
    reference: BTreeMap<String, Vec<u8>>,
}

impl Cohort {
    fn new(cases: usize) -> Cohort {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let data = root.join("data");
        let config = SyntheticConfig {
            shape: [32, 32, 16],
            ..SyntheticConfig::default()
        };
        let ids = write_dataset(&data, cases, &config, 5).unwrap();
        let run = root.join("run");
        let model = train_tiny_model(&data, &run);
        let single = root.join("single");
        brainseg_ok!("predict", "-i", &data, "-o", &single, "--model", &model, "--tta");
        let reference = label_maps(&single);
        assert_eq!(
            reference.keys().cloned().collect::<Vec<_>>(),
            ids,
            "the single-process run writes a label map per case"
        );
        Cohort {
            _dir: dir,
            root,
            data,
            model,
            ids,
            reference,
        }
    }

    /// `predict --part K/N` as a child process (mirroring test-time augmentation makes a case slow
    /// enough to be killed in the middle).
    fn spawn(&self, out: &Path, part: &str, extra: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_brainseg"))
            .args(["predict", "--tta", "--part", part, "-i"])
            .arg(&self.data)
            .arg("-o")
            .arg(out)
            .arg("--model")
            .arg(&self.model)
            .args(extra)
            .env("RAYON_NUM_THREADS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("brainseg starts")
    }

    fn part(&self, out: &Path, part: &str, extra: &[&str]) -> String {
        let output = self.spawn(out, part, extra).wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "part {part} failed:\n{}\n{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// The cases of part `k` of N, by the documented rule: sorted ids, case i -> part (i mod N) + 1.
    fn share(&self, k: usize, n: usize) -> Vec<String> {
        let mut sorted = self.ids.clone();
        sorted.sort();
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % n == k - 1)
            .map(|(_, id)| id)
            .collect()
    }

    fn status(&self, out: &Path) -> Value {
        let stdout = brainseg_ok!("cohort", "status", out, "--input", &self.data, "--json");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
    }

    /// Every case `cohort status` counts as done has its label map, byte-equal to the
    /// single-process one; returns them.
    fn assert_done_are_complete(&self, out: &Path) -> Vec<String> {
        let status = self.status(out);
        let done = strings(&status["done"]);
        for case in &done {
            let bytes = std::fs::read(out.join(format!("{case}.nii.gz")))
                .unwrap_or_else(|e| panic!("{case} counted as done without its label map: {e}"));
            assert!(
                bytes == self.reference[case],
                "{case} counted as done, but its label map differs from the single-process one"
            );
        }
        done
    }
}

/// `<case>.nii.gz` files of a folder, by case id.
fn label_maps(folder: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".nii.gz")?.to_string();
            Some((id, std::fs::read(entry.path()).unwrap()))
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A part's manifest: (case, status) in order.
fn manifest(out: &Path, k: usize, n: usize) -> Vec<(String, String)> {
    let path = out.join(format!("manifest.part-{k}-of-{n}.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            (
                entry["case"].as_str().unwrap().to_string(),
                entry["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Cases a part's record lists.
fn recorded(out: &Path, k: usize, n: usize) -> BTreeSet<String> {
    let path = out.join(format!("predictions.part-{k}-of-{n}.json"));
    match std::fs::read(&path) {
        Ok(bytes) => {
            let record: Value = serde_json::from_slice(&bytes).unwrap();
            record["cases"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        }
        Err(_) => BTreeSet::new(),
    }
}

fn sigkill(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&exit),
        Some(9),
        "the part was killed, not finished"
    );
}

#[test]
fn parts_killed_and_rerun_segment_every_case_once_like_a_single_process() {
    let started = Instant::now();
    let cohort = Cohort::new(9);
    let out = cohort.root.join("parts");
    std::fs::create_dir_all(&out).unwrap();

    // Three parts at once; part 2 is killed once its record lists its first case.
    let mut children: Vec<Child> = (1..=PARTS)
        .map(|k| cohort.spawn(&out, &format!("{k}/{PARTS}"), &[]))
        .collect();
    let victim = cohort.share(2, PARTS);
    assert_eq!(victim.len(), 3);
    let deadline = Instant::now() + Duration::from_secs(120);
    while recorded(&out, 2, PARTS).is_empty() {
        assert!(Instant::now() < deadline, "part 2 recorded nothing");
        assert!(
            children[1].try_wait().unwrap().is_none(),
            "part 2 ended before its first case was recorded"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        children[1].try_wait().unwrap().is_none(),
        "part 2 finished before it could be killed: cases are too fast for this test"
    );
    sigkill(&mut children[1]);
    for (k, child) in children.into_iter().enumerate() {
        if k == 1 {
            continue;
        }
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
    }

    // After the kill: what is counted as done is complete and right; part 2 is to run again.
    let done = cohort.assert_done_are_complete(&out);
    let done_of_victim: Vec<String> = victim
        .iter()
        .filter(|c| done.contains(c))
        .cloned()
        .collect();
    assert!(
        !done_of_victim.is_empty() && done_of_victim.len() < victim.len(),
        "part 2 was killed mid-run: {done_of_victim:?} of {victim:?}"
    );
    assert_eq!(done.len(), 6 + done_of_victim.len());
    let status = cohort.status(&out);
    assert_eq!(status["total"], 9);
    assert_eq!(status["failed"], serde_json::json!([]));
    let missing = strings(&status["missing"]);
    let expected_missing: Vec<String> = victim
        .iter()
        .filter(|c| !done.contains(c))
        .cloned()
        .collect();
    assert_eq!(missing, expected_missing);
    let parts = status["parts"].as_array().unwrap();
    let summary: Vec<(String, u64, u64)> = parts
        .iter()
        .map(|p| {
            (
                p["part"].as_str().unwrap().to_string(),
                p["done"].as_u64().unwrap(),
                p["missing"].as_u64().unwrap(),
            )
        })
        .collect();
    let victim_done = done_of_victim.len() as u64;
    assert_eq!(
        summary,
        vec![
            ("1/3".to_string(), 3, 0),
            ("2/3".to_string(), victim_done, 3 - victim_done),
            ("3/3".to_string(), 3, 0)
        ]
    );
    let table = brainseg_ok!("cohort", "status", &out, "--input", &cohort.data);
    println!("cohort status after the kill:\n{table}");
    assert!(
        table.contains("to run again: part(s) 2/3 (sbatch --array=1)"),
        "{table}"
    );
    let ok_before = manifest(&out, 2, PARTS);
    let mtimes: Vec<_> = done_of_victim
        .iter()
        .map(|c| {
            std::fs::metadata(out.join(format!("{c}.nii.gz")))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();

    // Part 2 again: the cases done before are skipped (left untouched), the rest segmented.
    let stdout = cohort.part(&out, "2/3", &[]);
    assert!(
        stdout.contains(&format!(
            "part 2/3: 3 case(s), {} skipped (done before)",
            done_of_victim.len()
        )),
        "{stdout}"
    );
    let rerun = manifest(&out, 2, PARTS);
    let expected: Vec<(String, String)> = victim
        .iter()
        .map(|c| {
            let status = if done_of_victim.contains(c) {
                "skipped"
            } else {
                "ok"
            };
            (c.clone(), status.to_string())
        })
        .collect();
    assert_eq!(rerun, expected);
    for (c, before) in done_of_victim.iter().zip(&mtimes) {
        let now = std::fs::metadata(out.join(format!("{c}.nii.gz")))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(&now, before, "{c} was segmented again");
    }

    // Exactly once: over the runs' manifests, each case is `ok` once.
    let mut ok: Vec<String> = Vec::new();
    for k in [1, 3] {
        ok.extend(
            manifest(&out, k, PARTS)
                .into_iter()
                .filter(|(_, s)| s == "ok")
                .map(|(c, _)| c),
        );
    }
    ok.extend(
        ok_before
            .into_iter()
            .filter(|(_, s)| s == "ok")
            .map(|(c, _)| c),
    );
    ok.extend(rerun.into_iter().filter(|(_, s)| s == "ok").map(|(c, _)| c));
    ok.sort();
    assert_eq!(ok, cohort.ids, "every case segmented exactly once");

    // Byte-equal to the single-process run, and nothing else.
    assert!(label_maps(&out) == cohort.reference, "label maps differ");
    let status = cohort.status(&out);
    assert_eq!(strings(&status["done"]), cohort.ids);
    assert_eq!(status["missing"], serde_json::json!([]));
    let table = brainseg_ok!("cohort", "status", &out, "--input", &cohort.data);
    println!("cohort status after the rerun:\n{table}");
    assert!(
        table.contains("done 9, failed 0, missing 0 of 9 case(s)"),
        "{table}"
    );
    assert!(!table.contains("to run again"), "{table}");

    // A whole run again skips everything; --overwrite segments everything again, identically.
    let stdout = cohort.part(&out, "1/3", &[]);
    assert!(
        stdout.contains("part 1/3: 3 case(s), 3 skipped"),
        "{stdout}"
    );
    let stdout = cohort.part(&out, "1/3", &["--overwrite"]);
    assert!(
        stdout.contains("part 1/3: 3 case(s), 0 skipped"),
        "{stdout}"
    );
    assert!(manifest(&out, 1, PARTS).iter().all(|(_, s)| s == "ok"));
    assert!(label_maps(&out) == cohort.reference);

    // Another split over the same folder (4 parts) finds everything done.
    let stdout = cohort.part(&out, "4/4", &[]);
    assert!(
        stdout.contains("part 4/4: 2 case(s), 2 skipped"),
        "{stdout}"
    );

    // Other options cannot mix into the folder.
    let output = brainseg!(
        "predict",
        "--part",
        "1/3",
        "-i",
        &cohort.data,
        "-o",
        &out,
        "--model",
        &cohort.model
    );
    assert_user_error(&output, &["another model or other options"]);
    println!(
        "sharded kill/resume test: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_part_killed_at_any_moment_never_counts_an_incomplete_case_as_done() {
    let started = Instant::now();
    let cohort = Cohort::new(6);
    let out = cohort.root.join("killed");
    std::fs::create_dir_all(&out).unwrap();

    // How long the whole part 1/1 takes; then kills at moments spread over that time.
    let probe = cohort.root.join("probe");
    let timer = Instant::now();
    cohort.part(&probe, "1/1", &[]);
    let full = timer.elapsed();
    let mut kills = 0;
    let mut step = 0u32;
    loop {
        step += 1;
        let mut child = cohort.spawn(&out, "1/1", &[]);
        // 0.08, 0.16, ... of a full run: moments that fall at different stages of a case (while
        // the run gets shorter, as it skips the cases done before).
        std::thread::sleep(full.mul_f64(0.08 * f64::from(step)).min(full));
        if child.try_wait().unwrap().is_some() {
            break; // finished before the kill: everything is done
        }
        sigkill(&mut child);
        kills += 1;
        // The invariant, whatever the moment: a case counted as done is complete and right.
        let done = cohort.assert_done_are_complete(&out);
        assert_eq!(done, recorded(&out, 1, 1).into_iter().collect::<Vec<_>>());
        assert!(step < 40, "40 runs did not finish 6 cases");
    }
    assert!(kills >= 3, "only {kills} kill(s) landed mid-run");
    let stdout = cohort.part(&out, "1/1", &[]);
    assert!(
        stdout.contains("part 1/1: 6 case(s), 6 skipped"),
        "{stdout}"
    );
    assert!(label_maps(&out) == cohort.reference);
    // No temporary file of a killed writer is left once a part ran again.
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());

    // A label map without a record, and a record without its label map, are both redone.
    let [a, b] = [&cohort.ids[0], &cohort.ids[3]];
    let record_path = out.join("predictions.part-1-of-1.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["cases"].as_object_mut().unwrap().remove(a.as_str());
    std::fs::write(&record_path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    std::fs::write(out.join(format!("{a}.nii.gz")), b"not the label map").unwrap();
    std::fs::remove_file(out.join(format!("{b}.nii.gz"))).unwrap();
    let status = cohort.status(&out);
    assert_eq!(strings(&status["missing"]), vec![a.clone(), b.clone()]);
    cohort.part(&out, "1/1", &[]);
    let redone: Vec<String> = manifest(&out, 1, 1)
        .into_iter()
        .filter(|(_, s)| s == "ok")
        .map(|(c, _)| c)
        .collect();
    assert_eq!(redone, vec![a.clone(), b.clone()]);
    assert!(label_maps(&out) == cohort.reference);

    // A failing case: failed in the manifest with its one-line reason, in `cohort status`, and
    // done once its input is fixed.
    let image = cohort.data.join("imagesTr").join(format!("{b}.nii.gz"));
    let original = std::fs::read(&image).unwrap();
    std::fs::write(&image, &original[..original.len() / 3]).unwrap();
    let failing = cohort.root.join("failing");
    let output = cohort
        .spawn(&failing, "2/2", &[])
        .wait_with_output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains(&format!("1 of 3 case(s) failed: {b}")),
        "{}",
        text(&output.stderr)
    );
    let status = cohort.status(&failing);
    let failed = status["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{status}");
    assert_eq!(failed[0]["case"], b.as_str());
    assert_eq!(failed[0]["part"], "2/2");
    let reason = failed[0]["error"].as_str().unwrap();
    assert!(
        reason.contains(&format!("{b}.nii.gz")) && !reason.contains('\n'),
        "{reason}"
    );
    let table = brainseg_ok!("cohort", "status", &failing, "--input", &cohort.data);
    assert!(
        table.contains(&format!("failed  {b} (part 2/2): ")),
        "{table}"
    );
    assert!(
        table.contains("to run again: part(s) 1/2, 2/2 (sbatch --array=0,1)"),
        "{table}"
    );
    std::fs::write(&image, &original).unwrap();
    cohort.part(&failing, "2/2", &[]);
    let status = cohort.status(&failing);
    assert_eq!(status["failed"], serde_json::json!([]));
    assert_eq!(strings(&status["done"]), cohort.share(2, 2));
    println!(
        "kill-at-any-moment test: {kills} kills, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
