//! A CSV reader that keeps line numbers.
//!
//! ShapedDevices.csv is written by hand, by spreadsheets and by LibreQoS's
//! integrations, so the reader takes what those write: `#` comment lines,
//! blank lines, fields trimmed of spaces, quoted fields with `""` for a
//! quote and commas or line breaks inside, CRLF or LF (or CR) line ends, a
//! UTF-8 byte-order mark. Every record carries the line it starts on, so
//! that every diagnostic can name `file:line`. A quote that is never closed
//! is an error at the line where it opened; nothing after it is read.

/// One record: its fields, trimmed, and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// A quote opened at `line` and never closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unterminated {
    pub line: usize,
}

/// Reads records one at a time from text.
pub(crate) struct Reader<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `text`, past a byte-order mark if there is one.
    pub fn new(text: &'a str) -> Reader<'a> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Reader {
            text: text.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    /// How many bytes have been read, for a progress bar.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    /// Consumes a line end (`\r\n`, `\n` or `\r`) if one is next.
    fn line_end(&mut self) -> bool {
        match self.peek() {
            Some(b'\r') => {
                self.pos += 1;
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
                self.line += 1;
                true
            }
            Some(b'\n') => {
                self.pos += 1;
                self.line += 1;
                true
            }
            _ => false,
        }
    }

    /// Skips blank lines and `#` comment lines; `false` at the end.
    fn skip_ignored_lines(&mut self) -> bool {
        loop {
            let start = self.pos;
            while matches!(self.peek(), Some(b' ' | b'\t')) {
                self.pos += 1;
            }
            match self.peek() {
                None => return false,
                Some(b'\r' | b'\n') => {
                    self.line_end();
                }
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\r' | b'\n')) {
                        self.pos += 1;
                    }
                    self.line_end();
                }
                Some(_) => {
                    self.pos = start;
                    return true;
                }
            }
        }
    }

    /// The next record, `None` at the end, or the line of a quote never
    /// closed (after which the reader is at the end).
    pub fn next_record(&mut self) -> Option<Result<Record, Unterminated>> {
        if !self.skip_ignored_lines() {
            return None;
        }
        let line = self.line;
        let mut fields = Vec::new();
        loop {
            while matches!(self.peek(), Some(b' ' | b'\t')) {
                self.pos += 1;
            }
            let mut field: Vec<u8> = Vec::new();
            if self.peek() == Some(b'"') {
                let opened = self.line;
                self.pos += 1;
                loop {
                    match self.peek() {
                        None => {
                            return Some(Err(Unterminated { line: opened }));
                        }
                        Some(b'"') if self.text.get(self.pos + 1) == Some(&b'"') => {
                            field.push(b'"');
                            self.pos += 2;
                        }
                        Some(b'"') => {
                            self.pos += 1;
                            break;
                        }
                        Some(b'\n') => {
                            field.push(b'\n');
                            self.pos += 1;
                            self.line += 1;
                        }
                        Some(b'\r') => {
                            // A CR LF inside quotes is one line break.
                            self.pos += 1;
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                            field.push(b'\n');
                            self.line += 1;
                        }
                        Some(b) => {
                            field.push(b);
                            self.pos += 1;
                        }
                    }
                }
            }
            // Unquoted text, or what follows a closing quote (kept, as
            // spreadsheets and LibreQoS's own reader keep it).
            while let Some(b) = self.peek() {
                if matches!(b, b',' | b'\r' | b'\n') {
                    break;
                }
                field.push(b);
                self.pos += 1;
            }
            // Only ASCII bytes were split on, so the field is still UTF-8.
            let text = String::from_utf8_lossy(&field);
            fields.push(text.trim().to_string());
            if self.peek() == Some(b',') {
                self.pos += 1;
                continue;
            }
            self.line_end();
            return Some(Ok(Record { line, fields }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<Result<Record, Unterminated>> {
        let mut r = Reader::new(text);
        std::iter::from_fn(|| r.next_record()).collect()
    }

    fn rec(line: usize, fields: &[&str]) -> Result<Record, Unterminated> {
        Ok(Record {
            line,
            fields: fields.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn comments_blank_lines_and_line_numbers() {
        let got = all("# a comment\n\na, b ,c\r\n  # indented comment\n\"x\",y\n");
        assert_eq!(got, vec![rec(3, &["a", "b", "c"]), rec(5, &["x", "y"])]);
    }

    #[test]
    fn quoted_fields_hold_commas_quotes_and_line_breaks() {
        let got =
            all("1,\"100.64.0.1, 100.64.0.2/32\",\"say \"\"hi\"\"\"\n2,\"two\r\nlines\",z\n3,q");
        assert_eq!(
            got,
            vec![
                rec(1, &["1", "100.64.0.1, 100.64.0.2/32", "say \"hi\""]),
                rec(2, &["2", "two\nlines", "z"]),
                rec(4, &["3", "q"]),
            ]
        );
    }

    #[test]
    fn an_unclosed_quote_names_the_line_it_opened_on() {
        let got = all("a,b\nc,\"open\nd,e\n");
        assert_eq!(
            got,
            vec![rec(1, &["a", "b"]), Err(Unterminated { line: 2 })]
        );
    }

    #[test]
    fn a_byte_order_mark_and_empty_trailing_fields() {
        let got = all("\u{feff}a,,\n");
        assert_eq!(got, vec![rec(1, &["a", "", ""])]);
    }

    #[test]
    fn lone_carriage_returns_end_lines() {
        let got = all("a\rb\r\rc");
        assert_eq!(got, vec![rec(1, &["a"]), rec(2, &["b"]), rec(4, &["c"])]);
    }
}
