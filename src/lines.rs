//! Reading newline-delimited frames without trusting their length: a line longer
//! than the limit is skipped through its newline, never held in memory whole.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One read from a line-oriented stream.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A complete line (without its newline) is in the buffer.
    Line,
    /// The line exceeded the limit; it was consumed and discarded. Carries its size.
    TooLong(u64),
    /// End of stream, with no partial line pending.
    Eof,
}

/// Reads one line into `line` (cleared first), holding at most `max` bytes.
/// A final line without a newline still counts as a line.
pub async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    line.clear();
    let mut total: u64 = 0;
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (total, too_long) {
                (0, _) => LineRead::Eof,
                (_, true) => LineRead::TooLong(total),
                (_, false) => LineRead::Line,
            });
        }
        let (chunk, found_newline) = match memchr(available) {
            Some(pos) => (&available[..pos], true),
            None => (available, false),
        };
        total += chunk.len() as u64;
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = chunk.len() + usize::from(found_newline);
        reader.consume(consumed);
        if found_newline {
            return Ok(if too_long {
                LineRead::TooLong(total)
            } else {
                LineRead::Line
            });
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_skipped_and_the_stream_continues() {
        let input: &[u8] = b"short\nthis line is far too long\nok\nlast";
        let mut reader = tokio::io::BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        assert_eq!(
            read_bounded_line(&mut reader, &mut line, 8).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(line, b"short");
        assert_eq!(
            read_bounded_line(&mut reader, &mut line, 8).await.unwrap(),
            LineRead::TooLong(25)
        );
        assert!(
            line.capacity() <= 16,
            "a long line must not be buffered whole"
        );
        assert_eq!(
            read_bounded_line(&mut reader, &mut line, 8).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(line, b"ok");
        assert_eq!(
            read_bounded_line(&mut reader, &mut line, 8).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(line, b"last");
        assert_eq!(
            read_bounded_line(&mut reader, &mut line, 8).await.unwrap(),
            LineRead::Eof
        );
    }
}
