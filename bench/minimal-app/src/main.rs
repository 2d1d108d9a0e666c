//! `tauri-minimal`: the smallest Tauri 2 app — one 1280×800 window showing an empty page, no
//! plugins, no commands. `scripts/bench.sh` builds it with the same profile and features as the
//! Guestlist desktop app (`--features tauri/custom-protocol`, page embedded) and measures the PSS
//! of its process tree in the same run, as the baseline of the app's memory figure.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> Result<(), tauri::Error> {
    tauri::Builder::default().run(tauri::generate_context!())
}
