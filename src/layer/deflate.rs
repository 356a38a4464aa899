//! One piece of ocipack's gzip stream: a block of input compressed by libdeflate as a
//! complete raw DEFLATE stream, made continuable, and checked.
//!
//! libdeflate compresses fast and small, but only whole streams and without a preset
//! dictionary. So each block is compressed on its own (no shared window: any piece can be
//! made on any thread), and every piece but the last is made continuable: its last DEFLATE
//! block's BFINAL bit is cleared and an empty stored block (a "sync marker") is appended,
//! which ends the piece on a byte boundary. DEFLATE blocks carry no length, so only the
//! compressor knows where that bit is: ocipack's libdeflate is patched to report it
//! (`libdeflate_deflate_compress_final_block`, `vendor/libdeflate-sys/OCIPACK.md`). Before the
//! patch, every piece was walked symbol by symbol to find it, 10 % of a build's CPU; that
//! walker remains in the tests, as an independent witness of the reported positions.
//!
//! Every piece is then checked before it is used: the exact bytes that go into the stream,
//! completed by an empty final block, are decompressed by libdeflate's own decompressor
//! and must give back exactly the block's input. An encoder or splicing bug (a wrong
//! reported position included) therefore fails the build instead of publishing a layer that
//! decodes to something else.

use std::io;
use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_compressor, libdeflate_alloc_decompressor, libdeflate_compressor,
    libdeflate_decompressor, libdeflate_deflate_compress, libdeflate_deflate_compress_bound,
    libdeflate_deflate_compress_final_block, libdeflate_deflate_decompress_ex,
    libdeflate_free_compressor, libdeflate_free_decompressor, libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// An empty stored block's LEN and NLEN: after a byte-aligned stored-block header, these
/// four bytes end the block (zlib's `Z_SYNC_FLUSH` marker).
const EMPTY_STORED_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// An empty final block (fixed Huffman: BFINAL 1, BTYPE 01, end-of-block code), appended to a
/// continuable piece to make it a complete stream for the check.
const EMPTY_FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Makes and checks pieces at one libdeflate level. Not shared between threads (libdeflate's
/// compressor and decompressor are not), but may move between them.
pub(super) struct PieceMaker {
    compressor: NonNull<libdeflate_compressor>,
    decompressor: NonNull<libdeflate_decompressor>,
    /// Scratch space for the check's output.
    check_out: Vec<u8>,
}

// SAFETY: libdeflate's compressor and decompressor have no thread affinity; they are only
// used through `&mut self`.
unsafe impl Send for PieceMaker {}

/// Where the last block of a complete stream starts, and where the stream's data ends (in
/// bits from the start of the first byte, least significant bit first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ends {
    /// Bit position of the BFINAL bit of the last block.
    pub(super) last_header_bit: u64,
    /// Bit position just after the last block (its end-of-block code, or its stored bytes).
    pub(super) end_bit: u64,
}

impl PieceMaker {
    /// A maker at libdeflate `level` (1..=12).
    pub(super) fn new(level: u32) -> io::Result<PieceMaker> {
        if !(1..=12).contains(&level) {
            return Err(io::Error::other(format!(
                "gzip level {level} is not 1 to 12"
            )));
        }
        // SAFETY: plain allocations; null results are handled.
        let compressor = NonNull::new(unsafe { libdeflate_alloc_compressor(level as i32) });
        let decompressor = NonNull::new(unsafe { libdeflate_alloc_decompressor() });
        let (Some(compressor), Some(decompressor)) = (compressor, decompressor) else {
            return Err(io::Error::other("libdeflate: out of memory"));
        };
        Ok(PieceMaker {
            compressor,
            decompressor,
            check_out: Vec::new(),
        })
    }

    /// Compresses `input` into `out` (emptied first) as one piece of a raw DEFLATE stream:
    /// a complete stream when `last`, a continuable piece otherwise. The result is a pure
    /// function of (`input`, `last`, level, libdeflate version).
    pub(super) fn compress(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        self.compress_whole(input, out)?;
        if !last {
            let ends = self.ends(out)?;
            make_continuable(out, ends)?;
        }
        Ok(())
    }

    /// Compresses `input` into `out` (emptied first) as a complete raw DEFLATE stream.
    fn compress_whole(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        // SAFETY: `compressor` is live.
        let bound =
            unsafe { libdeflate_deflate_compress_bound(self.compressor.as_ptr(), input.len()) };
        out.clear();
        out.reserve(bound + 1 + EMPTY_STORED_TAIL.len() + EMPTY_FINAL_BLOCK.len());
        // SAFETY: `input` is readable for its length; `out` has at least `bound` bytes of
        // spare capacity, which libdeflate guarantees is enough for any input.
        let n = unsafe {
            libdeflate_deflate_compress(
                self.compressor.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                bound,
            )
        };
        if n == 0 {
            return Err(io::Error::other("libdeflate: output larger than its bound"));
        }
        // SAFETY: libdeflate initialised the first `n` bytes.
        unsafe { out.set_len(n) };
        Ok(())
    }

    /// Where libdeflate put the final block of `out`, the stream it has just made; checked
    /// to lie inside it.
    fn ends(&self, out: &[u8]) -> io::Result<Ends> {
        let (mut last_header_bit, mut end_bit) = (usize::MAX, usize::MAX);
        // SAFETY: `compressor` is live and made `out` in its last call; the function only
        // stores two numbers.
        unsafe {
            libdeflate_deflate_compress_final_block(
                self.compressor.as_ptr(),
                &mut last_header_bit,
                &mut end_bit,
            )
        };
        if last_header_bit >= end_bit || end_bit.div_ceil(8) != out.len() {
            return Err(io::Error::other(format!(
                "libdeflate reports its final block at bits {last_header_bit}..{end_bit} of \
                 a {}-byte stream",
                out.len()
            )));
        }
        Ok(Ends {
            last_header_bit: last_header_bit as u64,
            end_bit: end_bit as u64,
        })
    }

    /// Checks that `piece` (as it goes into the stream; continuable unless `last`) decodes
    /// to exactly `input`. A continuable piece gets an empty final block for the check,
    /// which is taken off again.
    pub(super) fn check(
        &mut self,
        piece: &mut Vec<u8>,
        last: bool,
        input: &[u8],
    ) -> Result<(), String> {
        let len = piece.len();
        if !last {
            piece.extend_from_slice(&EMPTY_FINAL_BLOCK);
        }
        let r = self.decodes_to(piece, input);
        piece.truncate(len);
        r
    }

    fn decodes_to(&mut self, stream: &[u8], input: &[u8]) -> Result<(), String> {
        // One byte more than expected, so that a longer result is noticed. Never zeroed:
        // only what the decoder writes is read.
        self.check_out.clear();
        self.check_out.reserve(input.len() + 1);
        let (mut used, mut got) = (0usize, 0usize);
        // SAFETY: `decompressor` is live; `stream` is readable for its length and
        // `check_out` has `input.len() + 1` bytes of spare capacity, writable; `used` and
        // `got` receive the sizes read and written, and only that many bytes are read
        // afterwards.
        let (r, out) = unsafe {
            let r = libdeflate_deflate_decompress_ex(
                self.decompressor.as_ptr(),
                stream.as_ptr().cast(),
                stream.len(),
                self.check_out.as_mut_ptr().cast(),
                input.len() + 1,
                &mut used,
                &mut got,
            );
            let got = if r == libdeflate_result_LIBDEFLATE_SUCCESS {
                got.min(input.len() + 1)
            } else {
                0
            };
            (r, std::slice::from_raw_parts(self.check_out.as_ptr(), got))
        };
        if r != libdeflate_result_LIBDEFLATE_SUCCESS {
            return Err(format!("a piece does not decode (libdeflate result {r})"));
        }
        // A final block before the piece's end would end the whole gzip stream there.
        if used != stream.len() {
            return Err(format!(
                "a piece's stream ends after {used} of its {} bytes",
                stream.len()
            ));
        }
        if out != input {
            return Err(format!(
                "a piece decodes to {} bytes that differ from its {} input bytes",
                out.len(),
                input.len()
            ));
        }
        Ok(())
    }
}

/// Clears the last block's BFINAL bit of the complete stream `out` and appends an empty
/// stored block, which ends on a byte boundary.
fn make_continuable(out: &mut Vec<u8>, ends: Ends) -> io::Result<()> {
    out[(ends.last_header_bit / 8) as usize] &= !(1u8 << (ends.last_header_bit % 8));
    // The bits after the data in its last byte are zero (libdeflate pads with zeros):
    // the stored block's 3-bit header (BFINAL 0, BTYPE 00) and its alignment go there,
    // or into one more zero byte.
    let used = ends.end_bit % 8;
    if used != 0 && out[out.len() - 1] >> used != 0 {
        return Err(io::Error::other("libdeflate output: non-zero padding bits"));
    }
    out.resize((ends.end_bit + 3).div_ceil(8) as usize, 0);
    out.extend_from_slice(&EMPTY_STORED_TAIL);
    Ok(())
}

impl Drop for PieceMaker {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate, freed once.
        unsafe {
            libdeflate_free_compressor(self.compressor.as_ptr());
            libdeflate_free_decompressor(self.decompressor.as_ptr());
        }
    }
}

/// The block walker that found the final block before libdeflate reported it, kept as an
/// independent witness for the tests: where the last block of a complete raw DEFLATE
/// stream starts and where its end-of-block code ends, found by decoding every Huffman
/// symbol without producing any output. It checks what it reads (code lengths, symbol
/// ranges, stored-block lengths, no reading past the end) and reports an error rather than
/// a wrong position; it does not check that distances stay inside the window, which cannot
/// change where blocks end.
#[cfg(test)]
mod walk {
    use super::Ends;
    use std::fmt;

    /// The stream is not a well-formed complete DEFLATE stream.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) struct ScanError(pub(super) &'static str);

    impl fmt::Display for ScanError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "malformed deflate stream: {}", self.0)
        }
    }

    impl std::error::Error for ScanError {}

    /// Bits of the first-level lookup tables (longer codes take a slow path).
    const LITLEN_BITS: u32 = 12;
    const DIST_BITS: u32 = 9;

    // A table entry: low byte = bits to consume (code + extra bits), then the kind.
    const KIND_SHIFT: u32 = 8;
    const K_LITERAL: u32 = 1;
    const K_LENGTH: u32 = 2;
    const K_END: u32 = 3;
    const K_DIST: u32 = 4;
    // 0 = no entry: the code is longer than the table, or invalid.

    /// Extra bits of length symbols 257..=285.
    const LEN_EXTRA: [u8; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    /// Extra bits of distance symbols 0..=29.
    const DIST_EXTRA: [u8; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];
    /// Order of the code-length code lengths in a dynamic block header.
    const CL_ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];

    /// A canonical Huffman code: a first-level table plus what the slow path needs.
    struct Code {
        bits: u32,
        table: Vec<u32>,
        /// Entry value of each symbol (what the table holds for it).
        value: Vec<u32>,
        counts: [u16; 16],
        /// Symbols sorted by (code length, symbol value).
        sorted: Vec<u16>,
    }

    impl Code {
        fn new(bits: u32) -> Self {
            Code {
                bits,
                table: vec![0; 1 << bits],
                value: Vec::new(),
                counts: [0; 16],
                sorted: Vec::new(),
            }
        }

        /// Builds the code for `lens`; `value(sym)` is the table entry for a symbol without
        /// its code length (added here). Rejects over-subscribed codes; incomplete codes are
        /// allowed (decoding an unused code then fails).
        fn build(&mut self, lens: &[u8], value: impl Fn(usize) -> u32) -> Result<(), ScanError> {
            self.counts = [0; 16];
            for &l in lens {
                self.counts[l as usize] += 1;
            }
            self.counts[0] = 0;
            let mut left: i32 = 1;
            for len in 1..16 {
                left = (left << 1) - i32::from(self.counts[len]);
                if left < 0 {
                    return Err(ScanError("over-subscribed Huffman code"));
                }
            }
            let mut offs = [0u16; 16];
            for len in 1..15 {
                offs[len + 1] = offs[len] + self.counts[len];
            }
            self.sorted.clear();
            self.sorted.resize(lens.len(), 0);
            self.value.clear();
            self.value.extend((0..lens.len()).map(&value));
            for (sym, &l) in lens.iter().enumerate() {
                if l != 0 {
                    self.sorted[offs[l as usize] as usize] = sym as u16;
                    offs[l as usize] += 1;
                }
            }
            // Fill the first-level table, walking symbols in canonical order.
            self.table.fill(0);
            let mut code: u32 = 0;
            let mut idx = 0usize;
            for len in 1..16u32 {
                for _ in 0..self.counts[len as usize] {
                    let sym = self.sorted[idx] as usize;
                    idx += 1;
                    if len <= self.bits {
                        let rev = code.reverse_bits() >> (32 - len);
                        let entry = self.value[sym] + len;
                        let mut i = rev as usize;
                        while i < self.table.len() {
                            self.table[i] = entry;
                            i += 1 << len;
                        }
                    }
                    code += 1;
                }
                code <<= 1;
            }
            Ok(())
        }

        /// Decodes a code longer than the table (or an invalid one) bit by bit from `bits`
        /// (the next input bits, least significant first). Returns the entry with the code
        /// length added.
        #[cold]
        fn slow(&self, bits: u64) -> Result<u32, ScanError> {
            let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
            for len in 1..16 {
                code |= ((bits >> (len - 1)) & 1) as i32;
                let count = i32::from(self.counts[len]);
                if code - first < count {
                    let sym = self.sorted[(index + code - first) as usize] as usize;
                    return Ok(self.value[sym] + len as u32);
                }
                index += count;
                first = (first + count) << 1;
                code <<= 1;
            }
            Err(ScanError("invalid Huffman code"))
        }
    }

    /// Reusable walker state (Huffman tables), one per thread.
    pub(super) struct Scanner {
        litlen: Code,
        dist: Code,
        cl: Code,
        fixed_litlen: Code,
        fixed_dist: Code,
        lens: Vec<u8>,
    }

    fn litlen_value(sym: usize) -> u32 {
        match sym {
            0..=255 => K_LITERAL << KIND_SHIFT,
            256 => K_END << KIND_SHIFT,
            257..=285 => (K_LENGTH << KIND_SHIFT) + u32::from(LEN_EXTRA[sym - 257]),
            _ => 0, // 286, 287: never valid in a stream
        }
    }

    fn dist_value(sym: usize) -> u32 {
        match sym {
            0..=29 => (K_DIST << KIND_SHIFT) + u32::from(DIST_EXTRA[sym]),
            _ => 0,
        }
    }

    /// Bit reader over a byte slice, reading zeros past the end (the caller checks that the
    /// position never goes past the end).
    struct Bits<'a> {
        data: &'a [u8],
        /// Next byte to load into `buf`.
        next: usize,
        buf: u64,
        count: u32,
    }

    impl<'a> Bits<'a> {
        fn new(data: &'a [u8]) -> Self {
            Bits {
                data,
                next: 0,
                buf: 0,
                count: 0,
            }
        }

        /// Ensures at least 56 bits are buffered.
        #[inline(always)]
        fn refill(&mut self) {
            if self.next + 8 <= self.data.len() {
                let w = u64::from_le_bytes(self.data[self.next..self.next + 8].try_into().unwrap());
                self.buf |= w << self.count;
                self.next += ((63 - self.count) >> 3) as usize;
                self.count |= 56;
            } else {
                while self.count <= 56 {
                    let b = self.data.get(self.next).copied().unwrap_or(0);
                    self.buf |= u64::from(b) << self.count;
                    self.next += 1;
                    self.count += 8;
                }
            }
        }

        #[inline(always)]
        fn consume(&mut self, n: u32) {
            self.buf >>= n;
            self.count -= n;
        }

        #[inline(always)]
        fn take(&mut self, n: u32) -> u32 {
            let v = (self.buf & ((1u64 << n) - 1)) as u32;
            self.consume(n);
            v
        }

        /// Bit position of the next unread bit.
        fn pos(&self) -> u64 {
            self.next as u64 * 8 - u64::from(self.count)
        }

        fn overran(&self) -> bool {
            self.pos() > self.data.len() as u64 * 8
        }
    }

    impl Scanner {
        pub(super) fn new() -> Self {
            let mut fixed_litlen = Code::new(LITLEN_BITS);
            let mut lens = [0u8; 288];
            lens[..144].fill(8);
            lens[144..256].fill(9);
            lens[256..280].fill(7);
            lens[280..].fill(8);
            fixed_litlen.build(&lens, litlen_value).unwrap();
            let mut fixed_dist = Code::new(DIST_BITS);
            fixed_dist.build(&[5u8; 32], dist_value).unwrap();
            Scanner {
                litlen: Code::new(LITLEN_BITS),
                dist: Code::new(DIST_BITS),
                cl: Code::new(7),
                fixed_litlen,
                fixed_dist,
                lens: Vec::with_capacity(320),
            }
        }

        /// Walks the complete raw DEFLATE stream `data` (which must end with its final block;
        /// bytes after it are an error) and returns where its last block starts and ends.
        pub(super) fn scan(&mut self, data: &[u8]) -> Result<Ends, ScanError> {
            let mut r = Bits::new(data);
            loop {
                r.refill();
                let header = r.pos();
                let bfinal = r.take(1);
                let btype = r.take(2);
                match btype {
                    0 => {
                        let skip = r.count & 7;
                        r.consume(skip);
                        let len = r.take(16);
                        let nlen = r.take(16);
                        if len != !nlen & 0xffff {
                            return Err(ScanError("stored block length check failed"));
                        }
                        // Skip the stored bytes: restart the reader after them.
                        let at = r.pos() / 8 + u64::from(len);
                        if at > data.len() as u64 || r.overran() {
                            return Err(ScanError("stored block runs past the end"));
                        }
                        r.next = at as usize;
                        r.buf = 0;
                        r.count = 0;
                    }
                    1 => {
                        let (ll, d) = (&self.fixed_litlen, &self.fixed_dist);
                        Self::symbols(&mut r, ll, d)?;
                    }
                    2 => {
                        self.read_dynamic_header(&mut r)?;
                        Self::symbols(&mut r, &self.litlen, &self.dist)?;
                    }
                    _ => return Err(ScanError("reserved block type")),
                }
                if r.overran() {
                    return Err(ScanError("stream runs past the end"));
                }
                if bfinal == 1 {
                    let end = r.pos();
                    if end.div_ceil(8) != data.len() as u64 {
                        return Err(ScanError("bytes after the final block"));
                    }
                    return Ok(Ends {
                        last_header_bit: header,
                        end_bit: end,
                    });
                }
            }
        }

        fn read_dynamic_header(&mut self, r: &mut Bits) -> Result<(), ScanError> {
            let hlit = r.take(5) as usize + 257;
            let hdist = r.take(5) as usize + 1;
            let hclen = r.take(4) as usize + 4;
            if hlit > 286 || hdist > 30 {
                return Err(ScanError("too many length or distance codes"));
            }
            let mut cl_lens = [0u8; 19];
            for &i in &CL_ORDER[..hclen] {
                r.refill();
                cl_lens[i] = r.take(3) as u8;
            }
            self.cl.build(&cl_lens, |sym| (sym as u32) << KIND_SHIFT)?;
            // The code-length code is at most 7 bits: the table resolves every valid code.
            let lens = &mut self.lens;
            lens.clear();
            while lens.len() < hlit + hdist {
                r.refill();
                let e = self.cl.table[(r.buf & 0x7f) as usize];
                if e == 0 {
                    return Err(ScanError("invalid code-length code"));
                }
                r.consume(e & 0xff);
                let sym = e >> KIND_SHIFT;
                let (value, repeat) = match sym {
                    0..=15 => (sym as u8, 1),
                    16 => {
                        let &prev = lens.last().ok_or(ScanError("repeat with no length"))?;
                        (prev, 3 + r.take(2) as usize)
                    }
                    17 => (0, 3 + r.take(3) as usize),
                    _ => (0, 11 + r.take(7) as usize),
                };
                if lens.len() + repeat > hlit + hdist {
                    return Err(ScanError("code lengths overrun"));
                }
                lens.extend(std::iter::repeat_n(value, repeat));
            }
            if lens[256] == 0 {
                return Err(ScanError("no end-of-block code"));
            }
            self.litlen.build(&lens[..hlit], litlen_value)?;
            self.dist.build(&lens[hlit..], dist_value)?;
            Ok(())
        }

        /// Skips the symbols of one Huffman block, up to and including its end-of-block code.
        #[inline(always)]
        fn symbols(r: &mut Bits, litlen: &Code, dist: &Code) -> Result<(), ScanError> {
            let lmask = (1u64 << litlen.bits) - 1;
            let dmask = (1u64 << dist.bits) - 1;
            let end = r.data.len();
            loop {
                // 56 bits buffered: enough for three literals (15 bits each at most), or for a
                // length (15 + 5) and its distance (15 + 13).
                r.refill();
                let mut e = litlen.table[(r.buf & lmask) as usize];
                if e >> KIND_SHIFT == K_LITERAL {
                    r.consume(e & 0xff);
                    e = litlen.table[(r.buf & lmask) as usize];
                    if e >> KIND_SHIFT == K_LITERAL {
                        r.consume(e & 0xff);
                        e = litlen.table[(r.buf & lmask) as usize];
                        if e >> KIND_SHIFT == K_LITERAL {
                            r.consume(e & 0xff);
                            if r.next > end && r.overran() {
                                return Err(ScanError("stream runs past the end"));
                            }
                            continue;
                        }
                    }
                    // Literals were consumed: make room for a length and a distance.
                    r.refill();
                }
                if e == 0 {
                    e = litlen.slow(r.buf)?;
                }
                r.consume(e & 0xff);
                match e >> KIND_SHIFT {
                    K_LITERAL => {}
                    K_LENGTH => {
                        let mut d = dist.table[(r.buf & dmask) as usize];
                        if d == 0 {
                            d = dist.slow(r.buf)?;
                        }
                        if d >> KIND_SHIFT != K_DIST {
                            return Err(ScanError("invalid distance symbol"));
                        }
                        r.consume(d & 0xff);
                    }
                    K_END => return Ok(()),
                    _ => return Err(ScanError("invalid literal/length symbol")),
                }
                if r.next > end && r.overran() {
                    return Err(ScanError("stream runs past the end"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Text-like runs, pseudo-random bytes and zeros, so that libdeflate picks dynamic,
    /// static and stored blocks.
    fn sample(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match (i / 3000 + seed as usize) % 4 {
                    0 => b"a piece of the layer "[i % 21],
                    1 | 2 => x as u8,
                    _ => 0,
                }
            })
            .collect()
    }

    /// libdeflate's reported final block is where the walker finds it, and the pieces
    /// made from it decode (the check passes), at every level and for inputs that make
    /// stored-only, tiny (passthrough) and multi-block streams.
    fn reported_matches_walk(data: &[u8], level: u32) {
        let mut m = PieceMaker::new(level).unwrap();
        let mut out = Vec::new();
        m.compress_whole(data, &mut out).unwrap();
        let reported = m.ends(&out).unwrap();
        let walked = walk::Scanner::new().scan(&out).unwrap();
        assert_eq!(reported, walked, "level {level}, {} bytes", data.len());
        for last in [false, true] {
            let mut piece = Vec::new();
            m.compress(data, last, &mut piece).unwrap();
            let before = piece.clone();
            m.check(&mut piece, last, data).unwrap();
            assert!(piece == before, "the check leaves the piece as it was");
        }
    }

    #[test]
    fn reported_final_block_is_the_walked_one() {
        for level in 1..=12 {
            for (n, seed) in [
                (0, 1),
                (1, 1),
                (30, 2),
                (60, 3),
                (65_535, 5),
                (65_536, 5),
                (200_000, 5),
                (1 << 20, 1),
                (1 << 20, 2),
                (1 << 20, 3),
            ] {
                reported_matches_walk(&sample(n, seed), level);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn reported_final_block_is_the_walked_one_for_any_input(
            data in proptest::collection::vec(
                prop_oneof![Just(0u8), Just(b'a'), any::<u8>()], 0..40_000),
            level in 1u32..=12,
        ) {
            reported_matches_walk(&data, level);
        }
    }

    /// A piece whose final block is left final, or whose wrong bit was cleared, fails the
    /// check: a decoder must not stop before the piece's end.
    #[test]
    fn a_wrong_splice_fails_the_check() {
        let data = sample(300_000, 4);
        let mut m = PieceMaker::new(5).unwrap();
        let mut out = Vec::new();
        m.compress_whole(&data, &mut out).unwrap();
        let ends = m.ends(&out).unwrap();
        let mut piece = out.clone();
        make_continuable(&mut piece, ends).unwrap();
        m.check(&mut piece, false, &data).unwrap();
        // BFINAL still set: a decoder stops there, before the sync marker.
        let bit = ends.last_header_bit as usize;
        piece[bit / 8] |= 1 << (bit % 8);
        assert!(m.check(&mut piece, false, &data).is_err());
        // BTYPE's first bit cleared instead of BFINAL.
        let wrong = Ends {
            last_header_bit: ends.last_header_bit + 1,
            ..ends
        };
        let mut piece = out.clone();
        make_continuable(&mut piece, wrong).unwrap();
        assert!(m.check(&mut piece, false, &data).is_err());
    }
}
