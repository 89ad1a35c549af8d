"""skeptic study seed: the plan, the report, resume.

Optimised build: the quick profile runs to the end; headless Chromium opens
report.html, every section must be there with its tables, and every embedded
image must decode (PNG chunks and zlib stream checked here, naturalWidth > 0
in the browser); then a second run is killed with SIGKILL in the middle of a
step and restarted on the same directory, and its report.json must hold the
same numbers, bit for bit, as the uninterrupted run's.

Under the sanitizers (SKEPTIC_SANITIZED=1) the quick profile takes too long,
so only the parts that do not train run there: the plan (--dry-run --json),
argument errors, and experiment 1 alone (two small networks: a report in which
the other sections say "Not run yet", its figures decoded)."""
import base64
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

BUILD = os.environ.get("SKEPTIC_BUILD_DIR", "build")
SKEPTIC = os.path.join(BUILD, "skeptic")
SANITIZED = os.environ.get("SKEPTIC_SANITIZED") == "1"
STEPS = ["exp1", "exp2", "exp3", "nc1", "nc2", "nc3", "oq1", "oq2", "oq3"]
ENV = dict(os.environ, SKEPTIC_NO_PROGRESS="1", OMP_WAIT_POLICY="PASSIVE")


def run(args, check=True, **kw):
    r = subprocess.run([SKEPTIC] + args, capture_output=True, text=True, env=ENV, **kw)
    if check and r.returncode != 0:
        sys.exit("FAIL: skeptic %s exited %d\n%s\n%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def fail(msg):
    sys.exit("FAIL: " + msg)


def check_png(data, what):
    """A PNG that decodes: signature, chunks with correct CRCs, IHDR first,
    IDAT inflating to exactly the rows the header promises, IEND last."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("%s: no PNG signature" % what)
    pos, idat, ihdr, names = 8, b"", None, []
    while pos < len(data):
        n, = struct.unpack(">I", data[pos:pos + 4])
        name = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(name + body) & 0xffffffff != crc:
            fail("%s: bad CRC in chunk %r" % (what, name))
        names.append(name)
        if name == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif name == b"IDAT":
            idat += body
        pos += 12 + n
    if names[0] != b"IHDR" or names[-1] != b"IEND" or ihdr is None:
        fail("%s: chunks out of order: %r" % (what, names[:3]))
    w, h, depth, ctype = ihdr[:4]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    want = h * (1 + (w * channels * depth + 7) // 8)
    if len(raw) != want:
        fail("%s: %d bytes of pixels, the header promises %d" % (what, len(raw), want))
    if w < 100 or h < 100:
        fail("%s: only %dx%d pixels" % (what, w, h))
    return w, h


def chromium():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(c)
        if p:
            return p
    fail("chromium is not installed (scripts/install-deps installs it)")


def browser_dom(html_path, tmp):
    """The DOM Chromium builds from the report, with every image's
    naturalWidth written into the page by a script added to a copy."""
    probe = os.path.join(tmp, "probe.html")
    with open(html_path, encoding="utf-8") as f:
        text = f.read()
    script = ("<script>window.addEventListener('load',function(){var w=[];"
              "document.querySelectorAll('img').forEach(function(i){w.push(i.naturalWidth)});"
              "document.body.setAttribute('data-widths',w.join(','));});</script>")
    with open(probe, "w", encoding="utf-8") as f:
        f.write(text.replace("</body>", script + "</body>"))
    r = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + tmp + "/prof",
                        "--virtual-time-budget=5000", "--dump-dom", "file://" + probe],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or "<body" not in r.stdout:
        fail("chromium --dump-dom failed (%d): %s" % (r.returncode, r.stderr[-2000:]))
    return r.stdout


def numbers(report):
    """What must not change on a resume: every step's numbers, tables and
    text (timings excluded)."""
    out = {}
    for sid, st in report["steps"].items():
        out[sid] = {k: st.get(k) for k in ("numbers", "tables", "text")}
    return out


def sanitized_checks(tmp):
    plan = json.loads(run(["study", "seed", "--profile", "full", "--out", tmp + "/p", "--dry-run", "--json"]).stdout)
    ids = [s["id"] for s in plan["steps"]]
    if ids != STEPS:
        fail("plan steps %r" % ids)
    if not plan["estimated_seconds"] > 600 or any(s["done"] for s in plan["steps"]):
        fail("full plan estimate %r" % plan["estimated_seconds"])
    r = run(["study", "seed", "--profile", "medium", "--out", tmp + "/p"], check=False)
    if r.returncode != 2 or "quick" not in r.stderr:
        fail("--profile medium: exit %d, %s" % (r.returncode, r.stderr))
    r = run(["study", "seed", "--profile", "quick", "--out", tmp + "/p", "--only", "exp9"], check=False)
    if r.returncode != 2 or "exp1" not in r.stderr:
        fail("--only exp9: exit %d, %s" % (r.returncode, r.stderr))
    d = tmp + "/one"
    # experiment 1 trains two small networks: the training, the files and the figures under the sanitizers
    r = run(["study", "seed", "--profile", "quick", "--out", d, "--only", "exp1"])
    if "exp1" not in r.stderr or "exp2" in r.stderr:
        fail("--only exp1: the progress lines say\n" + r.stderr)
    rep = json.load(open(d + "/report.json"))
    if list(rep["steps"]) != ["exp1"] or not rep["steps"]["exp1"]["numbers"]["cancer_test_accuracy"] > 0.9:
        fail("report after --only exp1: %r" % rep["steps"].get("exp1", {}).get("numbers"))
    html = open(d + "/report.html", encoding="utf-8").read()
    for s in STEPS:
        if 'id="%s"' % s not in html:
            fail("section %s missing" % s)
    if html.count("Not run yet") != len(STEPS) - 1:
        fail("%d sections say Not run yet" % html.count("Not run yet"))
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    if len(imgs) != 2:
        fail("experiment 1 embeds %d figures" % len(imgs))
    for i, b in enumerate(imgs):
        check_png(base64.b64decode(b, validate=True), "experiment 1 figure %d" % i)
    os.remove(d + "/report.html")
    run(["study", "seed", "--profile", "quick", "--out", d, "--report-only"])
    if open(d + "/report.html", encoding="utf-8").read() != html:
        fail("--report-only wrote another report than the run did")
    plan = json.loads(run(["study", "seed", "--profile", "quick", "--out", d, "--dry-run", "--json"]).stdout)
    done = [s["id"] for s in plan["steps"] if s["done"]]
    if done != ["exp1"]:
        fail("plan after --only exp1 marks %r done" % done)
    r = run(["study", "seed", "--profile", "full", "--out", d, "--only", "exp1"], check=False)
    if r.returncode == 0 or "quick profile" not in r.stderr:
        fail("a quick directory reused for full: exit %d, %s" % (r.returncode, r.stderr))
    print("sanitized checks passed (the quick profile runs in the optimised pass)")


def full_checks(tmp):
    a = tmp + "/a"
    t0 = time.time()
    run(["study", "seed", "--profile", "quick", "--out", a])
    secs = time.time() - t0
    print("quick profile: %.0f s" % secs)
    if secs > 600:
        fail("the quick profile took %.0f s" % secs)
    html_path = a + "/report.html"
    html = open(html_path, encoding="utf-8").read()
    if re.search(r'(src|href)="(?!data:|#)', html):
        fail("report.html links outside itself: %s" % re.search(r'(src|href)="(?!data:|#)[^"]*', html).group(0))
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    rep = json.load(open(a + "/report.json"))
    n_fig = sum(len(st["figures"]) for st in rep["steps"].values())
    if len(imgs) != n_fig or n_fig < 7:
        fail("%d embedded images for %d figures" % (len(imgs), n_fig))
    for i, b in enumerate(imgs):
        check_png(base64.b64decode(b, validate=True), "image %d" % i)
    if list(rep["steps"]) != STEPS:
        fail("report.json steps %r" % list(rep["steps"]))
    dom = browser_dom(html_path, tmp)
    for s in STEPS:
        m = re.search(r'<section id="%s">(.*?)</section>' % s, dom, re.S)
        if not m:
            fail("chromium: section %s missing" % s)
        if "Not run yet" in m.group(1):
            fail("chromium: section %s not run" % s)
        if "<table" not in m.group(1):
            fail("chromium: section %s has no table" % s)
    m = re.search(r'data-widths="([0-9,]*)"', dom)
    widths = [int(w) for w in m.group(1).split(",")] if m and m.group(1) else []
    if len(widths) != len(imgs) or min(widths) <= 0:
        fail("chromium decoded image widths %r of %d images" % (widths, len(imgs)))
    cmds = re.findall(r"reproduce: <code>([^<]*)</code>", dom)
    if len(cmds) != len(imgs) + dom.count("<table"):
        fail("%d reproduce lines for %d figures and %d tables" % (len(cmds), len(imgs), dom.count("<table")))
    # numbers a reader would check first
    n = rep["steps"]
    for k, lo in (("shirt_test_accuracy", 0.75), ("cancer_test_accuracy", 0.9)):
        if not n["exp1"]["numbers"][k] > lo:
            fail("exp1 %s = %r" % (k, n["exp1"]["numbers"][k]))
    e2 = n["exp2"]["numbers"]
    if not e2["fm10_pgd_accuracy_eps_0.1"] < e2["fm10_clean_accuracy"] / 2:
        fail("PGD at eps 0.1 leaves %r of %r" % (e2["fm10_pgd_accuracy_eps_0.1"], e2["fm10_clean_accuracy"]))
    if n["oq2"]["numbers"]["unbounded_pgd_accuracy"] != 0:
        fail("unbounded PGD leaves %r" % n["oq2"]["numbers"]["unbounded_pgd_accuracy"])
    shot = os.path.join(BUILD, "study-quick-screenshot.png")
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + tmp + "/prof2",
                    "--hide-scrollbars", "--window-size=1200,2400", "--screenshot=" + shot, "file://" + html_path],
                   capture_output=True, timeout=120)
    w, h = check_png(open(shot, "rb").read(), "screenshot")
    print("screenshot %s: %dx%d" % (shot, w, h))

    # resume: SIGKILL in the middle of a step, then the same command again
    b = tmp + "/b"
    p = subprocess.Popen([SKEPTIC, "study", "seed", "--profile", "quick", "--out", b], env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_in = None
    deadline = time.time() + 600
    while time.time() < deadline and p.poll() is None:
        if os.path.exists(b + "/steps/exp2.json") and os.path.isdir(b + "/models/exp3"):
            time.sleep(1.0)
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                killed_in = "exp3"
            break
        time.sleep(0.2)
    p.wait()
    if killed_in is None:
        fail("the second run was not caught in the middle of exp3")
    if os.path.exists(b + "/steps/exp3.json"):
        fail("exp3 finished before the kill")
    left = [f for f in os.listdir(b) if ".tmp-" in f]
    if left:
        fail("temporary files after SIGKILL in the report directory: %r" % left)
    r = run(["study", "seed", "--profile", "quick", "--out", b])
    if "finished earlier, kept" not in r.stderr:
        fail("the restart did not keep the finished steps:\n" + r.stderr)
    ra, rb = numbers(rep), numbers(json.load(open(b + "/report.json")))
    for s in STEPS:
        if ra[s] != rb[s]:
            fail("step %s differs after kill -9 and resume:\n%s\n%s" % (s, json.dumps(ra[s])[:600],
                                                                      json.dumps(rb[s])[:600]))
    print("resume after SIGKILL in %s: same numbers in every step" % killed_in)


def main():
    tmp = tempfile.mkdtemp(prefix="skeptic-study-")
    try:
        if SANITIZED:
            sanitized_checks(tmp)
        else:
            sanitized_checks(tmp)
            full_checks(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
