//! The bytes behind dataset files: in memory as the chunks they arrived in (joining parts or
//! serving a file never copies them), or as files under the data directory. Keys are paths of
//! ids the emulator issued and fixed names (`upload/<dataset>/whole`, `upload/<dataset>/part-3`,
//! `data/<dataset>/main`), so one dataset's files sit under one prefix.
//!
//! Everything stored counts against one byte budget, kept as a size per key under one lock, so
//! replacing, deleting and racing writers can never make the count drift. A write reserves its
//! declared size before the first byte is kept; it is written aside (a temporary file) and
//! installed under its key only when the caller says so.

use std::{
    collections::HashMap,
    io::{self, BufRead, Read},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

/// A blob held in memory.
type Chunks = Arc<Vec<Bytes>>;

enum Store {
    Memory(Mutex<HashMap<String, Chunks>>),
    Dir(PathBuf),
}

/// Bytes stored per key, and bytes reserved by writes in progress.
#[derive(Default)]
struct Books {
    sizes: HashMap<String, u64>,
    stored: u64,
    reserved: u64,
}

impl Books {
    fn set(&mut self, key: &str, len: u64) {
        let old = self.sizes.insert(key.to_owned(), len).unwrap_or(0);
        self.stored = self.stored - old + len;
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.sizes.remove(key) {
            self.stored -= old;
        }
    }
}

/// Where blobs are kept, and how many bytes they take.
pub(crate) struct Blobs {
    store: Store,
    books: Arc<Mutex<Books>>,
    limit: u64,
}

/// The budget is spent.
#[derive(Debug)]
pub(crate) struct Full {
    pub limit: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn chunks_len(c: &Chunks) -> u64 {
    c.iter().map(|b| b.len() as u64).sum()
}

/// Every stored file under `dir` with its key; leftovers of interrupted writes are removed.
fn scan(dir: &Path, prefix: &str, books: &mut Books) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        match entry.file_type() {
            Ok(t) if t.is_dir() => scan(&entry.path(), &key, books),
            _ if name.ends_with(".partial") => {
                let _ = std::fs::remove_file(entry.path());
            }
            _ => books.set(&key, entry.metadata().map(|m| m.len()).unwrap_or(0)),
        }
    }
}

impl Blobs {
    /// Blobs in memory, or in `dir/blobs`, holding at most `limit` bytes.
    pub(crate) fn new(dir: Option<&Path>, limit: u64) -> io::Result<Blobs> {
        let mut books = Books::default();
        let store = match dir {
            Some(dir) => {
                let dir = dir.join("blobs");
                crate::durable::create_dir(&dir)?;
                scan(&dir, "", &mut books);
                Store::Dir(dir)
            }
            None => Store::Memory(Mutex::default()),
        };
        Ok(Blobs { store, books: Arc::new(Mutex::new(books)), limit })
    }

    fn path(dir: &Path, key: &str) -> PathBuf {
        dir.join(key)
    }

    /// A temporary name no other writer uses.
    fn temp(dir: &Path, key: &str) -> PathBuf {
        dir.join(format!("{key}.{:016x}.partial", fastrand::u64(..)))
    }

    /// Bytes stored and reserved.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        let books = lock(&self.books);
        books.stored + books.reserved
    }

    /// Starts writing at most `size` bytes meant for `key`: refused at once if they could not
    /// fit now. Bytes are charged to the budget as they arrive, not as declared, so a client
    /// that trickles a large upload holds only what it sent.
    pub(crate) async fn writer(&self, key: &str, size: u64) -> io::Result<Result<BlobWriter, Full>> {
        {
            let books = lock(&self.books);
            if books.stored + books.reserved + size > self.limit {
                return Ok(Err(Full { limit: self.limit }));
            }
        }
        let reservation = Reservation { books: self.books.clone(), bytes: 0, limit: self.limit };
        let target = match &self.store {
            Store::Memory(_) => Target::Memory(Vec::new()),
            Store::Dir(dir) => {
                let tmp = Self::temp(dir, key);
                if let Some(parent) = tmp.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                let file = tokio::fs::File::create(&tmp).await?;
                Target::File(tokio::io::BufWriter::with_capacity(1 << 20, file), TempFile(Some(tmp)))
            }
        };
        Ok(Ok(BlobWriter { target, len: 0, reservation }))
    }

    /// Puts written bytes in place under `key` (replacing what was there) and counts them.
    /// Quick: a rename, or a map insert. Dropping a [`Staged`] instead throws it away.
    /// Bytes written without a reservation (files the emulator makes itself: parquet) are
    /// checked against the budget here and refused when they do not fit.
    pub(crate) fn install(&self, staged: Staged, key: &str) -> io::Result<u64> {
        let Staged { target, len, reservation } = staged;
        let mut books = lock(&self.books);
        let replaced = books.sizes.get(key).copied().unwrap_or(0);
        if reservation.bytes < len && books.stored + books.reserved - replaced + len > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("the emulator's storage is full ({} bytes); delete datasets and retry", self.limit),
            ));
        }
        match (&self.store, target) {
            (Store::Memory(m), StagedTarget::Memory(chunks)) => {
                lock(m).insert(key.to_owned(), Arc::new(chunks));
            }
            (Store::Dir(dir), StagedTarget::File(mut tmp)) => {
                let to = Self::path(dir, key);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                crate::durable::commit(tmp.0.as_ref().ok_or_else(|| io::Error::other("no staged file"))?, &to)?;
                tmp.0 = None;
            }
            _ => return Err(io::Error::other("a blob written for another store")),
        }
        books.set(key, len);
        drop(books);
        drop(reservation);
        Ok(len)
    }

    /// A blocking writer for a file produced on a blocking thread (a parquet file): straight to
    /// disk with a data directory, so its size never sits in memory there.
    pub(crate) fn sync_writer(&self, key: &str) -> io::Result<SyncBlobWriter> {
        Ok(match &self.store {
            Store::Memory(_) => SyncBlobWriter::Memory(Vec::new()),
            Store::Dir(dir) => {
                let tmp = Self::temp(dir, key);
                if let Some(parent) = tmp.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let file = std::fs::File::create(&tmp)?;
                SyncBlobWriter::File(io::BufWriter::with_capacity(1 << 20, file), TempFile(Some(tmp)))
            }
        })
    }

    /// Makes a finished blocking writer durable, ready to [`install`](Self::install)
    /// (blocking).
    pub(crate) fn stage_sync(&self, writer: SyncBlobWriter) -> io::Result<Staged> {
        let reservation = Reservation::none(&self.books);
        Ok(match writer {
            SyncBlobWriter::Memory(bytes) => {
                Staged { len: bytes.len() as u64, target: StagedTarget::Memory(vec![Bytes::from(bytes)]), reservation }
            }
            SyncBlobWriter::File(file, tmp) => {
                let file = file.into_inner().map_err(|e| e.into_error())?;
                file.sync_data()?;
                let len = file.metadata()?.len();
                Staged { len, target: StagedTarget::File(tmp), reservation }
            }
        })
    }

    /// The size of a blob, if it exists.
    pub(crate) fn len(&self, key: &str) -> Option<u64> {
        lock(&self.books).sizes.get(key).copied()
    }

    /// A blocking reader of a blob (for validation on a blocking thread).
    pub(crate) fn reader(&self, key: &str) -> io::Result<Box<dyn BufRead + Send>> {
        match &self.store {
            Store::Memory(m) => {
                let chunks = lock(m).get(key).cloned().ok_or_else(|| missing(key))?;
                Ok(Box::new(ChunkReader { chunks, index: 0, at: 0 }))
            }
            Store::Dir(dir) => {
                let file = std::fs::File::open(Self::path(dir, key))?;
                Ok(Box::new(io::BufReader::with_capacity(1 << 20, file)))
            }
        }
    }

    /// A blob for random access (a parquet reader): the file itself with a data directory, so
    /// it is never read whole into memory there; the bytes in memory otherwise (blocking).
    pub(crate) fn random_access(&self, key: &str) -> io::Result<RandomAccess> {
        match &self.store {
            Store::Memory(_) => self.read_all(key).map(RandomAccess::Bytes),
            Store::Dir(dir) => std::fs::File::open(Self::path(dir, key)).map(RandomAccess::File),
        }
    }

    /// A whole blob in one buffer (blocking).
    pub(crate) fn read_all(&self, key: &str) -> io::Result<Bytes> {
        match &self.store {
            Store::Memory(m) => {
                let chunks = lock(m).get(key).cloned().ok_or_else(|| missing(key))?;
                Ok(match chunks.as_slice() {
                    [one] => one.clone(),
                    many => Bytes::from(many.concat()),
                })
            }
            Store::Dir(dir) => std::fs::read(Self::path(dir, key)).map(Bytes::from),
        }
    }

    /// A blob's length and, as an HTTP body, its bytes from `from` on (none when `from` is
    /// past the end), streamed (never read whole into memory).
    pub(crate) async fn body(&self, key: &str, from: u64) -> io::Result<Option<(u64, axum::body::Body)>> {
        match &self.store {
            Store::Memory(m) => {
                let Some(chunks) = lock(m).get(key).cloned() else { return Ok(None) };
                let len = chunks_len(&chunks);
                let mut skip = from;
                let rest: Vec<Bytes> = chunks
                    .iter()
                    .filter_map(|c| {
                        let n = c.len() as u64;
                        if skip >= n {
                            skip -= n;
                            return None;
                        }
                        let part = c.slice(skip as usize..);
                        skip = 0;
                        Some(part)
                    })
                    .collect();
                let stream = futures_util::stream::iter(rest.into_iter().map(Ok::<_, io::Error>));
                Ok(Some((len, axum::body::Body::from_stream(stream))))
            }
            Store::Dir(dir) => match tokio::fs::File::open(Self::path(dir, key)).await {
                Ok(mut file) => {
                    let len = file.metadata().await?.len();
                    tokio::io::AsyncSeekExt::seek(&mut file, io::SeekFrom::Start(from.min(len))).await?;
                    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10);
                    Ok(Some((len, axum::body::Body::from_stream(stream))))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// Removes one blob (blocking with a data directory).
    pub(crate) fn delete(&self, key: &str) {
        let mut books = lock(&self.books);
        match &self.store {
            Store::Memory(m) => {
                lock(m).remove(key);
            }
            Store::Dir(dir) => {
                let _ = std::fs::remove_file(Self::path(dir, key));
            }
        }
        books.remove(key);
    }

    /// Removes every blob under a directory-like prefix (`upload/<dataset>`); blocking with a
    /// data directory.
    /// The keys that start with `prefix`.
    pub(crate) fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        lock(&self.books).sizes.keys().filter(|k| k.starts_with(prefix)).cloned().collect()
    }

    pub(crate) fn delete_dir(&self, prefix: &str) {
        let mut books = lock(&self.books);
        let doomed: Vec<String> =
            books.sizes.keys().filter(|k| k.starts_with(&format!("{prefix}/"))).cloned().collect();
        match &self.store {
            Store::Memory(m) => {
                let mut map = lock(m);
                for key in &doomed {
                    map.remove(key);
                }
            }
            Store::Dir(dir) => {
                let _ = std::fs::remove_dir_all(Self::path(dir, prefix));
            }
        }
        for key in &doomed {
            books.remove(key);
        }
    }

    /// Joins blobs into one (the parts of a multipart upload), then removes the pieces.
    pub(crate) async fn concat(&self, target: &str, pieces: &[String]) -> io::Result<u64> {
        match &self.store {
            Store::Memory(m) => {
                let mut books = lock(&self.books);
                let mut map = lock(m);
                let mut all = Vec::new();
                for p in pieces {
                    all.extend(map.get(p).ok_or_else(|| missing(p))?.iter().cloned());
                }
                for p in pieces {
                    map.remove(p);
                    books.remove(p);
                }
                let all = Arc::new(all);
                let len = chunks_len(&all);
                map.insert(target.to_owned(), all);
                books.set(target, len);
                Ok(len)
            }
            Store::Dir(dir) => {
                let tmp = TempFile(Some(Self::temp(dir, target)));
                let path = tmp.0.clone().unwrap_or_default();
                let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(&path).await?);
                let mut len = 0;
                for p in pieces {
                    let mut f = tokio::fs::File::open(Self::path(dir, p)).await?;
                    len += tokio::io::copy(&mut f, &mut out).await?;
                }
                out.flush().await?;
                out.into_inner().sync_data().await?;
                let staged =
                    Staged { target: StagedTarget::File(tmp), len, reservation: Reservation::none(&self.books) };
                self.install(staged, target)?;
                for p in pieces {
                    self.delete(p);
                }
                Ok(len)
            }
        }
    }
}

fn missing(key: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no stored file {key}"))
}

/// Bytes set aside in the budget for a write in progress; given back when dropped.
struct Reservation {
    books: Arc<Mutex<Books>>,
    bytes: u64,
    limit: u64,
}

impl Reservation {
    fn none(books: &Arc<Mutex<Books>>) -> Reservation {
        Reservation { books: books.clone(), bytes: 0, limit: u64::MAX }
    }

    /// Charges `bytes` more to the budget, or says the storage is full.
    fn grow(&mut self, bytes: u64) -> io::Result<()> {
        let mut books = lock(&self.books);
        if books.stored + books.reserved + bytes > self.limit {
            return Err(io::Error::new(io::ErrorKind::StorageFull, format!("{} bytes", self.limit)));
        }
        books.reserved += bytes;
        self.bytes += bytes;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            let mut books = lock(&self.books);
            books.reserved = books.reserved.saturating_sub(self.bytes);
        }
    }
}

/// A blob as a parquet reader reads it.
pub(crate) enum RandomAccess {
    Bytes(Bytes),
    File(std::fs::File),
}

/// A temporary file, removed when dropped unless it was renamed into place.
pub(crate) struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

enum Target {
    Memory(Vec<Bytes>),
    File(tokio::io::BufWriter<tokio::fs::File>, TempFile),
}

/// A blob being written; dropping it throws it away.
pub(crate) struct BlobWriter {
    target: Target,
    len: u64,
    reservation: Reservation,
}

impl BlobWriter {
    /// Appends a chunk; `StorageFull` when the budget has no room for it.
    pub(crate) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        self.reservation.grow(chunk.len() as u64)?;
        self.len += chunk.len() as u64;
        match &mut self.target {
            Target::Memory(chunks) => {
                chunks.push(chunk);
                Ok(())
            }
            Target::File(file, _) => file.write_all(&chunk).await,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Makes the written bytes durable, ready to [`install`](Blobs::install).
    pub(crate) async fn finish(self) -> io::Result<Staged> {
        let BlobWriter { target, len, reservation } = self;
        let target = match target {
            Target::Memory(chunks) => StagedTarget::Memory(chunks),
            Target::File(mut file, tmp) => {
                file.flush().await?;
                file.into_inner().sync_data().await?;
                StagedTarget::File(tmp)
            }
        };
        Ok(Staged { target, len, reservation })
    }
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobWriter({} bytes)", self.len)
    }
}

enum StagedTarget {
    Memory(Vec<Bytes>),
    File(TempFile),
}

/// Written bytes waiting to be installed under their key; dropping it throws them away.
pub(crate) struct Staged {
    target: StagedTarget,
    len: u64,
    reservation: Reservation,
}

impl Staged {
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

/// A blob being written on a blocking thread.
pub(crate) enum SyncBlobWriter {
    Memory(Vec<u8>),
    File(io::BufWriter<std::fs::File>, TempFile),
}

impl io::Write for SyncBlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SyncBlobWriter::Memory(v) => io::Write::write(v, buf),
            SyncBlobWriter::File(f, _) => io::Write::write(f, buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SyncBlobWriter::Memory(_) => Ok(()),
            SyncBlobWriter::File(f, _) => io::Write::flush(f),
        }
    }
}

/// Reads chunks as one stream of bytes.
struct ChunkReader {
    chunks: Chunks,
    index: usize,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.index < self.chunks.len() && self.at >= self.chunks[self.index].len() {
            self.index += 1;
            self.at = 0;
        }
        Ok(self.chunks.get(self.index).map_or(&[][..], |c| &c[self.at..]))
    }

    fn consume(&mut self, amount: usize) {
        self.at += amount;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn put(blobs: &Blobs, key: &str, text: &str) -> u64 {
        let mut w = blobs.writer(key, 100).await.unwrap().unwrap();
        w.write(Bytes::copy_from_slice(text.as_bytes())).await.unwrap();
        blobs.install(w.finish().await.unwrap(), key).unwrap()
    }

    async fn roundtrip(blobs: Blobs) {
        let mut parts = Vec::new();
        for (i, text) in ["line one\nli", "ne two\n", "", "line three\n"].iter().enumerate() {
            let key = format!("upload/fds1/part-{}", i + 1);
            put(&blobs, &key, text).await;
            parts.push(key);
        }
        assert_eq!(blobs.used(), 29, "reservations shrink to what was written");
        // Replacing a blob counts the new size only.
        put(&blobs, "upload/fds1/part-3", "").await;
        assert_eq!(blobs.used(), 29);
        assert_eq!(blobs.concat("upload/fds1/whole", &parts).await.unwrap(), 29);
        assert!(blobs.len("upload/fds1/part-1").is_none(), "pieces are removed");
        assert_eq!(blobs.used(), 29);
        let lines: Vec<String> = blobs.reader("upload/fds1/whole").unwrap().lines().map(Result::unwrap).collect();
        assert_eq!(lines, ["line one", "line two", "line three"]);
        // A write dropped before it is installed leaves nothing behind and gives its bytes back.
        let mut dropped = blobs.writer("upload/fds1/part-9", 50).await.unwrap().unwrap();
        dropped.write(Bytes::from_static(b"abandoned")).await.unwrap();
        drop(dropped.finish().await.unwrap());
        assert!(blobs.len("upload/fds1/part-9").is_none());
        assert_eq!(blobs.used(), 29);
        // The budget refuses what does not fit.
        assert!(blobs.writer("upload/fds2/whole", 1000).await.unwrap().is_err());
        blobs.delete_dir("upload/fds1");
        assert!(blobs.len("upload/fds1/whole").is_none());
        assert_eq!(blobs.used(), 0);
    }

    #[tokio::test]
    async fn blobs_join_read_back_and_keep_their_budget_in_memory_and_on_disk() {
        roundtrip(Blobs::new(None, 200).unwrap()).await;
        let dir = std::env::temp_dir().join(format!("ycml-blobs-{}", fastrand::u64(..)));
        roundtrip(Blobs::new(Some(&dir), 200).unwrap()).await;
        assert!(!dir.join("blobs/upload/fds1").exists(), "the dataset's folder is gone");
        // What a restart finds: stored files counted, leftovers of interrupted writes removed.
        let blobs = Blobs::new(Some(&dir), 200).unwrap();
        put(&blobs, "data/fds3/main", "parquet").await;
        std::fs::write(dir.join("blobs/data/fds3/main.0000.partial"), b"half").unwrap();
        let again = Blobs::new(Some(&dir), 200).unwrap();
        assert_eq!((again.used(), again.len("data/fds3/main")), (7, Some(7)));
        assert!(!dir.join("blobs/data/fds3/main.0000.partial").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
