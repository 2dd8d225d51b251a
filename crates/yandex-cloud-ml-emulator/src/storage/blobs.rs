//! The bytes behind dataset files: in memory as the chunks they arrived in (joining parts or
//! serving a file never copies them), or as files under the data directory. Keys are paths of
//! ids the emulator issued and fixed names (`upload/<dataset>/whole`, `upload/<dataset>/part-3`,
//! `data/<dataset>/main`), so one dataset's files sit under one prefix.
//!
//! Everything stored counts against one byte budget; a write reserves its declared size
//! before the first byte is kept and is refused when the budget is spent.

use std::{
    collections::HashMap,
    io::{self, BufRead, Read},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

/// A blob held in memory.
type Chunks = Arc<Vec<Bytes>>;

enum Store {
    Memory(Mutex<HashMap<String, Chunks>>),
    Dir(PathBuf),
}

/// Where blobs are kept, and how many bytes they take.
pub(crate) struct Blobs {
    store: Store,
    used: Arc<AtomicU64>,
    limit: u64,
}

/// The budget is spent.
#[derive(Debug)]
pub(crate) struct Full {
    pub limit: u64,
}

fn lock(m: &Mutex<HashMap<String, Chunks>>) -> MutexGuard<'_, HashMap<String, Chunks>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn chunks_len(c: &Chunks) -> u64 {
    c.iter().map(|b| b.len() as u64).sum()
}

/// Bytes of every file under `dir`.
fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

impl Blobs {
    /// Blobs in memory, or in `dir/blobs`, holding at most `limit` bytes.
    pub(crate) fn new(dir: Option<&Path>, limit: u64) -> io::Result<Blobs> {
        let (store, used) = match dir {
            Some(dir) => {
                let dir = dir.join("blobs");
                std::fs::create_dir_all(&dir)?;
                let used = disk_usage(&dir);
                (Store::Dir(dir), used)
            }
            None => (Store::Memory(Mutex::default()), 0),
        };
        Ok(Blobs { store, used: Arc::new(AtomicU64::new(used)), limit })
    }

    fn path(dir: &Path, key: &str) -> PathBuf {
        dir.join(key)
    }

    /// A temporary name no other writer uses.
    fn temp(dir: &Path, key: &str) -> PathBuf {
        dir.join(format!("{key}.{:016x}.partial", fastrand::u64(..)))
    }

    fn reserve(&self, bytes: u64) -> Result<Reservation, Full> {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.limit {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return Err(Full { limit: self.limit });
        }
        Ok(Reservation { used: self.used.clone(), bytes })
    }

    /// Starts writing at most `size` bytes to `key`; the blob appears only when the writer is
    /// committed, and is thrown away if the writer is dropped before.
    pub(crate) async fn writer(&self, key: &str, size: u64) -> io::Result<Result<BlobWriter, Full>> {
        let reservation = match self.reserve(size) {
            Ok(r) => r,
            Err(full) => return Ok(Err(full)),
        };
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

    /// Stores a finished writer under `key` (replacing what was there); returns the size.
    pub(crate) async fn commit(&self, writer: BlobWriter, key: &str) -> io::Result<u64> {
        let BlobWriter { target, len, reservation } = writer;
        let old = self.len(key).unwrap_or(0);
        match (&self.store, target) {
            (Store::Memory(m), Target::Memory(chunks)) => {
                lock(m).insert(key.to_owned(), Arc::new(chunks));
            }
            (Store::Dir(dir), Target::File(mut file, mut tmp)) => {
                file.flush().await?;
                file.into_inner().sync_data().await?;
                let from = tmp.0.take().unwrap_or_default();
                tokio::fs::rename(&from, Self::path(dir, key)).await.inspect_err(|_| tmp.0 = Some(from))?;
            }
            _ => return Err(io::Error::other("a blob writer of another store")),
        }
        // The written bytes stay counted; the replaced blob and the unused reservation go.
        reservation.keep(len);
        self.used.fetch_sub(old, Ordering::Relaxed);
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

    /// Stores a finished blocking writer under `key`; returns the size.
    pub(crate) fn commit_sync(&self, writer: SyncBlobWriter, key: &str) -> io::Result<u64> {
        let old = self.len(key).unwrap_or(0);
        let len = match (&self.store, writer) {
            (Store::Memory(m), SyncBlobWriter::Memory(bytes)) => {
                let len = bytes.len() as u64;
                lock(m).insert(key.to_owned(), Arc::new(vec![Bytes::from(bytes)]));
                len
            }
            (Store::Dir(dir), SyncBlobWriter::File(file, mut tmp)) => {
                let file = file.into_inner().map_err(|e| e.into_error())?;
                file.sync_data()?;
                let len = file.metadata()?.len();
                let from = tmp.0.take().unwrap_or_default();
                std::fs::rename(&from, Self::path(dir, key)).inspect_err(|_| tmp.0 = Some(from))?;
                len
            }
            _ => return Err(io::Error::other("a blob writer of another store")),
        };
        self.used.fetch_add(len, Ordering::Relaxed);
        self.used.fetch_sub(old, Ordering::Relaxed);
        Ok(len)
    }

    /// The size of a blob, if it exists.
    pub(crate) fn len(&self, key: &str) -> Option<u64> {
        match &self.store {
            Store::Memory(m) => lock(m).get(key).map(chunks_len),
            Store::Dir(dir) => std::fs::metadata(Self::path(dir, key)).ok().filter(|m| m.is_file()).map(|m| m.len()),
        }
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

    /// A blob as an HTTP body and its length, streamed (never read whole into memory).
    pub(crate) async fn body(&self, key: &str) -> io::Result<Option<(u64, axum::body::Body)>> {
        match &self.store {
            Store::Memory(m) => {
                let Some(chunks) = lock(m).get(key).cloned() else { return Ok(None) };
                let len = chunks_len(&chunks);
                let stream =
                    futures_util::stream::iter((0..chunks.len()).map(move |i| Ok::<_, io::Error>(chunks[i].clone())));
                Ok(Some((len, axum::body::Body::from_stream(stream))))
            }
            Store::Dir(dir) => match tokio::fs::File::open(Self::path(dir, key)).await {
                Ok(file) => {
                    let len = file.metadata().await?.len();
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
        let freed = match &self.store {
            Store::Memory(m) => lock(m).remove(key).map_or(0, |c| chunks_len(&c)),
            Store::Dir(dir) => {
                let path = Self::path(dir, key);
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(&path).is_ok() { len } else { 0 }
            }
        };
        self.used.fetch_sub(freed, Ordering::Relaxed);
    }

    /// Removes every blob under a directory-like prefix (`upload/<dataset>`); blocking with a
    /// data directory.
    pub(crate) fn delete_dir(&self, prefix: &str) {
        let freed = match &self.store {
            Store::Memory(m) => {
                let mut map = lock(m);
                let doomed: Vec<String> =
                    map.keys().filter(|k| k.starts_with(&format!("{prefix}/"))).cloned().collect();
                doomed.iter().filter_map(|k| map.remove(k)).map(|c| chunks_len(&c)).sum()
            }
            Store::Dir(dir) => {
                let path = Self::path(dir, prefix);
                let len = disk_usage(&path);
                if std::fs::remove_dir_all(&path).is_ok() { len } else { 0 }
            }
        };
        self.used.fetch_sub(freed, Ordering::Relaxed);
    }

    /// Joins blobs into one (the parts of a multipart upload), then removes the pieces.
    pub(crate) async fn concat(&self, target: &str, pieces: &[String]) -> io::Result<u64> {
        let len = match &self.store {
            Store::Memory(m) => {
                let mut map = lock(m);
                let mut all = Vec::new();
                for p in pieces {
                    all.extend(map.get(p).ok_or_else(|| missing(p))?.iter().cloned());
                }
                for p in pieces {
                    map.remove(p);
                }
                let all = Arc::new(all);
                let len = chunks_len(&all);
                if let Some(old) = map.insert(target.to_owned(), all) {
                    self.used.fetch_sub(chunks_len(&old), Ordering::Relaxed);
                }
                return Ok(len);
            }
            Store::Dir(dir) => {
                let mut tmp = TempFile(Some(Self::temp(dir, target)));
                let path = tmp.0.clone().unwrap_or_default();
                let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(&path).await?);
                let mut len = 0;
                for p in pieces {
                    let mut f = tokio::fs::File::open(Self::path(dir, p)).await?;
                    len += tokio::io::copy(&mut f, &mut out).await?;
                }
                out.flush().await?;
                out.into_inner().sync_data().await?;
                let old = self.len(target).unwrap_or(0);
                tokio::fs::rename(&path, Self::path(dir, target)).await?;
                tmp.0 = None;
                for p in pieces {
                    let _ = tokio::fs::remove_file(Self::path(dir, p)).await;
                }
                self.used.fetch_sub(old, Ordering::Relaxed);
                len
            }
        };
        Ok(len)
    }
}

fn missing(key: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no stored file {key}"))
}

/// Bytes set aside in the budget; given back when dropped unless kept.
struct Reservation {
    used: Arc<AtomicU64>,
    bytes: u64,
}

impl Reservation {
    /// `actual` bytes stay counted; the rest of the reservation is given back.
    fn keep(mut self, actual: u64) {
        let unused = self.bytes.saturating_sub(actual);
        self.used.fetch_sub(unused, Ordering::Relaxed);
        self.used.fetch_add(actual.saturating_sub(self.bytes), Ordering::Relaxed);
        self.bytes = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
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

/// A blob being written; dropping it before [`Blobs::commit`] throws it away.
pub(crate) struct BlobWriter {
    target: Target,
    len: u64,
    reservation: Reservation,
}

impl BlobWriter {
    pub(crate) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
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
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobWriter({} bytes)", self.len)
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

    async fn roundtrip(blobs: Blobs) {
        let mut parts = Vec::new();
        for (i, text) in ["line one\nli", "ne two\n", "", "line three\n"].iter().enumerate() {
            let key = format!("upload/fds1/part-{}", i + 1);
            let mut w = blobs.writer(&key, 100).await.unwrap().unwrap();
            w.write(Bytes::from_static(text.as_bytes())).await.unwrap();
            blobs.commit(w, &key).await.unwrap();
            parts.push(key);
        }
        assert_eq!(blobs.used.load(Ordering::Relaxed), 29, "reservations shrink to what was written");
        assert_eq!(blobs.concat("upload/fds1/whole", &parts).await.unwrap(), 29);
        assert!(blobs.len("upload/fds1/part-1").is_none(), "pieces are removed");
        let lines: Vec<String> = blobs.reader("upload/fds1/whole").unwrap().lines().map(Result::unwrap).collect();
        assert_eq!(lines, ["line one", "line two", "line three"]);
        // A writer dropped before commit leaves nothing behind and gives its bytes back.
        let mut dropped = blobs.writer("upload/fds1/part-9", 50).await.unwrap().unwrap();
        dropped.write(Bytes::from_static(b"abandoned")).await.unwrap();
        drop(dropped);
        assert!(blobs.len("upload/fds1/part-9").is_none());
        // The budget refuses what does not fit.
        assert!(blobs.writer("upload/fds2/whole", 1000).await.unwrap().is_err());
        blobs.delete_dir("upload/fds1");
        assert!(blobs.len("upload/fds1/whole").is_none());
        assert_eq!(blobs.used.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn blobs_join_read_back_and_keep_their_budget_in_memory_and_on_disk() {
        roundtrip(Blobs::new(None, 200).unwrap()).await;
        let dir = std::env::temp_dir().join(format!("ycml-blobs-{}", fastrand::u64(..)));
        roundtrip(Blobs::new(Some(&dir), 200).unwrap()).await;
        let leftovers: Vec<_> =
            std::fs::read_dir(dir.join("blobs/upload")).map(|d| d.flatten().count()).into_iter().collect();
        assert_eq!(leftovers, vec![0], "no temporary files left");
        let _ = std::fs::remove_dir_all(dir);
    }
}
