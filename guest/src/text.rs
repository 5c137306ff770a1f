//! A line of text built in a fixed buffer, for guests that print numbers
//! (core::fmt would pull kilobytes into images that must stay small).

pub struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    pub const fn new() -> Self {
        Line { buf: [0; 160], len: 0 }
    }

    /// Appends `bytes`, as much as fits.
    pub fn text(&mut self, bytes: &[u8]) -> &mut Self {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self
    }

    pub fn decimal(&mut self, mut v: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.text(&digits[i..])
    }

    /// Two lowercase hex digits.
    pub fn hex_byte(&mut self, b: u8) -> &mut Self {
        let digits = b"0123456789abcdef";
        self.text(&[digits[usize::from(b >> 4)], digits[usize::from(b & 0xf)]])
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}
