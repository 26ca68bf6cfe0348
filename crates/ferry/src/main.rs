//! `ferry`: serve a directory, move files to and from a ferry server, browse
//! it interactively.
//!
//! Each subcommand lives in its own module; this file only parses the
//! command line, sets up logging and dispatches.

mod accounts;
mod batch_view;
mod connect;
mod connect_tls;
mod credentials;
mod docs;
mod exposure;
mod get;
mod logging;
mod ls;
mod netrc;
mod ping;
mod progress;
mod put;
mod serve;
mod serve_http;
mod serve_tls;
mod shell;
mod stdin;
mod transfer;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A Linux network-server toolkit: file and HTTP server, file-transfer client.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, propagate_version = true)]
struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log output (only warnings and errors).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a directory (the current one by default) over ferry's protocols.
    #[command(args_override_self = true)]
    Serve(serve::ServeArgs),
    /// Download files or trees (-r) from a ferry server (or one file to
    /// stdout: `-`), resuming partial downloads of the same version.
    Get(get::GetArgs),
    /// Upload files or trees (-r), or stdin (`-`), to a ferry server
    /// started with --allow-write, resuming partial uploads of the same
    /// bytes.
    Put(put::PutArgs),
    /// List a directory on a ferry server.
    Ls(ls::LsArgs),
    /// Interactive shell on a ferry server: pwd, cd, ls, get, put, ...
    Shell(shell::ShellArgs),
    /// Round trips to a server, as ping(8) shows them (`ping` on the file
    /// protocol, or datagrams to a --udp-echo service with --udp).
    Ping(ping::PingArgs),
    /// Add an account to an accounts file (for `serve --auth`), or change
    /// its password.
    Passwd(accounts::PasswdArgs),
    /// Make a token for scripts: acts as an account, limited in rights and
    /// time; printed once.
    Token(accounts::TokenArgs),
    /// Print a completion script for bash, zsh or fish (from the same
    /// definitions as this parser): `source <(ferry completions bash)`.
    Completions(docs::CompletionsArgs),
    /// Print a manual page in roff (ferry(1), or ferry-COMMAND(1)):
    /// `ferry man serve | man -l -`.
    Man(docs::ManArgs),
}

fn main() -> ExitCode {
    // `serve --config FILE`: the file's options go before the command line's.
    let argv = match serve::expand_config(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("ferry: error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(argv);
    logging::init(cli.verbose, cli.quiet);
    progress::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Get(args) => get::run(args),
        Command::Put(args) => put::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Shell(args) => shell::run(args),
        Command::Ping(args) => ping::run(args),
        Command::Passwd(args) => accounts::passwd(args),
        Command::Token(args) => accounts::token(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<transfer::Reported>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ferry: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
