//! bf16 inference against the exact f32 path (issue #18) on a shared BraTS case with the bundled
//! model: the two label maps alike on at least 99.9% of voxels, and each region's Dice against the
//! truth within 0.002. Skipped, with a note, on CPUs without AVX512_BF16 (bf16 is never used there).
mod common;

use brainseg_volume::read_label;
use common::shared;
use std::path::Path;

fn region_dice(json: &Path) -> [f64; 3] {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let mean = |name: &str| {
        summary["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == name)
            .and_then(|m| m["mean"].as_f64())
            .unwrap_or_else(|| panic!("{name} in {}", json.display()))
    };
    ["wt_dice", "tc_dice", "et_dice"].map(mean)
}

#[test]
fn bf16_labels_agree_with_f32() {
    if !brainseg_model::conv::bf16_supported() {
        eprintln!("skipped: this CPU has no AVX512_BF16");
        return;
    }
    let case = shared("brats2018/Brats18_2013_2_1");
    let dir = tempfile::tempdir().unwrap();
    let mut maps = Vec::new();
    let mut dice = Vec::new();
    for precision in ["f32", "bf16"] {
        let out = dir.path().join(precision);
        let json = dir.path().join(format!("{precision}.json"));
        let stdout = brainseg_ok!("predict", "-i", &case, "-o", &out, "--precision", precision);
        assert!(stdout.contains("Brats18_2013_2_1"), "{stdout}");
        brainseg_ok!("evaluate", "-i", &out, "--truth", &case, "--json", &json);
        maps.push(read_label(&out.join("Brats18_2013_2_1.nii.gz")).unwrap().0);
        dice.push(region_dice(&json));
    }
    let alike = maps[0]
        .iter()
        .zip(maps[1].iter())
        .filter(|(a, b)| a == b)
        .count();
    let share = alike as f64 / maps[0].len() as f64;
    eprintln!(
        "bf16: {share:.6} of voxels labelled as f32; Dice WT/TC/ET f32 {:?}, bf16 {:?}",
        dice[0], dice[1]
    );
    assert!(share >= 0.999, "only {share} of voxels alike");
    for (region, (a, b)) in ["WT", "TC", "ET"].iter().zip(dice[0].iter().zip(&dice[1])) {
        assert!(
            (a - b).abs() <= 0.002,
            "{region}: Dice {a} (f32) vs {b} (bf16)"
        );
    }
}
