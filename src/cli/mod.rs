//! The command line: clap definitions, dispatch and exit codes.
//!
//! Exit codes: 0 ok, 1 the work failed, 2 bad input or arguments, 3 a missing system tool.

mod doctor;
mod estimate;
mod face;
mod lora;
mod photos;
mod progress;
mod render;
mod server;
mod train;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::pipeline::RenderOptions;

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
    /// A TOML config file (keys: the variable names of README's Configuration table); also `DEVATAR_CONFIG`.
    /// Environment variables take precedence over it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
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
        /// Providers: local (offline), cloud (paid APIs; keys required), auto (cloud where keys are set).
        #[arg(long, default_value = "auto")]
        providers: String,
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
        /// Providers: local (offline), cloud (paid APIs; keys required), auto (cloud where keys are set).
        #[arg(long, default_value = "auto")]
        providers: String,
        /// Run at most N steps at once (1 = strictly sequential); default: every ready step, within the
        /// provider limits (DEVATAR_PROVIDER_LIMITS).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        max_parallel_steps: Option<u16>,
        /// A free preview: the same scenes, order, framing and captions with the local providers only ($0), kept
        /// apart from paid renders (default output <data>/<project>-preview.mp4).
        #[arg(long)]
        preview: bool,
    },
    /// Price a project file before rendering it.
    Estimate {
        /// The project TOML file.
        file: PathBuf,
        /// Which providers to price: local, cloud, or auto (cloud when a provider key is set).
        #[arg(long, default_value = "cloud")]
        providers: String,
        /// Print the estimate as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what is installed and configured, and what is missing.
    Doctor {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Run the JSON API server.
    Serve {
        /// Address to listen on; non-loopback needs an admin password.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
        /// Data folder.
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
        /// Do not run the pipeline worker in this process.
        #[arg(long)]
        no_worker: bool,
    },
    /// Run a pipeline worker: claims queued runs from the database (shared with `serve --no-worker`).
    Worker {
        /// Data folder (SQLite and media unless DATABASE_URL / S3 settings say otherwise).
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
        /// Runs executed at the same time.
        #[arg(long, default_value_t = 2)]
        slots: usize,
        /// Seconds to let runs in progress finish on SIGTERM before giving them back to the queue.
        #[arg(long, default_value_t = 30)]
        grace: u64,
    },
    /// Apply database migrations and exit.
    Migrate {
        /// Data folder.
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
    },
    /// Run the provider sandbox: fake ElevenLabs, Fal, Kling and Sync Labs APIs on one local port.
    Fakes(crate::fakes::FakesArgs),
    /// Inspect LoRA files.
    Lora {
        #[command(subcommand)]
        command: LoraCommand,
    },
    /// Find and compare faces in photos (the face engine; models from `bash scripts/install-deps.sh`).
    Face {
        #[command(subcommand)]
        command: face::FaceCommand,
    },
    /// Check identities.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum LoraCommand {
    /// Read a LoRA's safetensors header (URL via Range requests, or a local file) and report what it is.
    Inspect {
        /// URL or path of the .safetensors file.
        target: String,
        /// The identity's trigger word, searched in the training metadata.
        #[arg(long)]
        trigger: Option<String>,
        /// The base model it must fit: flux-dev or flux-schnell.
        #[arg(long, default_value = "flux-dev")]
        base_model: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Test an identity: trigger word, base model, voice, and its LoRA from the safetensors header.
    Test {
        /// The identity's name (e.g. deven-primary).
        name: String,
        /// Data folder.
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Also render one still through the configured image provider.
        #[arg(long)]
        render: bool,
    },
    /// An identity's reference photos (its headshot among them): add, list, remove.
    Photos(photos::PhotosArgs),
    /// Vet an identity's photos for training: each photo's verdict and reasons, the set's verdict and summary
    /// (exit 0 when training may go ahead, 1 when it may not).
    Vet(photos::VetArgs),
    /// Record the person's consent to training their likeness (a file and/or a note; never sent to a provider).
    Consent(train::ConsentArgs),
    /// Train the identity's digital twin (a Flux LoRA on Fal) from its usable photos.
    Train(train::TrainArgs),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; prints it alone on the last line of stdout.
    Create {
        /// A name to recognise it by.
        #[arg(long)]
        name: String,
        /// Data folder.
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
    },
    /// List tokens (never their secrets).
    List {
        /// Data folder.
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
    },
    /// Revoke a token by id or name.
    Revoke {
        /// Token id or name.
        token: String,
        /// Data folder.
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set the admin password (read from the first line of stdin).
    SetPassword {
        /// Data folder.
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
    },
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
    let config = match Config::load(BTreeMap::new(), cli.config.as_deref()) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log_filter)
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(point) = &config.failpoint {
        crate::failpoint::arm(point.clone());
    }
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
    let result = runtime.block_on(dispatch(cli.command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// `cfg` with the job webhook registry attached for commands that run provider jobs (when a callback base is
/// configured: see [`crate::web::hooks::attach`]).
async fn with_job_hooks(cfg: Arc<Config>, command: &Command) -> Result<Arc<Config>, CliError> {
    match command {
        Command::Render { .. }
        | Command::Demo { .. }
        | Command::Worker { .. }
        | Command::Serve { .. }
        | Command::Identity { .. } => {
            crate::web::hooks::attach(cfg, matches!(command, Command::Serve { .. }))
                .await
                .map_err(|e| {
                    CliError::failed(format!("cannot start the job webhook listener: {e}"))
                })
        }
        _ => Ok(cfg),
    }
}

/// Runs one command with the process configuration.
async fn dispatch(command: Command, cfg: Arc<Config>) -> Result<(), CliError> {
    let cfg = with_job_hooks(cfg, &command).await?;
    match command {
        Command::Demo {
            data,
            out,
            json,
            providers,
        } => render::demo(&cfg, data, out, json, &providers).await,
        Command::Render {
            file,
            data,
            out,
            json,
            burn_captions,
            providers,
            max_parallel_steps,
            preview,
        } => {
            let options = RenderOptions {
                burn_captions,
                max_parallel_steps: max_parallel_steps.map(usize::from),
                preview,
            };
            let args = render::RenderArgs {
                file,
                data,
                out,
                json,
                options,
                providers,
            };
            render::render(&cfg, args).await
        }
        Command::Doctor { json } => doctor::doctor(&cfg, json),
        Command::Lora { command } => lora_command(&cfg, command).await,
        Command::Face { command } => face::run(&cfg, command).await,
        Command::Identity {
            command:
                IdentityCommand::Test {
                    name,
                    data,
                    json,
                    render,
                },
        } => lora::identity_test(&cfg, &data, &name, json, render).await,
        Command::Identity {
            command: IdentityCommand::Photos(args),
        } => photos::run(&cfg, args).await,
        Command::Identity {
            command: IdentityCommand::Vet(args),
        } => photos::vet(&cfg, args).await,
        Command::Identity {
            command: IdentityCommand::Consent(args),
        } => train::consent(&cfg, args).await,
        Command::Identity {
            command: IdentityCommand::Train(args),
        } => train::train(&cfg, args).await,
        Command::Estimate {
            file,
            providers,
            json,
        } => estimate::run(&cfg, &file, &providers, json),
        Command::Worker { data, slots, grace } => server::worker(&cfg, &data, slots, grace).await,
        Command::Migrate { data } => server::migrate(&cfg, &data).await,
        Command::Fakes(args) => crate::fakes::run(args, &cfg.cloud, &cfg.face)
            .await
            .map_err(|e| CliError::failed(format!("{e:#}"))),
        Command::Serve {
            bind,
            data,
            no_worker,
        } => server::serve(&cfg, bind, &data, no_worker).await,
        Command::Token { command } => token_command(&cfg, command).await,
        Command::Admin {
            command: AdminCommand::SetPassword { data },
        } => server::admin_set_password(&cfg, &data).await,
    }
}

async fn lora_command(cfg: &Config, command: LoraCommand) -> Result<(), CliError> {
    match command {
        LoraCommand::Inspect {
            target,
            trigger,
            base_model,
            json,
        } => lora::inspect(cfg, &target, trigger, &base_model, json).await,
    }
}

async fn token_command(cfg: &Config, command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Create { name, data } => server::token_create(cfg, &data, &name).await,
        TokenCommand::List { data } => server::token_list(cfg, &data).await,
        TokenCommand::Revoke { token, data } => server::token_revoke(cfg, &data, &token).await,
    }
}
