//! A local directory laid out exactly like a bucket (`file:///DIR`).
//!
//! Durability as PostgreSQL expects of an archive: every object is written to
//! a hidden temp file in its final directory, fsync'd, then published with
//! `link(2)` (create-if-absent: fails with `EEXIST`, never replaces) or
//! `rename(2)` (overwrite), and the directory is fsync'd. A crash leaves at
//! most a `.barnacle-tmp-*` file, which listings ignore and a later write of
//! the same key replaces. The digest of the uncompressed content is kept in
//! the `user.barnacle.blake3` extended attribute (`user.barnacle.sha256` for
//! objects of earlier builds) where the filesystem has them (it is simply
//! absent elsewhere).
//!
//! The URL's directory plays the bucket: it must exist; everything below it
//! is created on demand.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::PutPayload;

use super::{
    BucketState, DirListing, ListedObject, ObjectInfo, PutAttrs, PutOutcome, Result, StorageError,
    StoredObject, StreamedObject, digest_xattr, recorded_digest,
};
use crate::codec::ContentDigest;

const TEMP_PREFIX: &str = ".barnacle-tmp-";

#[derive(Debug)]
pub(super) struct LocalBackend {
    root: PathBuf,
}

fn local_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| StorageError::Local {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Runs blocking filesystem work off the async executor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StorageError::Local {
            op: "run",
            path: PathBuf::new(),
            source: io::Error::other(e),
        })
    })
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn set_digest(file: &File, digest: &ContentDigest) {
    let Ok(name) = CString::new(digest_xattr(digest.algorithm)) else {
        return;
    };
    let hex = &digest.hex;
    // SAFETY: valid fd, NUL-terminated name, buffer of the given length.
    let rc = unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            hex.as_ptr().cast(),
            hex.len(),
            0,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "no extended attributes here; checksum not stored");
    }
}

/// The digest stored with the file at `path`, if any.
fn get_digest(path: &Path) -> Option<ContentDigest> {
    recorded_digest(|algorithm| get_xattr(path, &digest_xattr(algorithm)))
}

fn get_xattr(path: &Path, name: &str) -> Option<String> {
    let cpath = CString::new(path.as_os_str().as_bytes()).ok()?;
    let name = CString::new(name).ok()?;
    let mut buf = [0u8; 128];
    // SAFETY: valid C strings and a buffer of the given length.
    let n = unsafe {
        libc::getxattr(
            cpath.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return None;
    }
    String::from_utf8(buf[..n as usize].to_vec()).ok()
}

fn temp_name(dir: &Path, name: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{TEMP_PREFIX}{name}.{}.{seq}", std::process::id()))
}

impl LocalBackend {
    pub(super) fn new(root: PathBuf) -> LocalBackend {
        LocalBackend { root }
    }

    pub(super) fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn require_root(&self) -> Result<()> {
        if self.root.is_dir() {
            Ok(())
        } else {
            Err(StorageError::NoSuchBucket {
                bucket: self.root.display().to_string(),
                endpoint: "the local filesystem".to_string(),
            })
        }
    }

    pub(super) async fn put(
        &self,
        key: &str,
        body: PutPayload,
        attrs: &PutAttrs,
        create: bool,
    ) -> Result<PutOutcome> {
        self.require_root()?;
        let path = self.path_of(key);
        let digest = attrs.digest.clone();
        blocking(move || {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            fs::create_dir_all(&dir).map_err(local_err("create directory", &dir))?;
            let tmp = temp_name(&dir, &name);
            let result = (|| {
                let mut f = File::create(&tmp).map_err(local_err("create", &tmp))?;
                for chunk in &body {
                    f.write_all(chunk).map_err(local_err("write", &tmp))?;
                }
                if let Some(digest) = &digest {
                    set_digest(&f, digest);
                }
                f.sync_all().map_err(local_err("fsync", &tmp))?;
                let outcome = if create {
                    match fs::hard_link(&tmp, &path) {
                        Ok(()) => PutOutcome::Created,
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            PutOutcome::AlreadyExists
                        }
                        Err(e) => return Err(local_err("link", &path)(e)),
                    }
                } else {
                    fs::rename(&tmp, &path).map_err(local_err("rename", &path))?;
                    PutOutcome::Created
                };
                fsync_dir(&dir).map_err(local_err("fsync", &dir))?;
                Ok(outcome)
            })();
            let _ = fs::remove_file(&tmp);
            result
        })
        .await
    }

    pub(super) async fn get(&self, key: &str) -> Result<StoredObject> {
        self.require_root()?;
        let path = self.path_of(key);
        let key = key.to_string();
        blocking(move || match fs::read(&path) {
            Ok(body) => Ok(StoredObject {
                body: Bytes::from(body),
                digest: get_digest(&path),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::NotFound { key }),
            Err(e) => Err(local_err("read", &path)(e)),
        })
        .await
    }

    pub(super) async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        self.require_root()?;
        let path = self.path_of(key);
        blocking(move || match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(ObjectInfo {
                size: m.len(),
                digest: get_digest(&path),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(local_err("stat", &path)(e)),
        })
        .await
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        self.require_root()?;
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking(move || {
            // Walk the deepest directory that contains every match.
            let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..i]);
            let mut out = Vec::new();
            let mut stack = vec![(root.join(dir_part), dir_part.to_string())];
            while let Some((dir, rel)) = stack.pop() {
                let entries = match fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(local_err("list", &dir)(e)),
                };
                for entry in entries {
                    let entry = entry.map_err(local_err("list", &dir))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with(TEMP_PREFIX) {
                        continue;
                    }
                    let key = if rel.is_empty() {
                        name
                    } else {
                        format!("{rel}/{name}")
                    };
                    let file_type = entry.file_type().map_err(local_err("list", &dir))?;
                    if file_type.is_dir() {
                        // Descend only where a match can still be found.
                        let as_dir = format!("{key}/");
                        if as_dir.starts_with(&prefix) || prefix.starts_with(&as_dir) {
                            stack.push((entry.path(), key));
                        }
                    } else if key.starts_with(&prefix) {
                        let size = entry
                            .metadata()
                            .map_err(local_err("stat", &entry.path()))?
                            .len();
                        out.push(ListedObject { key, size });
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    pub(super) async fn list_dir(&self, prefix: &str) -> Result<DirListing> {
        let all = self.list(prefix).await?;
        let mut out = DirListing::default();
        for object in all {
            match object.key[prefix.len()..].find('/') {
                Some(i) => {
                    let dir = format!("{}/", &object.key[..prefix.len() + i]);
                    if !out.prefixes.contains(&dir) {
                        out.prefixes.push(dir);
                    }
                }
                None => out.objects.push(object),
            }
        }
        Ok(out)
    }

    pub(super) async fn get_stream(&self, key: &str) -> Result<StreamedObject> {
        self.require_root()?;
        let path = self.path_of(key);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound {
                    key: key.to_string(),
                });
            }
            Err(e) => return Err(local_err("open", &path)(e)),
        };
        let digest = get_digest(&path);
        let state = (Some(file), path);
        let chunks = futures::stream::unfold(state, |(file, path)| async move {
            let mut file = file?;
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; 1 << 20];
                let n = io::Read::read(&mut file, &mut buf)?;
                buf.truncate(n);
                Ok::<_, io::Error>((file, buf))
            })
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
            match read {
                Ok((_, buf)) if buf.is_empty() => None,
                Ok((file, buf)) => Some((Ok(Bytes::from(buf)), (Some(file), path))),
                Err(e) => Some((Err(local_err("read", &path)(e)), (None, path))),
            }
        })
        .boxed();
        Ok(StreamedObject { chunks, digest })
    }

    pub(super) async fn create_multipart(&self, key: &str) -> Result<LocalMultipart> {
        self.require_root()?;
        let path = self.path_of(key);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        fs::create_dir_all(&dir).map_err(local_err("create directory", &dir))?;
        let tmp = temp_name(&dir, &name);
        let file = File::create(&tmp).map_err(local_err("create", &tmp))?;
        Ok(LocalMultipart {
            file: std::sync::Arc::new(file),
            tmp,
            path,
            offset: 0,
        })
    }

    pub(super) async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.require_root()?;
        let paths: Vec<PathBuf> = keys.iter().map(|k| self.path_of(k)).collect();
        blocking(move || {
            for path in paths {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(local_err("delete", &path)(e)),
                }
                // Remove directories left empty (hash dirs, backup dirs).
                let mut dir = path.parent();
                while let Some(d) = dir {
                    if fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn create_root(&self) -> Result<()> {
        fs::create_dir_all(&self.root).map_err(local_err("create directory", &self.root))
    }

    pub(super) async fn check_bucket(&self) -> Result<BucketState> {
        Ok(if self.root.is_dir() {
            BucketState::Exists
        } else {
            BucketState::Missing
        })
    }
}

/// A local "multipart upload": parts written at their offsets into a temp
/// file, published by rename on completion.
pub(super) struct LocalMultipart {
    file: std::sync::Arc<File>,
    tmp: PathBuf,
    path: PathBuf,
    offset: u64,
}

impl LocalMultipart {
    pub(super) fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        use std::os::unix::fs::FileExt;
        let offset = self.offset;
        self.offset += data.len() as u64;
        let (file, tmp) = (self.file.clone(), self.tmp.clone());
        Box::pin(blocking(move || {
            file.write_all_at(&data, offset)
                .map_err(local_err("write", &tmp))
        }))
    }

    pub(super) async fn complete(self) -> Result<()> {
        blocking(move || {
            self.file
                .sync_all()
                .map_err(local_err("fsync", &self.tmp))?;
            fs::rename(&self.tmp, &self.path).map_err(local_err("rename", &self.path))?;
            let dir = self
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            fsync_dir(&dir).map_err(local_err("fsync", &dir))
        })
        .await
    }

    pub(super) async fn abort(self) -> Result<()> {
        blocking(move || match fs::remove_file(&self.tmp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(local_err("remove", &self.tmp)(e)),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DigestAlgorithm;

    fn tempdir() -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "barnacle-local-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn put_if_absent_never_replaces() {
        let store = LocalBackend::new(tempdir());
        let attrs = PutAttrs {
            digest: Some(ContentDigest::new(DigestAlgorithm::Blake3, "abc")),
            ..Default::default()
        };
        let first = store
            .put("s/wals/x", Bytes::from_static(b"one").into(), &attrs, true)
            .await
            .unwrap();
        let second = store
            .put("s/wals/x", Bytes::from_static(b"two").into(), &attrs, true)
            .await
            .unwrap();
        assert_eq!(
            (first, second),
            (PutOutcome::Created, PutOutcome::AlreadyExists)
        );
        assert_eq!(&store.get("s/wals/x").await.unwrap().body[..], b"one");
    }

    #[tokio::test]
    async fn overwrite_replaces_and_leaves_no_temp_files() {
        let root = tempdir();
        let store = LocalBackend::new(root.clone());
        store
            .put(
                "a/b",
                Bytes::from_static(b"1").into(),
                &PutAttrs::default(),
                false,
            )
            .await
            .unwrap();
        store
            .put(
                "a/b",
                Bytes::from_static(b"2").into(),
                &PutAttrs::default(),
                false,
            )
            .await
            .unwrap();
        assert_eq!(&store.get("a/b").await.unwrap().body[..], b"2");
        let names: Vec<_> = fs::read_dir(root.join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b")]);
    }

    #[tokio::test]
    async fn list_is_a_string_prefix_listing_that_skips_temp_files() {
        let root = tempdir();
        let store = LocalBackend::new(root.clone());
        for key in [
            "p/wals/0001/A",
            "p/wals/0001/AB.gz",
            "p/wals/0002/A",
            "p/wals/00000002.history",
            "q/x",
        ] {
            store
                .put(
                    key,
                    Bytes::from_static(b"x").into(),
                    &PutAttrs::default(),
                    true,
                )
                .await
                .unwrap();
        }
        fs::write(
            root.join("p/wals/0001").join(format!("{TEMP_PREFIX}A.1.1")),
            b"junk",
        )
        .unwrap();
        let mut keys: Vec<_> = store
            .list("p/wals/0001/A")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.sort();
        assert_eq!(keys, ["p/wals/0001/A", "p/wals/0001/AB.gz"]);
        assert_eq!(store.list("p/wals/").await.unwrap().len(), 4);
        assert_eq!(store.list("p/wals/000").await.unwrap().len(), 4);
        assert!(store.list("nothing/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn missing_root_is_a_missing_bucket() {
        let store = LocalBackend::new(PathBuf::from("/nonexistent/barnacle/root"));
        assert_eq!(store.check_bucket().await.unwrap(), BucketState::Missing);
        let err = store.get("k").await.unwrap_err();
        assert!(matches!(err, StorageError::NoSuchBucket { .. }), "{err}");
    }

    #[tokio::test]
    async fn head_reports_size_and_digest_of_either_algorithm_when_xattrs_work() {
        let store = LocalBackend::new(tempdir());
        for (key, algorithm) in [
            ("k", DigestAlgorithm::Blake3),
            ("old", DigestAlgorithm::Sha256),
        ] {
            let digest = ContentDigest::new(algorithm, "deadbeef");
            let attrs = PutAttrs {
                digest: Some(digest.clone()),
                ..Default::default()
            };
            store
                .put(key, Bytes::from_static(b"12345").into(), &attrs, true)
                .await
                .unwrap();
            let info = store.head(key).await.unwrap().unwrap();
            assert_eq!(info.size, 5);
            // Not every filesystem has user xattrs; where it does, the value is exact.
            if let Some(stored) = info.digest {
                assert_eq!(stored, digest);
            }
        }
        assert_eq!(store.head("missing").await.unwrap(), None);
    }
}
