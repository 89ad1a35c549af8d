"""The skeptic binary in a real pseudo-terminal, at 80 and 120 columns.

Every run's byte stream is rendered through a small terminal emulator
(printable characters with auto-wrap, CR, LF, BS, TAB, erase-line, cursor
motion; colours are parsed and dropped) that also records:

  * overflow: a character written past the last column (the terminal wrapped
    a line the program meant as one line);
  * stale text: when a line is left (CR, LF, cursor motion), characters to
    the right of the cursor that an earlier draw put there and the latest
    draw neither overwrote nor erased (the "... ETA 0:04" tail of a bar
    redrawn shorter without erasing).

Checks: no overflow and no stale text for train (deterministic and an
ensemble), attack --attack suite, compare, eval and the help pages at both
widths, and after a width change (SIGWINCH) mid-run; compare's table at 80
columns (stacked, its header before the first row, n/a for the MI AUROCs of a
deterministic net; --format md a pipe table); the suite's stage lines
arrive before the suite ends; SIGINT prints where training stopped, writes
the weights (without --checkpoint) or names the checkpoint and --resume (with
one), exits 130; typos get suggestions; exit codes 0/1/2; NO_COLOR and
non-terminals get no escape sequences.

`python3 tests/test_terminal.py --capture COLS -- skeptic ARGS...` prints the
rendered screen of one run (used for docs/terminal.md).
"""
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

SRC = os.environ.get("SKEPTIC_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SKEPTIC_BUILD_DIR", os.path.join(SRC, "build"))
SKEPTIC = os.path.join(BUILD, "skeptic")


class Screen:
    """A terminal of `width` columns with unlimited scrollback."""

    def __init__(self, width):
        self.width = width
        self.lines = [[]]
        self.r = 0
        self.c = 0
        self.pending_wrap = False
        self.overflow = []   # (row, text of the row) where a wrap happened
        self.stale = []      # (row, text of the row) left with stale characters
        self.drawn_since_cr = True

    def _row(self):
        while len(self.lines) <= self.r:
            self.lines.append([])
        return self.lines[self.r]

    def _leave_line(self):
        row = self._row()
        tail = "".join(row[self.c:]).strip()
        if tail and self.drawn_since_cr:
            self.stale.append((self.r, "".join(row).rstrip()))

    def _put(self, ch):
        if self.pending_wrap:
            self.overflow.append((self.r, "".join(self._row()).rstrip()))
            self.r += 1
            self.c = 0
            self.pending_wrap = False
        row = self._row()
        while len(row) < self.c:
            row.append(" ")
        if self.c < len(row):
            row[self.c] = ch
        else:
            row.append(ch)
        self.drawn_since_cr = True
        if self.c == self.width - 1:
            self.pending_wrap = True
        else:
            self.c += 1

    def feed(self, data):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        i = 0
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == "\x1b":
                m = re.match(r"\x1b\[([?0-9;]*)([A-Za-z@])", text[i:])
                if not m:
                    i += 1
                    continue
                self._csi(m.group(1), m.group(2))
                i += m.end()
                continue
            if ch == "\r":
                self._leave_line()
                self.c = 0
                self.pending_wrap = False
                self.drawn_since_cr = False
            elif ch == "\n":
                self._leave_line()
                self.r += 1
                self.pending_wrap = False
                self.drawn_since_cr = False
                self._row()
            elif ch == "\b":
                self.c = max(0, self.c - 1)
                self.pending_wrap = False
            elif ch == "\t":
                self.c = min(self.width - 1, (self.c // 8 + 1) * 8)
            elif ch == "\x07":
                pass
            elif ord(ch) >= 32:
                self._put(ch)
            i += 1

    def _csi(self, params, op):
        args = [int(p) if p.isdigit() else 0 for p in params.lstrip("?").split(";")] if params else []
        a = args[0] if args else 0
        row = self._row()
        if op == "K":
            if a == 0:
                del row[self.c:]
            elif a == 1:
                for k in range(min(self.c + 1, len(row))):
                    row[k] = " "
            else:
                row.clear()
            self.pending_wrap = False
        elif op == "A":
            self._leave_line()
            self.r = max(0, self.r - max(a, 1))
            self.pending_wrap = False
        elif op == "B":
            self._leave_line()
            self.r += max(a, 1)
            self._row()
        elif op == "C":
            self.c = min(self.width - 1, self.c + max(a, 1))
        elif op == "D":
            self.c = max(0, self.c - max(a, 1))
            self.pending_wrap = False
        elif op == "G":
            self.c = min(self.width - 1, max(a, 1) - 1)
            self.pending_wrap = False
        elif op == "J":
            if a in (2, 3):
                self.lines = [[]]
                self.r = self.c = 0
        # m (colours), h/l (modes): no effect on the text

    def text(self):
        out = ["".join(r).rstrip() for r in self.lines]
        while out and not out[-1]:
            out.pop()
        return out


ACTED = []  # (seconds, bytes read) when each action of the last run_pty ran


def run_pty(args, cols=80, rows=24, env=None, actions=None, timeout=120, stdin_tty=True):
    """Run args with stdout and stderr on a pseudo-terminal of cols x rows.

    actions: [(when, fn)]: fn(proc, master) runs once `when(elapsed, bytes
    so far)` is true. Returns (exit code, raw bytes, [(seconds, chunk)])."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.pop("SKEPTIC_NO_PROGRESS", None)
    e["TERM"] = "xterm-256color"
    e["PAGER"] = "cat"
    if env:
        e.update(env)
    t0 = time.time()
    ACTED.clear()
    p = subprocess.Popen(args, stdin=slave if stdin_tty else subprocess.DEVNULL, stdout=slave, stderr=slave,
                         env=e, start_new_session=True, close_fds=True)
    os.close(slave)
    chunks = []
    raw = b""
    pending = list(actions or [])
    while True:
        now = time.time() - t0
        for act in list(pending):
            if act[0](now, raw):
                pending.remove(act)
                ACTED.append((now, len(raw)))
                act[1](p, master)
        if now > timeout:
            p.kill()
            break
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                b = os.read(master, 65536)
            except OSError:
                b = b""
            if not b:
                break
            raw += b
            chunks.append((time.time() - t0, b))
        elif p.poll() is not None:
            # drain what is left
            try:
                while select.select([master], [], [], 0.05)[0]:
                    b = os.read(master, 65536)
                    if not b:
                        break
                    raw += b
                    chunks.append((time.time() - t0, b))
            except OSError:
                pass
            break
    rc = p.wait()
    os.close(master)
    return rc, raw, chunks


def resize(cols, rows=24):
    """An action: change the terminal's width (the kernel sends SIGWINCH)."""
    def act(p, master):
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        # the kernel signals the terminal's foreground group; the child runs in a session of its own
        os.kill(p.pid, signal.SIGWINCH)
    return act


def render(raw, cols):
    s = Screen(cols)
    s.feed(raw)
    return s


failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        failures.append(what)
        print("FAIL", what)


def fits(name, raw, cols, since=0):
    """The run's screen has no wrapped line and no stale text."""
    s = Screen(cols)
    s.feed(raw[:since])
    s.overflow, s.stale = [], []
    s.feed(raw[since:])
    check(not s.overflow, f"{name} at {cols} columns: no line wider than the terminal ({s.overflow[:2]})")
    check(not s.stale, f"{name} at {cols} columns: redraws leave no stale text ({s.stale[:2]})")
    return s


def self_test():
    """The emulator sees both faults it is used to find."""
    s = render(b"epoch 1/2 [=====] 10/100 ETA 0:04\repoch 1/2 [======] 11/100\n", 80)
    check(len(s.stale) == 1, "emulator: a shorter redraw without erasing is stale text")
    s = render(b"epoch 1/2 [=====] 10/100 ETA 0:04\r\x1b[Kepoch 1/2\n", 80)
    check(not s.stale and s.text() == ["epoch 1/2"], "emulator: CR + erase-line leaves only the new text")
    s = render(b"x" * 81 + b"\n", 80)
    check(len(s.overflow) == 1, "emulator: 81 characters on 80 columns wrap")
    s = render(b"x" * 80 + b"\r\n", 80)
    check(not s.overflow, "emulator: exactly 80 characters fit")


def main():
    self_test()
    work = tempfile.mkdtemp(prefix="skeptic-terminal-")
    fm = ["--data", "fashion-mnist"]
    mlp = os.path.join(work, "mlp.safetensors")
    # train: the bar at both widths, the summary lines
    for cols in (80, 120):
        rc, raw, _ = run_pty([SKEPTIC, "train"] + fm + ["--n", "2000", "--arch", "mlp:784-32-10:relu", "--epochs", "2",
                                                          "--batch", "8", "--out", mlp], cols)
        check(rc == 0, f"train at {cols}: exit 0 (got {rc})")
        check(b"epoch 1/2 [" in raw and b"\r" in raw, f"train at {cols}: the bar is drawn on a terminal")
        s = fits("train", raw, cols)
        txt = "\n".join(s.text())
        check(re.search(r"^epoch 2/2  loss \d+\.\d{4}  acc \d+\.\d\d%", txt, re.M), "train: epoch line with /N and %")
        check(re.search(r"^test       accuracy \d+\.\d\d% \(\d+/2000\)  loss ", txt, re.M),
              f"train: test accuracy as a percentage with the count ({txt[-200:]!r})")
    # the terminal narrows mid-run: every bar drawn 0.3 s after the resize fits the new width
    # (a model large enough that the run outlasts the resize by well over 0.3 s in an optimised build)
    rc, raw, chunks = run_pty([SKEPTIC, "train"] + fm + ["--n", "3000", "--arch", "mlp:784-512-512-10:relu", "--epochs",
                                                         "5", "--batch", "4", "--out", mlp], 120,
                              actions=[(lambda t, r: b"epoch 1/5 [" in r, resize(60))])
    t_resize = ACTED[0][0] if ACTED else 1e18
    off = sum(len(b) for t, b in chunks if t < t_resize + 0.3)
    check(rc == 0 and off < len(raw), f"resize: the run went on after the resize (rc {rc})")
    cut = raw.find(b"\r", off)
    fits("train after SIGWINCH to 60 columns", raw, 60, cut if cut >= 0 else len(raw))
    # an ensemble: one bar, member k/M, the same summary lines
    ens = os.path.join(work, "ens.safetensors")
    rc, raw, _ = run_pty([SKEPTIC, "train", "--method", "ensemble", "--members", "2"] + fm +
                         ["--n", "1000", "--arch", "mlp:784-16-10:relu", "--epochs", "1", "--batch", "8", "--out", ens], 80)
    s = fits("train --method ensemble", raw, 80)
    txt = "\n".join(s.text())
    check(rc == 0 and "member 2/2 epoch 1/1  loss" in txt, f"ensemble: member k/M in the epoch lines ({txt[:300]!r})")
    check(b"member 1/2 epoch 1/1 [" in raw, "ensemble: member k/M in the bar")
    check(re.search(r"^test       accuracy \d+\.\d\d% \(\d+/1000\)", txt, re.M), "ensemble: the same test line")
    # attack suite: the stage lines arrive as the stages end, before the summary
    for cols in (80, 120):
        rc, raw, chunks = run_pty([SKEPTIC, "attack", "--model", mlp] + fm +
                                  ["--attack", "suite", "--eps", "0.1", "--n", "40"], cols)
        s = fits("attack suite", raw, cols)
        txt = "\n".join(s.text())
        check(rc == 0, f"attack suite at {cols}: exit 0 ({rc})")

        def when(pat):
            acc = b""
            for t, b in chunks:
                acc += b
                if re.search(pat, acc):
                    return t
            return None
        t_stage = when(rb"apgd-ce +\d+ +(\x1b\[[0-9;]*m)? *\d+")
        t_end = when(rb"robust accuracy +")
        check(t_stage is not None and t_end is not None and t_stage < t_end,
              f"attack suite at {cols}: the first stage's line ({t_stage}) before the summary ({t_end})")
        check(re.search(r"robust accuracy +\d+\.\d\d% \(\d+/40\)", txt), "attack: robust accuracy 7.00% (35/500) style")
        check("eps 0.1)" in txt, "attack: eps printed as given")
    # Ctrl-C: the message, the weights written, exit 130; with --checkpoint the resume hint
    out = os.path.join(work, "int.safetensors")
    ck = os.path.join(work, "run.ckpt")
    base = [SKEPTIC, "train"] + fm + ["--n", "4000", "--arch", "mlp:784-32-10:relu", "--epochs", "40", "--batch", "4"]
    sigint = (lambda t, r: b"epoch 1/40 [" in r, lambda p, m: os.kill(p.pid, signal.SIGINT))
    rc, raw, _ = run_pty(base + ["--out", out], 80, actions=[sigint])
    txt = "\n".join(fits("train interrupted", raw, 80).text())
    check(rc == 130, f"Ctrl-C: exit 130 (got {rc})")
    check(re.search(r"interrupted at epoch 1, batch \d+ \(step \d+\)", txt) and "wrote the weights so far to" in txt,
          f"Ctrl-C: where it stopped and what was written ({txt[-300:]!r})")
    r = subprocess.run([SKEPTIC, "info", "--model", out], capture_output=True, text=True)
    meta = {}
    if os.path.exists(out):
        with open(out, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            meta = json.loads(f.read(n)).get("__metadata__", {})
    check("skeptic.interrupted" in meta, f"Ctrl-C: the weights written load, marked as interrupted ({meta.get('skeptic.interrupted')})")
    rc, raw, _ = run_pty(base + ["--out", out, "--checkpoint", ck], 80, actions=[sigint])
    txt = "\n".join(fits("train --checkpoint interrupted", raw, 80).text())
    m = re.search(r"checkpoint \S+ is at step (\d+): rerun the same command with --resume", txt.replace("\n  ", " "))
    check(rc == 130 and m is not None and os.path.exists(ck), f"Ctrl-C with --checkpoint: the resume hint ({txt[-300:]!r})")
    # typos: suggestions, and a bad value is a usage error (2)
    for args, want in ((["trian"], "did you mean 'train'?"),
                       (["train", "--epoch", "2"], "did you mean '--epochs'?"),
                       (["attack", "--model", mlp] + fm + ["--attack", "pgdd", "--eps", "0.1"], "did you mean 'pgd'?"),
                       (["eval", "--model", mlp] + fm + ["--split", "tset"], "did you mean 'test'?"),
                       (["help", "spec"], "did you mean 'specs'?")):
        rc, raw, _ = run_pty([SKEPTIC] + args, 80)
        txt = "\n".join(fits(" ".join(args[:2]), raw, 80).text()).replace("\n  ", " ")
        check(rc == 2 and want in txt, f"{' '.join(args)}: exit 2 and {want!r} ({rc}, {txt[:200]!r})")
    check("fgsm, pgd, mifgsm" in "\n".join(render(run_pty([SKEPTIC, "attack", "--model", mlp] + fm + ["--attack", "pgdd", "--eps", "0.1"], 80)[1], 80).text()),
          "--attack pgdd lists the attacks")
    # exit codes 0 / 1 / 2
    r = subprocess.run([SKEPTIC, "eval", "--model", os.path.join(work, "missing.safetensors")] + fm, capture_output=True)
    check(r.returncode == 1, f"a missing model file: exit 1 ({r.returncode})")
    r = subprocess.run([SKEPTIC, "eval", "--model", mlp] + fm + ["--n", "ten"], capture_output=True)
    check(r.returncode == 2, f"a bad number: exit 2 ({r.returncode})")
    # compare: an aligned table that fits 80 columns (stacked, the method column repeated), the header line
    # before the first row, n/a for the MI AUROCs of a one-sample method; --format md: a pipe table
    cmp = [SKEPTIC, "compare"] + fm + ["--ood", "mnist", "--arch", "mlp:784-16-10:relu", "--methods",
                                       "deterministic,ensemble", "--members", "2", "--epochs", "1", "--n", "1000", "--n-test", "200",
                                       "--n-adv", "20", "--samples", "4", "--attack-samples", "2", "--pgd-steps", "2"]
    rc, raw, _ = run_pty(cmp, 80)
    lines = fits("compare", raw, 80).text()
    heads = [i for i, l in enumerate(lines) if re.match(r"method +S +accuracy", l)]
    rows = {m: [i for i, l in enumerate(lines) if l.split()[:1] == [m]] for m in ("deterministic", "ensemble")}
    check(rc == 0 and heads and rows["deterministic"] and heads[0] < min(rows["deterministic"] + rows["ensemble"]),
          f"compare: the header line before the first row (rc {rc}, {lines[-12:]!r})")
    cells = {}
    for blk in [i for i, l in enumerate(lines) if l.startswith("method ")]:
        names = re.split(r"  +", lines[blk].strip())[1:]
        for l in lines[blk + 1:]:
            parts = l.split()
            if not parts or parts[0] not in rows:
                break
            check(len(parts) == len(names) + 1, f"compare: one cell per column in {l!r} under {lines[blk]!r}")
            for n, v in zip(names, parts[1:]):
                cells[(parts[0], n)] = v
    for col in ("OOD MI", "adv MI"):
        check(cells.get(("deterministic", col)) == "n/a", f"compare: deterministic {col} is n/a ({cells})")
        check(re.fullmatch(r"\d\.\d{4}", cells.get(("ensemble", col), "")), f"compare: ensemble {col} a number")
    check(re.fullmatch(r"\d\.\d{4}", cells.get(("deterministic", "OOD ent"), "")), "compare: deterministic OOD ent a number")
    check(len([l for l in lines if l.startswith("method ")]) >= 2, "compare: the 11 columns stack at 80 columns")
    r = subprocess.run(cmp + ["--format", "md", "-q"], capture_output=True, text=True)
    md = [l for l in r.stdout.splitlines() if l.startswith("|")]
    check(r.returncode == 0 and len(md) == 4 and md[0].startswith("| method | S | accuracy |") and
          md[2].startswith("| deterministic | 1 |") and "| n/a |" in md[2], f"compare --format md: a pipe table ({md})")
    r = subprocess.run(cmp[:2] + ["--format", "mdd"], capture_output=True, text=True)
    check(r.returncode == 2 and "did you mean 'md'?" in r.stderr, f"compare --format mdd: exit 2, a suggestion ({r.stderr})")
    # eval: the same blocks with and without --plots, Fashion-MNIST names beside the class numbers, headers over
    # their columns, no MI rows for a deterministic net, "1 sample", no double slash in the plot paths
    os.makedirs(os.path.join(work, "plots"), exist_ok=True)
    for extra in ([], ["--plots", os.path.join(work, "plots") + "/"]):
        rc, raw, _ = run_pty([SKEPTIC, "eval", "--model", mlp] + fm + ["--n", "300"] + extra, 80)
        lines = fits("eval " + " ".join(extra), raw, 80).text()
        txt = "\n".join(lines)
        head = next((l for l in lines if l.startswith("class ")), "")
        row9 = next((m for m in map(re.compile(r"( +9 Ankle boot +\d+)  +\d\.\d{4}$").match, lines) if m), None)
        check(rc == 0 and "confusion matrix" in txt and row9 is not None and "rows" in head and
              head.index("rows") + 4 == len(row9.group(1)) and len(head) == len(row9.group(0)),
              f"eval {extra}: the class table with names, headers over their columns, the confusion matrix ({txt[:600]!r})")
        if extra:
            check("1 sample," in txt and "//" not in txt and ", mi " not in txt and "misclassified, entropy" in txt,
                  f"eval --plots: 1 sample, no MI rows, single slashes ({txt[-900:]!r})")
            figs = sorted(os.listdir(os.path.join(work, "plots")))
            check(figs == ["entropy.png", "reliability.png"] and "no mutual_information.png" in txt,
                  f"eval --plots of a deterministic net: no all-zero MI histogram, and it says so ({figs})")
    # help pages fit at both widths and do not break words
    for cols in (80, 120):
        for args in (["--help"], ["train", "--help"], ["attack", "--help"], ["eval", "--help"], ["compare", "--help"],
                     ["help", "specs"], ["help", "eps"], ["help", "ood"], ["help", "files"], ["help", "exit-codes"]):
            rc, raw, _ = run_pty([SKEPTIC] + args, cols)
            s = fits(" ".join(args), raw, cols)
            check(rc == 0, f"{' '.join(args)}: exit 0 ({rc})")
    rc, raw, _ = run_pty([SKEPTIC, "train", "--help"], 80)
    txt = "\n".join(render(raw, 80).text())
    for g in ("data:", "model:", "optimisation:", "adversarial:", "Bayesian", "output:", "--method M", "--members M"):
        check(g in txt, f"train --help has {g!r}")
    # colour: on a terminal, never under NO_COLOR or into a pipe; no bar into a pipe
    rc, raw, _ = run_pty([SKEPTIC, "train", "--epoch", "2"], 80)
    check(b"\x1b[" in raw, "colour on a terminal")
    rc, raw, _ = run_pty([SKEPTIC, "train", "--epoch", "2"], 80, env={"NO_COLOR": "1"})
    check(b"\x1b[" not in raw, "no colour under NO_COLOR")
    r = subprocess.run([SKEPTIC, "train"] + fm + ["--n", "500", "--arch", "mlp:784-8-10:relu", "--epochs", "1",
                                                  "--out", mlp], capture_output=True)
    check(r.returncode == 0 and b"\x1b" not in r.stderr and b"\r" not in r.stderr and b"epoch 1/1  loss" in r.stderr,
          "piped: plain epoch lines, no bar, no escapes")
    r = subprocess.run([SKEPTIC, "train", "-q"] + fm + ["--n", "500", "--arch", "mlp:784-8-10:relu", "--epochs", "1",
                                                        "--out", mlp], capture_output=True)
    check(r.returncode == 0 and b"epoch" not in r.stderr and b"test " in r.stdout, "--quiet: results only")
    print(f"test_terminal: {checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--capture":
    cols = int(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1:]
    rc, raw, _ = run_pty(args, cols=cols, timeout=900)
    s = render(raw, cols)
    print("\n".join(s.text()))
    print(f"[exit {rc}; {len(s.overflow)} wrapped lines; {len(s.stale)} lines with stale text]")
    sys.exit(0)


if __name__ == "__main__":
    main()
