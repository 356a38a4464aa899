//! Decompression, in one place: of layer streams (plain, gzip or zstd, [`Compression`]),
//! and of input archives (`--tar`, `[[input]] tar`), which may also be xz or bzip2
//! ([`InputCompression`]). The format is judged from the first bytes, never from a name.
//!
//! Why here: the entry list reads input archives with these decoders, and `verify`,
//! `export` and the layer encoders' own check read layers with the same ones; the layer
//! module, which encodes, sits above this one.
//!
//! Layers are only ever tar, gzip or zstd; xz and bzip2 exist here, for reading what others
//! publish (Debian's and Ubuntu's root filesystems are `.tar.xz`), and nowhere else: `verify`
//! still refuses a layer in any other format.
//!
//! Every decoder reads the whole input, as the `gzip`, `zstd`, `xz` and `bzip2` commands
//! do: concatenated gzip members, zstd frames, xz streams (with stream padding) and bzip2
//! streams are all decoded, never silently only the first. For input archives
//! ([`input_reader`]), a truncated or corrupt stream, or bytes after the last stream that
//! start no new one, are an error explained in one line. Memory is bounded: an xz block
//! whose dictionary would need more than [`XZ_MEMORY_LIMIT`] is refused before anything is
//! allocated for it; bzip2 needs under 4 MiB by its design.

use std::fmt;
use std::io::{self, BufRead, Read};

use crate::media::Compression;

/// Most memory an xz block may need to be decoded: 128 MiB. xz's presets use dictionaries of
/// at most 64 MiB (`xz -9`, which needs 65 MiB to decode), so every xz file made with a
/// preset fits with room to spare, and only custom `--lzma2=dict=` settings over about
/// 127 MiB are refused. The dictionary holds up to that much decoded data in memory, so the
/// limit is also the most one input's decoding holds, half of the 256 MiB peak the layer
/// encoders keep under. (xz allows dictionaries up to 1.5 GiB.)
pub const XZ_MEMORY_LIMIT: u32 = 128 * 1024 * 1024;

/// The compression of an input archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputCompression {
    /// A plain tar.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
    /// xz (one or more streams).
    Xz,
    /// bzip2 (one or more streams).
    Bzip2,
}

impl fmt::Display for InputCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputCompression::None => "tar",
            InputCompression::Gzip => "gzip",
            InputCompression::Zstd => "zstd",
            InputCompression::Xz => "xz",
            InputCompression::Bzip2 => "bzip2",
        })
    }
}

/// The xz stream header magic.
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
/// A bzip2 stream's first block starts with these 48 bits (the digits of pi) ...
const BZIP2_BLOCK: [u8; 6] = [0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
/// ... and an empty stream's end-of-stream marker with these (the square root of pi).
const BZIP2_END: [u8; 6] = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90];

/// Which compression a layer stream uses, judged from its first bytes: gzip (`1f 8b`),
/// zstd (`28 b5 2f fd`), or else none.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `r` in the decoder its first bytes call for (gzip, zstd or none).
pub fn decompressing_reader<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let kind = sniff(r.fill_buf()?);
    decoder(r, kind)
}

/// Wraps `r` in the decoder for `compression`. gzip members are read to the end of the
/// stream (concatenated members, as `gzip -d` does), and so are zstd frames.
pub fn decoder<'a, R: BufRead + 'a>(
    r: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::None => Box::new(r),
    })
}

/// Which compression an input archive uses, judged from its first bytes. bzip2's magic
/// (`BZh` and a level digit) is printable, so a plain tar whose first name began with
/// `BZh9` would match it: the block or end-of-stream marker after it is checked too.
pub fn sniff_input(head: &[u8]) -> InputCompression {
    if head.starts_with(&XZ_MAGIC) {
        return InputCompression::Xz;
    }
    if head.len() >= 10
        && head.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&head[3])
        && (head[4..10] == BZIP2_BLOCK || head[4..10] == BZIP2_END)
    {
        return InputCompression::Bzip2;
    }
    match sniff(head) {
        Compression::None => InputCompression::None,
        Compression::Gzip => InputCompression::Gzip,
        Compression::Zstd => InputCompression::Zstd,
    }
}

/// Wraps `r` in the decoder its first bytes call for; returns the compression found too.
/// Errors of the decoders are explained in one line naming the format (truncated, corrupt,
/// needing too much memory); errors reading `r` itself are passed on unchanged.
pub fn input_reader<'a, R: BufRead + 'a>(
    r: R,
) -> io::Result<(InputCompression, Box<dyn Read + 'a>)> {
    let mut r = SourceReader(r);
    let kind = sniff_input(r.fill_buf()?);
    let inner: Box<dyn Read + 'a> = match kind {
        InputCompression::None => return Ok((kind, Box::new(r))),
        InputCompression::Gzip => decoder(r, Compression::Gzip)?,
        InputCompression::Zstd => decoder(r, Compression::Zstd)?,
        InputCompression::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
            r,
            true,
            XZ_MEMORY_LIMIT / 1024,
        )),
        InputCompression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
    };
    Ok((kind, Box::new(Explained { inner, kind })))
}

/// An error reading the input file itself (not a decoding error), marked so that it is not
/// mistaken for corrupt data.
#[derive(Debug)]
struct SourceError(io::Error);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {}

/// The input as the decoders see it: its read errors carry a [`SourceError`].
struct SourceReader<R>(R);

impl<R> SourceReader<R> {
    fn mark(e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::Interrupted {
            return e;
        }
        io::Error::new(e.kind(), SourceError(e))
    }
}

impl<R: BufRead> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(Self::mark)
    }
}

impl<R: BufRead> BufRead for SourceReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.0.fill_buf().map_err(Self::mark)
    }

    fn consume(&mut self, amt: usize) {
        self.0.consume(amt)
    }
}

/// A decoder whose errors say what they mean.
struct Explained<'a> {
    inner: Box<dyn Read + 'a>,
    kind: InputCompression,
}

impl Read for Explained<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| explain(self.kind, e))
    }
}

/// One line for a decoding error of `kind`.
fn explain(kind: InputCompression, e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::Interrupted {
        return e;
    }
    if let Some(source) = e.get_ref().and_then(|s| s.downcast_ref::<SourceError>()) {
        return io::Error::new(source.0.kind(), source.0.to_string());
    }
    let message = match e.kind() {
        io::ErrorKind::OutOfMemory if kind == InputCompression::Xz => format!(
            "the xz data needs more than the {} MiB of memory ocipack allows for decompressing \
             it (a dictionary larger than any xz preset's; xz -9 needs 65 MiB): recompress it \
             with a preset, e.g. xz -9",
            XZ_MEMORY_LIMIT >> 20
        ),
        io::ErrorKind::UnexpectedEof => {
            format!("the {kind} data is truncated: it ends before its stream does")
        }
        _ => format!("the {kind} data is corrupt ({e})"),
    };
    io::Error::new(e.kind(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_format_from_its_bytes() {
        assert_eq!(sniff_input(&XZ_MAGIC), InputCompression::Xz);
        assert_eq!(sniff_input(b"BZh91AY&SYxxxx"), InputCompression::Bzip2);
        assert_eq!(
            sniff_input(b"BZh1\x17\x72\x45\x38\x50\x90\0\0\0\0"),
            InputCompression::Bzip2
        );
        // A plain tar whose first entry is named BZh9... is still a plain tar.
        let mut tar = vec![0u8; 512];
        tar[..8].copy_from_slice(b"BZh9file");
        assert_eq!(sniff_input(&tar), InputCompression::None);
        assert_eq!(sniff_input(&[0x1f, 0x8b, 8, 0]), InputCompression::Gzip);
        assert_eq!(
            sniff_input(&[0x28, 0xb5, 0x2f, 0xfd]),
            InputCompression::Zstd
        );
        assert_eq!(sniff_input(b""), InputCompression::None);
        assert_eq!(sniff_input(&XZ_MAGIC[..5]), InputCompression::None);
    }

    #[test]
    fn a_read_error_of_the_input_is_not_called_corrupt_data() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("the disk failed"))
            }
        }
        let mut head = XZ_MAGIC.to_vec();
        head.extend_from_slice(&[0, 4]);
        let r = io::BufReader::with_capacity(8, head.as_slice().chain(Failing));
        let (kind, mut d) = input_reader(r).unwrap();
        assert_eq!(kind, InputCompression::Xz);
        let e = d.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "the disk failed");
    }
}
