// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// portscope's kernel probes (#22): tracepoints only — the most stable hooks across kernels
// (fentry/fexit are refused on some, and internal functions move between versions).
//
//   sock/inet_sock_set_state   every TCP state change: listeners opening and closing, connects
//                              starting (in the caller's context), a refused connect's SYN_SENT
//                              -> CLOSE after a reset
//   tcp/tcp_receive_reset      marks the socket whose SYN_SENT -> CLOSE is a refusal
//   syscalls/sys_enter_bind    remembers the address a thread asked for (user memory)
//   syscalls/sys_exit_bind     reports the bind's result: failures, and successes (UDP binds,
//                              which no TCP tracepoint shows)
//
// Each event carries the process's pid, comm and start time (its group leader's
// `start_boottime`, read with CO-RE), since a short-lived process may be gone by the time
// /proc is read. Events go through one ring buffer; an event the buffer has no room for is
// counted in DROPPED, which the agent reads and reports.
//
// The tracepoints' contexts are declared from their `format` files (stable since 4.16); only
// `task_struct` is relocated against the running kernel's BTF.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define TCP_LISTEN 10

// Kinds; the Rust side (kernel/mod.rs) reads the same numbers.
#define EV_LISTEN 1
#define EV_LISTEN_CLOSED 2
#define EV_REFUSED 3
#define EV_BIND_FAILED 4
#define EV_CHANGED 5
#define EV_BOUND 6

struct event {
    __u8 kind;
    __u8 family;
    __u8 protocol;
    __u8 _pad0;
    __u16 sport;
    __u16 dport;
    __s32 err;
    __u32 pid;
    __u32 uid;
    __u32 netns;
    __u64 start_ns;
    __u64 skaddr;
    __u64 inode;
    __u8 saddr[16];
    __u8 daddr[16];
    char comm[16];
};
// bpf.rs reads it by these offsets.
_Static_assert(sizeof(struct event) == 96, "struct event is read as 96 bytes");
_Static_assert(__builtin_offsetof(struct event, netns) == 20, "netns at 20");
_Static_assert(__builtin_offsetof(struct event, start_ns) == 24, "start_ns at 24");
_Static_assert(__builtin_offsetof(struct event, saddr) == 48, "saddr at 48");
_Static_assert(__builtin_offsetof(struct event, comm) == 80, "comm at 80");

struct inode {
    unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file {
    struct inode *f_inode;
    void *private_data;
} __attribute__((preserve_access_index));

struct socket {
    short type;
    struct file *file;
} __attribute__((preserve_access_index));

struct ns_common {
    unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
    struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
    struct net *net;
} possible_net_t;

struct sock_common {
    possible_net_t skc_net;
} __attribute__((preserve_access_index));

struct sock {
    struct sock_common __sk_common;
    struct socket *sk_socket;
} __attribute__((preserve_access_index));

struct nsproxy {
    struct net *net_ns;
} __attribute__((preserve_access_index));

struct fdtable {
    unsigned int max_fds;
    struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
    struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
    struct task_struct *group_leader;
    __u64 start_boottime;
    struct files_struct *files;
    struct nsproxy *nsproxy;
    char comm[16];
} __attribute__((preserve_access_index));

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 << 10);
} EVENTS SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} DROPPED SEC(".maps");

// Who started a connect, by socket: the SYN_SENT -> CLOSE of a refusal may run in softirq
// context (a reset from another machine), where the current task is anyone.
struct owner {
    __u32 pid;
    __u32 reset;
    __u64 start_ns;
    char comm[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct owner);
} CONNECTING SEC(".maps");

// The address a thread's bind() asked for, until the call returns.
struct wanted {
    __u16 family;
    __u16 port;
    __u32 fd;
    __u8 addr[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, struct wanted);
} BINDING SEC(".maps");

struct set_state_ctx {
    __u64 common;
    const void *skaddr;
    int oldstate;
    int newstate;
    __u16 sport;
    __u16 dport;
    __u16 family;
    __u16 protocol;
    __u8 saddr[4];
    __u8 daddr[4];
    __u8 saddr_v6[16];
    __u8 daddr_v6[16];
};

struct reset_ctx {
    __u64 common;
    const void *skaddr;
};

struct enter_bind_ctx {
    __u64 common;
    __s32 nr;
    __u32 _pad;
    __u64 fd;
    __u64 umyaddr;
    __u64 addrlen;
};

struct exit_bind_ctx {
    __u64 common;
    __s32 nr;
    __u32 _pad;
    __s64 ret;
};

static __always_inline __u64 start_of_current(void)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    return BPF_CORE_READ(task, group_leader, start_boottime);
}

static __always_inline void dropped(void)
{
    __u32 zero = 0;
    __u64 *count = bpf_map_lookup_elem(&DROPPED, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
}

static __always_inline struct event *reserve(__u8 kind)
{
    struct event *e = bpf_ringbuf_reserve(&EVENTS, sizeof(*e), 0);
    if (!e) {
        dropped();
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->kind = kind;
    return e;
}

// The process's name: its main thread's `comm` (as /proc/PID/stat names it), not the name of
// the thread that made the call (`tokio-rt-worker`).
static __always_inline void leader_comm(char *comm)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct task_struct *leader = BPF_CORE_READ(task, group_leader);
    if (bpf_core_read(comm, 16, &leader->comm))
        bpf_get_current_comm(comm, 16);
}

static __always_inline void current_owner(struct event *e)
{
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->start_ns = start_of_current();
    leader_comm(e->comm);
}

// The network namespace a socket lives in, and the caller's: the agent keeps its own.
static __always_inline __u32 netns_of(const void *skaddr)
{
    struct sock *sk = (struct sock *)skaddr;
    return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline __u32 netns_of_current(void)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    return BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
}

static __always_inline void copy_addrs(struct event *e, struct set_state_ctx *ctx)
{
    e->netns = netns_of(ctx->skaddr);
    e->family = ctx->family;
    e->protocol = ctx->protocol;
    e->sport = ctx->sport;
    e->dport = ctx->dport;
    e->skaddr = (__u64)ctx->skaddr;
    if (ctx->family == AF_INET) {
        __builtin_memcpy(e->saddr, ctx->saddr, 4);
        __builtin_memcpy(e->daddr, ctx->daddr, 4);
    } else {
        __builtin_memcpy(e->saddr, ctx->saddr_v6, 16);
        __builtin_memcpy(e->daddr, ctx->daddr_v6, 16);
    }
}

SEC("tracepoint/sock/inet_sock_set_state")
int set_state(struct set_state_ctx *ctx)
{
    if (ctx->protocol != IPPROTO_TCP)
        return 0;
    int old = ctx->oldstate, new = ctx->newstate;
    __u64 sk = (__u64)ctx->skaddr;

    if (old == TCP_CLOSE && new == TCP_SYN_SENT) {
        // connect(): the caller's context.
        struct owner o = {};
        o.pid = bpf_get_current_pid_tgid() >> 32;
        o.start_ns = start_of_current();
        leader_comm(o.comm);
        bpf_map_update_elem(&CONNECTING, &sk, &o, BPF_ANY);
    }

    __u8 kind = EV_CHANGED;
    struct owner *o = 0;
    if (new == TCP_LISTEN)
        kind = EV_LISTEN;
    else if (old == TCP_LISTEN)
        kind = EV_LISTEN_CLOSED;
    else if (old == TCP_SYN_SENT) {
        o = bpf_map_lookup_elem(&CONNECTING, &sk);
        if (o && o->reset && new == TCP_CLOSE)
            kind = EV_REFUSED;
    }

    struct event *e = reserve(kind);
    if (!e) {
        if (old == TCP_SYN_SENT)
            bpf_map_delete_elem(&CONNECTING, &sk);
        return 0;
    }
    copy_addrs(e, ctx);
    e->err = (old << 8) | new;
    if (kind == EV_REFUSED && o) {
        e->pid = o->pid;
        e->start_ns = o->start_ns;
        __builtin_memcpy(e->comm, o->comm, sizeof(e->comm));
    } else if (kind == EV_LISTEN || kind == EV_LISTEN_CLOSED) {
        current_owner(e);
        // The socket's inode, as /proc and the scan name it: the same socket id.
        struct sock *s = (struct sock *)ctx->skaddr;
        e->inode = BPF_CORE_READ(s, sk_socket, file, f_inode, i_ino);
    }
    if (old == TCP_SYN_SENT)
        bpf_map_delete_elem(&CONNECTING, &sk);
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int receive_reset(struct reset_ctx *ctx)
{
    __u64 sk = (__u64)ctx->skaddr;
    struct owner *o = bpf_map_lookup_elem(&CONNECTING, &sk);
    if (o)
        o->reset = 1;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_bind")
int enter_bind(struct enter_bind_ctx *ctx)
{
    struct wanted w = {};
    __u16 family = 0;
    if (bpf_probe_read_user(&family, sizeof(family), (void *)ctx->umyaddr))
        return 0;
    if (family == AF_INET && ctx->addrlen >= 8) {
        // struct sockaddr_in: family, port (network order), address.
        __u8 raw[8];
        if (bpf_probe_read_user(raw, sizeof(raw), (void *)ctx->umyaddr))
            return 0;
        w.port = (raw[2] << 8) | raw[3];
        __builtin_memcpy(w.addr, raw + 4, 4);
    } else if (family == AF_INET6 && ctx->addrlen >= 24) {
        // struct sockaddr_in6: family, port, flowinfo, address.
        __u8 raw[24];
        if (bpf_probe_read_user(raw, sizeof(raw), (void *)ctx->umyaddr))
            return 0;
        w.port = (raw[2] << 8) | raw[3];
        __builtin_memcpy(w.addr, raw + 8, 16);
    } else {
        return 0;
    }
    w.family = family;
    w.fd = (__u32)ctx->fd;
    __u64 tid = bpf_get_current_pid_tgid();
    bpf_map_update_elem(&BINDING, &tid, &w, BPF_ANY);
    return 0;
}

// The type of the caller's socket `fd` (SOCK_STREAM 1, SOCK_DGRAM 2), 0 when unreadable.
static __always_inline __u8 socket_type(__u32 fd)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
    if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
        return 0;
    struct file **fds = BPF_CORE_READ(fdt, fd);
    struct file *f = 0;
    if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
        return 0;
    struct socket *sock = BPF_CORE_READ(f, private_data);
    if (!sock)
        return 0;
    return (__u8)BPF_CORE_READ(sock, type);
}

SEC("tracepoint/syscalls/sys_exit_bind")
int exit_bind(struct exit_bind_ctx *ctx)
{
    __u64 tid = bpf_get_current_pid_tgid();
    struct wanted *w = bpf_map_lookup_elem(&BINDING, &tid);
    if (!w)
        return 0;
    struct event *e = reserve(ctx->ret < 0 ? EV_BIND_FAILED : EV_BOUND);
    if (e) {
        e->family = w->family;
        e->sport = w->port;
        __builtin_memcpy(e->saddr, w->addr, 16);
        e->err = ctx->ret < 0 ? (__s32)-ctx->ret : 0;
        current_owner(e);
        e->protocol = socket_type(w->fd);
        e->netns = netns_of_current();
        bpf_ringbuf_submit(e, 0);
    }
    bpf_map_delete_elem(&BINDING, &tid);
    return 0;
}
