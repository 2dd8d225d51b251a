//! Model URIs: `gpt://<folder>/<model>/<version>[@<tuning suffix>]`.

/// Builds the URI of a model: a name containing `://` is used as is (and `version` ignored),
/// anything else becomes `gpt://<folder>/<name>/<version>`.
pub(crate) fn model_uri(folder_id: &str, name: &str, version: &str) -> String {
    if name.contains("://") { name.to_owned() } else { format!("gpt://{folder_id}/{name}/{version}") }
}

/// The accessors every model type has over its `uri` field (`uri`, `name`, `version`,
/// `fine_tuned`), with `$example` the URI its docs show.
macro_rules! uri_accessors {
    ($example:literal) => {
        #[doc = concat!("The model URI, e.g. `", $example, "`.")]
        pub fn uri(&self) -> &str {
            &self.uri
        }

        /// The model name parsed from the URI, if the URI has the usual shape.
        pub fn name(&self) -> Option<&str> {
            $crate::completions::uri::parse(&self.uri).map(|p| p.name)
        }

        /// The version parsed from the URI (`latest`, `rc`, …).
        pub fn version(&self) -> Option<&str> {
            $crate::completions::uri::parse(&self.uri).map(|p| p.version)
        }

        /// Whether the URI names a tuned model (`…/latest@suffix`); `None` for unusual URIs.
        pub fn fine_tuned(&self) -> Option<bool> {
            $crate::completions::uri::parse(&self.uri).map(|p| p.fine_tune.is_some())
        }
    };
}
pub(crate) use uri_accessors;

/// The parts of a model URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UriParts<'a> {
    pub folder_id: &'a str,
    pub name: &'a str,
    pub version: &'a str,
    pub fine_tune: Option<&'a str>,
}

/// Parses `scheme://folder/name/version[@suffix]` the way the Python SDK does; `None` when
/// the URI has another shape (e.g. `ds://id`).
pub(crate) fn parse(uri: &str) -> Option<UriParts<'_>> {
    let (scheme, rest) = uri.split_once("://")?;
    if scheme.is_empty() || !scheme.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let mut segments = rest.splitn(3, '/');
    let folder_id = segments.next().filter(|s| !s.is_empty())?;
    let name = segments.next().filter(|s| !s.is_empty())?;
    let tail = segments.next()?;
    let tail = tail.split('/').next().unwrap_or_default();
    let (version, fine_tune) = match tail.split_once('@') {
        Some((v, f)) => (v, Some(f).filter(|f| !f.is_empty())),
        None => (tail, None),
    };
    if version.is_empty() {
        return None;
    }
    Some(UriParts { folder_id, name, version, fine_tune })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_uris_like_the_seed_says() {
        assert_eq!(model_uri("b1g", "yandexgpt", "latest"), "gpt://b1g/yandexgpt/latest");
        assert_eq!(model_uri("b1g", "yandexgpt-lite", "rc"), "gpt://b1g/yandexgpt-lite/rc");
        assert_eq!(model_uri("b1g", "gpt://other/x/deprecated", "latest"), "gpt://other/x/deprecated");
    }

    #[test]
    fn parses_plain_and_tuned_uris() {
        let p = parse("gpt://b1g/yandexgpt-lite/latest@abc123").unwrap();
        assert_eq!((p.folder_id, p.name, p.version, p.fine_tune), ("b1g", "yandexgpt-lite", "latest", Some("abc123")));
        let p = parse("gpt://b1g/yandexgpt/rc").unwrap();
        assert_eq!(p.fine_tune, None);
        assert_eq!(parse("ds://bt1234"), None);
        assert_eq!(parse("gpt:///x/y"), None);
        assert_eq!(parse("no-scheme"), None);
    }
}
