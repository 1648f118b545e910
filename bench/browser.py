"""The dashboard's side of `cargo xtask bench` (standard library only): drives headless Chromium
through chromedriver (WebDriver over HTTP) on the agent's page while the bench's load is open,
and measures, in the page, how long each interaction takes until the table is drawn and laid
out: a delta of about 100 rows (50 loopback connections this script opens, then closes), a
sort, a filter, a jump to another part of the table and a wheel step; and the floor, the cheapest change a page can make (one cell), as
this machine's Chromium draws it.

usage: browser.py URL_WITH_TOKEN MIN_ROWS

Prints one JSON object. Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian's chromium
and chromium-driver packages; `cargo xtask bench` installs them).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROUNDS = 5

# In the page: run `action`, then wait for the re-render (microtasks), a timeout after them, and
# a forced layout; returns the milliseconds from the action to then.
TIMED = """
const done = arguments[arguments.length - 1];
const t0 = performance.now();
const finish = () => setTimeout(() => { document.documentElement.clientHeight; done(performance.now() - t0); }, 0);
%s
"""
SORT = TIMED % "document.querySelector(\"th[data-column='%s']\").click(); finish();"
FILTER = TIMED % """
const f = document.getElementById('filter');
f.value = %s; f.dispatchEvent(new Event('input', {bubbles: true})); finish();"""
# One wheel step (100 px, about three rows) down.
STEP = TIMED % """
const w = document.querySelector('.table-wrap');
w.addEventListener('scroll', finish, {once: true});
w.scrollTop = w.scrollTop + 100;"""
# The floor: the cheapest change a page can make (one cell's text), drawn and laid out.
FLOOR = TIMED % """
document.querySelector("#sockets tr.row td").textContent += "";
document.querySelector('#count').dataset.floor = Math.random(); finish();"""
SCROLL = TIMED % """
const w = document.querySelector('.table-wrap');
w.addEventListener('scroll', finish, {once: true});
w.scrollTop = %f * (w.scrollHeight - w.clientHeight);"""


class Driver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def call(self, method, path, body=None):
        url = self.base + (f"/session/{self.session}" if self.session else "") + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())["value"]

    def script(self, source, asynchronous=False):
        kind = "async" if asynchronous else "sync"
        return self.call("POST", f"/execute/{kind}", {"script": source, "args": []})

    def attr(self, css, name):
        return self.script(f"const e = document.querySelector({json.dumps(css)}); return e && e.getAttribute({json.dumps(name)});")


def open_page(d, profile, url):
    """Starts a headless Chromium session on `d` (its profile in `profile`) and opens `url`."""
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--window-size=1400,900",
                 f"--user-data-dir={profile}"]}}}}
    d.session = d.call("POST", "/session", caps)["sessionId"]
    d.call("POST", "/url", {"url": url})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what, check, limit=120):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"browser.py: {what} did not happen within {limit} s")


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def main():
    url, min_rows = sys.argv[1], int(sys.argv[2])
    # The figures are the socket table's: open its tab (the page would otherwise pick Projects
    # when the load runs inside a repository, and a hidden table neither scrolls nor draws).
    url += ("&" if "?" in url else "?") + "tab=sockets"
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(tool):
            raise SystemExit(f"browser.py: {tool} is missing (apt-get install chromium chromium-driver)")
    port = free_port()
    profile = tempfile.mkdtemp(prefix="portscope-bench-")
    driver_proc = subprocess.Popen(
        ["/usr/bin/chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    listener = socket.socket()
    try:
        d = Driver(port)
        wait("chromedriver start", lambda: _ready(d))
        open_page(d, profile, url)
        loaded = time.monotonic()
        wait("the snapshot", lambda: _rows(d) >= min_rows)
        load_seconds = time.monotonic() - loaded
        rows = _rows(d)
        dom_rows = d.script("return document.querySelectorAll('#sockets tr.row').length")

        # Deltas of ~100 rows: 50 connections (100 sockets) open, then close.
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        deltas = []
        for _ in range(ROUNDS):
            for opening in (True, False):
                before = d.attr("#count", "data-apply-ms")
                if opening:
                    pairs = []
                    for _ in range(50):
                        c = socket.create_connection(listener.getsockname())
                        pairs.append((c, listener.accept()[0]))
                else:
                    for c, s in pairs:
                        c.close()
                        s.close()

                def applied():
                    n = d.attr("#count", "data-apply-rows")
                    ms = d.attr("#count", "data-apply-ms")
                    return (int(n), float(ms)) if n and int(n) >= 100 and ms != before else None

                deltas.append(wait("a 100-row delta", applied, 30))
                time.sleep(0.3)

        timings = {"sort": [], "filter": [], "scroll": [], "step": [], "floor": []}
        for _ in range(ROUNDS):
            timings["floor"].append(d.script(FLOOR, True))
            for column in ("process", "local"):
                timings["sort"].append(d.script(SORT % column, True))
            for text in ("python3", ""):
                timings["filter"].append(d.script(FILTER % json.dumps(text), True))
            for where in (0.5, 0.9, 0.1):
                timings["scroll"].append(d.script(SCROLL % where, True))
            for _ in range(3):
                timings["step"].append(d.script(STEP, True))
        d.call("DELETE", "")
        print(json.dumps({
            "rows": rows,
            "dom_rows": dom_rows,
            "load_seconds": load_seconds,
            "delta_rows": [n for n, _ in deltas],
            "delta_ms": [ms for _, ms in deltas],
            "delta_ms_median": median([ms for _, ms in deltas]),
            "delta_ms_max": max(ms for _, ms in deltas),
            "sort_ms_median": median(timings["sort"]),
            "filter_ms_median": median(timings["filter"]),
            "scroll_ms_median": median(timings["scroll"]),
            "scroll_step_ms_median": median(timings["step"]),
            "floor_ms_median": median(timings["floor"]),
            "timings_ms": timings,
        }), flush=True)
    finally:
        listener.close()
        os.killpg(driver_proc.pid, 15)
        driver_proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _ready(d):
    try:
        return d.call("GET", "/status")["ready"]
    except OSError:
        return False


def _rows(d):
    text = d.script("const e = document.getElementById('count'); return e ? e.textContent : ''") or ""
    words = text.split()
    return int(words[2]) if len(words) > 2 and words[2].isdigit() else 0


if __name__ == "__main__":
    main()
