//! The parts of a ChatGPT export the importer reads, as typed serde structs,
//! and the visitor that hands over one conversation at a time.
//!
//! An export is tens or hundreds of megabytes. Deserializing it into a
//! `serde_json::Value` first cost about ten times the file in memory; these
//! structs keep only what becomes part of a node (roles, texts, times, ids, the
//! model) and skip everything else without allocating, and [`Conversations`]
//! deserializes the top-level array element by element, so only one
//! conversation is in memory as parsed JSON at any time.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One conversation of an export.
#[derive(Deserialize)]
pub(super) struct Conversation {
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) create_time: Option<f64>,
    #[serde(default)]
    pub(super) conversation_id: Option<String>,
    #[serde(default)]
    pub(super) id: Option<String>,
    pub(super) mapping: BTreeMap<String, Entry>,
}

impl Conversation {
    /// The conversation's id, as exports spell it (`conversation_id`, else `id`).
    pub(super) fn key(&self) -> Option<&str> {
        self.conversation_id.as_deref().or(self.id.as_deref())
    }
}

/// One entry of a conversation's `mapping`: a message and its links.
#[derive(Deserialize)]
pub(super) struct Entry {
    #[serde(default)]
    pub(super) message: Option<Message>,
    #[serde(default)]
    pub(super) parent: Option<String>,
    #[serde(default)]
    pub(super) children: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct Message {
    #[serde(default)]
    pub(super) id: Option<String>,
    pub(super) author: Author,
    #[serde(default)]
    pub(super) create_time: Option<f64>,
    #[serde(default)]
    pub(super) content: Option<Content>,
    /// Only `metadata.model_slug` is read; metadata of any other shape is
    /// skipped, as it was when the importer read `Value`s.
    #[serde(default)]
    pub(super) metadata: TextField<ModelSlug>,
}

#[derive(Deserialize)]
pub(super) struct Author {
    pub(super) role: String,
}

#[derive(Deserialize)]
pub(super) struct Content {
    #[serde(default)]
    pub(super) parts: Option<Vec<TextField<PartText>>>,
    #[serde(default)]
    pub(super) text: Option<String>,
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
pub(super) struct TextField<N> {
    pub(super) text: Option<String>,
    name: std::marker::PhantomData<N>,
}

impl<N> Default for TextField<N> {
    fn default() -> Self {
        Self::new(None)
    }
}

impl<N> TextField<N> {
    fn new(text: Option<String>) -> Self {
        Self {
            text,
            name: std::marker::PhantomData,
        }
    }
}

impl<'de, N: FieldName> Deserialize<'de> for TextField<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextFieldVisitor::<N>(std::marker::PhantomData))
    }
}

struct TextFieldVisitor<N>(std::marker::PhantomData<N>);

impl<'de, N: FieldName> Visitor<'de> for TextFieldVisitor<N> {
    type Value = TextField<N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(TextField::new(N::BARE.then(|| v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(TextField::new(N::BARE.then_some(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut text = None;
        while let Some(key) = map.next_key::<FieldKey<N>>()? {
            if key.wanted {
                // The last occurrence wins, as in a `serde_json::Map`.
                text = map.next_value::<TextField<Bare>>()?.text;
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

/// What stopped a [`Conversations`] walk early.
pub(super) enum Stop<E> {
    /// Conversation `index` did not deserialize; the parser's message.
    Parse { index: usize, message: String },
    /// The callback refused a conversation.
    Refused(E),
}

/// Deserializes an export — an array of conversations, or one conversation
/// object — handing each conversation to `each` with its position as soon as it
/// is parsed, and returns how many there were.
///
/// If a conversation does not deserialize or `each` refuses one, the walk stops
/// and the reason is left in `stop`; the deserializer's own error is then only a
/// signal to unwind.
pub(super) struct Conversations<'a, F, E> {
    pub(super) each: F,
    pub(super) stop: &'a mut Option<Stop<E>>,
}

impl<'de, F, E> DeserializeSeed<'de> for Conversations<'_, F, E>
where
    F: FnMut(usize, Conversation) -> Result<(), E>,
{
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F, E> Visitor<'de> for Conversations<'_, F, E>
where
    F: FnMut(usize, Conversation) -> Result<(), E>,
{
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of conversations or one conversation object")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<usize, A::Error> {
        let mut index = 0;
        loop {
            match seq.next_element::<Conversation>() {
                Ok(Some(conversation)) => self.take(index, conversation)?,
                Ok(None) => return Ok(index),
                Err(e) => {
                    *self.stop = Some(Stop::Parse {
                        index,
                        message: e.to_string(),
                    });
                    return Err(e);
                }
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, map: A) -> Result<usize, A::Error> {
        match Conversation::deserialize(de::value::MapAccessDeserializer::new(map)) {
            Ok(conversation) => self.take(0, conversation).map(|()| 1),
            Err(e) => {
                *self.stop = Some(Stop::Parse {
                    index: 0,
                    message: e.to_string(),
                });
                Err(e)
            }
        }
    }
}

impl<F, E> Conversations<'_, F, E>
where
    F: FnMut(usize, Conversation) -> Result<(), E>,
{
    fn take<Err: de::Error>(
        &mut self,
        index: usize,
        conversation: Conversation,
    ) -> Result<(), Err> {
        (self.each)(index, conversation).map_err(|e| {
            *self.stop = Some(Stop::Refused(e));
            Err::custom("import stopped")
        })
    }
}
