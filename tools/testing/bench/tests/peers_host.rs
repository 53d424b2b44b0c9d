//! `kdbus-bench-peers` on this host, briefly: the socketpair baseline
//! always (two processes), dbus-daemon and dbus-broker (sd-bus clients and
//! servers) when they are installed (tools/testing/setup-host.sh) and we are
//! root (dbus-broker-launch gets a private /run in a mount namespace).

use std::process::Command;

fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn peers_run_on_the_host() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut only = vec!["socket"];
    if have("dbus-daemon") {
        only.push("dbus-daemon");
    } else {
        eprintln!("dbus-daemon not installed: not measured");
    }
    if have("dbus-broker-launch") && root {
        only.push("dbus-broker");
    } else {
        eprintln!("dbus-broker-launch not installed or not root: not measured");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kdbus-bench-peers"))
        .args([
            "--where", "host", "--budget", "1.5", "--rounds", "1", "--pin", "none",
        ])
        .args(["--only", &only.join(",")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for len in [8, 4096, 65536] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("BENCH peers_host payload={len} ")))
            .unwrap_or_else(|| panic!("no BENCH line for {len}:\n{text}"));
        assert!(line.contains("socket_per_s=") && !line.contains("socket_per_s=skipped"));
        assert!(line.contains("kdbus_raw_per_s=skipped"), "{line}");
        for k in &only[1..] {
            let f = k.replace('-', "_");
            assert!(!line.contains(&format!("{f}_per_s=skipped")), "{line}");
            assert!(!line.contains(&format!("{f}_per_s=error")), "{line}");
        }
    }
    assert!(text.contains("kdbus-bench-peers: OK"), "{text}");
}
