//! Files under `--data-dir` that survive a crash or a power loss: a record is written to a
//! temporary file of its own, flushed to the disk, renamed over the old one, and the directory
//! is flushed so that the rename is on the disk too. Errors name the path, because "File
//! exists (os error 17)" alone does not say which of the data directory's entries is wrong.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

/// An error that says which path it is about.
pub(crate) fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Creates `dir` (and its parents) or says why it cannot be a directory.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if dir.exists() && !dir.is_dir() => Err(io::Error::new(
            e.kind(),
            format!("{} is a file, but the emulator keeps a directory there; move the file away", dir.display()),
        )),
        Err(e) => Err(at(dir, e)),
    }
}

/// The entries of `dir`, with the path in the error.
pub(crate) fn read_dir(dir: &Path) -> io::Result<fs::ReadDir> {
    fs::read_dir(dir).map_err(|e| at(dir, e))
}

/// A temporary name next to `path`, unique to this write (`<name>.<random>.partial`); start-up
/// removes the ones a crash left.
pub(crate) fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{:016x}.partial", fastrand::u64(..)));
    path.with_file_name(name)
}

/// Replaces `path` by `bytes` atomically and durably.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temporary(path);
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()
    })();
    let renamed = written.and_then(|()| commit(&tmp, path));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed.map_err(|e| at(path, e))
}

/// Renames a flushed temporary file over `path` and flushes the directory.
pub(crate) fn commit(tmp: &Path, path: &Path) -> io::Result<()> {
    fs::rename(tmp, path)?;
    sync_parent(path)
}

/// Flushes the directory holding `path`, so a rename or a removal in it is on the disk.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_writes_whole_files_and_errors_name_the_path() {
        let dir = std::env::temp_dir().join(format!("ycml-durable-{}", fastrand::u64(..)));
        create_dir(&dir).unwrap();
        let record = dir.join("a.pb");
        replace(&record, b"one").unwrap();
        replace(&record, b"two").unwrap();
        assert_eq!(fs::read(&record).unwrap(), b"two");
        assert_eq!(read_dir(&dir).unwrap().count(), 1, "no temporary file is left");

        let file = dir.join("blobs");
        fs::write(&file, b"not a directory").unwrap();
        let e = create_dir(&file).unwrap_err().to_string();
        assert!(e.contains("blobs is a file") && e.contains("move the file away"), "{e}");
        let e = read_dir(&dir.join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
