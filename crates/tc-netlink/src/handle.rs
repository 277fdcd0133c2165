//! tc handles: 32-bit `major:minor` numbers naming qdiscs (minor 0) and
//! classes.

use crate::consts::TC_H_ROOT;
use std::fmt;

/// Builds a handle from its major and minor halves (`TC_H_MAKE`).
pub const fn handle(major: u16, minor: u16) -> u32 {
    ((major as u32) << 16) | minor as u32
}

/// Shows a handle the way `tc` writes it: hexadecimal `major:minor`, the
/// minor left out when it is 0 (`1:` is a qdisc, `1:a` a class), and
/// `root` for [`TC_H_ROOT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle(pub u32);

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = (self.0 >> 16, self.0 & 0xFFFF);
        match self.0 {
            TC_H_ROOT => f.write_str("root"),
            _ if minor == 0 => write!(f, "{major:x}:"),
            _ => write!(f, "{major:x}:{minor:x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        assert_eq!(Handle(handle(1, 0)).to_string(), "1:");
        assert_eq!(Handle(handle(0x10, 0x2a)).to_string(), "10:2a");
        assert_eq!(Handle(TC_H_ROOT).to_string(), "root");
        assert_eq!(Handle(0xFFFF_FFF3).to_string(), "ffff:fff3");
    }
}
