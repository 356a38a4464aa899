//! Blob access that trusts nothing: opened beneath the layout (or streamed from wherever
//! else an image's blobs are, [`Blobs`]), checked for type and size, and read through
//! [`Verified`], which withholds the last bytes of content whose digest is wrong. A JSON blob
//! is read whole only up to [`MAX_JSON`] bytes, and only if it has exactly its declared size
//! and digest ([`OpenedBlob::read_whole`]).

use std::io::{self, Read};
use std::sync::Arc;

use crate::digest::{Digest, Hasher};
use crate::spec::Descriptor;
use crate::store::root::{OpenError, Opened, Root};

/// The largest JSON document read (`oci-layout`, `index.json`, descriptor files, manifests,
/// configs): the size registries accept for manifests, per the OCI distribution spec.
pub const MAX_JSON: u64 = 4 * 1024 * 1024;

/// A blob opened beneath a layout: a regular file of exactly the declared size.
#[derive(Debug)]
pub struct OpenedBlob {
    /// The blob's path relative to the layout (`blobs/sha256/…`).
    pub path: String,
    /// The open file and the symlinks followed to reach it.
    pub opened: Opened,
}

/// Why a blob could not be opened.
#[derive(Debug)]
pub enum BlobError {
    /// The descriptor's size is negative.
    NegativeSize(i64),
    /// Opening failed.
    Open(OpenError),
    /// The file has another size than the descriptor says.
    Size {
        /// The file's size.
        actual: u64,
        /// The declared size.
        declared: u64,
    },
}

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobError::NegativeSize(n) => write!(f, "the descriptor's size {n} is negative"),
            BlobError::Open(OpenError::NotFound) => f.write_str("is missing"),
            BlobError::Open(e) => e.fmt(f),
            BlobError::Size { actual, declared } => {
                write!(
                    f,
                    "{actual} bytes, but its descriptor declares size {declared}"
                )
            }
        }
    }
}

/// Opens the blob of `d` beneath `root`: through [`Root`] (never outside the layout, never a
/// FIFO), and only if it is a regular file of the declared size.
pub fn open_blob(root: &Root, d: &Descriptor) -> Result<OpenedBlob, BlobError> {
    let declared = u64::try_from(d.size).map_err(|_| BlobError::NegativeSize(d.size))?;
    let path = d.digest.blob_path();
    let opened = root.open_file(&path).map_err(BlobError::Open)?;
    if opened.size != declared {
        return Err(BlobError::Size {
            actual: opened.size,
            declared,
        });
    }
    Ok(OpenedBlob { path, opened })
}

/// Why a blob's bytes could not be read whole.
#[derive(Debug)]
pub enum ReadError {
    /// Reading failed.
    Io(io::Error),
    /// The file had another size when it was read than when it was opened.
    ChangedSize,
    /// The bytes hash to this digest, not to the descriptor's.
    Digest(Digest),
}

impl OpenedBlob {
    /// The blob's content, verified while it is read.
    pub fn verified(self, d: &Descriptor, what: String) -> Verified<BlobReader> {
        Verified::new(
            BlobReader(Box::new(self.opened.file)),
            d.digest.clone(),
            self.opened.size,
            what,
        )
    }

    /// The blob's bytes, read whole: exactly the declared size of `d` (the file was opened
    /// at that size; at most one byte more is read) and hashing to its digest. The caller
    /// bounds the size first (a JSON blob: [`MAX_JSON`]).
    pub fn read_whole(self, d: &Descriptor) -> Result<Vec<u8>, ReadError> {
        let mut bytes = Vec::new();
        self.opened
            .file
            .take(self.opened.size + 1)
            .read_to_end(&mut bytes)
            .map_err(ReadError::Io)?;
        if bytes.len() as u64 != self.opened.size {
            return Err(ReadError::ChangedSize);
        }
        let mut h = Hasher::new(d.digest.algorithm());
        h.update(&bytes);
        let actual = h.finish();
        if actual != d.digest {
            return Err(ReadError::Digest(actual));
        }
        Ok(bytes)
    }
}

/// A blob's content as its source hands it out: a file beneath a layout, or a stream from
/// a registry. Read it through [`Verified`] ([`crate::image::Image::open_blob`]), never on
/// its own.
pub struct BlobReader(Box<dyn Read + Send>);

impl BlobReader {
    /// A reader of `inner`.
    pub fn new(inner: Box<dyn Read + Send>) -> BlobReader {
        BlobReader(inner)
    }
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobReader")
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// Blobs that are not files of a layout: a registry's repository. The image model reads
/// them through this, not knowing where they come from (the registry client lives above
/// the model and implements it).
pub trait RemoteBlobs: Send + Sync {
    /// Opens the blob `d` describes for streaming. The content is checked by the caller
    /// ([`Verified`]), not here; an error names the source, the blob and why.
    fn open(&self, d: &Descriptor) -> crate::error::Result<Box<dyn Read + Send>>;
    /// The source as messages name it (`docker://host/repository`).
    fn name(&self) -> String;
}

/// Where an image's blobs are.
#[derive(Clone)]
pub enum Blobs {
    /// Files beneath a layout directory (`blobs/<algorithm>/<hex>`).
    Layout(Root),
    /// A registry's repository, read as a stream.
    Remote(Arc<dyn RemoteBlobs>),
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blobs::Layout(r) => f.debug_tuple("Layout").field(r).finish(),
            Blobs::Remote(r) => f.debug_tuple("Remote").field(&r.name()).finish(),
        }
    }
}

impl Blobs {
    /// The layout directory, for blobs in one.
    pub fn layout(&self) -> Option<&Root> {
        match self {
            Blobs::Layout(r) => Some(r),
            Blobs::Remote(_) => None,
        }
    }

    /// The source as messages name it: the layout's path, or the registry reference.
    pub fn shown(&self) -> String {
        match self {
            Blobs::Layout(r) => crate::show::path(r.path()),
            Blobs::Remote(r) => r.name(),
        }
    }
}

/// A reader that yields exactly `size` bytes of `inner` and checks they hash to `expected`.
///
/// The check happens before the last bytes are returned: content that is shorter, longer
/// or different makes the final `read` fail instead, so whatever consumes the stream never
/// finishes with wrong bytes.
pub struct Verified<R> {
    inner: R,
    expected: Digest,
    size: u64,
    hasher: Hasher,
    what: String,
    checked: bool,
}

impl<R: Read> Verified<R> {
    /// Wraps `inner`, which must yield `size` bytes hashing to `expected`; `what` names the
    /// content in errors.
    pub fn new(inner: R, expected: Digest, size: u64, what: String) -> Self {
        let hasher = Hasher::new(expected.algorithm());
        Verified {
            inner,
            expected,
            size,
            hasher,
            what,
            checked: false,
        }
    }

    /// Bytes handed out so far.
    pub fn position(&self) -> u64 {
        self.hasher.len()
    }

    /// The expected size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The content's name, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    fn fail(&self, kind: io::ErrorKind, why: String) -> io::Error {
        io::Error::new(kind, format!("{}: {why}", self.what))
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size - self.hasher.len();
        if left == 0 {
            self.check()?;
            return Ok(0);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(self.fail(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "ends after {} bytes, expected {}",
                    self.hasher.len(),
                    self.size
                ),
            ));
        }
        self.hasher.update(&buf[..n]);
        if self.hasher.len() == self.size {
            self.check()?;
        }
        Ok(n)
    }
}

impl<R: Read> Verified<R> {
    /// Checks, once all `size` bytes were read, that nothing follows and that the digest
    /// matches; an error if fewer bytes were read. Reading to the end does it implicitly.
    pub fn check(&mut self) -> io::Result<()> {
        if self.checked {
            return Ok(());
        }
        if self.hasher.len() != self.size {
            return Err(self.fail(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "only {} of {} bytes were read",
                    self.hasher.len(),
                    self.size
                ),
            ));
        }
        let mut probe = [0u8; 1];
        if self.inner.read(&mut probe)? != 0 {
            return Err(self.fail(
                io::ErrorKind::InvalidData,
                format!("is longer than the expected {} bytes", self.size),
            ));
        }
        let got = self.hasher.clone().finish();
        if got != self.expected {
            return Err(self.fail(
                io::ErrorKind::InvalidData,
                format!("content hashes to {got}, expected {}", self.expected),
            ));
        }
        self.checked = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut r: impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            match r.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn verified_passes_exact_content() {
        let data = b"hello, world";
        let v = Verified::new(&data[..], Digest::sha256_of(data), 12, "x".into());
        assert_eq!(drain(v).unwrap(), data);
    }

    #[test]
    fn verified_withholds_the_end_of_wrong_content() {
        let good = Digest::sha256_of(b"hello, world");
        let mut v = Verified::new(&b"hello, WORLD"[..], good.clone(), 12, "blob".into());
        let mut buf = [0u8; 8];
        assert_eq!(v.read(&mut buf).unwrap(), 8);
        let e = v.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("blob: content hashes to"), "{e}");

        let e = drain(Verified::new(&b"hello"[..], good.clone(), 12, "b".into())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = drain(Verified::new(&b"hello, world!"[..], good, 12, "b".into())).unwrap_err();
        assert!(e.to_string().contains("longer"), "{e}");
        // An empty blob is checked too.
        let e = drain(Verified::new(
            &b""[..],
            Digest::sha256_of(b"x"),
            0,
            "b".into(),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("hashes to"), "{e}");
        let mut v = Verified::new(&b""[..], Digest::sha256_of(b""), 0, "b".into());
        v.check().unwrap();
    }
}
