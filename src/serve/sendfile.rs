//! Zero-copy sending of rendered feeds: each large rendered body also lives in a file, and
//! when hyper hands the connection that body to write, the connection sends it with
//! `sendfile(2)` instead of copying it into the socket.
//!
//! Why: a topic feed is written unchanged to thousands of subscribers, and copying 60 KB of
//! RSS from user memory into the kernel for every one of them was a quarter of the serving
//! threads' time (nginx serves static files the same way, with `sendfile on`).
//!
//! Which file: an unnamed one (`O_TMPFILE`) in the database's directory, else a memfd. Both
//! live in the page cache only while the daemon holds them, but sending from a disk
//! filesystem's page cache costs less than from a memfd: ext4 (checked on Linux 6.18) keeps a
//! file written in one go in large folios, where tmpfs (memfd) without transparent huge pages
//! hands `sendfile` one 4 KiB page at a time. Measured on a 60 KB feed under wrk: 7.0-7.9 us of server CPU per
//! request from such a file, 8.6-9.9 us from a memfd. Unchanged bytes keep their file (see
//! `Rendered`), so a feed that stays the same for minutes is written back to disk at most
//! once, and one that changes every few seconds is dropped before writeback starts.
//!
//! How a write finds its file: [`FileCopy`] registers the address range of the body's bytes
//! with their file for as long as it lives; [`Conn::poll_write_vectored`] looks each buffer
//! hyper passes up in that registry. The bytes cannot be freed (and their address reused)
//! while registered, because the [`FileCopy`] lives next to the `Bytes` that own them in the
//! cache entry and unregisters when dropped. A buffer that is not registered (headers, small
//! bodies, a body whose cache entry was just replaced) is written the ordinary way, so the
//! registry only ever changes how bytes travel, never which bytes.

use std::collections::BTreeMap;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{ready, Context, Poll};

use rustix::fs::{MemfdFlags, Mode, OFlags};
use rustix::net::SendFlags;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Bodies smaller than this are copied: two system calls instead of one would cost more
/// than the copy saves.
pub const MIN_LEN: usize = 16 * 1024;

/// Registered body address ranges: start address -> (length, the file holding those bytes).
type Registry = BTreeMap<usize, (usize, Arc<OwnedFd>)>;
static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(RwLock::default);

/// A file copy of one rendered body, registered under the body's address while it lives.
pub struct FileCopy {
    start: usize,
    fd: Arc<OwnedFd>,
}

impl FileCopy {
    /// Copies `bytes` (which must stay alive and unchanged as long as the result) into a new
    /// unnamed file in `dir` (else a memfd) and registers them. `None` for small bodies, or
    /// when no file can be made (then the body is simply copied on every write).
    pub fn new(bytes: &[u8], dir: Option<&Path>) -> Option<FileCopy> {
        if bytes.len() < MIN_LEN {
            return None;
        }
        let in_dir = dir.map(|dir| {
            let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
            filled(rustix::fs::open(dir, flags, Mode::RUSR | Mode::WUSR), bytes)
                .map_err(|e| tracing::debug!("keeping a rendered feed in {}: {e}", dir.display()))
        });
        let fd = match in_dir {
            Some(Ok(fd)) => fd,
            // No directory, or a filesystem without O_TMPFILE, or a full disk.
            _ => match filled(rustix::fs::memfd_create("newsdesk-feed", MemfdFlags::CLOEXEC), bytes) {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::debug!("keeping a rendered feed in a memfd: {e}");
                    return None;
                }
            },
        };
        let fd = Arc::new(fd);
        let start = bytes.as_ptr() as usize;
        REGISTRY.write().unwrap_or_else(|p| p.into_inner()).insert(start, (bytes.len(), fd.clone()));
        Some(FileCopy { start, fd })
    }
}

/// The new file `fd` with `bytes` written to it in one go (one write lets the filesystem
/// pick large folios).
fn filled(fd: rustix::io::Result<OwnedFd>, bytes: &[u8]) -> io::Result<OwnedFd> {
    let mut file = std::fs::File::from(fd?);
    file.write_all(bytes)?;
    Ok(OwnedFd::from(file))
}

impl Drop for FileCopy {
    fn drop(&mut self) {
        let mut registry = REGISTRY.write().unwrap_or_else(|p| p.into_inner());
        if registry.get(&self.start).is_some_and(|(_, fd)| Arc::ptr_eq(fd, &self.fd)) {
            registry.remove(&self.start);
        }
    }
}

/// The file and offset holding `buf`, when `buf` lies within a registered body.
fn lookup(buf: &[u8]) -> Option<(Arc<OwnedFd>, u64)> {
    let at = buf.as_ptr() as usize;
    let registry = REGISTRY.read().unwrap_or_else(|p| p.into_inner());
    let (&start, (len, fd)) = registry.range(..=at).next_back()?;
    (at + buf.len() <= start + len).then(|| (fd.clone(), (at - start) as u64))
}

/// A TCP connection that sends registered bodies with `sendfile(2)`.
pub struct Conn {
    tcp: TcpStream,
}

impl Conn {
    /// Wraps an accepted connection.
    pub fn new(tcp: TcpStream) -> Conn {
        Conn { tcp }
    }
}

/// Sends `head` (corked with `MSG_MORE`, so it shares a segment with the body), then `len`
/// bytes of `file` from `offset`. Returns how much was sent; `WouldBlock` only if nothing was.
fn send_head_and_file(
    sock: &TcpStream,
    head: &[IoSlice<'_>],
    file: &OwnedFd,
    offset: u64,
    len: usize,
) -> io::Result<usize> {
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    let mut sent = 0;
    for h in head.iter().filter(|h| !h.is_empty()) {
        match rustix::net::send(sock.as_fd(), h, flags | SendFlags::MORE) {
            Ok(n) if n < h.len() => return Ok(sent + n),
            Ok(n) => sent += n,
            Err(e) if sent > 0 && e == rustix::io::Errno::AGAIN => return Ok(sent),
            Err(e) => return Err(e.into()),
        }
    }
    let mut off = offset;
    match rustix::fs::sendfile(sock.as_fd(), file, Some(&mut off), len) {
        Ok(n) => Ok(sent + n),
        Err(e) if sent > 0 && e == rustix::io::Errno::AGAIN => Ok(sent),
        Err(e) => Err(e.into()),
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.as_mut().poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let found = bufs.iter().enumerate().find_map(|(i, b)| {
            if b.len() < MIN_LEN {
                return None;
            }
            lookup(b).map(|(fd, offset)| (i, fd, offset))
        });
        let Some((i, file, offset)) = found else {
            return Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        };
        // The buffers before the body (hyper's head) go first; the ones after it wait for the
        // next call, as a short write allows.
        let (head, len) = (&bufs[..i], bufs[i].len());
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let tcp = &self.tcp;
            match tcp.try_io(Interest::WRITABLE, || send_head_and_file(tcp, head, &file, offset, len)) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn registry_follows_the_copy_and_finds_inner_slices() {
        let body: Vec<u8> = (0..MIN_LEN * 2).map(|i| (i % 251) as u8).collect();
        assert!(FileCopy::new(&body[..100], None).is_none(), "small bodies are copied");
        let copy = FileCopy::new(&body, None).unwrap();
        let (_, off) = lookup(&body[1000..]).unwrap();
        assert_eq!(off, 1000);
        assert!(lookup(&body).is_some());
        drop(copy);
        assert!(lookup(&body).is_none(), "unregistered when dropped");
    }

    #[test]
    fn copies_go_to_an_unnamed_file_in_the_directory_else_a_memfd() {
        use std::os::fd::AsRawFd;
        let dir = std::env::temp_dir().join(format!("newsdesk-sendfile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = |c: &FileCopy| std::fs::read_link(format!("/proc/self/fd/{}", c.fd.as_raw_fd())).unwrap();
        let body: Vec<u8> = (0..MIN_LEN * 3).map(|i| (i % 249) as u8).collect();
        let copy = FileCopy::new(&body, Some(&dir)).unwrap();
        // Where the filesystem has O_TMPFILE (ext4, XFS, btrfs, tmpfs), the copy is there.
        let probe = rustix::fs::open(&dir, OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC, Mode::RUSR);
        if probe.is_ok() {
            assert!(target(&copy).starts_with(&dir), "{:?}", target(&copy));
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the file has no name");
        let mut back = vec![0u8; body.len() + 1];
        assert_eq!(rustix::io::pread(&*copy.fd, &mut back, 0).unwrap(), body.len());
        assert!(back[..body.len()] == body[..]);
        drop(copy);
        let elsewhere = FileCopy::new(&body, Some(&dir.join("missing"))).unwrap();
        assert!(target(&elsewhere).to_string_lossy().starts_with("/memfd:"), "{:?}", target(&elsewhere));
        std::fs::remove_dir(&dir).unwrap();
    }

    #[tokio::test]
    async fn registered_bodies_arrive_whole_after_their_head() {
        // From a memfd and from an unnamed file in the temporary directory.
        for dir in [None, Some(std::env::temp_dir())] {
            send_and_check(dir.as_deref()).await;
        }
    }

    async fn send_and_check(dir: Option<&Path>) {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let _copy = FileCopy::new(&body, dir).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            all
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let mut conn = Conn::new(tcp);
        let head = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        // Resume after short writes the way hyper does: advance through head, then body.
        let (mut h, mut b) = (&head[..], &body[..]);
        while !h.is_empty() || !b.is_empty() {
            let n = conn.write_vectored(&[IoSlice::new(h), IoSlice::new(b)]).await.unwrap();
            let from_head = n.min(h.len());
            h = &h[from_head..];
            b = &b[n - from_head..];
        }
        conn.shutdown().await.unwrap();
        let got = reader.await.unwrap();
        assert_eq!(&got[..head.len()], &head[..]);
        assert!(got[head.len()..] == body[..], "body bytes differ");
    }

    /// Through hyper, as served: head and a registered body over keep-alive, twice, and the
    /// bytes a client reads are the response exactly (Content-Length, then the body).
    #[tokio::test]
    async fn hyper_responses_with_registered_bodies_arrive_intact() {
        let body = axum::body::Bytes::from((0..300_000u32).map(|i| (i % 241) as u8).collect::<Vec<u8>>());
        let _copy = FileCopy::new(&body, None).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = body.clone();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(move |_req| {
                let b = served.clone();
                async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(axum::body::Body::from(b))) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(Conn::new(tcp)), service)
                .await;
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        for _ in 0..2 {
            client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            let head_end = loop {
                let n = client.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed early");
                got.extend_from_slice(&buf[..n]);
                if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
            assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
            while got.len() < head_end + body.len() {
                let n = client.read(&mut buf).await.unwrap();
                assert!(n > 0, "body cut short");
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got.len(), head_end + body.len(), "bytes past the body");
            assert!(got[head_end..] == body[..], "body bytes differ");
        }
    }
}
