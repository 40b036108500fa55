//! Embed the bundled model when the repository has one (models/brainseg-brats.safetensors).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(bundled_model)");
    println!("cargo::rerun-if-changed=models/brainseg-brats.safetensors");
    if std::path::Path::new("models/brainseg-brats.safetensors").exists() {
        println!("cargo::rustc-cfg=bundled_model");
    }
}
