"""The timeline's side of `cargo xtask bench` (standard library only): opens the dashboard's
Timeline tab on an agent whose history holds a week of 200 ports (`history30.py FILE 7 120`),
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

from browser import Driver, free_port, median, wait, _ready

ROUNDS = 5

# Clicks `css`, then waits until #timeline-count's text changed (the new window's spans came
# and were drawn) or, with `changed` false, for the next two frames; returns the milliseconds.
CLICK = """
const done = arguments[arguments.length - 1];
const count = () => document.getElementById('timeline-count').textContent;
const before = count();
const t0 = performance.now();
document.querySelector(%s).click();
const frame = () => requestAnimationFrame(() => requestAnimationFrame(() => {
    document.documentElement.clientHeight;
    if (%s && count() === before && performance.now() - t0 < 60000) { frame(); return; }
    done(performance.now() - t0);
}));
frame();
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
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-background-networking", "--window-size=1400,900",
                     f"--user-data-dir={profile}"]}}}}
        d.session = d.call("POST", "/session", caps)["sessionId"]
        d.call("POST", "/url", {"url": url + "&tab=timeline"})

        def lanes():
            text = d.script("const e = document.getElementById('timeline-count');"
                            " return e ? e.textContent : ''") or ""
            words = text.split()
            return int(words[0]) if words and words[0].isdigit() else 0

        wait("the last hour's lanes", lambda: lanes() >= 200 or None, 60)
        week_ms = d.script(CLICK % (json.dumps("button[data-range='168']"), "true"), True)
        count = d.script("return document.getElementById('timeline-count').textContent")
        elements = d.script("return document.querySelectorAll('.timeline svg *').length")
        timings = {"zoom": [], "pan": []}
        for _ in range(ROUNDS):
            for button in ("#tl-zoom-in", "#tl-zoom-out"):
                timings["zoom"].append(d.script(CLICK % (json.dumps(button), "false"), True))
            for button in ("#tl-earlier", "#tl-later"):
                timings["pan"].append(d.script(CLICK % (json.dumps(button), "false"), True))
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
