//! Embed the bundled model when the repository has one (models/brainseg-brats.safetensors).
fn main() {
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/brainseg-brats.safetensors"
    );
    println!("cargo::rustc-check-cfg=cfg(bundled_model)");
    println!("cargo::rerun-if-changed={model}");
    if std::path::Path::new(model).exists() {
        println!("cargo::rustc-cfg=bundled_model");
    }
}
