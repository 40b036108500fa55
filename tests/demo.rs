//! The main job end to end, in a tiny configuration that runs in CI in seconds.
use std::process::Command;

#[test]
fn tiny_demo_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let result = Command::new(env!("CARGO_BIN_EXE_brainseg"))
        .args(["demo", "--out"])
        .arg(&out)
        .args([
            "--cases",
            "3",
            "--shape",
            "32,32,16",
            "--patch",
            "16,16,8",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--base-filters",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for file in [
        "data/dataset.json",
        "heldout/dataset.json",
        "run/metrics.csv",
        "run/curves.png",
        "run/best.safetensors",
        "run/evaluation.json",
        "predictions/heldout_001.nii.gz",
        "predictions/labels.itksnap.txt",
        "predictions/labels.ctbl",
        "report.html",
    ] {
        assert!(
            out.join(file).is_file(),
            "{file} missing; stdout:\n{stdout}"
        );
    }
    let pictures: Vec<_> = std::fs::read_dir(out.join("run/pictures"))
        .unwrap()
        .collect();
    assert!(
        pictures.len() >= 3,
        "grid, GIF, patch and comparison pictures expected"
    );
    // The score table names the three BraTS regions.
    for region in ["WT", "TC", "ET"] {
        assert!(stdout.contains(region), "{region} missing from:\n{stdout}");
    }
    // The report embeds its pictures.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("data:image/png;base64,") && html.contains("data:image/gif;base64,"));

    // A second demo into the same folder is refused, leaving the first intact.
    let again = Command::new(env!("CARGO_BIN_EXE_brainseg"))
        .args(["demo", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("earlier demo"));
}
