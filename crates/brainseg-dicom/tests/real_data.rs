//! Every series of the shared DICOM corpus converted and compared with dcm2niix's reference NIfTI
//! files: by the corpus' own check.py when python3 with nibabel is present, otherwise by shape,
//! affine and values read back with brainseg-volume. Skipped (with a note) without the data.
use brainseg_dicom::{
    can_decode, convert_study, list_series, read_series_dir, scan_study, Modality, SliceOrientation,
};
use brainseg_volume::read_image;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/dicom"
    ));
    if dir.join("dicom").is_dir() && dir.join("ref").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "note: {} is absent; skipping the real-DICOM tests",
            dir.display()
        );
        None
    }
}

/// series_id -> (transfer syntax name, reference names) from ref/series.csv.
fn references(corpus: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(corpus.join("ref/series.csv")).unwrap();
    let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let mut fields = line.split(',');
        let (id, name) = (fields.next().unwrap(), fields.next().unwrap());
        refs.entry(id.to_string())
            .or_default()
            .push(name.trim_end_matches(".nii.gz").to_string());
    }
    refs
}

/// Series whose pixel data this build cannot decode (JPEG-LS): their references are expected to fail.
fn undecodable(corpus: &Path, id: &str) -> bool {
    scan_study(&corpus.join("dicom").join(id))
        .unwrap()
        .series
        .iter()
        .any(|s| !can_decode(&s.transfer_syntax))
}

fn python_with_nibabel() -> bool {
    Command::new("python3")
        .args(["-c", "import nibabel, numpy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn every_series_matches_dcm2niix() {
    let Some(corpus) = corpus() else { return };
    let out = tempfile::tempdir().unwrap();
    let refs = references(&corpus);
    let mut failed_to_convert = BTreeMap::new();
    for id in refs.keys() {
        let results = convert_study(&corpus.join("dicom").join(id), &out.path().join(id)).unwrap();
        assert!(!results.is_empty(), "{id}: no series found");
        for r in results {
            if let Err(e) = r.outcome {
                println!("{id}: not converted: {e}");
                failed_to_convert.insert(id.clone(), e.to_string());
            }
        }
    }
    // Only the JPEG-LS series may fail, each with a one-line error naming the file and the syntax.
    for (id, e) in &failed_to_convert {
        assert!(undecodable(&corpus, id), "{id} failed: {e}");
        assert!(
            e.contains("JPEG-LS") && e.contains(".dcm: ") && !e.contains('\n'),
            "{e}"
        );
    }
    let expected_pass: Vec<&String> = refs
        .iter()
        .filter(|(id, _)| !failed_to_convert.contains_key(*id))
        .flat_map(|(_, names)| names)
        .collect();
    if python_with_nibabel() {
        // The phase echo of the XA30 field map is named `_e2_ph` by dcm2niix from Siemens'
        // private ICE dimensions, which brainseg does not read: map it by hand.
        let map = out.path().join("map.csv");
        std::fs::write(
            &map,
            "si_xa30_enh_gre_phase_rescale_e2_ph,9_gre_field_mapping_ph\n",
        )
        .unwrap();
        let output = Command::new("python3")
            .arg(corpus.join("check.py"))
            .arg(out.path())
            .arg(corpus.join("ref"))
            .arg("--map")
            .arg(&map)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        println!("{text}{}", String::from_utf8_lossy(&output.stderr));
        let mut passed = Vec::new();
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let name = field(line, "ref");
            if line.contains("\"pass\": true") {
                passed.push(name);
            }
        }
        for name in &expected_pass {
            assert!(
                passed
                    .iter()
                    .any(|p| p.trim_end_matches(".nii.gz") == name.as_str()),
                "{name} did not pass check.py"
            );
        }
    } else {
        println!("note: python3 with nibabel is absent; comparing with brainseg-volume instead");
        for (id, names) in &refs {
            if failed_to_convert.contains_key(id) {
                continue;
            }
            let outputs: Vec<PathBuf> = std::fs::read_dir(out.path().join(id))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            for name in names {
                let reference =
                    read_image(&corpus.join("ref").join(format!("{name}.nii.gz"))).unwrap();
                let suffix = name.strip_prefix(id.as_str()).unwrap_or("");
                let suffix = if suffix == "_e2_ph" { "_ph" } else { suffix };
                let mine = outputs
                    .iter()
                    .find(|p| p.to_string_lossy().ends_with(&format!("{suffix}.nii.gz")))
                    .unwrap_or_else(|| panic!("{name}: no output"));
                let mine = read_image(mine).unwrap();
                assert_eq!(mine.data.shape(), reference.data.shape(), "{name}");
                let (a, b) = (
                    mine.geometry.canonical_affine(),
                    reference.geometry.canonical_affine(),
                );
                for r in 0..3 {
                    for c in 0..4 {
                        assert!(
                            (a[r][c] - b[r][c]).abs() < 0.01,
                            "{name}: affine {a:?} vs {b:?}"
                        );
                    }
                }
                let max = reference.data.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (x, y) in mine.data.iter().zip(reference.data.iter()) {
                    assert!((x - y).abs() <= 1e-5 * max.max(1.0), "{name}: {x} vs {y}");
                }
            }
        }
    }
}

/// The value of a string field in a JSON line (enough for check.py's flat output).
fn field(line: &str, key: &str) -> String {
    let pat = format!("\"{key}\": \"");
    line.split_once(&pat)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(v, _)| v.to_string())
        .unwrap_or_default()
}

#[test]
fn listing_describes_the_corpus() {
    let Some(corpus) = corpus() else { return };
    let dicom = corpus.join("dicom");
    // The whole corpus as one study: one entry per volume series (the dual echo counts twice).
    let all = list_series(&dicom).unwrap();
    assert_eq!(all.len(), 21, "{all:#?}");
    let find = |folder: &str| {
        let list = list_series(&dicom.join(folder)).unwrap();
        assert_eq!(list.len(), 1, "{folder}: {list:#?}");
        list.into_iter().next().unwrap()
    };
    let mprage = find("si_xa30_enh_t1mprage_sag");
    assert_eq!(mprage.orientation, SliceOrientation::Sagittal);
    assert_eq!(mprage.size, [128, 128, 96, 1]);
    assert!(
        mprage.spacing.iter().all(|s| (s - 2.0).abs() < 1e-5),
        "{:?}",
        mprage.spacing
    );
    assert_eq!(mprage.modality, Modality::T1w);
    assert_eq!(mprage.name, "5_anat-T1w_acq-tfl");
    let epi = find("ge_cl_epi_ax_feetfirst");
    assert_eq!(epi.orientation, SliceOrientation::Axial);
    assert_eq!(epi.size, [64, 64, 10, 5]);
    assert_eq!(epi.modality, Modality::Unknown);
    let cor = find("si_xa60_enh_epi_cor");
    assert_eq!(cor.orientation, SliceOrientation::Coronal);
    let mosaic = find("ts_1_explicitLE");
    assert_eq!(mosaic.size, [64, 64, 35, 1]);
    assert!((mosaic.spacing[2] - 3.6).abs() < 1e-6);
    let pdt2 = list_series(&dicom.join("si_e11_cl_pdt2_tse_sag")).unwrap();
    let names: Vec<&str> = pdt2.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "3_pd+t2_tse_sag_ISO_1.8mm_e1",
            "3_pd+t2_tse_sag_ISO_1.8mm_e2"
        ]
    );
    assert_eq!(pdt2[1].modality, Modality::T2w);
    // The Philips raw-data object shares the series UID but is skipped.
    let study = scan_study(&dicom.join("ph_enh_t1tse_ax")).unwrap();
    assert_eq!(study.series.len(), 1);
    assert_eq!(study.skipped.len(), 1);
    assert!(study.skipped[0].ends_with("0001_Raw.dcm"));
}

#[test]
fn signed_12_bit_values_and_philips_scaling() {
    let Some(corpus) = corpus() else { return };
    let signed = read_series_dir(&corpus.join("dicom/bit12_4_signed_stripes")).unwrap();
    let (lo, hi) = signed
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    // Upstream dcm2niix (verified with pydicom): -2048..2047.
    assert_eq!((lo, hi), (-2048.0, 2047.0));
    assert_eq!(signed.source_dtype, "int16");
    // Philips precise values: stored / 0.08426640927791595 (private scale slope), not display values.
    let philips = read_series_dir(&corpus.join("dicom/ph_cl_t1ffe_ax")).unwrap();
    assert_eq!(philips.source_dtype, "float32");
    let max = philips.data.iter().fold(0f32, |m, &v| m.max(v));
    assert!((max as f64 - 48595.87896823883).abs() < 0.01, "{max}");
}

#[test]
fn four_series_make_a_case_on_the_t1gd_grid() {
    let Some(corpus) = corpus() else { return };
    let dicom = corpus.join("dicom");
    // No FLAIR or post-contrast series in the corpus: picking by guess names the missing one.
    let study = scan_study(&dicom.join("si_xa30_enh_t1mprage_sag")).unwrap();
    let e = brainseg_dicom::pick_modalities(&study)
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("no FLAIR series found (see `brainseg info`); name the series to use"),
        "{e}"
    );
    // The same series in every role: the T1Gd channel is the series itself and resampling onto
    // its own grid changes nothing beyond rounding.
    let mprage = &study.series[0];
    let image = brainseg_dicom::read_series(mprage).unwrap();
    let case = brainseg_dicom::case_from_series("x", [mprage; 4]).unwrap();
    assert_eq!(case.image.shape(), [4, 96, 128, 128]);
    for c in 0..4 {
        for (a, b) in case
            .image
            .index_axis(ndarray::Axis(0), c)
            .iter()
            .zip(image.data.iter())
        {
            assert!((a - b).abs() < 1e-3, "channel {c}: {a} vs {b}");
        }
    }
    // A different grid (the GE axial oblique slab) resampled onto the Siemens sagittal grid:
    // the shape is the T1Gd grid's, and the 4-D EPI series is refused as a modality.
    let ge = scan_study(&dicom.join("ge_cl_t1mprage_ax_obl_slab")).unwrap();
    let case =
        brainseg_dicom::case_from_series("y", [&ge.series[0], mprage, mprage, mprage]).unwrap();
    assert_eq!(case.image.shape(), [4, 96, 128, 128]);
    let epi = scan_study(&dicom.join("ge_cl_epi_ax_feetfirst")).unwrap();
    let e = brainseg_dicom::case_from_series("z", [&epi.series[0], mprage, mprage, mprage])
        .unwrap_err()
        .to_string();
    assert!(e.contains("the FLAIR series holds 5 volumes"), "{e}");
}
