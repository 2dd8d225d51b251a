//! A string that never shows up in `Debug`, `Display`, logs or errors.

use std::{fmt, sync::Arc};

/// A secret value (API key, IAM/OAuth token). Its `Debug` output is `Secret(***)`; the value is
/// only reachable through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret, trimming surrounding whitespace (keys pasted from files often carry a
    /// trailing newline).
    pub fn new(value: impl AsRef<str>) -> Secret {
        Secret(Arc::from(value.as_ref().trim()))
    }

    /// The secret value itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for an empty secret.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::new(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("  AQVN-very-secret\n");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "AQVN-very-secret");
    }
}
