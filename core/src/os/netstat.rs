//! What every platform shares of netstat2: its TCP states in the protocol's words (Linux reads
//! the netlink dump through netstat2, Windows and macOS their socket tables).

use netstat2::TcpState;
use portscope_shared::SocketState;

/// A netstat2 TCP state as the protocol names it.
pub fn tcp_state(state: TcpState) -> SocketState {
    match state {
        TcpState::Listen => SocketState::Listen,
        TcpState::Established => SocketState::Established,
        TcpState::SynSent => SocketState::SynSent,
        TcpState::SynReceived => SocketState::SynRecv,
        TcpState::FinWait1 => SocketState::FinWait1,
        TcpState::FinWait2 => SocketState::FinWait2,
        TcpState::TimeWait => SocketState::TimeWait,
        TcpState::Closed => SocketState::Close,
        TcpState::CloseWait => SocketState::CloseWait,
        TcpState::LastAck => SocketState::LastAck,
        TcpState::Closing => SocketState::Closing,
        TcpState::DeleteTcb | TcpState::Unknown => SocketState::Unknown,
    }
}
