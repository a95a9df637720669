//! Browser end-to-end tests of the editor: runs the Node test files of
//! `tests/browser/` (headless Debian Chromium driven by playwright-core)
//! against the `flowd` binary cargo built for this test. Each test file
//! starts its own flowd on free ports with a temporary user directory.
//!
//! Needs Node.js >= 20 and Chromium (`/usr/bin/chromium`, or `FLOWD_CHROMIUM`);
//! `scripts/test.sh` installs both and runs `npm ci`. Missing either one is
//! a failure, never a silent pass. The editor screenshot goes to the test's
//! temporary directory, or to `docs/editor.png` with `FLOWD_UPDATE_SCREENSHOT=1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// playwright-core's oldest supported Node.js.
const MIN_NODE_MAJOR: u32 = 20;
/// The whole browser suite must finish within this.
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

#[test]
fn browser_end_to_end() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let node = find_in_path("node").unwrap_or_else(|| {
        panic!("Node.js (node >= 20) is not installed: the browser tests cannot run; scripts/test.sh installs it (apt-get install -y nodejs npm)")
    });
    let version = Command::new(&node)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= MIN_NODE_MAJOR,
        "the browser tests need Node.js >= {MIN_NODE_MAJOR} (playwright-core), found {:?} at {}",
        version,
        node.display()
    );
    let chromium = std::env::var_os("FLOWD_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.is_file(),
        "Chromium not found at {}: the browser tests cannot run; install it (apt-get install -y chromium) or set FLOWD_CHROMIUM",
        chromium.display()
    );
    if !dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        let npm = find_in_path("npm").unwrap_or_else(|| {
            panic!("tests/browser/node_modules is missing and npm is not installed: run `npm ci` in tests/browser")
        });
        let ok = Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "`npm ci` in tests/browser failed");
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/browser")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.js"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no browser test files in {}",
        dir.display()
    );
    let screenshot = if std::env::var_os("FLOWD_UPDATE_SCREENSHOT").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/editor.png")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("editor.png")
    };
    let _ = std::fs::remove_file(&screenshot);
    let mut child = Command::new(node)
        .args(["--test", "--test-concurrency=1"])
        .args(&files)
        .current_dir(&dir)
        .env("FLOWD_BIN", env!("CARGO_BIN_EXE_flowd"))
        .env("FLOWD_CHROMIUM", &chromium)
        .env("FLOWD_SCREENSHOT", &screenshot)
        .spawn()
        .expect("start node");
    let deadline = Instant::now() + SUITE_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for node") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser tests did not finish within {SUITE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "browser tests failed ({status}); see the TAP output above"
    );
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
}
