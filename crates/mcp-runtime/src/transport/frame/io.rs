//! Frames on a Unix stream, both ways, with mapped payloads: what the
//! frame-socket client here and the frame-socket server (`mcp-serve`)
//! share.
//!
//! A message whose JSON is larger than the threshold
//! ([`MAP_THRESHOLD`] by default) is not written into the stream: the
//! sender writes it into a fresh memfd, seals it (no write, no shrinking,
//! no growing, no more seals), and sends a header-only frame with the
//! `MAPPED` flag and the memfd beside it (`SCM_RIGHTS`). The receiver
//! checks that the descriptor is a memfd sealed that way and at least as
//! long as the header says, maps it read-only, and parses the message
//! where it lies: the payload crosses the socket without being copied
//! through it, and the sealing makes the mapping immutable, which is what
//! makes reading it sound.

use std::fs::File;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use bytes::BytesMut;
use mcp_protocol::Message;
use mcp_protocol::codec::frame::{self, Frame, FrameDecoder, FrameKind, Payload};
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use tokio::io::Interest;
use tokio::net::UnixStream;

/// Payloads larger than this many bytes are mapped, not inline: 256 KiB.
pub const MAP_THRESHOLD: usize = 256 * 1024;

/// The seals a mapped payload's memfd must carry.
fn required_seals() -> SealFlag {
    SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW
}

/// How many descriptors one read takes at most.
const MAX_FDS_PER_READ: usize = 16;

/// A received message: parsed from the stream's bytes or from a mapping.
pub type Received = Result<Message<'static>, mcp_protocol::Error>;

/// Counts of what a stream moved, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Frames whose payload went inline.
    pub inline: u64,
    /// Frames whose payload was mapped.
    pub mapped: u64,
}

/// Writes messages as frames on a Unix stream.
pub struct FrameWriter {
    stream: Arc<UnixStream>,
    threshold: usize,
    buf: Vec<u8>,
    moved: Moved,
}

impl FrameWriter {
    /// A writer on `stream` that maps payloads over `threshold` bytes.
    #[must_use]
    pub fn new(stream: Arc<UnixStream>, threshold: usize) -> Self {
        Self {
            stream,
            threshold,
            buf: Vec::with_capacity(8 * 1024),
            moved: Moved::default(),
        }
    }

    /// What it has written so far.
    #[must_use]
    pub fn moved(&self) -> Moved {
        self.moved
    }

    /// Queues `message`: inline, or (when large) mapped and sent at once
    /// after what is queued.
    ///
    /// # Errors
    ///
    /// Writing failed: the stream is unusable.
    pub async fn push(&mut self, message: &Message<'_>) -> std::io::Result<()> {
        if message.size_hint() <= self.threshold {
            frame::encode_message(message, &mut self.buf);
            self.moved.inline += 1;
            return Ok(());
        }
        self.flush().await?;
        let (memfd, length) = sealed_memfd(message)?;
        let id = frame::message_header_id(message);
        let header = frame::mapped_header(FrameKind::Message, id, length);
        send_with_fd(&self.stream, &header, memfd.as_raw_fd()).await?;
        self.moved.mapped += 1;
        Ok(())
    }

    /// Queues an error frame saying why the stream is closing.
    pub fn push_error(&mut self, error: &mcp_protocol::Error) {
        self.buf.extend_from_slice(&frame::error_frame(error));
    }

    /// How many bytes are queued.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.buf.len()
    }

    /// Writes what is queued.
    ///
    /// # Errors
    ///
    /// Writing failed: the stream is unusable.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        let mut written = 0;
        while written < self.buf.len() {
            self.stream.writable().await?;
            let rest = self.buf.get(written..).unwrap_or_default();
            match self.stream.try_write(rest) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        Ok(())
    }
}

/// `message` written into a new memfd, sealed; its length.
fn sealed_memfd(message: &Message<'_>) -> std::io::Result<(OwnedFd, u64)> {
    let fd = memfd_create(
        c"mcp-frame",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let mut file = File::from(fd);
    {
        let mut writer = std::io::BufWriter::with_capacity(64 * 1024, &mut file);
        serde_json::to_writer(&mut writer, message).map_err(std::io::Error::other)?;
        writer.flush()?;
    }
    let length = file.metadata()?.len();
    let fd = OwnedFd::from(file);
    fcntl(
        &fd,
        FcntlArg::F_ADD_SEALS(required_seals() | SealFlag::F_SEAL_SEAL),
    )?;
    Ok((fd, length))
}

/// Sends `bytes` with `fd` beside them (all of `bytes`, the descriptor
/// with the first of them).
async fn send_with_fd(stream: &UnixStream, bytes: &[u8], fd: RawFd) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < bytes.len() {
        stream.writable().await?;
        let rest = bytes.get(sent..).unwrap_or_default();
        let fds = [fd];
        let attached: &[ControlMessage<'_>] = if sent == 0 {
            &[ControlMessage::ScmRights(&fds)]
        } else {
            &[]
        };
        let result = stream.try_io(Interest::WRITABLE, || {
            sendmsg::<()>(
                stream.as_raw_fd(),
                &[IoSlice::new(rest)],
                attached,
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map_err(std::io::Error::from)
        });
        match result {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads frames from a Unix stream, with the descriptors of mapped ones.
pub struct FrameReader {
    stream: Arc<UnixStream>,
    decoder: FrameDecoder,
    buf: BytesMut,
    /// Where each read lands before what arrived is appended to `buf`:
    /// made once, so that a read costs neither zeroing nor allocating.
    scratch: Box<[u8]>,
    /// The space for the descriptors of one read, made once.
    control: Vec<u8>,
    fds: std::collections::VecDeque<OwnedFd>,
    ended: bool,
}

impl FrameReader {
    /// A reader on `stream`, of inline payloads up to `max_inline` bytes and
    /// mapped ones up to `max_mapped` (none when 0).
    #[must_use]
    pub fn new(stream: Arc<UnixStream>, max_inline: usize, max_mapped: u64) -> Self {
        Self {
            stream,
            decoder: FrameDecoder::new(max_inline, max_mapped),
            buf: BytesMut::with_capacity(64 * 1024),
            scratch: vec![0; 64 * 1024].into_boxed_slice(),
            control: nix::cmsg_space!([RawFd; MAX_FDS_PER_READ]),
            fds: std::collections::VecDeque::new(),
            ended: false,
        }
    }

    /// The next frame's message; `None` at the end of the stream. A frame
    /// that cannot be read, a descriptor that is not what it should be, or
    /// a payload that is not a message is an error, after which the stream
    /// is unusable (say why with an error frame, and close).
    pub async fn next(&mut self) -> Option<Received> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => return Some(self.message(frame)),
                Ok(None) => {}
                Err(error) => return Some(Err(error)),
            }
            if self.ended {
                return match self.decoder.decode_eof(&mut self.buf) {
                    Ok(Some(frame)) => Some(self.message(frame)),
                    Ok(None) => None,
                    Err(error) => Some(Err(error)),
                };
            }
            if let Err(error) = self.read().await {
                tracing::debug!("reading a frame socket failed: {error}");
                self.ended = true;
                self.buf.clear();
            }
        }
    }

    /// Reads what is there, and the descriptors with it. Cancel-safe: it
    /// awaits only before it takes anything.
    async fn read(&mut self) -> std::io::Result<()> {
        let stream = self.stream.clone();
        loop {
            stream.readable().await?;
            let mut fds = Vec::new();
            let (scratch, control) = (&mut self.scratch, &mut self.control);
            let result = stream.try_io(Interest::READABLE, || {
                let mut iov = [IoSliceMut::new(scratch)];
                let message = recvmsg::<()>(
                    stream.as_raw_fd(),
                    &mut iov,
                    Some(control),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                )
                .map_err(std::io::Error::from)?;
                for control in message.cmsgs().map_err(std::io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(received) = control {
                        fds.extend(received.into_iter().map(owned));
                    }
                }
                if message.flags.contains(MsgFlags::MSG_CTRUNC) {
                    return Err(std::io::Error::other("too many descriptors in one read"));
                }
                Ok(message.bytes)
            });
            self.fds.extend(fds);
            match result {
                Ok(read) => {
                    self.buf
                        .extend_from_slice(self.scratch.get(..read).unwrap_or_default());
                    if read == 0 {
                        self.ended = true;
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn message(&mut self, frame: Frame) -> Received {
        match (frame.kind, frame.payload) {
            (FrameKind::Message, Payload::Inline(payload)) => parse(&payload),
            (FrameKind::Message, Payload::Mapped { length }) => {
                let fd = self
                    .fds
                    .pop_front()
                    .ok_or_else(|| invalid("a mapped frame came without its descriptor"))?;
                let mapping = map_sealed(fd, length)?;
                parse(mapping.bytes())
            }
            (FrameKind::Error, Payload::Inline(payload)) => Err(invalid(format!(
                "the other side closed the stream: {}",
                String::from_utf8_lossy(&payload)
            ))),
            (FrameKind::Error, Payload::Mapped { .. }) => {
                Err(invalid("the other side closed the stream"))
            }
        }
    }
}

/// A descriptor just received with `SCM_RIGHTS`, owned from now on.
#[allow(unsafe_code)]
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed it in this process for this message
    // alone; nothing else here knows or owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> mcp_protocol::Error {
    mcp_protocol::Error::new(mcp_protocol::ErrorKind::InvalidFrame, message)
}

fn parse(payload: &[u8]) -> Received {
    Message::parse(payload).map(Message::into_owned)
}

/// A mapped payload: the first `length` bytes of a sealed memfd.
enum Mapping {
    Empty,
    Mapped(memmap2::Mmap),
}

impl Mapping {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Empty => &[],
            Self::Mapped(map) => map,
        }
    }
}

/// Maps the first `length` bytes of `fd`, once it is shown to be a memfd
/// sealed against writing, shrinking and growing, at least that long.
fn map_sealed(fd: OwnedFd, length: u64) -> Result<Mapping, mcp_protocol::Error> {
    let seals = fcntl(fd.as_fd(), FcntlArg::F_GET_SEALS)
        .map_err(|_| invalid("a mapped payload's descriptor is not a sealed memfd"))?;
    let seals = SealFlag::from_bits_truncate(seals);
    if !seals.contains(required_seals()) {
        return Err(invalid(
            "a mapped payload's memfd is not sealed against writing, shrinking and growing",
        ));
    }
    let file = File::from(fd);
    let size = file
        .metadata()
        .map_err(|e| invalid(format!("a mapped payload's memfd cannot be read: {e}")))?
        .len();
    if size < length {
        return Err(invalid(format!(
            "a mapped payload's memfd holds {size} bytes, fewer than the {length} its frame claims"
        )));
    }
    if length == 0 {
        return Ok(Mapping::Empty);
    }
    let length = usize::try_from(length)
        .map_err(|_| invalid("a mapped payload is larger than this machine can map"))?;
    // SAFETY: the memfd is sealed against writing, shrinking and growing
    // (checked above), so no process can change or truncate what is mapped
    // while the mapping lives: the bytes behind the slice stay as they are.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::MmapOptions::new().len(length).map(&file) }
        .map_err(|e| invalid(format!("mapping a payload failed: {e}")))?;
    Ok(Mapping::Mapped(map))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::io::Seek;

    use mcp_protocol::raw::Raw;

    use super::*;

    fn pair() -> (Arc<UnixStream>, Arc<UnixStream>) {
        let (a, b) = UnixStream::pair().unwrap();
        (Arc::new(a), Arc::new(b))
    }

    fn big(len: usize) -> Message<'static> {
        Message::response(
            7,
            Raw::from_value(&serde_json::json!({"text": "x".repeat(len)})),
        )
    }

    #[tokio::test]
    async fn small_messages_go_inline_and_large_ones_mapped() {
        let (a, b) = pair();
        let mut writer = FrameWriter::new(a, 1024);
        let mut reader = FrameReader::new(b, 1024, 1 << 30);
        let small = Message::request(1, "ping", None);
        let large = big(4 << 20);
        writer.push(&small).await.unwrap();
        writer.push(&large).await.unwrap();
        writer.push(&small).await.unwrap();
        writer.flush().await.unwrap();
        assert_eq!(
            writer.moved(),
            Moved {
                inline: 2,
                mapped: 1
            }
        );
        assert_eq!(reader.next().await.unwrap().unwrap(), small);
        assert_eq!(reader.next().await.unwrap().unwrap(), large);
        assert_eq!(reader.next().await.unwrap().unwrap(), small);
        drop(writer);
        assert!(reader.next().await.is_none(), "the end of the stream");
    }

    /// Sends a mapped header claiming `length` bytes, with `fd` beside it.
    async fn send_mapped(stream: &UnixStream, length: u64, fd: RawFd) {
        let header = frame::mapped_header(FrameKind::Message, 0, length);
        send_with_fd(stream, &header, fd).await.unwrap();
    }

    async fn refusal(stream: Arc<UnixStream>) -> String {
        let mut reader = FrameReader::new(stream, 1024, 1 << 30);
        reader.next().await.unwrap().unwrap_err().to_string()
    }

    #[tokio::test]
    async fn descriptors_that_are_not_sealed_memfds_of_the_length_claimed_are_refused() {
        let json = br#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        let length = json.len() as u64;

        // A plain file.
        let (a, b) = pair();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(json).unwrap();
        send_mapped(&a, length, file.as_raw_fd()).await;
        assert!(refusal(b).await.contains("not a sealed memfd"));

        // A memfd that is not sealed.
        let (a, b) = pair();
        let memfd = File::from(memfd_create(c"t", MFdFlags::MFD_ALLOW_SEALING).unwrap());
        (&memfd).write_all(json).unwrap();
        send_mapped(&a, length, memfd.as_raw_fd()).await;
        assert!(refusal(b).await.contains("not sealed against writing"));

        // A sealed memfd shorter than claimed.
        let (a, b) = pair();
        let mut memfd = File::from(memfd_create(c"t", MFdFlags::MFD_ALLOW_SEALING).unwrap());
        memfd.write_all(json).unwrap();
        memfd.rewind().unwrap();
        fcntl(&memfd, FcntlArg::F_ADD_SEALS(required_seals())).unwrap();
        send_mapped(&a, length + 1, memfd.as_raw_fd()).await;
        assert!(refusal(b).await.contains("fewer than"));

        // The same memfd, claimed at its length: accepted.
        let (a, b) = pair();
        send_mapped(&a, length, memfd.as_raw_fd()).await;
        let mut reader = FrameReader::new(b, 1024, 1 << 30);
        assert_eq!(
            reader.next().await.unwrap().unwrap(),
            Message::response(1, Raw::from_value(&serde_json::json!({})))
        );

        // A mapped header with no descriptor at all.
        let (a, b) = pair();
        a.try_write(&frame::mapped_header(FrameKind::Message, 0, 8))
            .unwrap();
        assert!(refusal(b).await.contains("without its descriptor"));

        // A mapped payload that is not JSON.
        let (a, b) = pair();
        let memfd = File::from(memfd_create(c"t", MFdFlags::MFD_ALLOW_SEALING).unwrap());
        (&memfd).write_all(b"{nope").unwrap();
        fcntl(&memfd, FcntlArg::F_ADD_SEALS(required_seals())).unwrap();
        send_mapped(&a, 5, memfd.as_raw_fd()).await;
        let mut reader = FrameReader::new(b, 1024, 1 << 30);
        let error = reader.next().await.unwrap().unwrap_err();
        assert_eq!(error.kind(), mcp_protocol::ErrorKind::Parse, "{error}");
    }

    #[tokio::test]
    async fn a_mapped_payload_over_the_limit_is_refused_before_it_is_mapped() {
        let (a, b) = pair();
        let mut writer = FrameWriter::new(a, 16);
        writer.push(&big(64)).await.unwrap();
        let mut reader = FrameReader::new(b, 1024, 32);
        let error = reader.next().await.unwrap().unwrap_err();
        assert_eq!(
            error.kind(),
            mcp_protocol::ErrorKind::MessageTooLarge,
            "{error}"
        );
    }
}
