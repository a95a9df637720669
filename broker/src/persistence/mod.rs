//! Crash-safe persistence of retained messages and persistent sessions
//! (subscriptions, queued and in-flight QoS 1/2 messages, and the QoS 2
//! state in both directions) in an append-only journal, `broker.journal`
//! in the persistence directory.
//!
//! The router appends records as it changes durable state and, at the end
//! of each batch of requests, writes them with a commit record and fsyncs
//! before it releases the packets that depended on them (PUBACK, PUBREC,
//! PUBCOMP, SUBACK, UNSUBACK, and for persisted QoS 2 deliveries the
//! PUBLISH and PUBREL): a killed broker loses nothing it acknowledged.
//! QoS 2 across a restart:
//! - incoming: the packet ids awaiting PUBREL are kept, so a resent
//!   PUBLISH is acknowledged without being routed again and a PUBREL gets
//!   PUBCOMP; the id is dropped before PUBCOMP is sent.
//! - outgoing: each sent delivery's packet id and phase are kept, so it
//!   is resent with the same id (DUP) or, past PUBREC, only PUBREL.
//!
//! At start the journal is replayed, applying a batch only up to its
//! commit (a torn tail drops the unacknowledged batch whole), and
//! rewritten compactly (temp file, fsync, rename); it is compacted again
//! when it grows past [`COMPACT_BYTES`] and at shutdown.

mod record;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::BytesMut;

pub use record::{Record, StoredMessage};

use crate::codec::{ProtocolVersion, QoS, SubscriptionOptions};
use crate::message::{Outbox, Outgoing};

/// File name of the journal inside the persistence directory.
pub const JOURNAL_FILE: &str = "broker.journal";
/// Journal size that triggers a compaction.
pub const COMPACT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("persistence directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A queued or in-flight message of a restored session.
#[derive(Debug, Clone)]
pub struct RestoredMessage {
    pub qos: QoS,
    pub retain: bool,
    pub ids: Vec<u32>,
    pub message: StoredMessage,
}

#[derive(Debug, Default, Clone)]
pub struct RestoredSession {
    pub version: Option<ProtocolVersion>,
    pub expiry: u32,
    pub subscriptions: BTreeMap<String, (SubscriptionOptions, Option<u32>)>,
    pub messages: BTreeMap<u64, RestoredMessage>,
    /// Incoming QoS 2 packet ids awaiting PUBREL.
    pub incoming_qos2: BTreeSet<u16>,
    /// Outgoing QoS 1/2 deliveries already sent: seq -> (packet id,
    /// released: PUBREL sent, awaiting PUBCOMP).
    pub sent_out: BTreeMap<u64, (u16, bool)>,
}

/// The durable state, as replayed from the journal.
#[derive(Debug, Default)]
pub struct Restored {
    pub retained: BTreeMap<String, StoredMessage>,
    pub sessions: HashMap<String, RestoredSession>,
    pub next_seq: u64,
}

impl Restored {
    fn apply(&mut self, r: Record) {
        match r {
            Record::RetainSet(m) => {
                self.retained.insert(m.publish.topic.clone(), m);
            }
            Record::RetainClear { topic } => {
                self.retained.remove(&topic);
            }
            Record::Session {
                client,
                version,
                expiry,
            } => {
                let s = self.sessions.entry(client).or_default();
                s.version = Some(version);
                s.expiry = expiry;
            }
            Record::SessionEnd { client } => {
                self.sessions.remove(&client);
            }
            Record::Subscribe {
                client,
                filter,
                options,
                id,
            } => {
                self.sessions
                    .entry(client)
                    .or_default()
                    .subscriptions
                    .insert(filter, (options, id));
            }
            Record::Unsubscribe { client, filter } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.subscriptions.remove(&filter);
                }
            }
            Record::Enqueue {
                client,
                seq,
                qos,
                retain,
                ids,
                message,
            } => {
                self.next_seq = self.next_seq.max(seq + 1);
                let m = RestoredMessage {
                    qos,
                    retain,
                    ids,
                    message,
                };
                self.sessions
                    .entry(client)
                    .or_default()
                    .messages
                    .insert(seq, m);
            }
            Record::Done { client, seq } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.messages.remove(&seq);
                    s.sent_out.remove(&seq);
                }
            }
            Record::Qos2In { client, pkid } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.incoming_qos2.insert(pkid);
                }
            }
            Record::Qos2InDone { client, pkid } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.incoming_qos2.remove(&pkid);
                }
            }
            Record::OutSent {
                client,
                seq,
                pkid,
                released,
            } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    if s.messages.contains_key(&seq) {
                        s.sent_out.insert(seq, (pkid, released));
                    }
                }
            }
            Record::Commit => {}
        }
    }

    /// The records that recreate this state.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for m in self.retained.values() {
            out.push(Record::RetainSet(m.clone()));
        }
        for (client, s) in &self.sessions {
            let Some(version) = s.version else { continue };
            out.push(Record::Session {
                client: client.clone(),
                version,
                expiry: s.expiry,
            });
            for (filter, (options, id)) in &s.subscriptions {
                out.push(Record::Subscribe {
                    client: client.clone(),
                    filter: filter.clone(),
                    options: *options,
                    id: *id,
                });
            }
            for (seq, m) in &s.messages {
                out.push(Record::Enqueue {
                    client: client.clone(),
                    seq: *seq,
                    qos: m.qos,
                    retain: m.retain,
                    ids: m.ids.clone(),
                    message: m.message.clone(),
                });
            }
            for (&seq, &(pkid, released)) in &s.sent_out {
                out.push(Record::OutSent {
                    client: client.clone(),
                    seq,
                    pkid,
                    released,
                });
            }
            for &pkid in &s.incoming_qos2 {
                out.push(Record::Qos2In {
                    client: client.clone(),
                    pkid,
                });
            }
        }
        out
    }
}

pub struct Journal {
    dir: PathBuf,
    file: File,
    size: u64,
    pending: BytesMut,
    held: Vec<(Outbox, Outgoing)>,
    pub next_seq: u64,
}

impl Journal {
    /// Replays and compacts the journal in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<(Journal, Restored), PersistError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(JOURNAL_FILE);
        let mut data = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut data).map_err(io_err(&path))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        let mut restored = Restored {
            next_seq: 1,
            ..Default::default()
        };
        let mut pos = 0;
        // Records of the batch being read, applied at its commit. A journal
        // without any commit (written before commits existed) is applied
        // record by record.
        let mut batch = Vec::new();
        let mut committed = 0;
        let mut seen_commit = false;
        while let Some((record, n)) = Record::decode(&data[pos..]) {
            pos += n;
            if record == Record::Commit {
                seen_commit = true;
                committed = pos;
                for r in batch.drain(..) {
                    restored.apply(r);
                }
            } else {
                batch.push(record);
            }
        }
        if !seen_commit {
            committed = pos;
            for r in batch.drain(..) {
                restored.apply(r);
            }
        }
        if committed < data.len() {
            tracing::warn!(
                bytes = data.len() - committed,
                "Journal has a torn, corrupt or uncommitted tail; ignoring it."
            );
        }
        let (file, size) = write_snapshot(dir, &restored.records())?;
        let journal = Journal {
            dir: dir.to_owned(),
            file,
            size,
            pending: BytesMut::new(),
            held: Vec::new(),
            next_seq: restored.next_seq,
        };
        Ok((journal, restored))
    }

    pub fn append(&mut self, r: &Record) {
        r.encode(&mut self.pending);
    }

    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Holds `out` for `outbox` until the next flush.
    pub fn hold(&mut self, outbox: Outbox, out: Outgoing) {
        self.held.push((outbox, out));
    }

    /// Writes and fsyncs pending records, then releases the held acks.
    pub fn flush(&mut self) -> Result<(), PersistError> {
        if !self.pending.is_empty() {
            let records = self.pending.len();
            Record::Commit.encode(&mut self.pending);
            let path = self.dir.join(JOURNAL_FILE);
            let written = self
                .file
                .write_all(&self.pending)
                .and_then(|()| self.file.sync_data());
            if let Err(e) = written {
                // Cut a partial write off (it would end the replay before
                // anything written after it) and keep the batch and its
                // held acks for the next flush (e.g. once the disk has
                // room again).
                let _ = self.file.set_len(self.size);
                self.pending.truncate(records);
                return Err(io_err(&path)(e));
            }
            self.size += self.pending.len() as u64;
            self.pending.clear();
        }
        for (outbox, out) in self.held.drain(..) {
            outbox.send(out);
        }
        Ok(())
    }

    pub fn wants_compaction(&self) -> bool {
        self.size > COMPACT_BYTES
    }

    /// Replaces the journal with `records` (the live state).
    pub fn compact(&mut self, records: &[Record]) -> Result<(), PersistError> {
        self.flush()?;
        let (file, size) = write_snapshot(&self.dir, records)?;
        self.file = file;
        self.size = size;
        Ok(())
    }
}

/// Writes `records` to a temp file, fsyncs, renames it over the journal,
/// fsyncs the directory, and returns the journal opened for appending.
fn write_snapshot(dir: &Path, records: &[Record]) -> Result<(File, u64), PersistError> {
    let path = dir.join(JOURNAL_FILE);
    let tmp = dir.join(format!("{JOURNAL_FILE}.tmp"));
    let mut buf = BytesMut::new();
    for r in records {
        r.encode(&mut buf);
    }
    Record::Commit.encode(&mut buf);
    {
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&buf).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    let file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    Ok((file, buf.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::record::sample_message;
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("flowd-broker-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn replay_applies_records_and_survives_a_torn_tail() {
        let dir = tempdir("replay");
        {
            let (mut j, restored) = Journal::open(&dir).unwrap();
            assert!(restored.sessions.is_empty());
            j.append(&Record::RetainSet(sample_message("r", b"1")));
            j.append(&Record::Session {
                client: "c".into(),
                version: ProtocolVersion::V5,
                expiry: 60,
            });
            j.append(&Record::Subscribe {
                client: "c".into(),
                filter: "a/#".into(),
                options: SubscriptionOptions::default(),
                id: None,
            });
            for seq in [1, 2] {
                let message = sample_message("a/b", b"m");
                let rec = Record::Enqueue {
                    client: "c".into(),
                    seq,
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    ids: vec![],
                    message,
                };
                j.append(&rec);
            }
            j.append(&Record::Done {
                client: "c".into(),
                seq: 1,
            });
            j.flush().unwrap();
        }
        // A half-written record at the end, as a crash would leave it.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL_FILE))
            .unwrap();
        f.write_all(&[0, 0, 0, 50, 1, 2]).unwrap();
        drop(f);
        let (_j, restored) = Journal::open(&dir).unwrap();
        assert_eq!(restored.retained.len(), 1);
        let s = &restored.sessions["c"];
        assert_eq!(s.expiry, 60);
        assert_eq!(s.subscriptions.len(), 1);
        assert_eq!(s.messages.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(restored.next_seq, 3);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_batch_without_its_commit_is_not_applied() {
        let dir = tempdir("uncommitted");
        {
            let (mut j, _) = Journal::open(&dir).unwrap();
            j.append(&Record::Session {
                client: "c".into(),
                version: ProtocolVersion::V5,
                expiry: 60,
            });
            j.append(&Record::Qos2In {
                client: "c".into(),
                pkid: 1,
            });
            j.flush().unwrap();
        }
        // A second batch cut after whole records, before its commit: a
        // routed copy written, the packet id it stands for not.
        let mut torn = BytesMut::new();
        Record::Enqueue {
            client: "c".into(),
            seq: 9,
            qos: QoS::ExactlyOnce,
            retain: false,
            ids: vec![],
            message: sample_message("t", b"m"),
        }
        .encode(&mut torn);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL_FILE))
            .unwrap();
        f.write_all(&torn).unwrap();
        drop(f);
        let (_j, restored) = Journal::open(&dir).unwrap();
        let s = &restored.sessions["c"];
        assert!(s.messages.is_empty(), "uncommitted batch applied");
        assert_eq!(s.incoming_qos2.iter().copied().collect::<Vec<_>>(), vec![1]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn qos2_state_replays_and_survives_compaction() {
        let dir = tempdir("qos2");
        {
            let (mut j, _) = Journal::open(&dir).unwrap();
            j.append(&Record::Session {
                client: "c".into(),
                version: ProtocolVersion::V311,
                expiry: u32::MAX,
            });
            for seq in [1, 2, 3] {
                j.append(&Record::Enqueue {
                    client: "c".into(),
                    seq,
                    qos: QoS::ExactlyOnce,
                    retain: false,
                    ids: vec![],
                    message: sample_message("t", b"m"),
                });
            }
            let out = |seq, pkid, released| Record::OutSent {
                client: "c".into(),
                seq,
                pkid,
                released,
            };
            j.append(&out(1, 10, false));
            j.append(&out(2, 11, false));
            j.append(&out(1, 10, true));
            j.append(&Record::Done {
                client: "c".into(),
                seq: 2,
            });
            for pkid in [5, 6] {
                j.append(&Record::Qos2In {
                    client: "c".into(),
                    pkid,
                });
            }
            j.append(&Record::Qos2InDone {
                client: "c".into(),
                pkid: 5,
            });
            j.flush().unwrap();
        }
        // Opened twice: the second replays the compacted snapshot.
        for _ in 0..2 {
            let (_j, restored) = Journal::open(&dir).unwrap();
            let s = &restored.sessions["c"];
            assert_eq!(s.messages.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
            assert_eq!(
                s.sent_out.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
                vec![(1, (10, true))]
            );
            assert_eq!(s.incoming_qos2.iter().copied().collect::<Vec<_>>(), vec![6]);
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_write_keeps_the_batch_and_its_acks_for_the_next_flush() {
        let dir = tempdir("retry");
        let path = dir.join(JOURNAL_FILE);
        {
            let (mut j, _) = Journal::open(&dir).unwrap();
            j.append(&Record::RetainSet(sample_message("a", b"1")));
            j.flush().unwrap();
            let (outbox, mut rx) = Outbox::new();
            j.append(&Record::RetainSet(sample_message("b", b"2")));
            j.hold(outbox, Outgoing::PingResp);
            // Writes fail (a read-only handle stands in for a full disk).
            let appending = std::mem::replace(&mut j.file, File::open(&path).unwrap());
            assert!(j.flush().is_err());
            assert!(rx.try_recv().is_none(), "ack released before the write");
            j.file = appending;
            j.flush().unwrap();
            assert!(matches!(rx.try_recv(), Some(Outgoing::PingResp)));
        }
        let (_j, restored) = Journal::open(&dir).unwrap();
        assert_eq!(restored.retained.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        let _ = fs::remove_dir_all(&dir);
    }
}
