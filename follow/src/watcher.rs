//! Early wake-ups from inotify. Correctness never depends on them: the poll
//! tick rescans everything anyway, so a missed or failed watch only delays.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use notify::{EventKind, RecursiveMode};

use crate::scan::FileId;

/// Capacity 1: one pending wake already means "rescan everything", so a burst
/// of events collapses into it and never blocks the notifier thread.
pub(crate) fn wake_channel() -> (SyncSender<()>, Receiver<()>) {
    sync_channel(1)
}

pub(crate) type BoxedWatcher = Box<dyn notify::Watcher + Send>;
pub(crate) type WatcherFactory =
    Box<dyn FnOnce(SyncSender<()>) -> notify::Result<BoxedWatcher> + Send>;

pub(crate) fn inotify_factory() -> WatcherFactory {
    Box::new(|tx| {
        let w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // Opens and closes are ignored: our own opendir/open of watched
            // paths would otherwise wake us in an endless loop.
            if let Ok(ev) = &res {
                if matches!(ev.kind, EventKind::Access(_)) {
                    return;
                }
            }
            let _ = tx.try_send(());
        })?;
        Ok(Box::new(w) as BoxedWatcher)
    })
}

pub(crate) struct DirWatcher {
    inner: Option<BoxedWatcher>,
    /// What is watched, with the identity it had, so a directory that was
    /// deleted and recreated under the same name gets a fresh watch.
    watched: HashMap<PathBuf, FileId>,
}

impl DirWatcher {
    pub fn disabled() -> Self {
        DirWatcher {
            inner: None,
            watched: HashMap::new(),
        }
    }

    pub fn start(factory: WatcherFactory, tx: SyncSender<()>) -> Result<Self, String> {
        let inner = factory(tx).map_err(|e| e.to_string())?;
        Ok(DirWatcher {
            inner: Some(inner),
            watched: HashMap::new(),
        })
    }

    pub fn is_active(&self) -> bool {
        self.inner.is_some()
    }

    /// Brings the watch set in line with `desired`; returns per-directory
    /// failures (e.g. the inotify watch limit), which are retried next time.
    pub fn update(&mut self, desired: &BTreeSet<PathBuf>) -> Vec<(PathBuf, String)> {
        let Some(inner) = self.inner.as_mut() else {
            return Vec::new();
        };
        let current = |p: &PathBuf| fs::metadata(p).ok().map(|m| FileId::of(&m));
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(p, id)| !desired.contains(*p) || current(p) != Some(**id))
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            // Fails harmlessly when the kernel already dropped the watch.
            let _ = inner.unwatch(&p);
            self.watched.remove(&p);
        }
        let mut errors = Vec::new();
        for dir in desired {
            if self.watched.contains_key(dir) {
                continue;
            }
            let Some(id) = current(dir) else { continue };
            match inner.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir.clone(), id);
                }
                Err(e) => errors.push((dir.clone(), format!("inotify watch failed: {e}"))),
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn file_creation_wakes_and_bursts_coalesce() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = wake_channel();
        let mut w = DirWatcher::start(inotify_factory(), tx).unwrap();
        let errors = w.update(&BTreeSet::from([dir.path().to_path_buf()]));
        assert!(errors.is_empty(), "{errors:?}");
        for i in 0..100 {
            fs::write(dir.path().join(format!("f{i}")), b"x\n").unwrap();
        }
        rx.recv_timeout(Duration::from_secs(30))
            .expect("no wake-up after file creation");
        // Everything above fits in the single buffered slot.
        let mut extra = 0;
        while rx.try_recv().is_ok() {
            extra += 1;
        }
        assert!(extra <= 1, "{extra} queued wakes");
    }

    #[test]
    fn failing_factory_reports_error() {
        let (tx, _rx) = wake_channel();
        let factory: WatcherFactory =
            Box::new(|_| Err(notify::Error::generic("no inotify for you")));
        let err = DirWatcher::start(factory, tx).err().unwrap();
        assert!(err.contains("no inotify"), "{err}");
    }
}
