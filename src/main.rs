//! The kube-field-exporter binary: parses flags and runs a command. Errors end here.

use std::process::ExitCode;

use kube_field_exporter::cli::{Cli, Command, FlattenConfig, normalize_args};

fn main() -> ExitCode {
    let args = normalize_args(std::env::args());
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let cmd = strs.first().copied().unwrap_or("kube-field-exporter");
    let cli = match <Cli as argh::FromArgs>::from_args(&[cmd], strs.get(1..).unwrap_or(&[])) {
        Ok(c) => c,
        Err(early) => {
            return if early.status.is_ok() {
                println!("{}", early.output);
                ExitCode::SUCCESS
            } else {
                eprintln!("{}", early.output);
                ExitCode::from(2)
            };
        }
    };
    match cli.command {
        Command::Flatten(a) => {
            let cfg = match FlattenConfig::try_from(a) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut err = stderr.lock();
            match kube_field_exporter::offline::run(&cfg, &mut out, &mut err) {
                Ok(s) if s.skipped == 0 => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: writing output: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
