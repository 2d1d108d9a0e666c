//! Generates the Tauri context (config and the embedded empty page) at compile time.
fn main() {
    tauri_build::build();
}
