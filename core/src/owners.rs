//! Which processes hold which socket inodes, kept between scans so that a tick reads a process's
//! file descriptors only where something changed.
//!
//! Finding owners means reading every descriptor of every process (`/proc/<pid>/fd` on Linux):
//! that walk is most of what `ss -p` and `lsof` spend. [`OwnerMap`] does it once, then on each
//! tick walks only
//!
//! 1. processes that are new since the last tick (a fork inherits its parent's sockets);
//! 2. processes whose descriptor count changed ([`Platform::fd_count`]: a socket received over a
//!    Unix socket, an accepted connection, a closed one);
//! 3. while some socket in the dump has no known owner: the processes most likely to hold it
//!    first (the owners of listeners on the same local port, which is where accepted
//!    connections come from, then every process that holds sockets, smallest first), stopping as soon as all are found; only
//!    a socket still unowned on a second tick — or a listener, at once — makes it walk every
//!    process, and one that no
//!    process holds is then remembered as ownerless until it goes away;
//! 4. a bounded sweep: every process is walked again at least every [`SWEEP_TICKS`] ticks (a
//!    few per tick, each once it is half that old), which catches what the count cannot see (a
//!    descriptor passed while another closed in the same tick). On kernels before 6.2, which
//!    report no count, the platform counts the entries of the descriptor directory instead.
//!
//! [`OwnerMap::refresh_part`] does 1 and 2 and the likely holders of 3 for a few connections
//! read alone, without a dump (#22); what it cannot find waits for the next full refresh.
//!
//! A process that exits is dropped with its sockets at once (it is missing from the process
//! list); one that exits in the middle of a walk is treated the same way. One exception: the
//! dump is read before the processes, so a process that exits or closes a socket between the
//! two leaves a socket in the dump that it no longer holds. Where no other process is found
//! holding such a socket, it keeps the holder it had, for that tick only: it was that
//! process's when the dump was read, so the dump and its owners agree, and the socket's closing
//! (on the next tick) names its owner, in the same tick as the owner's exit.

use std::collections::{HashMap, HashSet};

use portscope_shared::SocketState;

use crate::os::{FdError, Platform, RawSocket};

/// Every process is walked again at least this often (in ticks), whatever its count says.
pub const SWEEP_TICKS: u64 = 60;

/// What is known about one process's descriptors.
#[derive(Debug)]
struct Tracked {
    /// Socket inodes found by the last walk.
    inodes: Vec<u64>,
    /// Descriptor count when last walked; `None` where the platform gives none.
    fds: Option<usize>,
    /// Tick of the last walk (the sweep's age).
    walked: u64,
    /// Pass ([`OwnerMap::refresh`] or [`OwnerMap::refresh_part`]) of the last walk.
    pass: u64,
    /// `false` when its descriptors cannot be read (another user's process while not root).
    readable: bool,
}

/// How much one [`OwnerMap::refresh`] read, for the debug log and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Processes listed.
    pub processes: usize,
    /// Processes whose descriptors were read this tick.
    pub walked: usize,
}

/// Socket inode → owner pids, kept up to date incrementally; see the module documentation.
#[derive(Debug, Default)]
pub struct OwnerMap {
    procs: HashMap<u32, Tracked>,
    by_inode: HashMap<u64, Vec<u32>>,
    /// Inodes that a walk of every process did not find; forgotten when the socket goes away.
    ownerless: HashSet<u64>,
    /// Inodes unknown at the end of the last tick (searched everywhere if still unknown).
    unknown_before: HashSet<u64>,
    /// Sockets this tick's walks (or exits) took from a holder: `(inode, pid)`.
    let_go: Vec<(u64, u32)>,
    /// Sockets of this tick's dump shown with a holder that let go of them after the dump (see
    /// the module documentation): dropped at the next refresh.
    held_over: Vec<(u64, u32)>,
    tick: u64,
    /// Refreshes, full or partial: what one walked is not walked again in it.
    pass: u64,
    /// Why owners are missing, when the process list could not be read.
    error: Option<String>,
}

impl OwnerMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// The pids holding `inode`, in the order found (unsorted; may repeat after a fork).
    pub fn pids(&self, inode: u64) -> &[u32] {
        self.by_inode.get(&inode).map_or(&[], Vec::as_slice)
    }

    /// Processes whose descriptors could not be read.
    pub fn unreadable(&self) -> usize {
        self.procs.values().filter(|t| !t.readable).count()
    }

    /// Why no owners are known, when the process list itself could not be read.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Brings the map up to date for the sockets of one dump.
    pub fn refresh<P: Platform + ?Sized>(
        &mut self,
        platform: &mut P,
        sockets: &[RawSocket],
    ) -> WalkStats {
        self.tick += 1;
        self.pass += 1;
        let tick = self.tick;
        for (inode, pid) in std::mem::take(&mut self.held_over) {
            self.unmap(inode, pid);
        }
        self.let_go.clear();
        let mut stats = WalkStats::default();
        let Some(pids) = self.walk_new_and_changed(platform, &mut stats) else {
            return stats;
        };

        // 3: sockets nobody is known to hold.
        let wanted: HashSet<u64> = sockets
            .iter()
            .map(|s| s.inode)
            .filter(|&i| i != 0)
            .collect();
        self.ownerless.retain(|i| wanted.contains(i));
        let mut unknown: HashSet<u64> = wanted
            .iter()
            .copied()
            .filter(|i| !self.by_inode.contains_key(i) && !self.ownerless.contains(i))
            .collect();
        if !unknown.is_empty() {
            let candidates = self.likely_holders(sockets, &unknown);
            self.search(platform, candidates, &mut unknown, &mut stats);
            // Still unknown on two ticks in a row, or a listener (rare, and what people look
            // for: a new server must not show "owner hidden" for a tick): search every process,
            // then give up on it.
            let listeners: HashSet<u64> = sockets
                .iter()
                .filter(|s| unknown.contains(&s.inode) && is_listener(s))
                .map(|s| s.inode)
                .collect();
            if unknown
                .iter()
                .any(|i| self.unknown_before.contains(i) || listeners.contains(i))
            {
                self.search(platform, pids.iter().copied(), &mut unknown, &mut stats);
                let stale: Vec<u64> = unknown
                    .into_iter()
                    .filter(|i| self.unknown_before.contains(i) || listeners.contains(i))
                    .collect();
                self.ownerless.extend(stale);
            }
        }

        // 4: the sweep, oldest walks first. A process becomes due at half the period, and all
        // due ones are walked within the other half, so none goes unwalked for longer.
        let half = SWEEP_TICKS / 2;
        let budget = pids.len().div_ceil(half as usize);
        let mut due: Vec<(u64, u32)> = self
            .procs
            .iter()
            .filter(|(_, t)| tick - t.walked >= half)
            .map(|(&pid, t)| (t.walked, pid))
            .collect();
        due.sort_unstable();
        for (_, pid) in due.into_iter().take(budget) {
            let count = platform.fd_count(pid);
            self.walk(platform, pid, count, &mut stats);
        }
        // A socket of the dump that no process was found holding keeps the holder that let go
        // of it since the dump (exited, or closed it), for this tick.
        for (inode, pid) in std::mem::take(&mut self.let_go) {
            if !wanted.contains(&inode) {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = self.by_inode.entry(inode) {
                e.insert(vec![pid]);
                self.ownerless.remove(&inode);
                self.held_over.push((inode, pid));
            }
        }
        // Unknown now: also the sockets whose only known holder a walk above (search or sweep)
        // found without them, having passed them on unseen, and those held over; searched
        // everywhere if still unknown on the next tick.
        self.unknown_before = wanted
            .iter()
            .copied()
            .filter(|i| !self.by_inode.contains_key(i) && !self.ownerless.contains(i))
            .chain(self.held_over.iter().map(|&(i, _)| i))
            .collect();
        stats
    }

    /// Lists the processes, drops the exited ones, and walks the new ones and those whose
    /// descriptor count changed (steps 1 and 2). `None` when the list cannot be read (then
    /// nothing is known).
    fn walk_new_and_changed<P: Platform + ?Sized>(
        &mut self,
        platform: &mut P,
        stats: &mut WalkStats,
    ) -> Option<Vec<u32>> {
        let pids = match platform.pids() {
            Ok(pids) => {
                self.error = None;
                pids
            }
            Err(e) => {
                self.error = Some(format!(
                    "cannot list processes, so no socket owners are known: {e}"
                ));
                self.procs.clear();
                self.by_inode.clear();
                return None;
            }
        };
        stats.processes = pids.len();
        let listed: HashSet<u32> = pids.iter().copied().collect();
        let gone: Vec<u32> = self
            .procs
            .keys()
            .copied()
            .filter(|pid| !listed.contains(pid))
            .collect();
        for pid in gone {
            self.let_go(pid, &[]);
            self.forget(pid);
        }
        for &pid in &pids {
            let count = platform.fd_count(pid);
            let walk = match self.procs.get(&pid) {
                None => true,
                Some(t) => t.readable && count.is_some() && count != t.fds,
            };
            if walk {
                self.walk(platform, pid, count, stats);
            }
        }
        Some(pids)
    }

    /// Brings the map up to date for a few sockets read alone, without a dump (connections the
    /// kernel reported changing, #22), as a tick of [`OwnerMap::refresh`] would for them: what
    /// the last tick held over is dropped, new processes and those whose descriptor count
    /// changed are walked, then — while some of `inodes` has no known holder — the processes
    /// in `likely` (the owners of listeners on their ports, where accepted connections come
    /// from) and every process known to hold sockets, fewest first, stopping once all are
    /// found. A socket still unknown is left to the next full refresh, which searches every
    /// process for it (never here: without root, another user's connections would have every
    /// process walked on each read). The sweep's ages count full refreshes only.
    pub fn refresh_part<P: Platform + ?Sized>(
        &mut self,
        platform: &mut P,
        inodes: &[u64],
        likely: &[u32],
    ) -> WalkStats {
        self.pass += 1;
        for (inode, pid) in std::mem::take(&mut self.held_over) {
            self.unmap(inode, pid);
        }
        self.let_go.clear();
        let mut stats = WalkStats::default();
        if self.walk_new_and_changed(platform, &mut stats).is_none() {
            return stats;
        }
        let mut unknown: HashSet<u64> = inodes
            .iter()
            .copied()
            .filter(|&i| i != 0 && !self.by_inode.contains_key(&i) && !self.ownerless.contains(&i))
            .collect();
        if unknown.is_empty() {
            return stats;
        }
        let mut order: Vec<u32> = likely.to_vec();
        order.extend(self.holders_fewest_first(&likely.iter().copied().collect()));
        self.search(platform, order, &mut unknown, &mut stats);
        self.unknown_before.extend(unknown);
        stats
    }

    /// Walks the processes in `order` (each readable one once a pass) until every inode of
    /// `unknown` has a known holder; those found are taken out of `unknown`.
    fn search<P: Platform + ?Sized>(
        &mut self,
        platform: &mut P,
        order: impl IntoIterator<Item = u32>,
        unknown: &mut HashSet<u64>,
        stats: &mut WalkStats,
    ) {
        for pid in order {
            if unknown.is_empty() {
                break;
            }
            if self
                .procs
                .get(&pid)
                .is_some_and(|t| t.pass == self.pass || !t.readable)
            {
                continue;
            }
            let count = platform.fd_count(pid);
            self.walk(platform, pid, count, stats);
            unknown.retain(|i| !self.by_inode.contains_key(i));
        }
    }

    /// Pids to search for `unknown` inodes, most likely first: owners of listeners on the same
    /// local ports (an accepted connection has its listener's port), then every other process known to hold sockets, those with the fewest
    /// first (a walk costs one read per descriptor, so a process with 10 000 connections is
    /// walked last).
    fn likely_holders(&self, sockets: &[RawSocket], unknown: &HashSet<u64>) -> Vec<u32> {
        let ports: HashSet<u16> = sockets
            .iter()
            .filter(|s| unknown.contains(&s.inode))
            .map(|s| s.local_port)
            .collect();
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        let listeners = sockets
            .iter()
            .filter(|s| s.state == SocketState::Listen && ports.contains(&s.local_port));
        for s in listeners {
            for &pid in self.pids(s.inode) {
                if seen.insert(pid) {
                    order.push(pid);
                }
            }
        }
        order.extend(self.holders_fewest_first(&seen));
        order
    }

    /// Every process known to hold sockets, except `except`, those with the fewest first.
    fn holders_fewest_first(&self, except: &HashSet<u32>) -> Vec<u32> {
        let mut holders: Vec<(usize, u32)> = self
            .procs
            .iter()
            .filter(|(pid, t)| !t.inodes.is_empty() && !except.contains(pid))
            .map(|(&pid, t)| (t.inodes.len(), pid))
            .collect();
        holders.sort_unstable();
        holders.into_iter().map(|(_, pid)| pid).collect()
    }

    /// Reads one process's descriptors and replaces what was known about it.
    fn walk<P: Platform + ?Sized>(
        &mut self,
        platform: &mut P,
        pid: u32,
        count: Option<usize>,
        stats: &mut WalkStats,
    ) {
        stats.walked += 1;
        let found = platform.socket_inodes(pid).map(|mut inodes| {
            inodes.sort_unstable();
            inodes.dedup();
            inodes
        });
        self.let_go(pid, found.as_deref().unwrap_or_default());
        self.forget(pid);
        let tracked = match found {
            Ok(inodes) => {
                for &inode in &inodes {
                    self.by_inode.entry(inode).or_default().push(pid);
                    self.ownerless.remove(&inode);
                }
                Tracked {
                    inodes,
                    fds: count,
                    walked: self.tick,
                    pass: self.pass,
                    readable: true,
                }
            }
            // Exited between the listing and the walk: its sockets went with it.
            Err(FdError::Gone) => return,
            Err(FdError::Unreadable) => Tracked {
                inodes: Vec::new(),
                fds: None,
                walked: self.tick,
                pass: self.pass,
                readable: false,
            },
        };
        self.procs.insert(pid, tracked);
    }

    /// Drops what is known of `pid` (it exited, is about to be walked again, or its pid was
    /// reused): the next refresh reads it as a new process.
    pub fn forget(&mut self, pid: u32) {
        let Some(old) = self.procs.remove(&pid) else {
            return;
        };
        for inode in old.inodes {
            self.unmap(inode, pid);
        }
    }

    /// Notes the sockets `pid` was known to hold and does not hold now (`now`, sorted).
    fn let_go(&mut self, pid: u32, now: &[u64]) {
        if let Some(t) = self.procs.get(&pid) {
            self.let_go.extend(
                t.inodes
                    .iter()
                    .filter(|i| now.binary_search(i).is_err())
                    .map(|&i| (i, pid)),
            );
        }
    }

    /// The sockets shown this tick with a holder that let go of them after the dump.
    #[cfg(test)]
    fn held_over(&self) -> &[(u64, u32)] {
        &self.held_over
    }

    /// Takes `pid` off the holders of `inode`.
    fn unmap(&mut self, inode: u64, pid: u32) {
        if let Some(pids) = self.by_inode.get_mut(&inode) {
            pids.retain(|&p| p != pid);
            if pids.is_empty() {
                self.by_inode.remove(&inode);
            }
        }
    }
}

/// A TCP listener or an unconnected UDP socket: what a server opens.
fn is_listener(s: &RawSocket) -> bool {
    s.state == SocketState::Listen
        || (s.proto == portscope_shared::Proto::Udp && s.remote.is_none())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::{IpAddr, Ipv4Addr};

    use portscope_shared::Proto;
    use proptest::prelude::*;

    use super::*;
    use crate::os::{ProcessStat, RawProcess, SocketList};

    /// A descriptor: a socket (its inode) or some other file.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Fd {
        Socket(u64),
        File,
    }

    /// A machine's process table, changed by the tests between refreshes.
    #[derive(Default)]
    struct Machine {
        procs: BTreeMap<u32, Vec<Fd>>,
        /// Listed, but gone by the time its descriptors are read.
        exits_when_walked: Option<u32>,
        unreadable: Vec<u32>,
        /// Whether `fd_count` answers (Linux 6.2+).
        counts: bool,
        next_inode: u64,
        next_pid: u32,
        /// Walks done, per pid.
        walks: HashMap<u32, usize>,
        /// Sockets the dump shows listening (the others are connections).
        listening: BTreeSet<u64>,
    }

    impl Machine {
        fn new() -> Self {
            Self {
                counts: true,
                next_inode: 1000,
                next_pid: 100,
                ..Self::default()
            }
        }
        fn spawn(&mut self, sockets: usize) -> u32 {
            let pid = self.next_pid;
            self.next_pid += 1;
            let fds = (0..sockets).map(|_| self.new_socket()).collect();
            self.procs.insert(pid, fds);
            pid
        }
        fn new_socket(&mut self) -> Fd {
            self.next_inode += 1;
            Fd::Socket(self.next_inode)
        }
        fn fork(&mut self, parent: u32) -> u32 {
            let fds = self.procs[&parent].clone();
            let child = self.spawn(0);
            self.procs.insert(child, fds);
            child
        }
        /// The dump: every socket some process holds, on port `inode % 50`.
        fn dump(&self) -> Vec<RawSocket> {
            let mut inodes: Vec<u64> = self
                .procs
                .values()
                .flatten()
                .filter_map(|fd| match fd {
                    Fd::Socket(i) => Some(*i),
                    Fd::File => None,
                })
                .collect();
            inodes.sort_unstable();
            inodes.dedup();
            inodes
                .into_iter()
                .map(|inode| RawSocket {
                    proto: Proto::Tcp,
                    local_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    local_port: (inode % 50) as u16,
                    remote: None,
                    state: if self.listening.contains(&inode) {
                        SocketState::Listen
                    } else {
                        SocketState::Established
                    },
                    inode,
                    uid: Some(1000),
                })
                .collect()
        }
    }

    impl Platform for Machine {
        fn sockets(&mut self) -> Result<SocketList, crate::os::ReadError> {
            Ok(SocketList {
                sockets: self.dump(),
                errors: vec![],
            })
        }
        fn pids(&mut self) -> Result<Vec<u32>, crate::os::ReadError> {
            Ok(self.procs.keys().copied().collect())
        }
        fn fd_count(&mut self, pid: u32) -> Option<usize> {
            self.procs.get(&pid).filter(|_| self.counts).map(Vec::len)
        }
        fn socket_inodes(&mut self, pid: u32) -> Result<Vec<u64>, FdError> {
            *self.walks.entry(pid).or_default() += 1;
            if self.exits_when_walked == Some(pid) {
                self.procs.remove(&pid);
                return Err(FdError::Gone);
            }
            if self.unreadable.contains(&pid) {
                return Err(FdError::Unreadable);
            }
            let fds = self.procs.get(&pid).ok_or(FdError::Gone)?;
            Ok(fds
                .iter()
                .filter_map(|fd| match fd {
                    Fd::Socket(i) => Some(*i),
                    Fd::File => None,
                })
                .collect())
        }
        fn process(&mut self, _: u32) -> Option<RawProcess> {
            None
        }
        fn stat(&mut self, _: u32) -> Option<ProcessStat> {
            None
        }
        fn euid(&self) -> Option<u32> {
            Some(0)
        }
        fn cwd(&mut self, _: u32) -> Option<String> {
            None
        }
    }

    /// inode → sorted owners, for every socket in the dump.
    fn owners_of(map: &OwnerMap, sockets: &[RawSocket]) -> BTreeMap<u64, Vec<u32>> {
        sockets
            .iter()
            .map(|s| {
                let mut pids = map.pids(s.inode).to_vec();
                pids.sort_unstable();
                pids.dedup();
                (s.inode, pids)
            })
            .collect()
    }

    /// The truth, read from the machine's process table (not through [`OwnerMap`]): inode →
    /// sorted pids holding it, for every socket some process holds (which is the dump).
    fn truth(machine: &Machine) -> BTreeMap<u64, Vec<u32>> {
        let mut owners: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for (&pid, fds) in &machine.procs {
            for fd in fds {
                if let Fd::Socket(inode) = *fd {
                    owners.entry(inode).or_default().push(pid);
                }
            }
        }
        for pids in owners.values_mut() {
            pids.dedup();
        }
        owners
    }

    fn tick(map: &mut OwnerMap, machine: &mut Machine) -> (WalkStats, BTreeMap<u64, Vec<u32>>) {
        let sockets = machine.dump();
        let stats = map.refresh(machine, &sockets);
        (stats, owners_of(map, &sockets))
    }

    #[test]
    fn an_unchanged_machine_is_not_walked_again() {
        let mut m = Machine::new();
        for _ in 0..5 {
            m.spawn(3);
        }
        let mut map = OwnerMap::new();
        let (first, _) = tick(&mut map, &mut m);
        assert_eq!(first.walked, 5);
        let (second, owners) = tick(&mut map, &mut m);
        assert_eq!(second.walked, 0);
        assert_eq!(owners, truth(&m));
    }

    #[test]
    fn a_fork_an_accepted_connection_and_an_exit_are_seen_on_the_next_tick() {
        let mut m = Machine::new();
        let server = m.spawn(1);
        let idle = m.spawn(2);
        let mut map = OwnerMap::new();
        tick(&mut map, &mut m);

        let child = m.fork(server);
        let (stats, owners) = tick(&mut map, &mut m);
        assert_eq!(stats.walked, 1, "only the child");
        let listener = match m.procs[&server][0] {
            Fd::Socket(i) => i,
            Fd::File => unreachable!(),
        };
        assert_eq!(owners[&listener], vec![server, child]);

        // The server accepts (count changes) and the parent exits.
        let conn = m.new_socket();
        m.procs.get_mut(&child).unwrap().push(conn);
        m.procs.remove(&server);
        let (stats, owners) = tick(&mut map, &mut m);
        assert_eq!(stats.walked, 1, "only the child, whose count changed");
        assert_eq!(owners[&listener], vec![child]);
        assert_eq!(
            m.walks[&idle], 1,
            "an unchanged process is not walked again"
        );
        assert_eq!(owners, truth(&m));
    }

    #[test]
    fn a_socket_replacing_another_is_found_where_it_most_likely_is() {
        let mut m = Machine::new();
        let pids: Vec<u32> = (0..10).map(|_| m.spawn(4)).collect();
        let mut map = OwnerMap::new();
        tick(&mut map, &mut m);
        // pids[7] closes a socket and opens one: same count, one unknown inode.
        let new = m.new_socket();
        m.procs.get_mut(&pids[7]).unwrap()[0] = new;
        let (stats, owners) = tick(&mut map, &mut m);
        assert!(stats.walked <= 8, "stops once found: {stats:?}");
        assert_eq!(owners, truth(&m));
    }

    #[test]
    fn the_search_walks_small_processes_before_big_ones() {
        let mut m = Machine::new();
        for _ in 0..5 {
            m.spawn(500);
        }
        let small = m.spawn(1);
        let mut map = OwnerMap::new();
        tick(&mut map, &mut m);
        // The small process closes its listener and opens another in the same tick.
        let new = m.new_socket();
        m.procs.get_mut(&small).unwrap()[0] = new;
        let (stats, owners) = tick(&mut map, &mut m);
        assert_eq!(stats.walked, 1, "only the small process: {stats:?}");
        assert_eq!(owners, truth(&m));
    }

    #[test]
    fn a_new_listener_is_found_in_its_first_tick_even_when_the_count_hides_it() {
        let mut m = Machine::new();
        for _ in 0..3 {
            m.spawn(2);
        }
        // A process that holds no socket yet (a server starting up): one file open.
        let server = m.spawn(0);
        m.procs.get_mut(&server).unwrap().push(Fd::File);
        let mut map = OwnerMap::new();
        tick(&mut map, &mut m);
        // It closes the file and opens its listener in the same tick: its count stays, and it
        // is not among the processes known to hold sockets.
        let listener = m.new_socket();
        m.procs.get_mut(&server).unwrap()[0] = listener;
        if let Fd::Socket(inode) = listener {
            m.listening.insert(inode);
        }
        let (_, owners) = tick(&mut map, &mut m);
        assert_eq!(owners, truth(&m), "the listener's owner, in the same tick");

        // A connection found that way waits a tick, as before (connections come by thousands).
        let other = m.spawn(0);
        m.procs.get_mut(&other).unwrap().push(Fd::File);
        tick(&mut map, &mut m);
        m.procs.get_mut(&other).unwrap()[0] = m.new_socket();
        let (stats, owners) = tick(&mut map, &mut m);
        assert_ne!(owners, truth(&m), "{stats:?}");
        let (_, owners) = tick(&mut map, &mut m);
        assert_eq!(owners, truth(&m));
    }

    #[test]
    fn a_process_exiting_mid_walk_takes_its_sockets_with_it() {
        let mut m = Machine::new();
        let a = m.spawn(2);
        let b = m.spawn(2);
        m.exits_when_walked = Some(b);
        let sockets = m.dump();
        let mut map = OwnerMap::new();
        map.refresh(&mut m, &sockets);
        assert_eq!(map.procs.len(), 1);
        let owners = owners_of(&map, &sockets);
        assert_eq!(owners.values().filter(|p| p.is_empty()).count(), 2);
        assert_eq!(owners.values().filter(|p| **p == vec![a]).count(), 2);
        // Next tick, b's sockets are gone from the dump too: nothing left to search for.
        let (stats, _) = tick(&mut map, &mut m);
        assert_eq!(stats.walked, 0);
    }

    #[test]
    fn a_process_exiting_after_the_dump_keeps_its_sockets_for_that_tick_only() {
        let mut m = Machine::new();
        let server = m.spawn(1);
        let other = m.spawn(1);
        let Fd::Socket(listener) = m.procs[&server][0] else {
            unreachable!()
        };
        m.listening.insert(listener);
        let mut map = OwnerMap::new();
        tick(&mut map, &mut m);
        // The dump still has its listener; by the process list the server has exited.
        let sockets = m.dump();
        m.procs.remove(&server);
        map.refresh(&mut m, &sockets);
        assert_eq!(
            map.pids(listener),
            [server],
            "its listener, as the dump saw it"
        );
        assert!(
            !map.procs.contains_key(&server),
            "the process itself is gone"
        );
        // Next tick: dropped, whether the socket lingers in the dump or not.
        map.refresh(&mut m, &sockets);
        assert!(map.pids(listener).is_empty());
        let (_, owners) = tick(&mut map, &mut m);
        assert_eq!(owners, truth(&m));
        assert_eq!(
            owners.values().flatten().copied().collect::<Vec<_>>(),
            [other]
        );
    }

    #[test]
    fn a_listener_closed_after_the_dump_keeps_its_owner_for_that_tick_only() {
        let mut m = Machine::new();
        let server = m.spawn(2);
        let Fd::Socket(listener) = m.procs[&server][0] else {
            unreachable!()
        };
        m.listening.insert(listener);
        let mut map = OwnerMap::new();
        tick(&mut map, &mut m);
        // The dump has the listener; before the server is walked (its count changed), it
        // closed it and runs on.
        let sockets = m.dump();
        m.procs.get_mut(&server).unwrap().remove(0);
        let stats = map.refresh(&mut m, &sockets);
        assert!(stats.walked >= 1, "{stats:?}");
        assert_eq!(map.pids(listener), [server], "as the dump saw it");
        assert_eq!(map.held_over(), [(listener, server)]);
        // On the next tick it is gone from the dump, and from the server's sockets.
        let (_, owners) = tick(&mut map, &mut m);
        assert_eq!(owners, truth(&m));
        assert!(map.held_over().is_empty());
    }

    #[test]
    fn a_socket_nobody_holds_is_searched_for_once_then_remembered() {
        let mut m = Machine::new();
        for _ in 0..4 {
            m.spawn(1);
        }
        let mut sockets = m.dump();
        let mut orphan = sockets[0].clone();
        orphan.inode = 1;
        sockets.push(orphan);
        let mut map = OwnerMap::new();
        map.refresh(&mut m, &sockets);
        let second = map.refresh(&mut m, &sockets);
        assert_eq!(
            second.walked, 4,
            "still unknown on a second tick: every process"
        );
        let third = map.refresh(&mut m, &sockets);
        assert_eq!(third.walked, 0, "then remembered as ownerless");
        assert!(map.pids(1).is_empty());
    }

    #[test]
    fn what_the_count_cannot_see_the_sweep_finds() {
        let mut m = Machine::new();
        let a = m.spawn(2);
        let b = m.spawn(1);
        m.procs.get_mut(&b).unwrap().push(Fd::File);
        let mut map = OwnerMap::new();
        tick(&mut map, &mut m);
        // a passes a socket to b and opens a file; b closes a file: no count changes.
        let passed = m.procs.get_mut(&a).unwrap().remove(0);
        m.procs.get_mut(&a).unwrap().push(Fd::File);
        let fds = m.procs.get_mut(&b).unwrap();
        fds.retain(|fd| *fd != Fd::File);
        fds.push(passed);
        let Fd::Socket(inode) = passed else {
            unreachable!()
        };
        let (_, owners) = tick(&mut map, &mut m);
        assert_eq!(owners[&inode], vec![a], "stale until the sweep");
        let mut converged = None;
        for t in 0..SWEEP_TICKS {
            let (_, owners) = tick(&mut map, &mut m);
            if owners[&inode] == vec![b] {
                converged = Some(t);
                break;
            }
        }
        assert!(
            converged.is_some(),
            "the sweep walks every process within {SWEEP_TICKS} ticks"
        );
    }

    #[test]
    fn unreadable_processes_are_counted_and_not_walked_every_tick() {
        let mut m = Machine::new();
        let other = m.spawn(1);
        m.spawn(1);
        m.unreadable.push(other);
        let mut map = OwnerMap::new();
        tick(&mut map, &mut m);
        assert_eq!(map.unreadable(), 1);
        for _ in 0..5 {
            tick(&mut map, &mut m);
        }
        assert_eq!(m.walks[&other], 1, "not again before the sweep");
        assert_eq!(map.ownerless.len(), 1, "its socket is searched for once");
    }

    /// One change to the machine between two ticks.
    #[derive(Clone, Debug)]
    enum Op {
        Spawn(usize),
        Fork(usize),
        Exit(usize),
        Open(usize),
        OpenFile(usize),
        Close(usize, usize),
        /// The second process receives a copy of the first one's descriptor (SCM_RIGHTS).
        Pass(usize, usize, usize),
        /// The same, and the sender closes its copy.
        Move(usize, usize, usize),
        /// Close a descriptor and open a socket: the count stays the same.
        Replace(usize, usize),
        /// Refresh the map (the ops between two ticks happen in the same tick).
        Tick,
        /// Refresh it this many times with nothing changing.
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let i = 0..64usize;
        prop_oneof![
            1 => (0..4usize).prop_map(Op::Spawn),
            1 => i.clone().prop_map(Op::Fork),
            1 => i.clone().prop_map(Op::Exit),
            1 => i.clone().prop_map(Op::Open),
            1 => i.clone().prop_map(Op::OpenFile),
            1 => (i.clone(), i.clone()).prop_map(|(a, b)| Op::Close(a, b)),
            1 => (i.clone(), i.clone(), i.clone()).prop_map(|(a, b, c)| Op::Pass(a, b, c)),
            1 => (i.clone(), i.clone(), i.clone()).prop_map(|(a, b, c)| Op::Move(a, b, c)),
            1 => (i.clone(), i).prop_map(|(a, b)| Op::Replace(a, b)),
            8 => Just(Op::Tick),
            1 => (1..=SWEEP_TICKS + 2).prop_map(Op::Wait),
        ]
    }

    impl Machine {
        fn nth(&self, i: usize) -> Option<u32> {
            let n = self.procs.len();
            (n > 0).then(|| *self.procs.keys().nth(i % n).unwrap())
        }
        fn apply(&mut self, op: &Op) {
            match *op {
                Op::Spawn(n) => {
                    self.spawn(n);
                }
                Op::Fork(i) => {
                    if let Some(p) = self.nth(i) {
                        self.fork(p);
                    }
                }
                Op::Exit(i) => {
                    if let Some(p) = self.nth(i) {
                        self.procs.remove(&p);
                    }
                }
                Op::Open(i) | Op::OpenFile(i) => {
                    if let Some(p) = self.nth(i) {
                        let fd = match op {
                            Op::Open(_) => self.new_socket(),
                            _ => Fd::File,
                        };
                        self.procs.get_mut(&p).unwrap().push(fd);
                    }
                }
                Op::Close(i, j) | Op::Replace(i, j) => {
                    let Some(p) = self.nth(i) else { return };
                    let new = self.new_socket();
                    let fds = self.procs.get_mut(&p).unwrap();
                    if fds.is_empty() {
                        return;
                    }
                    let k = j % fds.len();
                    if matches!(op, Op::Replace(..)) {
                        fds[k] = new;
                    } else {
                        fds.remove(k);
                    }
                }
                Op::Pass(i, t, j) | Op::Move(i, t, j) => {
                    let (Some(from), Some(to)) = (self.nth(i), self.nth(t)) else {
                        return;
                    };
                    let fds = self.procs.get_mut(&from).unwrap();
                    if fds.is_empty() || from == to {
                        return;
                    }
                    let k = j % fds.len();
                    let fd = fds[k];
                    if matches!(op, Op::Move(..)) {
                        fds.remove(k);
                    }
                    self.procs.get_mut(&to).unwrap().push(fd);
                }
                Op::Tick | Op::Wait(_) => {}
            }
        }
        fn sockets_of(&self, pid: u32) -> BTreeSet<u64> {
            self.procs[&pid]
                .iter()
                .filter_map(|fd| match fd {
                    Fd::Socket(i) => Some(*i),
                    Fd::File => None,
                })
                .collect()
        }
    }

    /// What the module promises about one process, followed from outside the map: the socket
    /// sets the process has had since the last tick at which it was surely walked. The map shows
    /// the process (the sockets it lists it as holding) as one of them: as it was at its last
    /// walk, which is at least as late as what the map showed before.
    struct Promise {
        /// From which tick on the process had which sockets, oldest first.
        sets: Vec<(u64, BTreeSet<u64>)>,
        /// Its descriptor count at the last tick.
        count: usize,
    }

    /// The map's account, from outside: pid → the sockets it says that process holds, for
    /// every inode the machine ever made.
    fn shown(map: &OwnerMap, machine: &Machine) -> BTreeMap<u32, BTreeSet<u64>> {
        let mut shown: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
        for inode in 0..=machine.next_inode {
            for &pid in map.pids(inode) {
                shown.entry(pid).or_default().insert(inode);
            }
        }
        shown
    }

    /// Follows the module's promises tick by tick and checks the map against them:
    ///
    /// - a new process (1) and one whose descriptor count changed since the last tick (2) are
    ///   walked on this tick; every process is walked at least once every [`SWEEP_TICKS`] ticks
    ///   (4); between walks the map shows a process as it was at its last walk;
    /// - a socket no process is known to hold is searched for (3) in every process the map
    ///   knows to hold sockets, so it stays unowned only when all its holders were shown with
    ///   none, sockets held over for them not counted (unless it lost its last known holder in that tick's search or sweep, when a
    ///   stale holder still alive was walked), and then for one tick only: on the next, every
    ///   process is searched;
    /// - an exited process is dropped at once;
    /// - except that a socket of the tick's dump that no process was found holding may keep,
    ///   for that tick only, the one holder it showed on the tick before (which exited or let go
    ///   of it since): such a socket counts as unowned above, and the rest of what its holder
    ///   shows keeps the promises.
    struct Checker {
        counts: bool,
        tick: u64,
        promises: BTreeMap<u32, Promise>,
        /// What the map showed after the last tick.
        shown: BTreeMap<u32, BTreeSet<u64>>,
        /// The same without the sockets held over: what the map knew each process to hold.
        kept: BTreeMap<u32, BTreeSet<u64>>,
        /// Sockets unowned (or held over) after the last tick.
        unowned: BTreeSet<u64>,
        /// Sockets held over on the last tick, with their holder.
        held_over: BTreeSet<(u64, u32)>,
    }

    impl Checker {
        fn new(counts: bool) -> Self {
            Self {
                counts,
                tick: 0,
                promises: BTreeMap::new(),
                shown: BTreeMap::new(),
                kept: BTreeMap::new(),
                unowned: BTreeSet::new(),
                held_over: BTreeSet::new(),
            }
        }

        fn tick(&mut self, map: &mut OwnerMap, m: &mut Machine) -> Result<(), TestCaseError> {
            self.tick += 1;
            let tick = self.tick;
            let oldest_walk = (tick + 1).saturating_sub(SWEEP_TICKS);
            self.promises.retain(|pid, _| m.procs.contains_key(pid));
            // New or with another descriptor count: walked before the search.
            let mut walked_first = BTreeSet::new();
            for (&pid, fds) in &m.procs {
                let now = m.sockets_of(pid);
                let promise = self.promises.entry(pid).or_insert(Promise {
                    sets: vec![],
                    count: fds.len(),
                });
                let recounted = self.counts && promise.count != fds.len();
                if promise.sets.is_empty() || recounted {
                    promise.sets = vec![(tick, now)];
                    walked_first.insert(pid);
                } else if promise.sets.last().unwrap().1 != now {
                    promise.sets.push((tick, now));
                }
                promise.count = fds.len();
                // Walked at `oldest_walk` or later: the sets it left before are out.
                while promise.sets.len() > 1 && promise.sets[1].0 <= oldest_walk {
                    promise.sets.remove(0);
                }
            }

            let sockets = m.dump();
            map.refresh(m, &sockets);

            let shown_all = shown(map, m);
            // Held over: a socket of this dump shown with the one holder that let go of it
            // since the dump: a holder it showed on the last tick, and not held over then.
            let dumped: BTreeSet<u64> = sockets.iter().map(|s| s.inode).collect();
            let held_over: BTreeSet<(u64, u32)> = map.held_over().iter().copied().collect();
            for &(inode, pid) in &held_over {
                prop_assert!(
                    dumped.contains(&inode)
                        && map.pids(inode) == [pid]
                        && self.shown.get(&pid).is_some_and(|h| h.contains(&inode))
                        && !self.held_over.contains(&(inode, pid)),
                    "tick {}: socket {} held over for {}, which showed {:?} on the last tick",
                    tick,
                    inode,
                    pid,
                    self.shown.get(&pid)
                );
            }
            // The rest of what the map shows keeps the promises below.
            let mut shown = shown_all.clone();
            for &(inode, pid) in &held_over {
                if let Some(set) = shown.get_mut(&pid) {
                    set.remove(&inode);
                    if set.is_empty() {
                        shown.remove(&pid);
                    }
                }
            }
            for pid in shown.keys() {
                prop_assert!(
                    m.procs.contains_key(pid),
                    "tick {}: exited {} still shown",
                    tick,
                    pid
                );
            }
            for (pid, promise) in &mut self.promises {
                let seen = shown.get(pid).cloned().unwrap_or_default();
                let at = promise.sets.iter().position(|(_, set)| *set == seen);
                let Some(at) = at else {
                    return Err(TestCaseError::fail(format!(
                        "tick {tick}: process {pid} shown with {seen:?}, which it never had \
                         since its last sure walk: {:?}",
                        promise.sets
                    )));
                };
                promise.sets.drain(..at);
            }
            let truth = truth(m);
            let mut unowned = BTreeSet::new();
            for (inode, holders) in &truth {
                let over = held_over.iter().any(|&(i, _)| i == *inode);
                if !map.pids(*inode).is_empty() && !over {
                    continue;
                }
                unowned.insert(*inode);
                prop_assert!(
                    !self.unowned.contains(inode),
                    "tick {}: socket {} held by {:?} unowned on a second tick",
                    tick,
                    inode,
                    holders
                );
                let lost_late = self.shown.iter().any(|(pid, inodes)| {
                    inodes.contains(inode)
                        && m.procs.contains_key(pid)
                        && !walked_first.contains(pid)
                });
                if lost_late {
                    continue;
                }
                // A socket held over for a process is not one the map knew it to hold (its
                // walk found it without): a holder shown with held-over sockets alone was
                // shown with none.
                for pid in holders {
                    let before = self.kept.get(pid);
                    prop_assert!(
                        !walked_first.contains(pid) && before.is_none(),
                        "tick {}: socket {} unowned, yet its holder {} was walked or shown with {:?}",
                        tick,
                        inode,
                        pid,
                        before
                    );
                }
            }
            self.unowned = unowned;
            self.shown = shown_all;
            self.kept = shown;
            self.held_over = held_over;
            Ok(())
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// After any sequence of forks, exits, opens, closes and descriptors passed between
        /// processes, several in one tick or one, with or without descriptor counts, the map
        /// keeps every promise of the module after every tick (see [`Checker`]); and with
        /// nothing changing for [`SWEEP_TICKS`] ticks, it equals the truth read from the
        /// process table.
        #[test]
        fn incremental_owners_keep_the_promises_and_converge_to_the_truth(
            counts in any::<bool>(),
            start in proptest::collection::vec(0..5usize, 1..6),
            ops in proptest::collection::vec(op(), 1..60),
        ) {
            let mut m = Machine::new();
            m.counts = counts;
            for n in start {
                m.spawn(n);
            }
            let mut map = OwnerMap::new();
            let mut checker = Checker::new(counts);
            checker.tick(&mut map, &mut m)?;
            for op in &ops {
                m.apply(op);
                let ticks = match *op {
                    Op::Tick => 1,
                    Op::Wait(n) => n,
                    _ => 0,
                };
                for _ in 0..ticks {
                    checker.tick(&mut map, &mut m)?;
                }
            }
            for _ in 0..SWEEP_TICKS {
                checker.tick(&mut map, &mut m)?;
            }
            let sockets = m.dump();
            prop_assert_eq!(owners_of(&map, &sockets), truth(&m));
        }
    }
}
