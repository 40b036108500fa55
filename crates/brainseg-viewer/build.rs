//! Embeds NiiVue's built UMD bundle (viewer/node_modules/@niivue/niivue/dist/niivue.umd.js, from
//! `npm ci --prefix viewer`) into the crate. Without it the crate still builds: the bundle is empty
//! and `brainseg view` says how to get it.
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let viewer = manifest.join("../../viewer");
    let package = viewer.join("node_modules/@niivue/niivue");
    let bundle = package.join("dist/niivue.umd.js");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("niivue.umd.js");
    // The folder (npm ci replaces node_modules) and the lock file (a new pinned version).
    println!("cargo:rerun-if-changed={}", viewer.display());
    println!(
        "cargo:rerun-if-changed={}",
        viewer.join("package-lock.json").display()
    );
    let bytes = std::fs::read(&bundle).unwrap_or_default();
    let version = std::fs::read_to_string(package.join("package.json"))
        .ok()
        .and_then(|text| {
            // `"version": "0.69.0"`: the first such key of npm's package.json is the package's.
            let rest = &text[text.find("\"version\"")? + 9..];
            let start = rest.find('"')? + 1;
            let end = start + rest[start..].find('"')?;
            Some(rest[start..end].to_string())
        })
        .filter(|_| !bytes.is_empty())
        .unwrap_or_default();
    if bytes.is_empty() {
        println!(
            "cargo:warning=NiiVue bundle not found at {}: `brainseg view` will ask for `npm ci --prefix viewer` and a rebuild",
            bundle.display()
        );
    }
    std::fs::write(&out, &bytes).expect("OUT_DIR is writable");
    println!("cargo:rustc-env=BRAINSEG_NIIVUE_VERSION={version}");
}
