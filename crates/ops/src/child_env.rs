//! The environment of commands Bulwark runs on the user's behalf: secret
//! rotation hooks, drill `start` commands (code restored from a backup),
//! dump commands of database backups and the drills' PostgreSQL tools.
//!
//! They start from an empty environment. The server's own environment holds
//! credentials (`ROLES_JSON` with admin keys, `BULWARK_PASSWORD`, bot tokens,
//! webhook URLs) that such a command must never see, so only what a program
//! needs to run at all is passed on, plus what the config names explicitly.

use crate::config::{CommandEnv, NEVER_PASSED};

/// Passed through from Bulwark's environment to every command.
pub(crate) const ALWAYS_PASSED: &[&str] = &["PATH", "HOME", "LANG"];

/// Clears `cmd`'s environment and sets what a command may see: `PATH`,
/// `HOME`, `LANG`, the variables in `pass_env`, the values in `env`, then
/// `own` (what Bulwark sets on purpose, which nothing overrides).
pub(crate) fn apply(
    cmd: &mut tokio::process::Command,
    config: &CommandEnv,
    own: &[(&str, String)],
) {
    apply_std(cmd.as_std_mut(), config, own);
}

/// [`apply`] for a `std::process::Command` (what the backup stream reads).
pub(crate) fn apply_std(
    cmd: &mut std::process::Command,
    config: &CommandEnv,
    own: &[(&str, String)],
) {
    cmd.env_clear();
    let passed = ALWAYS_PASSED
        .iter()
        .copied()
        .chain(config.pass.iter().map(String::as_str))
        .filter(|name| !NEVER_PASSED.contains(name));
    for name in passed {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    for (name, value) in &config.set {
        cmd.env(name, value.expose());
    }
    for (name, value) in own {
        cmd.env(name, value);
    }
}
