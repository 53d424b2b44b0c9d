//! `kdbusctl`: busctl for kdbus (issue 9). See `kdbusctl --help` and
//! `Documentation/kdbusctl.1`.

mod bus;
mod calls;
mod cli;
mod error;
mod format;
mod info;
mod make;
mod man;
mod monitor;
mod pcap;
mod sigparse;

use std::io::{IsTerminal, Write};

use clap::Parser;
use kdbus_client::metadata::attach;

use crate::cli::{Cli, Command, ListArgs};
use crate::error::{CtlError, Result, EXIT_OK};

fn run(cli: &Cli) -> Result<()> {
    let default_list = Command::List(ListArgs {
        unique: false,
        acquired: false,
        activatable: false,
    });
    let cmd = cli.command.as_ref().unwrap_or(&default_list);
    match cmd {
        Command::List(a) => {
            let ep = bus::endpoint(cli)?;
            let conn = bus::connect(&ep, attach::DEFAULT_RECV)?;
            info::list(&conn, a, cli.json, !cli.no_legend)
        }
        Command::Status(a) => {
            let ep = bus::endpoint(cli)?;
            let conn = bus::connect(&ep, attach::DEFAULT_RECV)?;
            info::status(&conn, a.peer.as_deref(), cli.json)
        }
        Command::Call(a) => {
            let ep = bus::endpoint(cli)?;
            let conn = bus::connect(&ep, attach::DEFAULT_RECV)?;
            calls::call(&conn, a, cli.json)
        }
        Command::Emit(a) => {
            let ep = bus::endpoint(cli)?;
            let conn = bus::connect(&ep, attach::DEFAULT_RECV)?;
            calls::emit(&conn, a)
        }
        Command::Monitor(a) => {
            let rules = monitor::rules(&a.filters, &a.watch.matches)?;
            let ep = bus::endpoint(cli)?;
            monitor::run(&ep, &rules, &a.watch, monitor::Sink::Print(cli.json)).map(drop)
        }
        Command::Capture(a) => {
            let rules = monitor::rules(&a.filters, &a.watch.matches)?;
            if a.size == 0 {
                return Err(error::usage("--size must be at least 1"));
            }
            let ep = bus::endpoint(cli)?;
            let out: Box<dyn Write> = if a.file.as_os_str() == "-" {
                if std::io::stdout().is_terminal() {
                    return Err(error::usage(
                        "refusing to write a capture to a terminal: give a FILE or redirect stdout",
                    ));
                }
                Box::new(std::io::stdout())
            } else {
                Box::new(std::fs::File::create(&a.file).map_err(|e| {
                    CtlError::Failure(format!("cannot create {}: {e}", a.file.display()))
                })?)
            };
            let mut w = pcap::PcapWriter::new(out, a.size)
                .map_err(|e| CtlError::Failure(format!("cannot write the capture: {e}")))?;
            let n = monitor::run(&ep, &rules, &a.watch, monitor::Sink::Pcap(&mut w))?;
            eprintln!("kdbusctl: captured {n} messages to {}", a.file.display());
            Ok(())
        }
        Command::MakeBus(a) => make::make_bus(a),
        Command::MakeEndpoint(a) => make::make_endpoint(a),
    }
}

fn main() {
    let cli = Cli::parse();
    if cli.generate_man {
        print!("{}", man::render());
        return;
    }
    let code = match run(&cli) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("kdbusctl: {}", e.message());
            e.exit_code()
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_busctl_style_lines() {
        let c = Cli::try_parse_from([
            "kdbusctl",
            "--bus",
            "0-test",
            "call",
            "org.example.Echo",
            "/org/example/Echo",
            "org.example.Echo",
            "Echo",
            "s",
            "-x",
        ])
        .unwrap();
        let Some(Command::Call(a)) = c.command else {
            panic!()
        };
        assert_eq!(a.signature.as_deref(), Some("s"));
        assert_eq!(a.args, vec!["-x"]);
        let c = Cli::try_parse_from(["kdbusctl", "list", "--json=short"]).unwrap();
        assert_eq!(c.json, Some(cli::JsonMode::Short));
        let c = Cli::try_parse_from(["kdbusctl", "--json", "status"]).unwrap();
        assert_eq!(c.json, Some(cli::JsonMode::Pretty));
        let e = Cli::try_parse_from(["kdbusctl", "call", "a.b"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = Cli::try_parse_from(["kdbusctl", "--user", "--system", "list"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let c = Cli::try_parse_from([
            "kdbusctl",
            "make-endpoint",
            "test",
            "sandbox",
            "--policy",
            "a.b=talk",
            "--policy",
            "c.d=own:user:0",
            "--background",
        ])
        .unwrap();
        let Some(Command::MakeEndpoint(a)) = c.command else {
            panic!()
        };
        assert_eq!(a.policy.len(), 2);
        assert!(a.hold.background);
    }
}
