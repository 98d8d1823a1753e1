//! Annotations: typed, mutable notes about a node, kept beside it.
//!
//! A [`Node`](crate::Node) is an immutable record of what was sent and what
//! came back. What people and programs later *think* of it — a score from a
//! judge or a function, a label, a bookmark, a free-text note — changes, so it
//! is kept apart from the node: as [`Annotation`]s, each in a slot named by
//! its [`AnnotationKey`] (`score/<criterion>`, `label/<text>`, `bookmark`,
//! `note`). Writing into a slot replaces what was there; a node has any number
//! of scores and labels, at most one bookmark and one note.
//!
//! Every store keeps annotations in the same atomic batches as nodes (see
//! [`Op::PutAnnotation`](crate::store::Op::PutAnnotation)), stamped with the
//! time they were written ([`Stamped`]). Removing a node removes its
//! annotations. Write and read them through
//! [`ResponseTree::annotate`](crate::ResponseTree::annotate),
//! [`ResponseTree::annotations`](crate::ResponseTree::annotations),
//! [`ResponseTree::remove_annotation`](crate::ResponseTree::remove_annotation)
//! and [`ResponseTree::annotated`](crate::ResponseTree::annotated).
//!
//! ```
//! use resptree::annotation::{Annotation, AnnotationKind, Score, ScoreMethod};
//! use resptree::{Node, NodeId, ResponseTree};
//! let tree = ResponseTree::in_memory();
//! let id = NodeId::local();
//! tree.insert(Node::new(id.clone(), None).with_output_text("42"))?;
//! tree.annotate(&id, Annotation::Score(Score::new("accuracy", 0.9, ScoreMethod::Function)))?;
//! tree.annotate(&id, Annotation::label("answer"))?;
//! tree.annotate(&id, Annotation::Bookmark)?;
//! assert_eq!(tree.annotations(&id)?.len(), 3);
//! let bookmarked = tree.annotated(Some(AnnotationKind::Bookmark))?;
//! assert_eq!(bookmarked[0].0, id);
//! # Ok::<(), resptree::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::node::{Timestamp, Usage};

/// The longest score criterion or label text, in bytes. Both become part of a
/// key (a sled key, a PostgreSQL primary key), so they are kept short.
pub const MAX_KEY_TEXT_LEN: usize = 256;

/// A typed note about a node.
///
/// Serialized with a `kind` tag: `{"kind": "score", "criterion": …}`,
/// `{"kind": "label", "text": …}`, `{"kind": "bookmark"}`,
/// `{"kind": "note", "text": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Annotation {
    /// A score: from an exploration's judge, a user's function, or a person.
    /// One per criterion.
    Score(Score),
    /// A user label; a node may carry many (one slot per text).
    Label {
        /// The label.
        text: String,
    },
    /// A bookmark: at most one per node.
    Bookmark,
    /// A free-text note: at most one per node (a new note replaces it).
    Note {
        /// The note.
        text: String,
    },
}

impl Annotation {
    /// A label annotation.
    pub fn label(text: impl Into<String>) -> Self {
        Self::Label { text: text.into() }
    }

    /// A note annotation.
    pub fn note(text: impl Into<String>) -> Self {
        Self::Note { text: text.into() }
    }

    /// The slot this annotation occupies on its node: `score/<criterion>`,
    /// `label/<text>`, `bookmark` or `note`.
    ///
    /// ```
    /// use resptree::annotation::{Annotation, Score, ScoreMethod};
    /// let score = Annotation::Score(Score::new("clarity", 7.0, ScoreMethod::Rubric));
    /// assert_eq!(score.key().as_str(), "score/clarity");
    /// assert_eq!(Annotation::label("draft").key().as_str(), "label/draft");
    /// assert_eq!(Annotation::Bookmark.key().as_str(), "bookmark");
    /// ```
    pub fn key(&self) -> AnnotationKey {
        match self {
            Self::Score(score) => AnnotationKey(format!("score/{}", score.criterion)),
            Self::Label { text } => AnnotationKey(format!("label/{text}")),
            Self::Bookmark => AnnotationKey("bookmark".to_owned()),
            Self::Note { .. } => AnnotationKey("note".to_owned()),
        }
    }

    /// Which kind of annotation this is.
    pub fn kind(&self) -> AnnotationKind {
        match self {
            Self::Score(_) => AnnotationKind::Score,
            Self::Label { .. } => AnnotationKind::Label,
            Self::Bookmark => AnnotationKind::Bookmark,
            Self::Note { .. } => AnnotationKind::Note,
        }
    }

    /// Checks what a store could not keep or a reader could not use: an empty
    /// or overlong criterion or label, one with control characters (a key must
    /// be printable, and PostgreSQL text cannot hold NUL), a score that is not
    /// a finite number (JSON has no NaN).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAnnotation`] naming the problem.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Score(score) => {
                check_key_text("score criterion", &score.criterion)?;
                if !score.value.is_finite() {
                    return Err(Error::InvalidAnnotation(format!(
                        "score {:?} is not a finite number: {}",
                        score.criterion, score.value
                    )));
                }
                Ok(())
            }
            Self::Label { text } => check_key_text("label", text),
            Self::Note { text } => {
                if text.contains('\0') {
                    return Err(Error::InvalidAnnotation(
                        "a note cannot contain a NUL character".to_owned(),
                    ));
                }
                Ok(())
            }
            Self::Bookmark => Ok(()),
        }
    }
}

/// Checks the text part of a key: 1 to [`MAX_KEY_TEXT_LEN`] bytes, no control
/// characters.
fn check_key_text(what: &str, text: &str) -> Result<()> {
    let problem = if text.is_empty() {
        "is empty"
    } else if text.len() > MAX_KEY_TEXT_LEN {
        "is longer than 256 bytes"
    } else if text.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidAnnotation(format!(
        "{what} {:?} {problem}",
        crate::text::truncate(text, 64)
    )))
}

/// A score on a node: a number for one criterion, how it was found and, for a
/// judge's score, what the judge's requests cost.
///
/// ```
/// use resptree::Usage;
/// use resptree::annotation::{Score, ScoreMethod};
/// let score = Score::new("helpfulness", 0.75, ScoreMethod::Pairwise { wins: 3, losses: 1, ties: 0 })
///     .with_judge("gpt-4o-mini", Usage::new(420, 12));
/// assert_eq!(score.judge_usage.as_ref().map(|u| u.total_tokens), Some(432));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Score {
    /// What was scored (`"helpfulness"`, `"rubric"`, a user's name for it).
    pub criterion: String,
    /// The score. Higher is better; the scale is the scorer's (a pairwise
    /// score is the share of comparisons won, ties counting half).
    pub value: f64,
    /// How the score was found.
    pub method: ScoreMethod,
    /// The tokens the judge's requests used for this score (`None` when no
    /// model judged, or the scorer did not say). Counted in a subtree's cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_usage: Option<Usage>,
    /// The model that judged, if one did: prices `judge_usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_model: Option<String>,
}

impl Score {
    /// A score with no judge recorded.
    pub fn new(criterion: impl Into<String>, value: f64, method: ScoreMethod) -> Self {
        Self {
            criterion: criterion.into(),
            value,
            method,
            judge_usage: None,
            judge_model: None,
        }
    }

    /// Records the model that judged and the tokens its requests used.
    #[must_use]
    pub fn with_judge(mut self, model: impl Into<String>, usage: Usage) -> Self {
        self.judge_model = Some(model.into());
        self.judge_usage = Some(usage);
        self
    }
}

/// How a [`Score`] was found. Serialized with a `type` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScoreMethod {
    /// A user-supplied scoring function.
    Function,
    /// Pairwise comparisons by a judge (each pair asked twice, in both orders;
    /// a disagreement counts as a tie).
    Pairwise {
        /// Comparisons this node won.
        wins: u32,
        /// Comparisons this node lost.
        losses: u32,
        /// Comparisons that were ties (or disagreements between the two orders).
        ties: u32,
    },
    /// A judge's score against a rubric.
    Rubric,
    /// Set by hand (a person, the CLI).
    Manual,
}

/// The kinds of [`Annotation`], for listing every annotated node of one kind
/// ([`ResponseTree::annotated`](crate::ResponseTree::annotated)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AnnotationKind {
    /// [`Annotation::Score`].
    Score,
    /// [`Annotation::Label`].
    Label,
    /// [`Annotation::Bookmark`].
    Bookmark,
    /// [`Annotation::Note`].
    Note,
}

impl AnnotationKind {
    /// Every kind, in the order keys sort.
    pub const ALL: [Self; 4] = [Self::Bookmark, Self::Label, Self::Note, Self::Score];

    /// The kind's name, as keys and the `kind` tag spell it: `score`, `label`,
    /// `bookmark`, `note`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Score => "score",
            Self::Label => "label",
            Self::Bookmark => "bookmark",
            Self::Note => "note",
        }
    }
}

impl fmt::Display for AnnotationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AnnotationKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidAnnotation(format!(
                    "{:?} is not an annotation kind (score, label, bookmark, note)",
                    crate::text::truncate(s, 64)
                ))
            })
    }
}

/// The slot an annotation occupies on its node: `score/<criterion>`,
/// `label/<text>`, `bookmark` or `note`. Parse one to remove an annotation by
/// name.
///
/// ```
/// use resptree::annotation::{AnnotationKey, AnnotationKind};
/// let key: AnnotationKey = "score/accuracy".parse()?;
/// assert_eq!(key.kind(), AnnotationKind::Score);
/// assert_eq!(AnnotationKey::label("draft").as_str(), "label/draft");
/// assert!("stars/5".parse::<AnnotationKey>().is_err());
/// assert!("label/".parse::<AnnotationKey>().is_err());
/// # Ok::<(), resptree::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnnotationKey(String);

impl AnnotationKey {
    /// The key of a score for `criterion`.
    pub fn score(criterion: &str) -> Self {
        Self(format!("score/{criterion}"))
    }

    /// The key of label `text`.
    pub fn label(text: &str) -> Self {
        Self(format!("label/{text}"))
    }

    /// The bookmark's key.
    pub fn bookmark() -> Self {
        Self("bookmark".to_owned())
    }

    /// The note's key.
    pub fn note() -> Self {
        Self("note".to_owned())
    }

    /// Parses and checks a key.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAnnotation`] if `s` is none of the four forms, or its
    /// criterion or label text is empty, too long or holds control characters.
    pub fn new(s: &str) -> Result<Self> {
        let (kind, text) = match s.split_once('/') {
            Some((kind, text)) => (kind, Some(text)),
            None => (s, None),
        };
        match (kind, text) {
            ("bookmark" | "note", None) => Ok(Self(s.to_owned())),
            ("score", Some(text)) => {
                check_key_text("score criterion", text).map(|()| Self(s.to_owned()))
            }
            ("label", Some(text)) => check_key_text("label", text).map(|()| Self(s.to_owned())),
            _ => Err(Error::InvalidAnnotation(format!(
                "{:?} is not an annotation key (score/<criterion>, label/<text>, bookmark, note)",
                crate::text::truncate(s, 64)
            ))),
        }
    }

    /// A key below every real key, as the lower bound of a range scan.
    pub(crate) fn min() -> Self {
        Self(String::new())
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind of annotation that occupies this slot.
    pub fn kind(&self) -> AnnotationKind {
        match self.0.split_once('/').map_or(self.0.as_str(), |(k, _)| k) {
            "score" => AnnotationKind::Score,
            "label" => AnnotationKind::Label,
            "bookmark" => AnnotationKind::Bookmark,
            // Only the four forms are ever constructed.
            _ => AnnotationKind::Note,
        }
    }
}

impl fmt::Display for AnnotationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AnnotationKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl AsRef<str> for AnnotationKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for AnnotationKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AnnotationKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// An annotation as stored: the annotation and when it was written.
///
/// Serialized flat: the annotation's fields (with its `kind` tag) plus `at`
/// (milliseconds since the Unix epoch), e.g.
/// `{"kind": "label", "text": "draft", "at": 1764547200000}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stamped {
    /// The annotation.
    #[serde(flatten)]
    pub annotation: Annotation,
    /// When it was written.
    pub at: Timestamp,
}

impl Stamped {
    /// `annotation`, written at `at`.
    pub fn new(annotation: Annotation, at: Timestamp) -> Self {
        Self { annotation, at }
    }

    /// `annotation`, written now.
    pub fn now(annotation: Annotation) -> Self {
        Self::new(annotation, Timestamp::now())
    }

    /// The slot it occupies ([`Annotation::key`]).
    pub fn key(&self) -> AnnotationKey {
        self.annotation.key()
    }
}

impl fmt::Display for Annotation {
    /// One line for people: `score accuracy = 0.9 (function)`, `label draft`,
    /// `bookmark`, `note: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Score(s) => {
                write!(f, "score {} = {}", s.criterion, s.value)?;
                match s.method {
                    ScoreMethod::Function => f.write_str(" (function)")?,
                    ScoreMethod::Pairwise { wins, losses, ties } => {
                        write!(f, " (pairwise {wins}-{losses}-{ties})")?;
                    }
                    ScoreMethod::Rubric => f.write_str(" (rubric)")?,
                    ScoreMethod::Manual => f.write_str(" (manual)")?,
                }
                if let Some(model) = &s.judge_model {
                    write!(f, " by {model}")?;
                }
                Ok(())
            }
            Self::Label { text } => write!(f, "label {text}"),
            Self::Bookmark => f.write_str("bookmark"),
            Self::Note { text } => write!(f, "note: {text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamped_annotations_serialize_flat_with_a_kind_tag() {
        let stamped = Stamped::new(
            Annotation::Score(
                Score::new(
                    "q",
                    0.5,
                    ScoreMethod::Pairwise {
                        wins: 1,
                        losses: 0,
                        ties: 1,
                    },
                )
                .with_judge("m", Usage::new(10, 2)),
            ),
            Timestamp(7),
        );
        let value = serde_json::to_value(&stamped).unwrap();
        assert_eq!(value["kind"], "score");
        assert_eq!(value["criterion"], "q");
        assert_eq!(
            value["method"],
            json!({"type": "pairwise", "wins": 1, "losses": 0, "ties": 1})
        );
        assert_eq!(value["at"], 7);
        let back: Stamped = serde_json::from_value(value).unwrap();
        assert_eq!(back, stamped);
        let bookmark: Stamped =
            serde_json::from_value(json!({"kind": "bookmark", "at": 3})).unwrap();
        assert_eq!(bookmark.annotation, Annotation::Bookmark);
    }

    #[test]
    fn keys_name_the_slot_and_parse_back() {
        for annotation in [
            Annotation::Score(Score::new("a/b", 1.0, ScoreMethod::Manual)),
            Annotation::label("x y"),
            Annotation::Bookmark,
            Annotation::note("anything\nat all"),
        ] {
            let key = annotation.key();
            assert_eq!(key.kind(), annotation.kind());
            assert_eq!(AnnotationKey::new(key.as_str()).unwrap(), key);
        }
        assert_eq!(Annotation::note("one").key(), Annotation::note("two").key());
        assert_ne!(
            Annotation::label("one").key(),
            Annotation::label("two").key()
        );
        for bad in [
            "",
            "score",
            "score/",
            "bookmark/x",
            "note/x",
            "stars",
            "label/a\u{0}b",
        ] {
            assert!(AnnotationKey::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let nan = Annotation::Score(Score::new("q", f64::NAN, ScoreMethod::Function));
        let err = nan.validate().unwrap_err();
        assert!(err.to_string().contains("not a finite number"), "{err}");
        let err = Annotation::label("").validate().unwrap_err();
        assert!(err.to_string().contains("label \"\" is empty"), "{err}");
        let long = "x".repeat(MAX_KEY_TEXT_LEN + 1);
        assert!(Annotation::label(long).validate().is_err());
        assert!(Annotation::label("tab\there").validate().is_err());
        assert!(Annotation::note("nul\0").validate().is_err());
        assert!(Annotation::note("fine\nlines").validate().is_ok());
        assert_eq!(
            "label".parse::<AnnotationKind>().unwrap(),
            AnnotationKind::Label
        );
        assert!("stars".parse::<AnnotationKind>().is_err());
    }
}
