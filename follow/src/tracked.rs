//! One open file being read.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::assembler::LineAssembler;
use crate::fingerprint::{read_head, Head};
use crate::scan::FileId;
use crate::sink::{Event, Sink};

pub(crate) struct Tracked {
    pub file: File,
    pub id: FileId,
    pub path: PathBuf,
    /// `None` after a truncation until the new first line is complete; the
    /// file is not read meanwhile (the fingerprint is what detects the next
    /// truncation, so reading without one would be blind).
    pub head: Option<Head>,
    /// Bytes consumed from the file; the partial line among them lives in
    /// the assembler.
    pub read_pos: u64,
    pub assembler: LineAssembler,
    /// Still named by some pattern at the last scan.
    pub matching: bool,
    /// When it was first seen idle at EOF (for closing drained files).
    pub idle_since: Option<Instant>,
    /// Adopted as the copy of another inode (copytruncate, cp + rm): its
    /// unterminated last line is a fragment of a line the writer finished in
    /// the original, never a line of its own.
    pub copy: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Polled {
    pub bytes: u64,
    /// Reached EOF (or cannot read yet); more data needs a new write.
    pub at_eof: bool,
    pub nlink: u64,
    /// `(old fingerprint, committed offset)` when the file was truncated;
    /// nothing from the truncated content was emitted in this call.
    pub truncated: Option<(u64, u64)>,
    pub stopped: bool,
}

impl Tracked {
    pub fn new(
        file: File,
        id: FileId,
        path: PathBuf,
        head: Option<Head>,
        offset: u64,
        copy: bool,
        max_line_bytes: usize,
    ) -> Self {
        Tracked {
            file,
            id,
            path,
            head,
            read_pos: offset,
            assembler: LineAssembler::new(max_line_bytes),
            matching: true,
            idle_since: None,
            copy,
        }
    }

    /// Byte after the last line handed to the sink: what a checkpoint may
    /// record and where a copy of this file would have to resume.
    pub fn committed(&self) -> u64 {
        self.read_pos.saturating_sub(self.assembler.pending_bytes())
    }

    pub fn restart_after_truncation(&mut self) {
        self.head = None;
        self.read_pos = 0;
        self.assembler.reset();
        self.idle_since = None;
    }

    /// Reads what is new, at most about `budget` bytes, emitting complete lines.
    pub fn poll(
        &mut self,
        buf: &mut [u8],
        budget: u64,
        stop: &AtomicBool,
        sink: &mut dyn Sink,
    ) -> io::Result<Polled> {
        let meta = self.file.metadata()?;
        let mut out = Polled {
            nlink: meta.nlink(),
            ..Polled::default()
        };
        let head_now = read_head(&self.file)?;
        match self.head {
            Some(h) if meta.len() < self.read_pos || head_now != Some(h) => {
                out.truncated = Some((h.fp, self.committed()));
                return Ok(out);
            }
            Some(_) => {}
            None => match head_now {
                Some(h) => self.head = Some(h),
                None => {
                    out.at_eof = true;
                    return Ok(out);
                }
            },
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                out.stopped = true;
                return Ok(out);
            }
            if out.bytes >= budget {
                return Ok(out);
            }
            let n = match self.file.read_at(buf, self.read_pos) {
                Ok(0) => {
                    out.at_eof = true;
                    return Ok(out);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            // Only trust the bytes if the head is unchanged *after* the read:
            // had the file been truncated and refilled before the pread, we
            // would be holding the middle of the new content. The copy (if
            // any) will supply the old bytes instead.
            if read_head(&self.file)? != self.head {
                let old = self.head.map(|h| h.fp).unwrap_or_default();
                out.truncated = Some((old, self.committed()));
                return Ok(out);
            }
            self.emit(&buf[..n], sink);
            self.read_pos += n as u64;
            out.bytes += n as u64;
        }
    }

    /// Last read before closing: whatever is left, plus an unterminated final
    /// line (the writer has moved on, so it will never be completed) unless
    /// this is a copy, whose cut-off last line is only a fragment.
    pub fn finish(&mut self, buf: &mut [u8], sink: &mut dyn Sink) -> io::Result<()> {
        // Bounded so a file still being written cannot keep us here.
        let mut left: u64 = 64 << 20;
        while left > 0 {
            let n = match self.file.read_at(buf, self.read_pos) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.emit(&buf[..n], sink);
            self.read_pos += n as u64;
            left = left.saturating_sub(n as u64);
        }
        if self.copy {
            self.assembler.reset();
            return Ok(());
        }
        let path = &self.path;
        if self.assembler.finish(&mut |c| sink.lines(path, c)) > 0 {
            sink.event(Event::LineTruncated { path });
        }
        Ok(())
    }

    fn emit(&mut self, data: &[u8], sink: &mut dyn Sink) {
        let path = &self.path;
        let cut = self.assembler.push(data, &mut |c| sink.lines(path, c));
        for _ in 0..cut {
            sink.event(Event::LineTruncated { path });
        }
    }
}
