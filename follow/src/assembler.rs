/// Turns arbitrary byte chunks into chunks of complete lines.
///
/// Holds the partial last line between calls and caps every line at
/// `max_line_bytes` without ever buffering more than that: an over-long line
/// keeps its first `max_line_bytes` bytes, the rest up to its newline is
/// dropped, and the line is counted as truncated. Every emitted line ends with
/// `b'\n'`; CR and NUL bytes pass through untouched.
#[derive(Debug, Clone)]
pub struct LineAssembler {
    max: usize,
    /// Kept head of the current partial line (at most `max` bytes, plus room
    /// for the newline when it is emitted).
    buf: Vec<u8>,
    /// Input bytes of the current partial line seen so far, including dropped
    /// ones. This is what a reader must rewind by to resume at a line start.
    pending: u64,
}

impl LineAssembler {
    /// `max_line_bytes` excludes the newline; 0 is treated as 1.
    pub fn new(max_line_bytes: usize) -> Self {
        LineAssembler {
            max: max_line_bytes.max(1),
            buf: Vec::new(),
            pending: 0,
        }
    }

    pub fn max_line_bytes(&self) -> usize {
        self.max
    }

    /// Input bytes consumed since the last emitted line ended (the partial
    /// line, counting dropped bytes of an over-long one).
    pub fn pending_bytes(&self) -> u64 {
        self.pending
    }

    /// Forgets the partial line.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.buf.shrink_to(self.max.min(4096));
        self.pending = 0;
    }

    /// Feeds `data`; `out` is called with chunks of complete lines (possibly
    /// several per call). Returns how many lines were truncated.
    pub fn push(&mut self, data: &[u8], out: &mut dyn FnMut(&[u8])) -> usize {
        let mut truncated = 0;
        let mut pos = 0;

        if self.pending > 0 {
            match memchr::memchr(b'\n', data) {
                None => {
                    self.keep(data);
                    return 0;
                }
                Some(nl) => {
                    self.keep(&data[..nl]);
                    if self.pending > self.max as u64 {
                        truncated += 1;
                    }
                    self.buf.push(b'\n');
                    out(&self.buf);
                    self.buf.clear();
                    self.pending = 0;
                    pos = nl + 1;
                }
            }
        }

        // Complete lines that fit are passed on as one borrowed slice; only
        // over-long ones are copied (to cut them).
        let mut run_start = pos;
        let mut line_start = pos;
        for nl in memchr::memchr_iter(b'\n', &data[pos..]).map(|i| i + pos) {
            if nl - line_start > self.max {
                if run_start < line_start {
                    out(&data[run_start..line_start]);
                }
                self.buf.clear();
                self.buf
                    .extend_from_slice(&data[line_start..line_start + self.max]);
                self.buf.push(b'\n');
                out(&self.buf);
                self.buf.clear();
                truncated += 1;
                run_start = nl + 1;
            }
            line_start = nl + 1;
        }
        if run_start < line_start {
            out(&data[run_start..line_start]);
        }
        if line_start < data.len() {
            self.keep(&data[line_start..]);
        }
        truncated
    }

    /// Flushes a final unterminated line (e.g. at EOF of a replayed file),
    /// appending the newline so every emitted line looks the same. Returns
    /// 1 if that line was truncated.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8])) -> usize {
        if self.pending == 0 {
            return 0;
        }
        let truncated = usize::from(self.pending > self.max as u64);
        self.buf.push(b'\n');
        out(&self.buf);
        self.reset();
        truncated
    }

    fn keep(&mut self, part: &[u8]) {
        let room = self.max.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&part[..part.len().min(room)]);
        self.pending = self.pending.saturating_add(part.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(max: usize, pieces: &[&[u8]]) -> (Vec<Vec<u8>>, usize, u64) {
        let mut a = LineAssembler::new(max);
        let mut chunks = Vec::new();
        let mut truncated = 0;
        for p in pieces {
            truncated += a.push(p, &mut |c| chunks.push(c.to_vec()));
        }
        (chunks, truncated, a.pending_bytes())
    }

    fn lines(chunks: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let all: Vec<u8> = chunks.concat();
        all.split_inclusive(|&b| b == b'\n')
            .map(|l| l.to_vec())
            .collect()
    }

    #[test]
    fn whole_lines_pass_in_one_chunk() {
        let (chunks, t, p) = run(100, &[b"a\nbb\nccc\n"]);
        assert_eq!(chunks, vec![b"a\nbb\nccc\n".to_vec()]);
        assert_eq!((t, p), (0, 0));
    }

    #[test]
    fn partial_line_is_held_until_newline() {
        let (chunks, t, p) = run(100, &[b"a\nb", b"b", b"b\nc"]);
        assert_eq!(lines(&chunks), vec![b"a\n".to_vec(), b"bbb\n".to_vec()]);
        assert_eq!(t, 0);
        assert_eq!(p, 1);
    }

    #[test]
    fn crlf_and_nul_pass_through() {
        let (chunks, _, _) = run(100, &[b"x\r\n\0y\0\n"]);
        assert_eq!(chunks.concat(), b"x\r\n\0y\0\n".to_vec());
    }

    #[test]
    fn long_line_in_one_chunk_is_cut() {
        let (chunks, t, p) = run(4, &[b"ok\n0123456789\nend\n"]);
        assert_eq!(
            lines(&chunks),
            vec![b"ok\n".to_vec(), b"0123\n".to_vec(), b"end\n".to_vec()]
        );
        assert_eq!((t, p), (1, 0));
    }

    #[test]
    fn exactly_max_is_not_cut() {
        let (chunks, t, _) = run(4, &[b"0123\n"]);
        assert_eq!(chunks.concat(), b"0123\n".to_vec());
        assert_eq!(t, 0);
    }

    #[test]
    fn long_line_across_chunks_keeps_memory_bounded() {
        let mut a = LineAssembler::new(8);
        let mut out = Vec::new();
        let mut t = 0;
        t += a.push(b"abc", &mut |c| out.extend_from_slice(c));
        for _ in 0..10_000 {
            t += a.push(&[b'z'; 1000], &mut |c| out.extend_from_slice(c));
            assert!(
                a.buf.capacity() <= 64,
                "buffer grew to {}",
                a.buf.capacity()
            );
        }
        assert_eq!(a.pending_bytes(), 3 + 10_000 * 1000);
        t += a.push(b"zz\nnext\n", &mut |c| out.extend_from_slice(c));
        assert_eq!(out, b"abczzzzz\nnext\n".to_vec());
        assert_eq!(t, 1);
        assert_eq!(a.pending_bytes(), 0);
    }

    #[test]
    fn finish_flushes_unterminated_line() {
        let mut a = LineAssembler::new(3);
        let mut out = Vec::new();
        a.push(b"a\nbcdef", &mut |c| out.extend_from_slice(c));
        assert_eq!(a.finish(&mut |c| out.extend_from_slice(c)), 1);
        assert_eq!(out, b"a\nbcd\n".to_vec());
        assert_eq!(a.finish(&mut |c| out.extend_from_slice(c)), 0);
        assert_eq!(a.pending_bytes(), 0);
    }

    #[test]
    fn byte_by_byte_matches_whole() {
        let input = b"one\ntwo\r\nthree-is-long\n\0\nfour";
        let whole = run(5, &[input]);
        let pieces: Vec<&[u8]> = input.chunks(1).collect();
        let split = run(5, &pieces);
        assert_eq!(lines(&whole.0), lines(&split.0));
        assert_eq!(whole.1, split.1);
        assert_eq!(whole.2, split.2);
    }
}

#[cfg(test)]
mod model_tests {
    use super::*;

    /// xorshift: deterministic, no extra dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
    }

    /// Random input, random split points, random limit: the output must equal
    /// the obvious definition (split on '\n', cut each line to `max`).
    #[test]
    fn matches_reference_model() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2_000 {
            let max = 1 + rng.below(12);
            let len = rng.below(200);
            let input: Vec<u8> = (0..len)
                .map(|_| [b'a', b'b', b'\n', b'\r', b'\0'][rng.below(5)])
                .collect();
            let mut expected = Vec::new();
            let mut expected_cut = 0;
            let complete = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for l in input[..complete].split_inclusive(|&b| b == b'\n') {
                let body = &l[..l.len() - 1];
                if body.len() > max {
                    expected_cut += 1;
                }
                expected.extend_from_slice(&body[..body.len().min(max)]);
                expected.push(b'\n');
            }

            let mut a = LineAssembler::new(max);
            let mut out = Vec::new();
            let mut cut = 0;
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len() as u64);
                cut += a.push(&rest[..n], &mut |c| {
                    assert_eq!(c.last(), Some(&b'\n'));
                    out.extend_from_slice(c)
                });
                rest = &rest[n..];
                assert!(a.buf.len() <= max);
            }
            assert_eq!(out, expected, "input {input:?} max {max}");
            assert_eq!(cut, expected_cut);
            assert_eq!(a.pending_bytes(), (input.len() - complete) as u64);
        }
    }
}
