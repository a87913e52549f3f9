//! The value types that sluice reads from people: one definition of each,
//! shared by the pipeline file, the trust policy, the host and the guest SDK.
//!
//! | type | written as | grammar |
//! | --- | --- | --- |
//! | [`Duration`] | `90s`, `10m`, `1h30m`, `500ms` | [`duration`] |
//! | [`ByteSize`] | `1048576`, `512KB`, `256MiB`, `1.5GiB` | [`size`] |
//! | [`NetPattern`] | `api.example.com:443`, `*.internal:8000-8100`, `[::1]:*` | [`net`] |
//! | [`StageName`], [`PipelineName`] | `build-2`, `shop-api.v2` | [`name`] |
//! | [`OciReference`] | `oci://ghcr.io/acme/lint:1.2.0@sha256:…` | [`oci`] |
//! | [`Label`], [`LabelSet`] | `os=linux`, `net=egress,os=linux`, `any` | [`labels`] |
//! | [`OneOrMany`] | `a.xml` or `[a.xml, b.xml]` | [`one_or_many`] |
//! | [`Finding`], [`ArtifactRole`] | (data of WIT 0.2's reports) | [`findings`] |
//!
//! Every type parses with [`FromStr`](std::str::FromStr), prints its
//! canonical form with [`Display`](std::fmt::Display) (parsing the printed
//! form gives the same value back; property tests check it), and goes
//! through serde as that string. A value that does not parse gives a typed
//! error with the value, what is wrong and a `hint` that says how to write
//! it instead; the caller adds where the value was (file, line, key).
//!
//! Small text helpers that several crates need live in [`text`]
//! ([`text::edit_distance`], [`text::closest`] for "did you mean").
//!
//! This crate is built for the runner and, through `sluice-sdk`, for
//! `wasm32-wasip2` guests, so it must stay pure: it depends on serde,
//! thiserror and bytesize only — never on wasmtime, tokio or anything that
//! touches the filesystem, the network or the clock.

pub mod duration;
pub mod findings;
pub mod labels;
pub mod name;
pub mod net;
pub mod oci;
pub mod one_or_many;
pub mod size;
pub mod text;

pub use duration::{Duration, DurationError, DurationProblem};
pub use findings::{
    check_annotations, ArtifactRole, Finding, FindingLevel, FindingLocation, ReportRuleError,
};
pub use labels::{Label, LabelError, LabelKind, LabelPartProblem, LabelProblem, LabelSet};
pub use name::{NameError, NameKind, NameProblem, PipelineName, StageName};
pub use net::{HostPattern, NetMatch, NetPattern, NetPatternError, NetProblem, PortRange};
pub use oci::{OciProblem, OciReference, OciReferenceError};
pub use one_or_many::OneOrMany;
pub use size::{ByteSize, SizeError, SizeProblem};

/// Serde support shared by the types: deserialize from the string form (or
/// from a number, read as the same text), serialize as the canonical string.
mod serde_str {
    use std::fmt;
    use std::marker::PhantomData;
    use std::str::FromStr;

    use serde::de::{self, Visitor};

    /// A visitor that parses strings (and numbers written as text) with
    /// `T::from_str`, and reports the error and its hint in one message.
    pub(crate) struct TextVisitor<T> {
        expecting: &'static str,
        numbers: bool,
        marker: PhantomData<T>,
    }

    impl<T> TextVisitor<T> {
        /// `numbers`: whether a bare number is handed to the parser as its
        /// text (so `timeout: 600` gets the same "has no unit" message as
        /// `timeout: "600"`), or refused as a type error.
        pub(crate) fn new(expecting: &'static str, numbers: bool) -> Self {
            TextVisitor {
                expecting,
                numbers,
                marker: PhantomData,
            }
        }
    }

    /// An error that knows how to write the value instead.
    pub(crate) trait Hinted: fmt::Display {
        fn hint_text(&self) -> &str;
    }

    impl<T> TextVisitor<T>
    where
        T: FromStr,
        T::Err: Hinted,
    {
        fn parse<E: de::Error>(&self, text: &str) -> Result<T, E> {
            text.parse::<T>()
                .map_err(|e| E::custom(format_args!("{e}; {}", e.hint_text())))
        }

        fn number<E: de::Error>(&self, text: &str, unexpected: de::Unexpected<'_>) -> Result<T, E> {
            if self.numbers {
                self.parse(text)
            } else {
                Err(E::invalid_type(unexpected, self))
            }
        }
    }

    impl<T> Visitor<'_> for TextVisitor<T>
    where
        T: FromStr,
        T::Err: Hinted,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            self.parse(v)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            self.number(&v.to_string(), de::Unexpected::Unsigned(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            self.number(&v.to_string(), de::Unexpected::Signed(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            self.number(&v.to_string(), de::Unexpected::Float(v))
        }
    }

    /// `impl Serialize` (as the `Display` string) and `impl Deserialize`
    /// (through [`TextVisitor`]) for a type.
    macro_rules! string_serde {
        ($ty:ty, $expecting:literal, numbers: $numbers:literal) => {
            impl serde::Serialize for $ty {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.collect_str(self)
                }
            }

            impl<'de> serde::Deserialize<'de> for $ty {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    d.deserialize_any($crate::serde_str::TextVisitor::<$ty>::new(
                        $expecting, $numbers,
                    ))
                }
            }
        };
    }
    pub(crate) use string_serde;
}
