//! The parts of a ChatGPT export the importer reads, as typed serde structs
//! that borrow their strings from the conversation's bytes.
//!
//! An export is tens or hundreds of megabytes. Deserializing it into a
//! `serde_json::Value` first cost about ten times the file in memory; these
//! structs keep only what becomes part of a node (roles, texts, times, ids, the
//! model) and skip everything else without allocating. They are parsed from
//! one conversation's bytes at a time (`split`), so a string without escapes
//! is a slice of those bytes ([`Str`]), not a copy.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A string of the export: borrowed from the parsed bytes unless it held an
/// escape (then the parser had to unescape it into a copy).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Str<'a>(Cow<'a, str>);

impl Str<'_> {
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Str<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Str(Cow::Owned(v)))
    }
}

/// One conversation of an export.
#[derive(Deserialize)]
pub(super) struct Conversation<'a> {
    #[serde(default, borrow)]
    pub(super) title: Option<Str<'a>>,
    #[serde(default)]
    pub(super) create_time: Option<f64>,
    #[serde(default, borrow)]
    pub(super) conversation_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub(super) id: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) mapping: BTreeMap<Str<'a>, Entry<'a>>,
}

impl Conversation<'_> {
    /// The conversation's id, as exports spell it (`conversation_id`, else `id`).
    pub(super) fn key(&self) -> Option<&str> {
        self.conversation_id
            .as_ref()
            .or(self.id.as_ref())
            .map(Str::as_str)
    }
}

/// One entry of a conversation's `mapping`: a message and its links.
#[derive(Deserialize)]
pub(super) struct Entry<'a> {
    #[serde(default, borrow)]
    pub(super) message: Option<Message<'a>>,
    #[serde(default, borrow)]
    pub(super) parent: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub(super) children: Vec<Str<'a>>,
}

#[derive(Deserialize)]
pub(super) struct Message<'a> {
    #[serde(default, borrow)]
    pub(super) id: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) author: Author<'a>,
    #[serde(default)]
    pub(super) create_time: Option<f64>,
    #[serde(default, borrow)]
    pub(super) content: Option<Content<'a>>,
    /// Only `metadata.model_slug` is read; metadata of any other shape is
    /// skipped, as it was when the importer read `Value`s.
    #[serde(default, borrow)]
    pub(super) metadata: TextField<'a, ModelSlug>,
}

#[derive(Deserialize)]
pub(super) struct Author<'a> {
    #[serde(borrow)]
    pub(super) role: Str<'a>,
}

#[derive(Deserialize)]
pub(super) struct Content<'a> {
    #[serde(default, borrow)]
    pub(super) parts: Option<Vec<TextField<'a, PartText>>>,
    #[serde(default, borrow)]
    pub(super) text: Option<Str<'a>>,
}

/// Which string field of an object a [`TextField`] picks out.
pub(super) trait FieldName {
    /// The field's name.
    const NAME: &'static str;
    /// Whether a bare string stands for the field itself.
    const BARE: bool;
}

/// A content part: a string, or an object with a string `text`.
pub(super) struct PartText;

impl FieldName for PartText {
    const NAME: &'static str = "text";
    const BARE: bool = true;
}

/// Message metadata: an object with a string `model_slug`.
pub(super) struct ModelSlug;

impl FieldName for ModelSlug {
    const NAME: &'static str = "model_slug";
    const BARE: bool = false;
}

/// A string found in a JSON value of any shape: `N::NAME`'s value when the value
/// is an object holding it as a string (or the value itself when it is a string
/// and `N::BARE`), else `None`. Never fails on a well-formed value, so a part or
/// metadata of an unexpected shape is skipped, not an error.
pub(super) struct TextField<'a, N> {
    pub(super) text: Option<Str<'a>>,
    name: std::marker::PhantomData<N>,
}

impl<N> Default for TextField<'_, N> {
    fn default() -> Self {
        Self::new(None)
    }
}

impl<'a, N> TextField<'a, N> {
    fn new(text: Option<Str<'a>>) -> Self {
        Self {
            text,
            name: std::marker::PhantomData,
        }
    }
}

impl<'de: 'a, 'a, N: FieldName> Deserialize<'de> for TextField<'a, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextFieldVisitor::<N>(std::marker::PhantomData))
    }
}

struct TextFieldVisitor<N>(std::marker::PhantomData<N>);

impl<'de, N: FieldName> Visitor<'de> for TextFieldVisitor<N> {
    type Value = TextField<'de, N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(TextField::new(N::BARE.then_some(Str(Cow::Borrowed(v)))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(TextField::new(
            N::BARE.then(|| Str(Cow::Owned(v.to_owned()))),
        ))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(TextField::new(N::BARE.then_some(Str(Cow::Owned(v)))))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut text = None;
        while let Some(key) = map.next_key::<FieldKey<N>>()? {
            if key.wanted {
                // The last occurrence wins, as in a `serde_json::Map`.
                text = map.next_value::<TextField<'de, Bare>>()?.text;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(TextField::new(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(TextField::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(TextField::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(TextField::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(TextField::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(TextField::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(TextField::default())
    }
}

/// A string value, anything else skipped: the value of a wanted field.
struct Bare;

impl FieldName for Bare {
    const NAME: &'static str = "";
    const BARE: bool = true;
}

/// An object key, compared with `N::NAME` without allocating.
struct FieldKey<N> {
    wanted: bool,
    name: std::marker::PhantomData<N>,
}

impl<'de, N: FieldName> Deserialize<'de> for FieldKey<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<N>(std::marker::PhantomData<N>);
        impl<N: FieldName> Visitor<'_> for KeyVisitor<N> {
            type Value = FieldKey<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldKey {
                    wanted: v == N::NAME,
                    name: std::marker::PhantomData,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor(std::marker::PhantomData))
    }
}
