//! IAM tokens from the `yc` command-line tool (`yc iam create-token`).

use std::{path::Path, process::Stdio, time::Duration};

use super::{secret::Secret, token_cache::IssuedToken};
use crate::error::{Error, Result};

/// Runs `<program> iam create-token --no-user-output [--profile P]` and takes the last line of
/// its output as the token.
pub(crate) async fn create_token(program: &Path, profile: Option<&str>, timeout: Duration) -> Result<IssuedToken> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(["iam", "create-token", "--no-user-output"]);
    if let Some(p) = profile {
        cmd.args(["--profile", p]);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let shown = program.display();
    let output = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| Error::auth(format!("`{shown} iam create-token` did not finish within {timeout:?}")))?
        .map_err(|e| Error::auth(format!("could not run `{shown}`: {e}; install the yc CLI or pass its path")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr: String = stderr.trim().chars().take(500).collect();
        return Err(Error::auth(format!("`{shown} iam create-token` failed ({}): {stderr}", output.status)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let token = stdout.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or_default();
    if token.is_empty() {
        return Err(Error::auth(format!("`{shown} iam create-token` printed no token")));
    }
    Ok(IssuedToken { token: Secret::new(token), expires_in: None })
}

/// Finds `yc` on `PATH`.
pub(crate) fn find_on_path() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("yc")).find(|p| p.is_file())
}
