//! The `devatar` command.

fn main() -> std::process::ExitCode {
    devatar::cli::main()
}
