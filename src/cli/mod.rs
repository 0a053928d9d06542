//! The command line: clap definitions, dispatch and exit codes.
//!
//! Exit codes: 0 ok, 1 the work failed, 2 bad input or arguments, 3 a missing system tool.

mod doctor;
mod progress;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    /// Process exit code.
    pub code: u8,
    /// Message printed to stderr (no secrets, no backtrace).
    pub message: String,
}

impl CliError {
    /// Bad input (exit 2).
    pub fn input(message: impl ToString) -> Self {
        Self {
            code: 2,
            message: message.to_string(),
        }
    }

    /// The work failed (exit 1).
    pub fn failed(message: impl ToString) -> Self {
        Self {
            code: 1,
            message: message.to_string(),
        }
    }

    /// A system tool is missing (exit 3).
    pub fn missing_tool(message: impl ToString) -> Self {
        Self {
            code: 3,
            message: message.to_string(),
        }
    }
}

#[derive(Parser)]
#[command(
    name = "devatar",
    version,
    about = "Script in, talking-avatar video of your digital twin out."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render the bundled example project offline.
    Demo {
        /// Data folder (database, media, outputs).
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
        /// Output video (default: <data>/<project>.mp4).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print one JSON document describing the render on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Render a project file.
    Render {
        /// The project TOML file.
        file: PathBuf,
        /// Data folder (database, media, outputs).
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
        /// Output video (default: <data>/<project>.mp4).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print one JSON document describing the render on stdout.
        #[arg(long)]
        json: bool,
        /// Burn captions into the video.
        #[arg(long)]
        burn_captions: bool,
    },
    /// Show what is installed and configured, and what is missing.
    Doctor,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEVATAR_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo { data, out, json } => render::demo(data, out, json).await,
            Command::Render {
                file,
                data,
                out,
                json,
                burn_captions,
            } => {
                render::render(render::RenderArgs {
                    file,
                    data,
                    out,
                    json,
                    burn_captions,
                })
                .await
            }
            Command::Doctor => doctor::doctor(),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
