//! The bytes behind dataset files: in memory as the chunks they arrived in (joining parts or
//! serving a file never copies them), or as files under the data directory.

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

/// Where blobs are kept. Keys are `upload/<dataset>`, `upload/<dataset>/<part>` and
/// `data/<dataset>/<file>`, built only from ids the emulator issued.
pub(crate) enum Blobs {
    Memory(Mutex<HashMap<String, Chunks>>),
    Dir(PathBuf),
}

fn lock(m: &Mutex<HashMap<String, Chunks>>) -> MutexGuard<'_, HashMap<String, Chunks>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Blobs {
    /// Blobs in memory, or in `dir/blobs`.
    pub(crate) fn new(dir: Option<&Path>) -> io::Result<Blobs> {
        match dir {
            Some(dir) => {
                let dir = dir.join("blobs");
                std::fs::create_dir_all(&dir)?;
                Ok(Blobs::Dir(dir))
            }
            None => Ok(Blobs::Memory(Mutex::default())),
        }
    }

    fn path(dir: &Path, key: &str) -> PathBuf {
        dir.join(key.replace('/', "."))
    }

    /// Starts writing `key`; the blob appears only when the writer is committed.
    pub(crate) async fn writer(&self, key: &str) -> io::Result<BlobWriter> {
        Ok(match self {
            Blobs::Memory(_) => BlobWriter::Memory { key: key.to_owned(), chunks: Vec::new(), len: 0 },
            Blobs::Dir(dir) => {
                let tmp = Self::path(dir, &format!("{key}.partial"));
                let file = tokio::fs::File::create(&tmp).await?;
                BlobWriter::File { file: tokio::io::BufWriter::with_capacity(1 << 20, file), tmp, len: 0 }
            }
        })
    }

    /// Stores a finished writer under its key.
    pub(crate) async fn commit(&self, writer: BlobWriter, key: &str) -> io::Result<u64> {
        match (self, writer) {
            (Blobs::Memory(m), BlobWriter::Memory { chunks, len, .. }) => {
                lock(m).insert(key.to_owned(), Arc::new(chunks));
                Ok(len)
            }
            (Blobs::Dir(dir), BlobWriter::File { mut file, tmp, len }) => {
                file.flush().await?;
                file.into_inner().sync_data().await?;
                tokio::fs::rename(tmp, Self::path(dir, key)).await?;
                Ok(len)
            }
            _ => Err(io::Error::other("a blob writer of another store")),
        }
    }

    /// A blocking writer for a file produced on a blocking thread (a parquet file): straight to
    /// disk with a data directory, so its size never sits in memory there.
    pub(crate) fn sync_writer(&self, key: &str) -> io::Result<SyncBlobWriter> {
        Ok(match self {
            Blobs::Memory(_) => SyncBlobWriter::Memory(Vec::new()),
            Blobs::Dir(dir) => {
                let tmp = Self::path(dir, &format!("{key}.partial"));
                SyncBlobWriter::File(io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?), tmp)
            }
        })
    }

    /// Stores a finished blocking writer under `key`; returns the size.
    pub(crate) fn commit_sync(&self, writer: SyncBlobWriter, key: &str) -> io::Result<u64> {
        match (self, writer) {
            (Blobs::Memory(m), SyncBlobWriter::Memory(bytes)) => {
                let len = bytes.len() as u64;
                lock(m).insert(key.to_owned(), Arc::new(vec![Bytes::from(bytes)]));
                Ok(len)
            }
            (Blobs::Dir(dir), SyncBlobWriter::File(file, tmp)) => {
                let file = file.into_inner().map_err(|e| e.into_error())?;
                file.sync_data()?;
                let len = file.metadata()?.len();
                std::fs::rename(tmp, Self::path(dir, key))?;
                Ok(len)
            }
            _ => Err(io::Error::other("a blob writer of another store")),
        }
    }

    /// The size of a blob, if it exists.
    pub(crate) fn len(&self, key: &str) -> Option<u64> {
        match self {
            Blobs::Memory(m) => lock(m).get(key).map(|c| c.iter().map(|b| b.len() as u64).sum()),
            Blobs::Dir(dir) => std::fs::metadata(Self::path(dir, key)).ok().map(|m| m.len()),
        }
    }

    /// A blocking reader of a blob (for validation on a blocking thread).
    pub(crate) fn reader(&self, key: &str) -> io::Result<Box<dyn BufRead + Send>> {
        match self {
            Blobs::Memory(m) => {
                let chunks = lock(m).get(key).cloned().ok_or_else(|| missing(key))?;
                Ok(Box::new(ChunkReader { chunks, index: 0, at: 0 }))
            }
            Blobs::Dir(dir) => {
                let file = std::fs::File::open(Self::path(dir, key))?;
                Ok(Box::new(io::BufReader::with_capacity(1 << 20, file)))
            }
        }
    }

    /// A whole blob in one buffer (small files only; blocking).
    pub(crate) fn read_all(&self, key: &str) -> io::Result<Bytes> {
        match self {
            Blobs::Memory(m) => {
                let chunks = lock(m).get(key).cloned().ok_or_else(|| missing(key))?;
                Ok(match chunks.as_slice() {
                    [one] => one.clone(),
                    many => Bytes::from(many.concat()),
                })
            }
            Blobs::Dir(dir) => std::fs::read(Self::path(dir, key)).map(Bytes::from),
        }
    }

    /// A blob as an HTTP body and its length, streamed (never read whole into memory).
    pub(crate) async fn body(&self, key: &str) -> io::Result<Option<(u64, axum::body::Body)>> {
        match self {
            Blobs::Memory(m) => {
                let Some(chunks) = lock(m).get(key).cloned() else { return Ok(None) };
                let len = chunks.iter().map(|b| b.len() as u64).sum();
                let stream =
                    futures_util::stream::iter((0..chunks.len()).map(move |i| Ok::<_, io::Error>(chunks[i].clone())));
                Ok(Some((len, axum::body::Body::from_stream(stream))))
            }
            Blobs::Dir(dir) => match tokio::fs::File::open(Self::path(dir, key)).await {
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

    pub(crate) fn delete(&self, key: &str) {
        match self {
            Blobs::Memory(m) => {
                lock(m).remove(key);
            }
            Blobs::Dir(dir) => {
                let _ = std::fs::remove_file(Self::path(dir, key));
            }
        }
    }

    /// Every blob whose key starts with `prefix` (a dataset's files).
    pub(crate) fn delete_prefix(&self, prefix: &str) {
        match self {
            Blobs::Memory(m) => lock(m).retain(|k, _| !k.starts_with(prefix)),
            Blobs::Dir(dir) => {
                let prefix = prefix.replace('/', ".");
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for entry in entries.flatten() {
                        if entry.file_name().to_string_lossy().starts_with(&prefix) {
                            let _ = std::fs::remove_file(entry.path());
                        }
                    }
                }
            }
        }
    }

    /// Joins blobs into one (the parts of a multipart upload), then removes the pieces.
    pub(crate) async fn concat(&self, target: &str, pieces: &[String]) -> io::Result<u64> {
        match self {
            Blobs::Memory(m) => {
                let mut map = lock(m);
                let mut all = Vec::new();
                for p in pieces {
                    all.extend(map.get(p).ok_or_else(|| missing(p))?.iter().cloned());
                }
                for p in pieces {
                    map.remove(p);
                }
                let len = all.iter().map(|b| b.len() as u64).sum();
                map.insert(target.to_owned(), Arc::new(all));
                Ok(len)
            }
            Blobs::Dir(dir) => {
                let tmp = Self::path(dir, &format!("{target}.partial"));
                let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(&tmp).await?);
                let mut len = 0;
                for p in pieces {
                    let mut f = tokio::fs::File::open(Self::path(dir, p)).await?;
                    len += tokio::io::copy(&mut f, &mut out).await?;
                }
                out.flush().await?;
                out.into_inner().sync_data().await?;
                tokio::fs::rename(tmp, Self::path(dir, target)).await?;
                for p in pieces {
                    let _ = tokio::fs::remove_file(Self::path(dir, p)).await;
                }
                Ok(len)
            }
        }
    }
}

fn missing(key: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no stored file {key}"))
}

/// A blob being written.
pub(crate) enum BlobWriter {
    Memory { key: String, chunks: Vec<Bytes>, len: u64 },
    File { file: tokio::io::BufWriter<tokio::fs::File>, tmp: PathBuf, len: u64 },
}

impl BlobWriter {
    pub(crate) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        match self {
            BlobWriter::Memory { chunks, len, .. } => {
                *len += chunk.len() as u64;
                chunks.push(chunk);
                Ok(())
            }
            BlobWriter::File { file, len, .. } => {
                *len += chunk.len() as u64;
                file.write_all(&chunk).await
            }
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            BlobWriter::Memory { len, .. } | BlobWriter::File { len, .. } => *len,
        }
    }

    /// Throws away what was written (a broken or refused upload).
    pub(crate) async fn discard(self) {
        if let BlobWriter::File { tmp, .. } = self {
            let _ = tokio::fs::remove_file(tmp).await;
        }
    }
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobWriter::Memory { key, len, .. } => write!(f, "BlobWriter::Memory({key}, {len} bytes)"),
            BlobWriter::File { tmp, len, .. } => write!(f, "BlobWriter::File({}, {len} bytes)", tmp.display()),
        }
    }
}

/// A blob being written on a blocking thread.
pub(crate) enum SyncBlobWriter {
    Memory(Vec<u8>),
    File(io::BufWriter<std::fs::File>, PathBuf),
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
            let key = format!("upload/fds1/{}", i + 1);
            let mut w = blobs.writer(&key).await.unwrap();
            w.write(Bytes::from_static(text.as_bytes())).await.unwrap();
            blobs.commit(w, &key).await.unwrap();
            parts.push(key);
        }
        assert_eq!(blobs.concat("upload/fds1", &parts).await.unwrap(), 29);
        assert!(blobs.len("upload/fds1/1").is_none(), "pieces are removed");
        let lines: Vec<String> = blobs.reader("upload/fds1").unwrap().lines().map(Result::unwrap).collect();
        assert_eq!(lines, ["line one", "line two", "line three"]);
        blobs.delete_prefix("upload/fds1");
        assert!(blobs.len("upload/fds1").is_none());
    }

    #[tokio::test]
    async fn blobs_join_and_read_back_in_memory_and_on_disk() {
        roundtrip(Blobs::new(None).unwrap()).await;
        let dir = std::env::temp_dir().join(format!("ycml-blobs-{}", fastrand::u64(..)));
        roundtrip(Blobs::new(Some(&dir)).unwrap()).await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
