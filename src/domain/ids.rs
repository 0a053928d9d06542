//! Typed record ids: a run id cannot be passed where a scene id is expected.
//!
//! Every id is a UUIDv7 in its text form (new ids sort by creation time), stored as text in the database and
//! sent as a JSON string (serde-transparent). An id derefs to `str`, so reading it (formatting, binding it as
//! a query parameter with `as_str()`, comparing) needs no conversion; making one from outside text is explicit
//! (`From<String>`, `From<&str>`), which is where an adapter takes a path parameter or a stored column.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new, unique id (UUIDv7: ordered by creation time).
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id's text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(id.clone())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

id_type!(
    /// The id of a run (one execution of a project's or a scene's plan).
    RunId
);
id_type!(
    /// The id of a project.
    ProjectId
);
id_type!(
    /// The id of a scene.
    SceneId
);
id_type!(
    /// The id of an identity (a person).
    IdentityId
);
id_type!(
    /// The id of an uploaded asset (headshot, LoRA, background, audio…).
    AssetId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_transparent_strings_and_distinct_types() {
        let run = RunId::from("0190-run");
        assert_eq!(serde_json::to_string(&run).unwrap(), "\"0190-run\"");
        let back: RunId = serde_json::from_str("\"0190-run\"").unwrap();
        assert_eq!(back, run);
        assert_eq!(run.len(), 8, "derefs to str");
        assert_eq!(run, "0190-run");
        let a = SceneId::generate();
        let b = SceneId::generate();
        assert_ne!(a, b);
        assert!(a.as_str() < b.as_str(), "UUIDv7 ids sort by creation");
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 7);
    }
}
