//! Classic BPF instructions, as `cls_bpf` takes them in `TCA_BPF_OPS`.

use std::fmt;

/// One classic BPF instruction (`struct sock_filter`): 8 bytes on the
/// wire, `code` u16, `jt` u8, `jf` u8, `k` u32, in host byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockFilter {
    /// Opcode (class | size | mode, or class | op | source).
    pub code: u16,
    /// Instructions to skip when a jump's condition holds.
    pub jt: u8,
    /// Instructions to skip when it does not.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

/// A program in `tc … bpf bytecode` notation could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BytecodeError(pub String);

impl fmt::Display for BytecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad bpf bytecode: {}", self.0)
    }
}

impl std::error::Error for BytecodeError {}

impl SockFilter {
    /// An instruction.
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }

    /// Reads `tc`'s bytecode notation, `"N,code jt jf k,code jt jf k,…"`
    /// (decimal, the count first), as `plan::Select::bytecode` prints it.
    /// The count must match the number of instructions.
    pub fn parse_tc_bytecode(text: &str) -> Result<Vec<SockFilter>, BytecodeError> {
        let mut parts = text.trim().split(',');
        let count: usize = parts
            .next()
            .and_then(|c| c.trim().parse().ok())
            .ok_or_else(|| BytecodeError("missing instruction count".into()))?;
        let mut ops = Vec::with_capacity(count.min(crate::consts::BPF_MAXINSNS));
        for part in parts {
            let mut n = part.split_whitespace();
            let mut field = |what: &str| {
                n.next().ok_or_else(|| {
                    BytecodeError(format!("instruction {}: missing {what}", ops.len()))
                })
            };
            let (code, jt, jf, k) = (field("code")?, field("jt")?, field("jf")?, field("k")?);
            let bad = |what: &str, v: &str| {
                BytecodeError(format!("instruction {}: bad {what} {v:?}", ops.len()))
            };
            let op = SockFilter {
                code: code.parse().map_err(|_| bad("code", code))?,
                jt: jt.parse().map_err(|_| bad("jt", jt))?,
                jf: jf.parse().map_err(|_| bad("jf", jf))?,
                k: k.parse().map_err(|_| bad("k", k))?,
            };
            if n.next().is_some() {
                return Err(BytecodeError(format!(
                    "instruction {}: more than 4 numbers",
                    ops.len()
                )));
            }
            ops.push(op);
        }
        if ops.len() != count {
            return Err(BytecodeError(format!(
                "count says {count} instructions, found {}",
                ops.len()
            )));
        }
        Ok(ops)
    }

    /// Writes the program in `tc`'s bytecode notation (the inverse of
    /// [`SockFilter::parse_tc_bytecode`]).
    pub fn to_tc_bytecode(ops: &[SockFilter]) -> String {
        let mut s = ops.len().to_string();
        for o in ops {
            s.push_str(&format!(",{} {} {} {}", o.code, o.jt, o.jf, o.k));
        }
        s
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.code.to_ne_bytes());
        out.push(self.jt);
        out.push(self.jf);
        out.extend_from_slice(&self.k.to_ne_bytes());
    }

    pub(crate) fn read(b: &[u8]) -> Option<SockFilter> {
        let b: &[u8; 8] = b.try_into().ok()?;
        Some(SockFilter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tc_notation() {
        let text = "4,32 0 0 4294963220,21 0 1 7,6 0 0 4294967295,6 0 0 0";
        let ops = SockFilter::parse_tc_bytecode(text).unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0], SockFilter::new(0x20, 0, 0, 0xffff_f014));
        assert_eq!(ops[1], SockFilter::new(0x15, 0, 1, 7));
        assert_eq!(SockFilter::to_tc_bytecode(&ops), text);
        assert!(SockFilter::parse_tc_bytecode("2,6 0 0 0").is_err());
        assert!(SockFilter::parse_tc_bytecode("1,6 0 0").is_err());
        assert!(SockFilter::parse_tc_bytecode("1,6 0 0 0 0").is_err());
        assert!(SockFilter::parse_tc_bytecode("1,6 0 256 0").is_err());
        assert!(SockFilter::parse_tc_bytecode("").is_err());
    }
}
