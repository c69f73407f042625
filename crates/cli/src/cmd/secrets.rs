//! `bulwark secrets list|rotate`: managed secrets' metadata, and rotation.
//! Values are never printed: consumers read them from the data directory.

use std::process::ExitCode;

use bulwark_ops::{
    expire_previous_secret, format_duration, list_secrets, rotate_secret, Actor, RotateOptions,
    SecretError,
};

use bulwark_server::api::{RotateResult, SecretMetaWire};

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Every managed secret: version, age, next rotation (never values)
    List,
    /// Rotate the secrets that are due (or NAME only); --force rotates now
    Rotate {
        /// One secret; all configured secrets when omitted
        name: Option<String>,
        /// Rotate even when not due, and even with `rotate = false`
        #[arg(long)]
        force: bool,
        /// Revoke the previous value at once (it leaked) instead of
        /// accepting it for the grace period; rotates now
        #[arg(long, requires = "name")]
        no_grace: bool,
    },
}

fn ts(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    let config = loaded.config;
    super::runtime()?.block_on(async {
        let store = super::open_store(globals, &config).await?;
        let now = chrono::Utc::now();
        let code = match command {
            Command::List => {
                let list = list_secrets(&store, &globals.data_dir, &config.secrets, now).await?;
                if globals.json {
                    // The document `GET /api/v1/secrets` serves.
                    let wire: Vec<SecretMetaWire> =
                        list.iter().cloned().map(SecretMetaWire::from).collect();
                    crate::output::print_json(&wire);
                } else if list.is_empty() {
                    println!("no [[secret]] is configured");
                } else {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|s| {
                            vec![
                                s.name.clone(),
                                s.meta
                                    .as_ref()
                                    .map_or_else(|| "-".to_string(), |m| m.version.to_string()),
                                s.age.map_or_else(
                                    || "-".to_string(),
                                    |a| format_duration(std::time::Duration::from_secs(a.as_secs())),
                                ),
                                format_duration(s.max_age),
                                if s.rotate {
                                    ts(s.next_rotation)
                                } else {
                                    "disabled".to_string()
                                },
                                match (s.present, s.due) {
                                    (false, _) => "missing".to_string(),
                                    (true, true) => "due".to_string(),
                                    (true, false) => "ok".to_string(),
                                },
                            ]
                        })
                        .collect();
                    crate::output::print_table(
                        &["NAME", "VERSION", "AGE", "MAX AGE", "NEXT ROTATION", "STATE"],
                        &rows,
                    );
                }
                ExitCode::SUCCESS
            }
            Command::Rotate {
                name,
                force,
                no_grace,
            } => {
                let targets: Vec<_> = match &name {
                    Some(n) => vec![config
                        .secrets
                        .iter()
                        .find(|s| &s.name == n)
                        .ok_or_else(|| SecretError::Unknown(n.clone()))?],
                    None => config.secrets.iter().collect(),
                };
                let actor = Actor::cli();
                let mut results = Vec::new();
                let mut hook_failed = false;
                for cfg in targets {
                    let how = RotateOptions { force, no_grace };
                    let rotation =
                        rotate_secret(&store, &globals.data_dir, cfg, &actor, how, now).await?;
                    if let Err(e) =
                        expire_previous_secret(&store, &globals.data_dir, &cfg.name, now).await
                    {
                        tracing::warn!(secret = %cfg.name, error = %e, "cannot remove an expired previous value");
                    }
                    let hook_error = rotation
                        .as_ref()
                        .and_then(|r| r.hook.as_ref())
                        .and_then(|h| h.as_ref().err())
                        .cloned();
                    hook_failed |= hook_error.is_some();
                    if globals.json {
                        results.push(RotateResult::new(&cfg.name, rotation));
                    } else {
                        match &rotation {
                            Some(r) => println!(
                                "{}: rotated to version {}{}",
                                r.name,
                                r.version,
                                r.previous_valid_until.map_or_else(String::new, |t| format!(
                                    "; previous value accepted until {}",
                                    t.format("%Y-%m-%d %H:%M:%SZ")
                                ))
                            ),
                            None => println!("{}: not due (use --force to rotate now)", cfg.name),
                        }
                        if let Some(e) = &hook_error {
                            eprintln!("{}: hook failed: {e}", cfg.name);
                        }
                    }
                }
                if globals.json {
                    crate::output::print_json(&results);
                }
                // The new values are in place; a failed hook means a consumer
                // may still hold the old one, which the operator must know.
                if hook_failed {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}
