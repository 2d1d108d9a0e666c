//! The `guestlist` binary: starts the approver's desktop app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    guestlist_desktop::main();
}
