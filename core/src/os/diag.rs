//! Linux: one TCP connection read by its two ends — a netlink `sock_diag` request for a single
//! socket (`inet_diag_req_v2` without `NLM_F_DUMP`, the kernel's `inet_diag_find_one_icsk`),
//! so that a connection the kernel reported changing is read again without a dump of every
//! socket (#22). netstat2 only dumps; the messages are netlink-packet-sock-diag's, sent on a
//! netlink-sys socket kept open for the agent's life.

use std::net::SocketAddr;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::{Socket, protocols::NETLINK_SOCK_DIAG};
use portscope_shared::{Proto, SocketState};

use super::RawSocket;

/// `ENOENT`: no socket has those ends.
const NO_SUCH_SOCKET: i32 = 2;

/// An open `sock_diag` socket for single lookups.
#[derive(Debug)]
pub struct Lookup {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Lookup {
    pub fn open() -> std::io::Result<Self> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
        Ok(Self {
            socket,
            seq: 0,
            buf: vec![0; 8192],
        })
    }

    /// The TCP socket whose own end is `local` and other end `remote`, as the dump would show
    /// it; `Ok(None)` when there is none. (Where no connection matches, the kernel answers
    /// with the listener on `local`'s port: that is not the connection, so `None` too.) An
    /// IPv6 link-local end is an error: its socket is bound to an interface, which the
    /// lookup must name (the kernel's change does not), else it finds none.
    pub fn connection(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> std::io::Result<Option<RawSocket>> {
        let family = match (local, remote) {
            (SocketAddr::V4(_), SocketAddr::V4(_)) => AF_INET,
            (SocketAddr::V6(l), SocketAddr::V6(r))
                if l.ip().is_unicast_link_local() || r.ip().is_unicast_link_local() =>
            {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "a link-local connection is read with its interface, which is not known",
                ));
            }
            (SocketAddr::V6(_), SocketAddr::V6(_)) => AF_INET6,
            _ => return Ok(None),
        };
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id: SocketId {
                    source_port: local.port(),
                    destination_port: remote.port(),
                    source_address: local.ip(),
                    destination_address: remote.ip(),
                    interface_id: 0,
                    // INET_DIAG_NOCOOKIE: any socket with these ends.
                    cookie: [0xff; 8],
                },
            })
            .into(),
        );
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0)?;
        loop {
            let size = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message =
                    NetlinkMessage::<SockDiagMessage>::deserialize(&self.buf[offset..size])
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                let length = message.header.length as usize;
                // An answer to an earlier request that timed out is not this one's.
                if message.header.sequence_number == self.seq {
                    match message.payload {
                        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                            return Ok(same_ends(&r.header, local, remote));
                        }
                        NetlinkPayload::Error(e) => {
                            let code = e.code.map_or(0, |c| -c.get());
                            if code == NO_SUCH_SOCKET {
                                return Ok(None);
                            }
                            return Err(std::io::Error::from_raw_os_error(code));
                        }
                        other => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                format!("sock_diag answered {other:?}"),
                            ));
                        }
                    }
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

/// The answer as a [`RawSocket`] when it is the socket asked for.
fn same_ends(
    header: &netlink_packet_sock_diag::inet::InetResponseHeader,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<RawSocket> {
    let id = &header.socket_id;
    let same = header.state != TCP_LISTEN
        && id.source_address == local.ip()
        && id.source_port == local.port()
        && id.destination_address == remote.ip()
        && id.destination_port == remote.port();
    if !same {
        return None;
    }
    let state = super::netstat::tcp_state(netstat2::TcpState::from(header.state));
    Some(RawSocket {
        proto: Proto::Tcp,
        local_addr: local.ip(),
        local_port: local.port(),
        remote: Some((remote.ip(), remote.port())),
        state,
        inode: u64::from(header.inode),
        // As the dump shows it (`convert`): a TIME_WAIT socket belongs to no one.
        uid: (state != SocketState::TimeWait).then_some(header.uid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_read_by_its_ends_and_a_closed_one_is_none() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let mine = client.local_addr().unwrap();
        let mut lookup = Lookup::open().unwrap();

        let seen = lookup.connection(mine, server).unwrap().unwrap();
        assert_eq!(seen.state, SocketState::Established);
        assert_eq!((seen.local_addr, seen.local_port), (mine.ip(), mine.port()));
        assert_ne!(seen.inode, 0);
        let other = lookup.connection(server, mine).unwrap().unwrap();
        assert_ne!(
            other.inode, seen.inode,
            "the accepted end is its own socket"
        );

        // Closed: the accepted end is gone (the kernel would answer with the listener, which
        // is not it), the client's waits in TIME_WAIT and belongs to no one.
        drop(client);
        drop(accepted);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while lookup.connection(server, mine).unwrap().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "the accepted end did not go"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let waiting = lookup.connection(mine, server).unwrap().unwrap();
        assert_eq!(waiting.state, SocketState::TimeWait);
        assert_eq!((waiting.inode, waiting.uid), (0, None));
        drop(listener);
        let unknown: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(lookup.connection(unknown, mine).unwrap(), None);
    }
}
