//! A signal listener: adds one D-Bus match rule, receives until a signal
//! whose first argument is the `--until` word (or 30 s pass), then writes
//! what it got (and how many broadcasts the kernel put into its pool at
//! all) to `--report FILE` (default: standard output).
//!
//! ```sh
//! listener --label A --rule "type='signal',member='Echoed'" [--until bye]
//!          [--bus ENDPOINT] [--ready FILE] [--report FILE]
//! ```

use std::time::{Duration, Instant};

use kdbus_bus_demo::{address, fail, opt, ready, say};
use kdbus_client::ConnectionBuilder;

fn main() {
    let label = opt("label").unwrap_or_else(|| "?".into());
    let who = format!("listener {label}");
    let rule = opt("rule").unwrap_or_else(|| fail(&who, "--rule is required"));
    let until = opt("until").unwrap_or_else(|| "bye".into());
    let conn = ConnectionBuilder::address(address())
        .description(format!("listener-{label}"))
        .build()
        .unwrap_or_else(|e| fail(&who, e));
    if let Err(e) = conn.add_match(&rule) {
        fail(&who, format!("AddMatch: {e}"));
    }
    say(&who, format!("{} AddMatch {rule}", conn.unique_name()));
    ready(opt("ready").as_deref());

    let end = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    let mut done = false;
    while !done {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let m = match conn.receive(Some(left)) {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e) => fail(&who, format!("receive: {e}")),
        };
        let args = match m.body::<(String, String)>() {
            Ok((a, b)) => {
                done = a == until;
                format!("{a:?}, {b:?}")
            }
            Err(_) => format!("<{}>", m.signature()),
        };
        got.push(format!(
            "{}({args}) from {}",
            m.member().unwrap_or("?"),
            m.sender().unwrap_or("?")
        ));
    }
    let unmatched = conn.unmatched_broadcasts();
    let mut report = vec![format!(
        "{} signal{} through its rule: {}",
        got.len(),
        if got.len() == 1 { "" } else { "s" },
        if got.is_empty() {
            "none".into()
        } else {
            got.join(", ")
        }
    )];
    report.push(format!(
        "the kernel put {} broadcast{} into its pool ({unmatched} dropped by the userspace re-check of the rule)",
        got.len() as u64 + unmatched,
        if got.len() as u64 + unmatched == 1 { "" } else { "s" },
    ));
    if !done {
        report.push(format!("no signal with arg0 {until:?} within 30 s"));
    }
    let mark = std::env::var("KDBUS_DEMO_MARK").unwrap_or_default();
    let text: String = report
        .iter()
        .map(|l| format!("{mark}{who}: {l}\n"))
        .collect();
    match opt("report") {
        Some(p) => {
            if let Err(e) = std::fs::write(&p, text) {
                fail(&who, format!("writing {p}: {e}"));
            }
        }
        None => print!("{text}"),
    }
    if !done {
        std::process::exit(1);
    }
}
