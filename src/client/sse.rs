//! A `text/event-stream` decoder for the client: bytes in, whole events out,
//! however the bytes were split across network reads.

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `None` for the default `message` type.
    pub name: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Feeds on bytes as they arrive and yields events as they complete.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes of a line not yet terminated.
    partial: Vec<u8>,
    name: Option<String>,
    data: Option<String>,
}

impl Decoder {
    /// Takes the next bytes of the stream; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &byte in bytes {
            if byte != b'\n' {
                self.partial.push(byte);
                continue;
            }
            let mut line = std::mem::take(&mut self.partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                events.push(event);
            }
        }
        events
    }

    /// Handles one line; a blank line ends the event being built.
    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take();
            let name = self.name.take();
            return data.map(|data| Event { name, data });
        }
        if line.starts_with(':') {
            return None; // a comment, e.g. a keep-alive
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.name = Some(value.to_string()),
            _ => {} // `id`, `retry` and unknown fields carry nothing we use
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_reassembled() {
        let stream =
            b"data: {\"a\":1}\n\nevent: error\ndata: {\"kind\":\"x\"}\r\n\r\n: ping\n\ndata: 2\n";
        for split in 0..stream.len() {
            let mut decoder = Decoder::default();
            let mut events = decoder.push(&stream[..split]);
            events.extend(decoder.push(&stream[split..]));
            assert_eq!(
                events,
                vec![
                    Event {
                        name: None,
                        data: "{\"a\":1}".into()
                    },
                    Event {
                        name: Some("error".into()),
                        data: "{\"kind\":\"x\"}".into()
                    },
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn multi_line_data_is_joined() {
        let mut decoder = Decoder::default();
        let events = decoder.push(b"data:a\ndata: b\n\n");
        assert_eq!(events[0].data, "a\nb");
    }
}
