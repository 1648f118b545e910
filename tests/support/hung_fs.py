"""A FUSE file system whose lookups of `.git` never answer, as a hung NFS, sshfs or FUSE mount
meets a project lookup: `work/` is an empty directory a process can work in; looking up
`work/.git` (or any `.git`) blocks until this process is killed.

Usage: /usr/bin/python3 hung_fs.py MOUNTPOINT. Prints "mounted" once the kernel has it.
Needs Debian's python3-fusepy (and root, to mount without fusermount).
"""

import errno
import stat
import sys
import threading
import time

from fusepy import FUSE, FuseOSError, Operations


class Hung(Operations):
    def init(self, path):
        print("mounted", flush=True)

    def getattr(self, path, fh=None):
        if path in ("/", "/work"):
            now = time.time()
            return {
                "st_mode": stat.S_IFDIR | 0o755,
                "st_nlink": 2,
                "st_atime": now,
                "st_mtime": now,
                "st_ctime": now,
            }
        if path.rsplit("/", 1)[-1] == ".git":
            threading.Event().wait()
        raise FuseOSError(errno.ENOENT)

    def access(self, path, amode):
        return 0

    def readdir(self, path, fh):
        return [".", ".."] + (["work"] if path == "/" else [])


if __name__ == "__main__":
    FUSE(Hung(), sys.argv[1], foreground=True, nothreads=False)
