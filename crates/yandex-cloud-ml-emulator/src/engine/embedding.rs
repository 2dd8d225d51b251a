//! Text embeddings. The built-in [`HashedEmbedder`] is deterministic and documented so that
//! tests can rely on it:
//!
//! - the text is split into words (runs of Unicode letters and digits, lowercased); each word
//!   adds ±1 to one coordinate, both chosen by the word's FNV-1a hash (index: hash mod `dim`;
//!   sign: the hash's top bit);
//! - a fixed pseudo-random unit vector of the model (seeded by the model's name) is added at
//!   weight 0.25, so `text-search-doc` and `text-search-query` give different vectors for the
//!   same text, yet a query stays close to the documents that share its words;
//! - the sum is scaled to length 1.
//!
//! So the cosine of two texts grows with the words they share; texts with no word in common are
//! near 0 apart from the model component (and chance collisions, rarer as `dim` grows).

/// Dimensions of the built-in models' vectors when the request does not ask for a size (the
/// cloud's search models answer with 256).
pub const DEFAULT_DIM: usize = 256;

/// The longest text the built-in models embed, in tokens of the emulator's tokenizer (the
/// cloud's limit is not published; this is the common size of embedding models' windows).
pub const MAX_TOKENS: usize = 2048;

/// How much of a vector is the model's own component.
const MODEL_WEIGHT: f64 = 0.25;

/// Makes the vector of a text for a model.
pub trait Embedder: Send + Sync {
    /// The vector of `text` for the model `model` (its name, e.g. `text-search-doc`), with
    /// `dim` dimensions, scaled to length 1; an error when a real model fails.
    fn embed(&self, model: &str, text: &str, dim: usize) -> Result<Vec<f64>, String>;
    /// Size of the vectors when the request asks for none; the largest `dim` accepted.
    fn default_dim(&self) -> usize;
    /// Whether `dim` can be asked for (the built-in engine: any size up to the default; a real
    /// model: only its own).
    fn accepts_dim(&self, dim: usize) -> bool {
        (1..=self.default_dim()).contains(&dim)
    }
    /// What `model_version` says.
    fn model_version(&self) -> &str;
    /// The sizes it gives, for messages: `1 to 256`.
    fn sizes(&self) -> String {
        format!("1 to {}", self.default_dim())
    }
    /// The longest text accepted, in tokens (as `count_tokens` counts them).
    fn max_tokens(&self) -> usize {
        MAX_TOKENS
    }
    /// The tokens of `text` as this model counts them, when it has its own tokenizer (`None`:
    /// the emulator's tokenizer counts).
    fn count_tokens(&self, _text: &str) -> Option<usize> {
        None
    }
}

/// The built-in embedder (see the module documentation).
#[derive(Debug, Default)]
pub struct HashedEmbedder;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// splitmix64: the model component's coordinates, from a seed.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Scales `v` to length 1 (a zero vector stays zero).
pub fn normalize(v: &mut [f64]) {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// The words of a text as the built-in engine sees them.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

impl Embedder for HashedEmbedder {
    fn embed(&self, model: &str, text: &str, dim: usize) -> Result<Vec<f64>, String> {
        let mut v = vec![0.0; dim];
        for word in words(text) {
            let h = fnv1a(word.as_bytes());
            v[(h % dim as u64) as usize] += if h >> 63 == 0 { 1.0 } else { -1.0 };
        }
        normalize(&mut v);
        let mut seed = fnv1a(model.as_bytes());
        let mut own: Vec<f64> =
            (0..dim).map(|_| (splitmix(&mut seed) >> 11) as f64 / (1u64 << 52) as f64 - 1.0).collect();
        normalize(&mut own);
        v.iter_mut().zip(own).for_each(|(x, m)| *x += MODEL_WEIGHT * m);
        normalize(&mut v);
        Ok(v)
    }

    fn default_dim(&self) -> usize {
        DEFAULT_DIM
    }

    fn model_version(&self) -> &str {
        "emulator-hashed-1"
    }
}

/// How far a text must be like a training text (cosine above the level of unrelated texts)
/// for the training row to move its vector.
const LIKE: f64 = 0.2;
/// How strongly a training row pulls (or, a negative, pushes) a vector.
const PULL: f64 = 0.5;

/// The training rows a tuned model looks at for one text: those sharing most words with it.
pub const TUNED_ROWS: usize = 64;

/// One training row: anchor, positive and, for triplets, negative.
pub type Row<'a> = (&'a str, &'a str, Option<&'a str>);

/// The vector of `text` from a model tuned on `rows` (those sharing words with the text): the
/// base model's vector, moved toward the partner of every training text it is like (an anchor
/// pulls toward its positive and back) and away from the negative of every anchor it is like,
/// then scaled to length 1. So after tuning, a pair is closer than before, and an anchor
/// farther from its negative.
pub fn tuned(
    embedder: &dyn Embedder,
    base: &str,
    rows: &[Row<'_>],
    text: &str,
    dim: usize,
) -> Result<Vec<f64>, String> {
    let of = |t: &str| embedder.embed(base, t, dim);
    let like = |a: &[f64], b: &[f64]| (a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() - LIKE).max(0.0);
    let start = of(text)?;
    let mut v = start.clone();
    let mut moved = false;
    let mut add = |weight: f64, other: &[f64]| {
        moved = true;
        v.iter_mut().zip(other).for_each(|(x, o)| *x += weight * o);
    };
    for (anchor, positive, negative) in rows {
        let (a, p) = (of(anchor)?, of(positive)?);
        let (to_anchor, to_positive) = (like(&start, &a), like(&start, &p));
        if to_anchor > 0.0 {
            add(PULL * to_anchor, &p);
            if let Some(negative) = negative.filter(|n| !n.is_empty()) {
                add(-PULL * to_anchor, &of(negative)?);
            }
        }
        if to_positive > 0.0 {
            add(PULL * to_positive, &a);
        }
    }
    // A text like no training text keeps the base model's vector exactly.
    if !moved {
        return Ok(start);
    }
    normalize(&mut v);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn shared_words_bring_texts_close() {
        let e = HashedEmbedder;
        let doc = |t: &str| e.embed("text-search-doc", t, DEFAULT_DIM).unwrap();
        let paris = doc("Paris is the capital of France");
        let close = doc("the capital of France is Paris, of course");
        let far = doc("Rust borrows check lifetimes");
        assert!((cosine(&paris, &paris) - 1.0).abs() < 1e-12);
        assert!(cosine(&paris, &close) > 0.8, "{}", cosine(&paris, &close));
        assert!(cosine(&paris, &far) < 0.3, "{}", cosine(&paris, &far));
        // The same text through the query model: different, yet closest to its document.
        let query = e.embed("text-search-query", "capital of France", DEFAULT_DIM).unwrap();
        assert_ne!(query, doc("capital of France"));
        assert!(cosine(&query, &paris) > cosine(&query, &far) + 0.3);
        // Deterministic, any size asked for, Cyrillic words too.
        assert_eq!(e.embed("m", "Привет, мир", 35), e.embed("m", "привет мир", 35));
        assert_eq!(e.embed("m", "x", 35).unwrap().len(), 35);
    }

    #[test]
    fn tuning_brings_pairs_closer_and_pushes_negatives_away() {
        let e = HashedEmbedder;
        let pairs = [("hello", "hi", None)];
        let triplets = [("hello", "hi", Some("goodbye"))];
        let base = |t: &str| e.embed("text-embeddings", t, DEFAULT_DIM).unwrap();
        let after = |t: &str, rows: &[Row<'_>]| tuned(&e, "text-embeddings", rows, t, DEFAULT_DIM).unwrap();
        let before = cosine(&base("hello"), &base("hi"));
        assert!(cosine(&after("hello", &pairs), &after("hi", &pairs)) > before + 0.3, "{before}");
        // An unrelated text is left as it was.
        assert_eq!(after("Rust borrows", &pairs), base("Rust borrows"));
        assert!(cosine(&after("hello", &triplets), &base("goodbye")) < cosine(&base("hello"), &base("goodbye")) - 0.2);
    }
}
