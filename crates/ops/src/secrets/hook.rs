//! Telling consumers that a secret rotated. The hook learns the name, the
//! version and where the file is, never the value: command lines are visible
//! to every local user (`ps`), and webhook bodies end up in proxies' logs.

use std::path::Path;
use std::time::Duration;

use crate::config::SecretHook;

/// How long a hook command or webhook may take before it counts as failed.
pub(crate) const HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the command and/or posts the webhook; `Err` describes the first
/// failure without quoting output (a hook might echo the secret).
pub(crate) async fn notify(
    hook: &SecretHook,
    name: &str,
    version: i64,
    rotated_at: crate::time::Timestamp,
    file: &Path,
) -> Result<(), String> {
    let mut errors = Vec::new();
    if let Some((program, args)) = hook.command.split_first() {
        let mut cmd = tokio::process::Command::new(program);
        crate::child_env::apply(
            &mut cmd,
            &hook.env,
            &[
                ("BULWARK_SECRET_NAME", name.to_string()),
                ("BULWARK_SECRET_VERSION", version.to_string()),
                ("BULWARK_SECRET_FILE", file.display().to_string()),
            ],
        );
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        match cmd.spawn() {
            Err(e) => errors.push(format!("cannot run hook command {program:?}: {e}")),
            Ok(mut child) => match tokio::time::timeout(HOOK_TIMEOUT, child.wait()).await {
                Err(_) => errors.push(format!(
                    "hook command {program:?} did not finish within {}s",
                    HOOK_TIMEOUT.as_secs()
                )),
                Ok(Err(e)) => errors.push(format!("hook command {program:?} failed: {e}")),
                Ok(Ok(status)) if !status.success() => {
                    errors.push(format!("hook command {program:?} exited with {status}"))
                }
                Ok(Ok(_)) => {}
            },
        }
    }
    if let Some(url) = &hook.url {
        let body = serde_json::json!({
            "event": "secret.rotated",
            "name": name,
            "version": version,
            "rotated_at": rotated_at.to_datetime().to_rfc3339(),
        });
        let result = reqwest::Client::new()
            .post(url.expose())
            .timeout(HOOK_TIMEOUT)
            .json(&body)
            .send()
            .await;
        // The URL may carry a token: errors are reported without it.
        match result {
            Err(e) => errors.push(format!("hook webhook failed: {}", e.without_url())),
            Ok(resp) if !resp.status().is_success() => {
                errors.push(format!("hook webhook answered {}", resp.status()))
            }
            Ok(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
