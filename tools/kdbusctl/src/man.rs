//! The man page, generated from the clap definitions: clap_mangen's title,
//! name, synopsis, description and global options, then one subsection
//! per command (usage, description, options) and the exit status, capture
//! format and files. `Documentation/kdbusctl.1` is this output (a test
//! checks it is up to date; regenerate with `kdbusctl --generate-man >
//! Documentation/kdbusctl.1`).

use clap::CommandFactory;

use crate::cli::Cli;

fn esc(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let l = line.replace('\\', "\\e").replace('-', "\\-");
        if l.starts_with('.') || l.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn arg_label(a: &clap::Arg) -> String {
    let mut s = String::new();
    if let Some(sh) = a.get_short() {
        s.push_str(&format!("\\fB\\-{sh}\\fR"));
        if a.get_long().is_some() {
            s.push_str(", ");
        }
    }
    if let Some(l) = a.get_long() {
        s.push_str(&format!("\\fB\\-\\-{}\\fR", l.replace('-', "\\-")));
    }
    let takes = a.get_action().takes_values();
    if takes {
        let names: Vec<String> = a
            .get_value_names()
            .map(|v| v.iter().map(|n| n.to_string()).collect())
            .unwrap_or_else(|| vec![a.get_id().to_string().to_uppercase()]);
        let v = names.join(" ");
        if a.get_long().is_some() || a.get_short().is_some() {
            s.push_str(&format!(" \\fI{}\\fR", esc(&v).trim_end()));
        } else {
            s.push_str(&format!("\\fI{}\\fR", esc(&v).trim_end()));
            if a.get_num_args().is_some_and(|n| n.max_values() > 1) {
                s.push_str("...");
            }
        }
    }
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && !a.is_positional() && takes {
        s.push_str(&format!(
            " [default: {}]",
            esc(&defaults.join(",")).trim_end()
        ));
    }
    let pv: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| p.get_name().to_string())
        .collect();
    if !pv.is_empty() && a.get_action().takes_values() {
        s.push_str(&format!(" [possible values: {}]", pv.join(", ")));
    }
    s
}

/// The whole page.
pub fn render() -> String {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf: Vec<u8> = Vec::new();
    man.render_title(&mut buf).expect("to memory");
    man.render_name_section(&mut buf).expect("to memory");
    man.render_synopsis_section(&mut buf).expect("to memory");
    man.render_description_section(&mut buf).expect("to memory");
    man.render_options_section(&mut buf).expect("to memory");
    let mut out = String::from_utf8(buf).expect("roff is UTF-8");
    out.push_str(".SH COMMANDS\n");
    let mut built = cmd.clone();
    built.build();
    for sub in built.get_subcommands_mut() {
        let usage = sub.render_usage().to_string();
        let usage = usage.trim_start_matches("Usage: ").trim().to_string();
        out.push_str(&format!(".SS \"{}\"\n", usage.replace('-', "\\-")));
        if let Some(a) = sub.get_long_about().or(sub.get_about()) {
            out.push_str(&esc(&a.to_string()));
        }
        for a in sub.get_arguments() {
            if a.is_hide_set() || a.is_global_set() || a.get_id() == "help" {
                continue;
            }
            out.push_str(".TP\n");
            out.push_str(&arg_label(a));
            out.push('\n');
            if let Some(h) = a.get_long_help().or(a.get_help()) {
                out.push_str(&esc(&h.to_string()));
            }
        }
    }
    out.push_str(EXTRA);
    out.push_str(&format!(
        ".SH VERSION\nv{}\n",
        cmd.get_version().unwrap_or_default()
    ));
    out
}

const EXTRA: &str = r#".SH "EXIT STATUS"
.TP
0
success
.TP
1
a D\-Bus error reply or any other failure
.TP
2
bad usage: arguments, signatures, names, match rules
.TP
3
the bus was not found (kdbusfs not mounted, no such bus or endpoint)
.TP
4
the name has no owner, the service is unknown
.TP
5
permission denied (file modes, policy, not the bus owner)
.TP
6
timeout or no reply
.SH "ARGUMENT SYNTAX"
As busctl: a signature, then one word per basic value; an array is its
element count followed by the elements, a variant its signature followed by
the value, a struct or dict entry its members in order:
\fBs hello\fR, \fBas 3 a b c\fR, \fBa{sv} 1 key s val\fR, \fB(si) str 5\fR,
\fBv s x\fR. Booleans: 1/yes/true/on or 0/no/false/off; integers decimal,
0x hexadecimal or 0 octal. Replies print the same way (\fBs "hello"\fR).
.SH "CAPTURE FORMAT"
A pcap file (magic 0xa1b2c3d4, version 2.4, LINKTYPE_DBUS 231, snapshot
length \fB\-\-size\fR, default 4096); one record per message, timestamped with
the kernel's realtime timestamp of the message. Each packet is the message in
the dbus1 marshalling (version 1), converted from the GVariant form kdbus
carries as sd\-bus's bus_message_remarshal does for its dbus1 bridge: REPLY_SERIAL
as u32, a SENDER field (:1.<id> or org.freedesktop.DBus), SIGNATURE generated
from the body. Wireshark's D\-Bus dissector reads it.
.SH FILES
.TP
/sys/fs/kdbus/control
where buses are made
.TP
/sys/fs/kdbus/0\-system/bus, /sys/fs/kdbus/<uid>\-user/bus
the system and user buses
.SH "SEE ALSO"
busctl(1)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_is_up_to_date() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../Documentation/kdbusctl.1"
        );
        let page = render();
        if std::env::var_os("KDBUSCTL_BLESS").is_some() {
            std::fs::write(path, &page).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == page,
            "Documentation/kdbusctl.1 is out of date: run `cargo run -p kdbusctl -- --generate-man > Documentation/kdbusctl.1` (or KDBUSCTL_BLESS=1 cargo test -p kdbusctl)"
        );
        for c in [
            "list",
            "status",
            "monitor",
            "call",
            "emit",
            "capture",
            "make\\-bus",
            "make\\-endpoint",
        ] {
            assert!(page.contains(&format!(".SS \"kdbusctl {c}")), "{c}");
        }
    }
}
