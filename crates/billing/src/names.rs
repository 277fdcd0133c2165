//! One spelling per rule name, for the policy, the bill's JSON and the
//! printed bill alike.
//!
//! Each rule enum lists its names once ([`named!`]); `Display`, `FromStr`,
//! serde and [`Named::NAMES`] all come from that list, so a name cannot
//! differ between the policy file, a stored bill and a printed one. Names
//! older builds wrote into frozen bills are read (never written) through
//! the enum's `OLD_NAMES`.

use crate::error::BillingError;

/// An enum whose values have names.
pub trait Named: Sized + Copy + 'static {
    /// Every value with its one name, in declaration order.
    const NAMES: &'static [(Self, &'static str)];
    /// Names an older build wrote (read only).
    const OLD_NAMES: &'static [(Self, &'static str)] = &[];
    /// What the value is, for error messages (`rank rule`).
    const WHAT: &'static str;
}

/// The value's name.
pub(crate) fn name_of<T: Named + PartialEq>(v: T) -> &'static str {
    T::NAMES
        .iter()
        .find(|(x, _)| *x == v)
        .map_or("", |(_, n)| n)
}

/// The value named `text` (or named so by an older build).
pub(crate) fn parse<T: Named>(text: &str) -> Result<T, BillingError> {
    T::NAMES
        .iter()
        .chain(T::OLD_NAMES)
        .find(|(_, n)| *n == text)
        .map(|(v, _)| *v)
        .ok_or_else(|| {
            let known: Vec<&str> = T::NAMES.iter().map(|(_, n)| *n).collect();
            BillingError::invalid(
                T::WHAT,
                format!("`{text}` is not a {}; use {}", T::WHAT, known.join(", ")),
            )
        })
}

/// Implements [`Named`], `Display`, `FromStr`, `Serialize` and
/// `Deserialize` for an enum from one list of names.
macro_rules! named {
    ($ty:ty, $what:literal, [$(($v:expr, $n:literal)),+ $(,)?] $(, old: [$(($ov:expr, $on:literal)),+ $(,)?])?) => {
        impl $crate::names::Named for $ty {
            const NAMES: &'static [(Self, &'static str)] = &[$(($v, $n)),+];
            $(const OLD_NAMES: &'static [(Self, &'static str)] = &[$(($ov, $on)),+];)?
            const WHAT: &'static str = $what;
        }

        impl $ty {
            /// The name the policy, the bill's JSON and the printed bill use.
            pub fn name(self) -> &'static str {
                $crate::names::name_of(self)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::error::BillingError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::names::parse(s)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $crate::names::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use named;
