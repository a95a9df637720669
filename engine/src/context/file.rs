//! Context kept on disk, in Node-RED's `localfilesystem` layout, so a
//! Node-RED `context/` directory reads as it is:
//!
//! ```text
//! <dir>/global/global.json        the global context
//! <dir>/<tab id>/flow.json        a tab's flow context
//! <dir>/<tab id>/<node id>.json   a node's own context
//! ```
//!
//! Each file is one JSON object written as `JSON.stringify(value, null, 4)`
//! writes it, so values round-trip as they do in Node-RED (a Buffer comes
//! back as `{"type":"Buffer","data":[...]}`, NaN as null). Files are written
//! atomically: a temporary file in the same directory, fsync, rename, fsync
//! of the directory. Ids that are not plain file names are percent-encoded.

use super::{ContextChanges, ScopeKey};
use crate::value::{json, Object, Str, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

const GLOBAL_DIR: &str = "global";
const GLOBAL_FILE: &str = "global.json";
const FLOW_FILE: &str = "flow.json";
const JSON_EXT: &str = ".json";
const TMP_EXT: &str = ".tmp";
/// Node-RED's indentation of context files.
const INDENT: usize = 4;

/// Why context could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ContextFileError {
    /// A file or directory could not be read or written.
    #[error("context storage: cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A context file is not a JSON object.
    #[error("context storage: {} is not valid context: {reason} (fix or remove the file)", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// A `context/` directory.
#[derive(Debug, Clone)]
pub struct FileContextStorage {
    dir: PathBuf,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ContextFileError {
    let path = path.to_path_buf();
    move |source| ContextFileError::Io {
        action,
        path,
        source,
    }
}

/// `id` as a file name: kept when it is one already (Node-RED's ids are),
/// otherwise every byte outside `[A-Za-z0-9_-]` (and a leading dot) is
/// written `%XX`.
fn encode_name(id: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut out = String::with_capacity(id.len());
    for (i, b) in id.bytes().enumerate() {
        if plain(b) || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_name`] (`None` for a name it cannot have made).
fn decode_name(name: &str) -> Option<String> {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl FileContextStorage {
    /// Storage in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> FileContextStorage {
        FileContextStorage { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a scope is kept in.
    pub fn path_of(&self, key: &ScopeKey) -> PathBuf {
        match key {
            ScopeKey::Global => self.dir.join(GLOBAL_DIR).join(GLOBAL_FILE),
            ScopeKey::Flow(z) => self.dir.join(encode_name(z)).join(FLOW_FILE),
            ScopeKey::Node { id, flow } => self
                .dir
                .join(encode_name(flow))
                .join(format!("{}{JSON_EXT}", encode_name(id))),
        }
    }

    /// Reads every scope. A missing directory is an empty store; leftover
    /// temporary files of an interrupted write are removed; a file that is
    /// not a JSON object is an error naming it.
    pub fn load(&self) -> Result<Vec<(ScopeKey, Object)>, ContextFileError> {
        let mut out = Vec::new();
        let top = match fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("read", &self.dir)(e)),
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        for entry in top {
            let entry = entry.map_err(io_err("read", &self.dir))?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if entry.path().is_dir() {
                dirs.push(entry.path());
            }
        }
        dirs.sort();
        for dir in dirs {
            let dir_name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut files: Vec<PathBuf> = fs::read_dir(&dir)
                .map_err(io_err("read", &dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            for path in files {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.ends_with(TMP_EXT) {
                    // An interrupted write: the previous file is intact.
                    let _ = fs::remove_file(&path);
                    continue;
                }
                let Some(stem) = name.strip_suffix(JSON_EXT) else {
                    continue;
                };
                let key = if dir_name == GLOBAL_DIR {
                    if name != GLOBAL_FILE {
                        continue;
                    }
                    ScopeKey::Global
                } else {
                    let corrupt = |reason: &str| ContextFileError::Corrupt {
                        path: path.clone(),
                        reason: reason.to_string(),
                    };
                    let flow = decode_name(&dir_name)
                        .ok_or_else(|| corrupt("the directory name is not a tab id"))?;
                    if name == FLOW_FILE {
                        ScopeKey::Flow(Str::from(flow))
                    } else {
                        let id = decode_name(stem)
                            .ok_or_else(|| corrupt("the file name is not a node id"))?;
                        ScopeKey::Node {
                            id: Str::from(id),
                            flow: Str::from(flow),
                        }
                    }
                };
                out.push((key, read_object(&path)?));
            }
        }
        Ok(out)
    }

    /// Writes one scope atomically (`None`: removes its file).
    pub fn write(&self, key: &ScopeKey, data: Option<&Object>) -> Result<(), ContextFileError> {
        let path = self.path_of(key);
        let Some(data) = data else {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
            if let Some(parent) = path.parent() {
                // Only succeeds when the tab's directory is now empty.
                let _ = fs::remove_dir(parent);
            }
            return Ok(());
        };
        let text = json::stringify_pretty(&Value::object(data.clone()), INDENT);
        write_atomic(&path, text.as_bytes())
    }
}

fn read_object(path: &Path) -> Result<Object, ContextFileError> {
    let text = fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            ContextFileError::Corrupt {
                path: path.to_path_buf(),
                reason: "not UTF-8 text".into(),
            }
        } else {
            io_err("read", path)(e)
        }
    })?;
    if text.trim().is_empty() {
        return Ok(Object::new());
    }
    match json::parse(&text) {
        Ok(Value::Object(o)) => Ok(std::sync::Arc::unwrap_or_clone(o)),
        Ok(other) => Err(ContextFileError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("holds a JSON {}, not an object", other.type_of()),
        }),
        Err(e) => Err(ContextFileError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("invalid JSON: {e}"),
        }),
    }
}

/// Temporary file in the same directory, fsync, rename over `path`, fsync
/// of the directory: a crash leaves the old file or the new one, never half.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ContextFileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_EXT);
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("write", &tmp)(e));
    }
    fs::rename(&tmp, path).map_err(io_err("replace", path))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The background writer of a persistent store: every `interval` it calls
/// `request` (which makes the executor send its changes), writes each batch
/// that arrives, and ends once the executor is gone and every batch is
/// written. A scope that could not be written is retried with the next batch.
pub(crate) async fn run_writer(
    storage: FileContextStorage,
    mut batches: mpsc::UnboundedReceiver<ContextChanges>,
    interval: Duration,
    request: impl Fn() + Send,
) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // Scopes still to write, newest data per scope.
    let mut pending: BTreeMap<ScopeKey, Option<Object>> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => request(),
            batch = batches.recv() => match batch {
                Some(b) => {
                    pending.extend(b);
                    // Take whatever else is already queued too.
                    while let Ok(more) = batches.try_recv() {
                        pending.extend(more);
                    }
                    pending = write_all(&storage, pending).await;
                }
                None => break,
            },
        }
    }
    if !pending.is_empty() {
        let left = write_all(&storage, pending).await;
        if !left.is_empty() {
            tracing::error!(
                scopes = left.len(),
                "Context changes could not be saved before stopping."
            );
        }
    }
}

/// Writes `pending` off the async threads; returns what failed.
async fn write_all(
    storage: &FileContextStorage,
    pending: BTreeMap<ScopeKey, Option<Object>>,
) -> BTreeMap<ScopeKey, Option<Object>> {
    let storage = storage.clone();
    let job = tokio::task::spawn_blocking(move || {
        let mut failed = BTreeMap::new();
        for (key, data) in pending {
            if let Err(e) = storage.write(&key, data.as_ref()) {
                tracing::error!(error = %e, "Cannot save context.");
                failed.insert(key, data);
            }
        }
        failed
    });
    job.await.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{ContextScope, ContextStore};
    use crate::node::NodeInfo;
    use bytes::Bytes;

    fn tempdir(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let d = std::env::temp_dir().join(format!(
            "flowd-context-{tag}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn info(id: &str, z: &str) -> NodeInfo {
        let mut i = NodeInfo::detached(id, "change");
        i.z = Some(Str::new(z));
        i
    }

    fn write_changes(storage: &FileContextStorage, c: &mut ContextStore) {
        for (k, v) in c.take_changes() {
            storage.write(&k, v.as_ref()).unwrap();
        }
    }

    #[test]
    fn names_are_node_red_layout_and_encoded_when_needed() {
        let s = FileContextStorage::new("/ctx");
        assert_eq!(
            s.path_of(&ScopeKey::Global),
            Path::new("/ctx/global/global.json")
        );
        assert_eq!(
            s.path_of(&ScopeKey::Flow(Str::new("f1a2"))),
            Path::new("/ctx/f1a2/flow.json")
        );
        assert_eq!(
            s.path_of(&ScopeKey::Node {
                id: Str::new("../x"),
                flow: Str::new("t.1")
            }),
            Path::new("/ctx/t.1/%2E.%2Fx.json")
        );
        for id in ["a/b", "..", ".hidden", "ünï", "x%y", "plain-id_9"] {
            assert_eq!(decode_name(&encode_name(id)).as_deref(), Some(id));
            assert!(!encode_name(id).contains('/'));
            assert!(!encode_name(id).starts_with('.'));
        }
    }

    #[test]
    fn every_scope_round_trips_with_javascript_json_semantics() {
        let dir = tempdir("roundtrip");
        let storage = FileContextStorage::new(dir.join("context"));
        let mut c = ContextStore::persistent(storage.clone(), Duration::from_secs(30)).unwrap();
        let a = info("n1", "tab1");
        let mut nested = Object::new();
        nested.insert("list", Value::array(vec![Value::Number(1.5), Value::Null]));
        nested.insert("text", Value::str("ünïcode \"quoted\"\n"));
        c.set(ContextScope::Flow, &a, "obj", Some(Value::object(nested)))
            .unwrap();
        c.set(
            ContextScope::Global,
            &a,
            "buf",
            Some(Value::Buffer(Bytes::from_static(&[1, 2, 255]))),
        )
        .unwrap();
        c.set(
            ContextScope::Global,
            &a,
            "nan",
            Some(Value::Number(f64::NAN)),
        )
        .unwrap();
        c.set(ContextScope::Global, &a, "10", Some(Value::Bool(false)))
            .unwrap();
        c.set(ContextScope::Node, &a, "count", Some(Value::Number(3.0)))
            .unwrap();
        write_changes(&storage, &mut c);
        let global = fs::read_to_string(dir.join("context/global/global.json")).unwrap();
        assert!(
            global.starts_with("{\n    \"10\": false,\n    \"buf\": {"),
            "{global}"
        );
        assert!(dir.join("context/tab1/flow.json").exists());
        assert!(dir.join("context/tab1/n1.json").exists());

        let back = ContextStore::persistent(storage, Duration::from_secs(30)).unwrap();
        let get = |scope, key| back.get(scope, &a, key).unwrap();
        assert_eq!(
            get(ContextScope::Flow, "obj.text"),
            Some(Value::str("ünïcode \"quoted\"\n"))
        );
        assert_eq!(
            get(ContextScope::Flow, "obj.list[0]"),
            Some(Value::Number(1.5))
        );
        assert_eq!(get(ContextScope::Node, "count"), Some(Value::Number(3.0)));
        // As JSON.parse(JSON.stringify(...)) gives it back in Node-RED.
        assert_eq!(get(ContextScope::Global, "nan"), Some(Value::Null));
        assert_eq!(
            get(ContextScope::Global, "buf.type"),
            Some(Value::str("Buffer"))
        );
        assert_eq!(
            get(ContextScope::Global, "buf.data[2]"),
            Some(Value::Number(255.0))
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn removed_scopes_lose_their_files_and_node_context_survives_a_stop() {
        let dir = tempdir("remove");
        let storage = FileContextStorage::new(&dir);
        let mut c = ContextStore::persistent(storage.clone(), Duration::from_secs(30)).unwrap();
        let a = info("n1", "tab1");
        let b = info("n2", "tab2");
        c.set(ContextScope::Node, &a, "k", Some(Value::Number(1.0)))
            .unwrap();
        c.set(ContextScope::Flow, &b, "k", Some(Value::Number(2.0)))
            .unwrap();
        c.set(ContextScope::Node, &b, "k", Some(Value::Number(3.0)))
            .unwrap();
        write_changes(&storage, &mut c);
        c.clear_node("n1");
        assert_eq!(
            c.get(ContextScope::Node, &a, "k").unwrap(),
            Some(Value::Number(1.0)),
            "a persistent store keeps a stopped node's context"
        );
        c.retain_flows(|z| z == "tab1");
        c.retain_nodes(|id| id != "n1");
        write_changes(&storage, &mut c);
        assert!(
            !dir.join("tab2").exists(),
            "the removed tab's files are gone"
        );
        assert!(!dir.join("tab1/n1.json").exists());
        assert!(ContextStore::persistent(storage, Duration::from_secs(1))
            .unwrap()
            .take_changes()
            .is_empty());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempdir("corrupt");
        fs::create_dir_all(dir.join("tab1")).unwrap();
        fs::write(dir.join("tab1/flow.json"), "{\"a\": 1,").unwrap();
        let e = FileContextStorage::new(&dir)
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&*dir.join("tab1/flow.json").to_string_lossy()),
            "{e}"
        );
        assert!(e.contains("invalid JSON"), "{e}");
        fs::write(dir.join("tab1/flow.json"), "[1]").unwrap();
        let e = FileContextStorage::new(&dir)
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an object"), "{e}");
        // An interrupted write leaves a temporary file: ignored and removed.
        fs::write(dir.join("tab1/flow.json"), "{}").unwrap();
        fs::write(dir.join("tab1/flow.json.tmp"), "{\"a\":").unwrap();
        assert_eq!(FileContextStorage::new(&dir).load().unwrap().len(), 1);
        assert!(!dir.join("tab1/flow.json.tmp").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_failed_write_is_retried() {
        let dir = tempdir("retry");
        // A file where the tab's directory should be: writes fail.
        fs::write(dir.join("t1"), "in the way").unwrap();
        let storage = FileContextStorage::new(&dir);
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(run_writer(storage, rx, Duration::from_secs(3600), || {}));
        let mut o = Object::new();
        o.insert("v", Value::Number(1.0));
        tx.send(vec![(ScopeKey::Flow(Str::new("t1")), Some(o))])
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(dir.join("t1").is_file(), "the write failed");
        fs::remove_file(dir.join("t1")).unwrap();
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .unwrap()
            .unwrap();
        let text = fs::read_to_string(dir.join("t1/flow.json")).unwrap();
        assert_eq!(text, "{\n    \"v\": 1\n}", "written on the retry at close");
        let _ = fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_writer_writes_each_batch_and_the_rest_on_close() {
        let dir = tempdir("writer");
        let storage = FileContextStorage::new(&dir);
        let (tx, rx) = mpsc::unbounded_channel();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let r = requests.clone();
        let writer = tokio::spawn(run_writer(
            storage.clone(),
            rx,
            Duration::from_millis(20),
            move || {
                r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        ));
        let mut o = Object::new();
        o.insert("v", Value::Number(1.0));
        tx.send(vec![(ScopeKey::Global, Some(o.clone()))]).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while requests.load(std::sync::atomic::Ordering::Relaxed) < 2 {
            assert!(std::time::Instant::now() < deadline, "no flush requests");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        o.insert("v", Value::Number(2.0));
        tx.send(vec![(ScopeKey::Global, Some(o))]).unwrap();
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .unwrap()
            .unwrap();
        let text = fs::read_to_string(dir.join("global/global.json")).unwrap();
        assert_eq!(text, "{\n    \"v\": 2\n}");
        let _ = fs::remove_dir_all(&dir);
    }
}
