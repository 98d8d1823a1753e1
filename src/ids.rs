//! Typed identifiers: [`NodeId`], [`ResponseId`] and [`RefName`].
//!
//! Ids are validated once, when they are parsed, so the rest of the crate can trust
//! them. They hold an `Arc<str>`: cloning is a reference-count bump, and the graph
//! and its index share one allocation per node. (They cannot be `Copy` because the
//! server's ids are strings of its choosing.)

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The longest id we accept, in bytes. Server ids are ~55 bytes; this leaves room
/// for other servers' formats while keeping garbage out.
pub const MAX_ID_LEN: usize = 256;

/// The longest ref name we accept, in bytes.
pub const MAX_REF_LEN: usize = 128;

/// Generates a validated string newtype with `Display`, `FromStr`, `AsRef<str>`
/// and serde impls that validate on deserialisation.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Parses and validates `s`.
            pub fn new(s: &str) -> Result<Self> {
                match $check(s) {
                    Ok(()) => Ok(Self(Arc::from(s))),
                    Err(reason) => Err(Error::InvalidId {
                        kind: $kind,
                        input: crate::text::truncate(s, 128),
                        reason,
                    }),
                }
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// The id of a node in a response tree.
    ///
    /// For a node made by the Responses API this is the server's response id
    /// (`resp_...`); nodes made without a server copy (Chat Completions, imports,
    /// local edits) get a local id, `node_` followed by a UUID v7, so local ids sort
    /// by creation time.
    ///
    /// ```
    /// use resptree::NodeId;
    /// let id: NodeId = "resp_68a1f3c2e9b04d7a".parse()?;
    /// assert_eq!(id.as_str(), "resp_68a1f3c2e9b04d7a");
    /// assert!("has space".parse::<NodeId>().is_err());
    /// assert!(NodeId::local().as_str().starts_with("node_"));
    /// # Ok::<(), resptree::Error>(())
    /// ```
    NodeId,
    "node id",
    check_id
);

string_id!(
    /// A response id issued by a Responses-API server (`resp_...`).
    ///
    /// Validated like [`NodeId`] (non-empty, at most [`MAX_ID_LEN`] bytes, no
    /// whitespace or control characters); the `resp_` prefix is not required,
    /// because compatible servers use other formats.
    ResponseId,
    "response id",
    check_id
);

string_id!(
    /// The name of a ref: a movable, named pointer to a node, like a git branch.
    ///
    /// Ref names are 1 to [`MAX_REF_LEN`] bytes of ASCII letters, digits and
    /// `. _ - /`, and do not start with `-`, `.` or `/`.
    ///
    /// ```
    /// use resptree::RefName;
    /// assert!("formal".parse::<RefName>().is_ok());
    /// assert!("ideas/v2".parse::<RefName>().is_ok());
    /// assert!("-x".parse::<RefName>().is_err());
    /// ```
    RefName,
    "ref name",
    check_ref
);

/// Anything a ref name can be taken from: a [`RefName`] (already valid) or a
/// string, validated when it is used — the way reqwest takes any `IntoUrl`.
///
/// Implemented for `RefName`, `&RefName`, `&str`, `String` and `&String`; the
/// trait is sealed.
///
/// ```
/// use resptree::{Node, NodeId, ResponseTree};
/// let tree = ResponseTree::in_memory();
/// let id = NodeId::local();
/// tree.insert(Node::new(id.clone(), None))?;
/// tree.set_ref("best", &id)?;                          // a plain string
/// assert_eq!(tree.get_ref("best")?, id);
/// assert!(tree.set_ref("-not a name", &id).is_err()); // validated inside
/// # Ok::<(), resptree::Error>(())
/// ```
pub trait IntoRefName: sealed::Sealed {
    /// The validated name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] if the string is not a valid ref name.
    fn into_ref_name(self) -> Result<RefName>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::RefName {}
    impl Sealed for &super::RefName {}
    impl Sealed for &str {}
    impl Sealed for String {}
    impl Sealed for &String {}
}

impl IntoRefName for RefName {
    fn into_ref_name(self) -> Result<RefName> {
        Ok(self)
    }
}

impl IntoRefName for &RefName {
    fn into_ref_name(self) -> Result<RefName> {
        Ok(self.clone())
    }
}

impl IntoRefName for &str {
    fn into_ref_name(self) -> Result<RefName> {
        RefName::new(self)
    }
}

impl IntoRefName for String {
    fn into_ref_name(self) -> Result<RefName> {
        RefName::new(&self)
    }
}

impl IntoRefName for &String {
    fn into_ref_name(self) -> Result<RefName> {
        RefName::new(self)
    }
}

impl NodeId {
    /// A fresh local id: `node_` + a UUID v7 in simple (hex) form.
    pub fn local() -> Self {
        let id = format!("node_{}", uuid::Uuid::now_v7().simple());
        Self(Arc::from(id))
    }

    /// A short form for display: the last 8 characters after the prefix
    /// (`resp_68a1f3c2…b3d4a6c7` → `b3d4a6c7`).
    ///
    /// The tail, not the head: server and local ids both start with a timestamp,
    /// so ids made in the same second share their first characters but not their
    /// last. [`ResponseTree::resolve`](crate::ResponseTree::resolve) accepts this
    /// form back.
    pub fn short(&self) -> &str {
        let s = self.as_str();
        let body = s.split_once('_').map_or(s, |(_, rest)| rest);
        let body = if body.is_empty() { s } else { body };
        let start = body.char_indices().rev().nth(7).map_or(0, |(i, _)| i);
        &body[start..]
    }

    /// Whether both ids share one allocation (so are certainly equal), without
    /// reading either string.
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl From<ResponseId> for NodeId {
    fn from(id: ResponseId) -> Self {
        Self(id.0)
    }
}

impl From<&ResponseId> for NodeId {
    fn from(id: &ResponseId) -> Self {
        Self(Arc::clone(&id.0))
    }
}

fn check_id(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("is empty");
    }
    if s.len() > MAX_ID_LEN {
        return Err("is longer than 256 bytes");
    }
    // Every id a reopen decodes passes here, and server ids are printable
    // ASCII: a byte test settles those without decoding characters.
    if s.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters");
    }
    Ok(())
}

fn check_ref(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("is empty");
    }
    if s.len() > MAX_REF_LEN {
        return Err("is longer than 128 bytes");
    }
    if s.starts_with(['-', '.', '/']) {
        return Err("starts with '-', '.' or '/'");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    {
        return Err("may only contain ASCII letters, digits, '.', '_', '-' and '/'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_validate() {
        for bad in ["", " ", "a b", "a\nb", "tab\t", "nul\0"] {
            assert!(NodeId::new(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(NodeId::new(&"x".repeat(MAX_ID_LEN)).is_ok());
        assert!(NodeId::new(&"x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(NodeId::new("resp_abc").is_ok());
        assert!(NodeId::new("ünïcode-is-fine").is_ok());
    }

    #[test]
    fn ref_names_validate() {
        for good in ["main", "formal", "ideas/v2", "a.b_c-d", "X1"] {
            assert!(RefName::new(good).is_ok(), "{good:?} should be accepted");
        }
        for bad in [
            "",
            "-x",
            ".x",
            "/x",
            "a b",
            "é",
            &"r".repeat(MAX_REF_LEN + 1),
        ] {
            assert!(RefName::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn local_ids_sort_by_creation() {
        let a = NodeId::local();
        let b = NodeId::local();
        assert!(a < b);
        assert_eq!(a.as_str().len(), "node_".len() + 32);
    }

    #[test]
    fn short_form() {
        assert_eq!(
            NodeId::new("resp_68a1f3c2e9b0").unwrap().short(),
            "f3c2e9b0"
        );
        assert_eq!(NodeId::new("abc").unwrap().short(), "abc");
        assert_eq!(NodeId::new("node_ünïcödé_ids").unwrap().short(), "cödé_ids");
        assert_eq!(NodeId::new("x_").unwrap().short(), "x_");
    }

    #[test]
    fn serde_validates() {
        let id: NodeId = serde_json::from_str("\"resp_1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"resp_1\"");
        assert!(serde_json::from_str::<NodeId>("\"bad id\"").is_err());
        assert!(serde_json::from_str::<RefName>("\"-bad\"").is_err());
    }

    #[test]
    fn invalid_id_error_is_truncated() {
        let long = "é".repeat(200);
        let err = NodeId::new(&long).unwrap_err();
        match err {
            Error::InvalidId { input, .. } => {
                assert_eq!(input.chars().count(), 128);
                assert!(input.ends_with('…'));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
