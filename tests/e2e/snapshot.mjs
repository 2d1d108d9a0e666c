// Screenshots of the app's window through WebKitWebDriver.
//
// The app paints without GPU compositing (src-tauri/src/lib.rs, `software_rendering`). In that
// mode WebKitWebDriver's screenshot command waits for the page's next presentation update, and a
// page at rest has none, so the command would wait until its HTTP timeout. `saveWindowShot` makes
// the page paint once shortly after the command is sent (a one-frame opacity change of the body,
// invisible in the picture), which releases the snapshot.
import path from 'node:path';

/** Saves a screenshot of `browser`'s window to `file` (PNG); rejects like `saveScreenshot`. */
export async function saveWindowShot(browser, file) {
  await browser.execute(() => {
    setTimeout(() => {
      document.body.style.opacity = '0.999';
      requestAnimationFrame(() => requestAnimationFrame(() => { document.body.style.opacity = ''; }));
    }, 100);
  });
  await browser.saveScreenshot(path.resolve(file));
}
