"""The timeline's side of `cargo xtask bench` (standard library only): opens the dashboard's
Timeline tab on an agent whose history holds a week of 200 ports (`history30.py FILE 7 MINUTES`),
shows the last week, and measures in the page how long that takes until it is drawn, then
zooms and pans and measures each until the next frame is drawn.

usage: timeline.py URL_WITH_TOKEN

Prints one JSON object. Needs /usr/bin/chromium and /usr/bin/chromedriver.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from browser import Driver, free_port, median, open_page, wait, _ready

ROUNDS = 5

# Clicks `css`, then waits for the next two frames; returns the milliseconds to them.
CLICK = """
const done = arguments[arguments.length - 1];
const t0 = performance.now();
document.querySelector(%s).click();
requestAnimationFrame(() => requestAnimationFrame(() => {
    document.documentElement.clientHeight;
    done(performance.now() - t0);
}));
"""

# Clicks `css`, then waits until #timeline-count's text has changed and then stayed the same
# for a second (the new window's spans came and were drawn); returns the milliseconds to its
# last change.
SETTLE = """
const done = arguments[arguments.length - 1];
const count = () => document.getElementById('timeline-count').textContent;
let last = count(), changed = null;
const t0 = performance.now();
document.querySelector(%s).click();
const look = () => requestAnimationFrame(() => {
    const now = performance.now();
    if (count() !== last) { last = count(); changed = now; }
    if ((changed !== null && now - changed > 1000) || now - t0 > 60000) {
        done(changed === null ? -1 : changed - t0);
    } else { look(); }
});
look();
"""


def main():
    url = sys.argv[1]
    port = free_port()
    profile = tempfile.mkdtemp(prefix="portscope-bench-")
    driver_proc = subprocess.Popen(
        ["/usr/bin/chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        d = Driver(port)
        wait("chromedriver start", lambda: _ready(d))
        open_page(d, profile, url + "&tab=timeline")

        def lanes():
            text = d.script("const e = document.getElementById('timeline-count');"
                            " return e ? e.textContent : ''") or ""
            words = text.split()
            return int(words[0]) if words and words[0].isdigit() else 0

        wait("the last hour's lanes", lambda: lanes() >= 200 or None, 60)
        week_ms = d.script(SETTLE % json.dumps("button[data-range='168']"), True)
        count = d.script("return document.getElementById('timeline-count').textContent")
        elements = d.script("return document.querySelectorAll('.timeline svg *').length")
        timings = {"zoom": [], "pan": []}
        for _ in range(ROUNDS):
            for button in ("#tl-zoom-in", "#tl-zoom-out"):
                timings["zoom"].append(d.script(CLICK % json.dumps(button), True))
            for button in ("#tl-earlier", "#tl-later"):
                timings["pan"].append(d.script(CLICK % json.dumps(button), True))
        note = d.script("const n = document.getElementById('timeline-note');"
                        " return n ? n.textContent : ''")
        d.call("DELETE", "")
        print(json.dumps({
            "count": count,
            "svg_elements": elements,
            "week_ms": week_ms,
            "zoom_ms_median": median(timings["zoom"]),
            "pan_ms_median": median(timings["pan"]),
            "note": note,
            "timings_ms": timings,
        }), flush=True)
    finally:
        os.killpg(driver_proc.pid, 15)
        driver_proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
