//! Interface names, validated by the kernel's own rules.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A network interface name the kernel would accept (`dev_valid_name`).
///
/// The kernel refuses names that are empty, `.` or `..`, 16 bytes or longer
/// (IFNAMSIZ counts the terminating NUL), or that contain `/`, `:` or
/// white space. Checking here means a bad name is reported with its place in
/// the policy file instead of as a netlink error halfway through an apply.
///
/// It is stored inline (16 bytes, `Copy`): plans hold hundreds of thousands
/// of keys that name a device, and a heap string in each made compiling and
/// diffing them allocation-bound.
///
/// The 15 name bytes and the length sit in one 16-byte array; comparisons
/// read it as one big-endian `u128`, so comparing two names (the hottest
/// operation when a plan is built or diffed) is one integer comparison and
/// still sorts like the text.
#[derive(Clone, Copy, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IfName {
    bytes: [u8; 16],
}

impl PartialEq for IfName {
    fn eq(&self, other: &Self) -> bool {
        u128::from_ne_bytes(self.bytes) == u128::from_ne_bytes(other.bytes)
    }
}

impl std::hash::Hash for IfName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl Ord for IfName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        u128::from_be_bytes(self.bytes).cmp(&u128::from_be_bytes(other.bytes))
    }
}

impl PartialOrd for IfName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Why an interface name is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfNameError {
    /// The name is empty.
    Empty,
    /// The name is longer than the kernel's 15 usable bytes.
    TooLong(usize),
    /// The name is `.` or `..`.
    Dots,
    /// The name contains a character the kernel refuses.
    BadChar(char),
}

impl fmt::Display for IfNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IfNameError::Empty => write!(f, "interface name is empty"),
            IfNameError::TooLong(n) => write!(
                f,
                "interface name is {n} bytes long; the kernel allows at most {}",
                IfName::MAX_LEN
            ),
            IfNameError::Dots => write!(f, "`.` and `..` are not interface names"),
            IfNameError::BadChar(c) => write!(
                f,
                "interface names may not contain {c:?} (the kernel refuses '/', ':' and white space)"
            ),
        }
    }
}

impl std::error::Error for IfNameError {}

impl IfName {
    /// The longest name the kernel accepts, in bytes.
    pub const MAX_LEN: usize = 15;

    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, IfNameError> {
        if name.is_empty() {
            return Err(IfNameError::Empty);
        }
        if name.len() > Self::MAX_LEN {
            return Err(IfNameError::TooLong(name.len()));
        }
        if name == "." || name == ".." {
            return Err(IfNameError::Dots);
        }
        if let Some(c) = name
            .chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(IfNameError::BadChar(c));
        }
        let mut bytes = [0u8; 16];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        bytes[15] = name.len() as u8;
        Ok(IfName { bytes })
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // Only ever built from a `&str` in `new`, cut at a length it checked.
        std::str::from_utf8(&self.bytes[..self.bytes[15] as usize]).unwrap_or("")
    }
}

impl TryFrom<String> for IfName {
    type Error = IfNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        IfName::new(&value)
    }
}

impl From<IfName> for String {
    fn from(value: IfName) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_the_kernel_accepts() {
        for ok in ["eth0", "vif12.0", "tap-a_b", "x", "abcdefghijklmno"] {
            assert!(IfName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn sorts_like_text() {
        let mut names: Vec<IfName> = ["vif10", "eth0", "vif1", "vif1.0", "a", "tg-down0"]
            .iter()
            .map(|n| IfName::new(n).unwrap())
            .collect();
        names.sort();
        let text: Vec<&str> = names.iter().map(IfName::as_str).collect();
        assert_eq!(text, ["a", "eth0", "tg-down0", "vif1", "vif1.0", "vif10"]);
    }

    #[test]
    fn refuses_what_the_kernel_refuses() {
        assert_eq!(IfName::new(""), Err(IfNameError::Empty));
        assert_eq!(
            IfName::new("abcdefghijklmnop"),
            Err(IfNameError::TooLong(16))
        );
        assert_eq!(IfName::new(".."), Err(IfNameError::Dots));
        assert_eq!(IfName::new("eth0:1"), Err(IfNameError::BadChar(':')));
        assert_eq!(IfName::new("a/b"), Err(IfNameError::BadChar('/')));
        assert_eq!(IfName::new("a b"), Err(IfNameError::BadChar(' ')));
    }
}
