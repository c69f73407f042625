use std::process::ExitCode;

use bulwark_ops::Severity;

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Validate the config, reporting every problem (exit 1 if invalid)
    Check,
}

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check => check(globals),
    }
}

fn check(globals: &Globals) -> anyhow::Result<ExitCode> {
    let result = bulwark_ops::load_settings(&globals.config_path, globals.config_required, &|k| {
        std::env::var(k).ok()
    });
    let (diagnostics, valid, source) = match &result {
        Ok(loaded) => (loaded.warnings.clone(), true, loaded.config.source.clone()),
        Err(errors) => (
            errors.diagnostics.clone(),
            false,
            Some(globals.config_path.clone()),
        ),
    };
    if globals.json {
        crate::output::print_json(&crate::wire::ConfigCheck {
            diagnostics: diagnostics.iter().map(Into::into).collect(),
            file: source.map(|p| p.display().to_string()),
            valid,
        });
    } else {
        for d in &diagnostics {
            println!("{d}");
        }
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        match (valid, source) {
            (true, Some(path)) => {
                println!("{}: valid ({} warnings)", path.display(), diagnostics.len())
            }
            (true, None) => println!(
                "no config file at {}: the embedded default is valid",
                globals.config_path.display()
            ),
            (false, _) => println!(
                "{}: invalid ({errors} errors)",
                globals.config_path.display()
            ),
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
