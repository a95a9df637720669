//! [`FlowStorage`]: flows.json in the user directory, written atomically
//! (temporary file, fsync, rename) with the previous version kept as
//! `.flows.json.backup`.

use serde_json::Value as Json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the deployed flows are kept.
#[derive(Debug, Clone)]
pub struct FlowStorage {
    file: PathBuf,
}

impl FlowStorage {
    /// Storage for `file` (e.g. `~/.flowd/flows.json`).
    pub fn new(file: impl Into<PathBuf>) -> Self {
        FlowStorage { file: file.into() }
    }

    /// The flows file.
    pub fn path(&self) -> &Path {
        &self.file
    }

    fn sibling(&self, name: &str) -> PathBuf {
        let base = self
            .file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("flows.json");
        self.file.with_file_name(format!(".{base}{name}"))
    }

    /// The stored flows text, if the file exists.
    pub fn load(&self) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(&self.file) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `flows` (4-space indented, as Node-RED's `flowFilePretty`)
    /// atomically; the previous file becomes `.flows.json.backup`.
    pub fn save(&self, flows: &[Json]) -> std::io::Result<()> {
        let dir = self
            .file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = self.sibling(".tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(flows, &mut ser).map_err(std::io::Error::other)?;
            buf.push(b'\n');
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        if self.file.exists() {
            std::fs::copy(&self.file, self.sibling(".backup"))?;
        }
        std::fs::rename(&tmp, &self.file)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn saves_atomically_and_keeps_a_backup() {
        let dir = std::env::temp_dir().join(format!("flowd-storage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = FlowStorage::new(dir.join("flows.json"));
        assert_eq!(s.load().unwrap(), None);
        s.save(&[json!({"id":"a","type":"tab"})]).unwrap();
        s.save(&[json!({"id":"b","type":"tab"})]).unwrap();
        assert!(s.load().unwrap().unwrap().contains("\"b\""));
        let backup = std::fs::read_to_string(dir.join(".flows.json.backup")).unwrap();
        assert!(backup.contains("\"a\""));
        assert!(!dir.join(".flows.json.tmp").exists());
        assert!(s.load().unwrap().unwrap().starts_with("[\n    {"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
