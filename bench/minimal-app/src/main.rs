//! `tauri-minimal`: the smallest Tauri 2 app — one 1280×800 window showing an empty page, no
//! plugins, no commands. `scripts/bench.sh` builds it with the same profile and features as the
//! Guestlist desktop app (`--features tauri/custom-protocol`, page embedded) and measures the PSS
//! of its process tree in the same run, as the baseline of the app's memory figure.
//!
//! With `--software-rendering` it paints like the Guestlist app does on Linux (WebKitGTK's
//! hardware acceleration policy NEVER, set at `RunEvent::Ready`; src-tauri/src/lib.rs
//! `software_rendering`), for a second, like-for-like baseline.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> Result<(), tauri::Error> {
    let software = std::env::args().any(|a| a == "--software-rendering");
    tauri::Builder::default()
        .build(tauri::generate_context!())?
        .run(move |app, event| {
            if software && let tauri::RunEvent::Ready = event {
                software_rendering(app);
            }
        });
    Ok(())
}

#[cfg(target_os = "linux")]
fn software_rendering(app: &tauri::AppHandle) {
    use tauri::Manager;
    use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
    for window in app.webview_windows().into_values() {
        let _ = window.with_webview(|webview| {
            if let Some(settings) = webview.inner().settings() {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn software_rendering(_app: &tauri::AppHandle) {}
