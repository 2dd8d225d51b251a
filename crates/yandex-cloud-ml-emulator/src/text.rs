//! Client input quoted in messages (a leaf, used by every layer).

/// Client input quoted in an error message, cut to a readable length (a huge value must not
/// make a status the client cannot even receive).
pub(crate) fn shown(input: &str) -> String {
    const MAX: usize = 80;
    match input.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}… ({} bytes)", &input[..at], input.len()),
        None => input.to_owned(),
    }
}
