//! Shapes the raw fuzzer input: a fixed header, chunk schedules, fields.

/// Splits off a fixed-size header (zero-padded when the input is short) and
/// returns it with the rest of the input.
pub fn header<const N: usize>(data: &[u8]) -> ([u8; N], &[u8]) {
    let mut h = [0u8; N];
    let n = N.min(data.len());
    h[..n].copy_from_slice(&data[..n]);
    (h, &data[n..])
}

/// Cuts `data` into chunks whose sizes cycle through `sizes`; a size of 0
/// means "all that is left". With no sizes the data is one chunk. In line
/// mode every chunk is one line (up to and including LF), as a server that
/// writes each reply line separately.
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    next: usize,
    lines: bool,
}

impl<'a> Chunks<'a> {
    /// Chunks of `data` sized by `sizes`.
    pub fn new(data: &'a [u8], sizes: &'a [u8]) -> Self {
        Self {
            data,
            sizes,
            next: 0,
            lines: false,
        }
    }

    /// One chunk per line of `data`.
    pub fn lines(data: &'a [u8]) -> Self {
        Self {
            data,
            sizes: &[],
            next: 0,
            lines: true,
        }
    }

    /// The bytes not yet handed out.
    pub fn rest(&self) -> &'a [u8] {
        self.data
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.data.is_empty() {
            return None;
        }
        if self.lines {
            let n = self
                .data
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.data.len(), |i| i + 1);
            let (chunk, rest) = self.data.split_at(n);
            self.data = rest;
            return Some(chunk);
        }
        let size = if self.sizes.is_empty() {
            0
        } else {
            usize::from(self.sizes[self.next % self.sizes.len()])
        };
        self.next += 1;
        let n = if size == 0 {
            self.data.len()
        } else {
            size.min(self.data.len())
        };
        let (chunk, rest) = self.data.split_at(n);
        self.data = rest;
        Some(chunk)
    }
}

/// Splits `data` into fields at `0xFF`, a byte that never occurs in UTF-8,
/// so any text a field should hold can be written as is.
pub fn fields(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == 0xFF).collect()
}

/// The field as text (invalid UTF-8 replaced), or empty if absent.
pub fn text(fields: &[&[u8]], i: usize) -> String {
    fields
        .get(i)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .unwrap_or_default()
}
