#!/usr/bin/env python3
"""stemgraph side by side with ffmpeg's filter graph and Spotify's pedalboard.

Run it through run.sh (which builds stemgraph first). What it does, in order:

1. writes the workloads with `stemgraph demo --no-render` (deterministic): R = 6 stereo stems
   x 4 min, 48 kHz, 24-bit; W8 = 8 stems, same length, for the other recipe;
2. reads R's chain from the compiled recipe (`stemgraph graph reference.lua`) and builds the
   same chain for ffmpeg (`-filter_complex`, one thread) and pedalboard (pedalboard_render.py);
3. renders, in one run, alternating, REPS times each: ffmpeg, pedalboard, stemgraph on 1 and
   on 2 threads, stemgraph's full mastering chain (mastering.lua) and another recipe
   (other.lua on W8), measuring wall time, CPU time (user + system) and peak RSS of each
   process (wait4's rusage);
4. checks that stemgraph's and ffmpeg's renders of R agree (integrated loudness within 1 LU,
   every third-octave band from 25 Hz to 20 kHz within 1.5 dB), so the race is of the same work;
5. measures peak RSS on a 60-minute version of R (`--no-long` skips it); run.sh adds the
   real-time callback's table (benches/realtime.rs);
6. writes the table to docs/PERFORMANCE.md (`--out`), with the machine and the command.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Running and measuring a process


# A child's peak RSS as wait4 reports it includes what it inherited at fork (Linux keeps the
# high-water mark across exec), i.e. this Python process's own footprint, which grows once the
# renders are analysed. GNU time forks the measured program from its own small process and
# reports that child's peak alone.
# Length of workload L, the loud master (issue 14: four real stems of 73 s at 44.1 kHz).
LOUD_SECONDS = 73
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def measure(cmd, env=None, cwd=None):
    """Runs `cmd`; returns (wall s, cpu s, peak RSS MiB). Fails loudly on a non-zero exit."""
    import tempfile

    full = [GNU_TIME, "-f", "MAXRSS_KB=%M"] + list(cmd) if GNU_TIME else list(cmd)
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
        if p.returncode != 0:
            raise SystemExit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n" + text)
    rss = ru.ru_maxrss / 1024.0
    if GNU_TIME:
        m = re.findall(r"MAXRSS_KB=(\d+)", text)
        if not m:
            raise SystemExit(f"no peak RSS from {GNU_TIME}: {text}")
        rss = int(m[-1]) / 1024.0
    return wall, ru.ru_utime + ru.ru_stime, rss


def fresh_in_page_cache(paths):
    """Drops each file from the page cache and reads it back in one sequential pass, so that it
    sits there in the large folios of the kernel's read-ahead. Pages left idle are paged out by a
    reclaimer such as DAMON's (on the benchmark VM: pages idle for a minute), and reading a file
    whose cached pages are scattered fills the holes with single 4 KiB pages: a later render's
    read() of the file then costs measurably more kernel time (R on Zen 5: ~5-10 % of its CPU)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fdatasync(fd)  # dirty pages (a workload just written) cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            while os.read(fd, 1 << 20):
                pass
        finally:
            os.close(fd)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


# ---------------------------------------------------------------------------------------------
# The chain, read from the compiled recipe


def parse_graph(listing):
    """Parses `stemgraph graph` text into nodes: id -> {kind, inputs, params}, in order."""
    nodes = {}
    cur = None
    for line in listing.splitlines():
        m = re.match(r"^(\S+) \((\w+), (\d) ch", line)
        if m:
            cur = {"id": m[1], "kind": m[2], "inputs": [], "params": {}}
            nodes[m[1]] = cur
            continue
        m = re.match(r"^  <- (\S+)", line)
        if m and cur:
            cur["inputs"].append(m[1])
            continue
        m = re.match(r"^  (\S+) = (\S+)$", line)
        if m and cur:
            cur["params"][m[1][len(cur["id"]) + 1 :]] = float(m[2])
    return nodes


def step(node):
    """The tool-neutral description of one processor node (the subset R uses)."""
    k, p = node["kind"], node["params"]
    if k == "eq":
        bands = sorted({int(name.split(".")[0]) for name in p})
        out = []
        for b in bands:
            if f"{b}.gain_db" not in p or f"{b}.q" not in p:
                raise SystemExit(f"{node['id']}: band {b} is not a bell")
            out.append(
                {"kind": "bell", "freq_hz": p[f"{b}.freq_hz"], "gain_db": p[f"{b}.gain_db"],
                 "q": p[f"{b}.q"]}
            )
        return out
    if k == "compressor":
        if p["link_pct"] != 100 or p["mix_pct"] != 100 or p["makeup_db"] != 0:
            raise SystemExit(f"{node['id']}: only linked, unmixed compressors without makeup")
        return [{"kind": "compressor", **{n: p[n] for n in
                 ("threshold_db", "ratio", "knee_db", "attack_ms", "release_ms")}}]
    if k == "gain":
        return [{"kind": "gain", "gain_db": p["gain_db"]}]
    if k == "limiter":
        return [{"kind": "limiter", "ceiling_db": p["ceiling_dbtp"], "release_ms": p["release_ms"],
                 "lookahead_ms": p["lookahead_ms"]}]
    raise SystemExit(f"{node['id']}: no translation for kind {k}")


def chain_of(nodes, stems_dir):
    """Stem chains (stem -> processors -> bus 'master') and the master chain (bus -> output)."""
    consumers = {}
    for n in nodes.values():
        for i in n["inputs"]:
            consumers.setdefault(i, []).append(n["id"])

    def follow(start, stop_kind):
        steps, cur = [], start
        while True:
            nxt = consumers.get(cur, [])
            if not nxt and stop_kind == "output":
                return steps, None  # outputs are not listed
            if len(nxt) != 1:
                raise SystemExit(f"{cur}: R's chains are linear")
            node = nodes[nxt[0]]
            if node["kind"] == stop_kind:
                return steps, node["id"]
            steps += step(node)
            cur = node["id"]

    stems = []
    bus = None
    for n in nodes.values():
        if n["kind"] == "stem":
            if n["params"].get("gain_db", 0) != 0:
                raise SystemExit(f"{n['id']}: keep stem faders at 0 dB (use a gain processor)")
            steps, bus_id = follow(n["id"], "bus")
            bus = bus or bus_id
            stems.append({"name": n["id"], "path": str(stems_dir / f"{n['id']}.wav"),
                          "chain": steps})
    master, _ = follow(bus, "output")
    return {"stems": stems, "master": master}


def ffmpeg_graph(chain):
    """The same chain as an ffmpeg filter graph (double precision throughout)."""

    def filt(p):
        k = p["kind"]
        if k == "bell":
            return f"equalizer=f={p['freq_hz']:g}:t=q:w={p['q']:g}:g={p['gain_db']:g}"
        if k == "compressor":
            # acompressor smooths with coefficient 4000/(attack·fs): a time constant of attack/4
            # ms, hence 4x stemgraph's time constants (attack and release to 63 %). Knee is a
            # factor (its width in dB is 20·log10(knee)); threshold is linear.
            return (
                "acompressor=mode=downward:detection=peak:link=maximum:makeup=1:mix=1:"
                f"threshold={10 ** (p['threshold_db'] / 20):.6f}:ratio={p['ratio']:g}:"
                f"attack={4 * p['attack_ms']:g}:release={4 * p['release_ms']:g}:"
                f"knee={10 ** (p['knee_db'] / 20):.6f}"
            )
        if k == "gain":
            return f"volume=volume={p['gain_db']:g}dB:precision=double"
        if k == "limiter":
            return (
                f"alimiter=limit={10 ** (p['ceiling_db'] / 20):.6f}:attack={p['lookahead_ms']:g}:"
                f"release={p['release_ms']:g}:asc=0:level=0:latency=1"
            )
        raise SystemExit(f"no ffmpeg filter for {k}")

    parts = []
    for i, s in enumerate(chain["stems"]):
        parts.append(f"[{i}:a]aformat=sample_fmts=dblp," + ",".join(map(filt, s["chain"])) + f"[s{i}]")
    n = len(chain["stems"])
    parts.append("".join(f"[s{i}]" for i in range(n)) +
                 f"amix=inputs={n}:normalize=0:duration=longest[mix]")
    parts.append("[mix]" + ",".join(map(filt, chain["master"])) + "[out]")
    return ";".join(parts)


# ---------------------------------------------------------------------------------------------
# Agreement: loudness and third-octave bands


def read_wav(path):
    """A PCM 16/24-bit or float WAV as float64 array (frames, channels), and its rate."""
    import numpy as np

    data = Path(path).read_bytes()
    pos, fmt, rate, ch, bits, raw = 12, None, None, None, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = int.from_bytes(body[0:2], "little")
            ch = int.from_bytes(body[2:4], "little")
            rate = int.from_bytes(body[4:8], "little")
            bits = int.from_bytes(body[14:16], "little")
            if fmt == 0xFFFE:
                fmt = int.from_bytes(body[24:26], "little")
        elif cid == b"data":
            raw = body
        pos += 8 + size + (size & 1)
    if fmt == 3 and bits == 32:
        x = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    elif fmt == 1 and bits == 16:
        x = np.frombuffer(raw, dtype="<i2") / 32768.0
    elif fmt == 1 and bits == 24:
        b = np.frombuffer(raw[: len(raw) // 3 * 3], dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v / float(1 << 23)
    else:
        raise SystemExit(f"{path}: unsupported WAV format {fmt}/{bits}")
    return x.reshape(-1, ch), rate


def third_octaves(path):
    """Levels in dB of the third-octave bands 25 Hz .. 20 kHz (Welch, Hann, 2^16 points)."""
    import numpy as np

    x, rate = read_wav(path)
    n = 1 << 16
    hop = n // 2
    win = np.hanning(n)
    psd = np.zeros(n // 2 + 1)
    segs = 0
    for c in range(x.shape[1]):
        ch = x[:, c]
        for s in range(0, len(ch) - n + 1, hop):
            psd += np.abs(np.fft.rfft(ch[s : s + n] * win)) ** 2
            segs += 1
    psd /= max(segs, 1)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    bands = []
    for k in range(-16, 14):
        fc = 1000.0 * 2 ** (k / 3)
        lo, hi = fc * 2 ** (-1 / 6), fc * 2 ** (1 / 6)
        p = psd[(f >= lo) & (f < hi)].sum()
        bands.append((fc, 10 * np.log10(p + 1e-30)))
    return bands


def loudness(path):
    """(integrated LUFS, true peak dBTP) by ffmpeg's ebur128 filter."""
    err = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path), "-af",
         "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr
    summary = err[err.rfind("Summary:") :]
    i = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary)[1])
    tp = re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    return i, float(tp[1]) if tp else float("nan")


def agreement(a, b):
    la, lb = loudness(a), loudness(b)
    ba, bb = third_octaves(a), third_octaves(b)
    worst = max(((abs(x[1] - y[1]), x[0]) for x, y in zip(ba, bb)))
    return {
        "lufs": (la[0], lb[0]),
        "tp": (la[1], lb[1]),
        "d_lufs": abs(la[0] - lb[0]),
        "worst_band_db": worst[0],
        "worst_band_hz": worst[1],
        "bands": [(x[0], x[1], y[1]) for x, y in zip(ba, bb)],
    }


# ---------------------------------------------------------------------------------------------
# The machine


def m_flags():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def machine():
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            fl = set(line.split(":", 1)[1].split())
            flags = ", ".join(f for f in ("avx2", "fma", "avx512f") if f in fl)
            break
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = int(line.split()[1]) / 1024 / 1024
    load = os.getloadavg()[0]
    return {"cpu": model, "cores": os.cpu_count(), "flags": flags, "mem_gib": mem,
            "kernel": platform.release(), "load": load}


def versions(sg):
    ff = run(["ffmpeg", "-hide_banner", "-version"]).splitlines()[0]
    pb = run([sys.executable, "-c", "import pedalboard, numpy; print(pedalboard.__version__, numpy.__version__)"]).split()
    sgv = run([sg, "--version"]).strip()
    return {"ffmpeg": ff, "pedalboard": pb[0], "numpy": pb[1], "python": platform.python_version(), "stemgraph": sgv}


# ---------------------------------------------------------------------------------------------


def realtime_share(realtime, recipe):
    """(p99.9 / deadline %, p99.9 of one pass as measured, µs) of `recipe`'s row in
    benches/realtime.rs's table (None if absent)."""
    for line in (realtime or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == recipe and cells[-1].endswith("%"):
            return float(cells[-1].rstrip("% ")), cells[-2]
    return None


def goals(w, med, results, a, realtime, long, pb_wall):
    """The goals of issue 14 (performance II), each with this run's figure: met or not."""
    if a.seconds != 240:
        w("## The goals of issue 14")
        w("")
        w(f"Not judged: the goals are for 4-minute workloads, this run's are {a.seconds:g} s.")
        w("")
        return
    rows = []

    def row(goal, figure, met):
        rows.append((goal, figure, "met" if met else "**not met**"))

    m1w, m1c, m2w, m2c = med("master1", 0), med("master1", 1), med("master2", 0), med("master2", 1)
    row("M <= 1.1 s on 1 thread (report on)", f"{m1w:.2f} s wall, {m1c:.2f} s CPU", m1w <= 1.1)
    row("M <= 0.7 s on 2 threads", f"{m2w:.2f} s wall, {m2c:.2f} s CPU", m2w <= 0.7)
    row("M: 2 threads >= 1.6x faster than 1", f"{m1w / m2w:.2f}x (wall)", m1w / m2w >= 1.6)
    l1w, l2w = med("loud1", 0), med("loud2", 0)
    row("L (loud master) <= 1.0 s", f"{l1w:.2f} s on 1 thread ({med('loud1', 1):.2f} s CPU), "
        f"{l2w:.2f} s on 2", min(l1w, l2w) <= 1.0)
    r1w = med("sg1", 0)
    row("R <= 0.6 s on 1 thread, report on", f"{r1w:.2f} s wall, {med('sg1', 1):.2f} s CPU", r1w <= 0.6)
    row("R >= 6x pedalboard (same run)", f"{pb_wall / r1w:.1f}x (wall)", pb_wall / r1w >= 6.0)
    if a.baseline_bin:
        o, ob = med("other1", 1), med("base_other", 1)
        row(f"O no slower than {a.baseline_label}", f"{o:.2f} s CPU vs {ob:.2f} s", o <= ob * 1.05)
    if long:
        rss = max(long[1][2], long[2][2])
        row(f"Peak RSS < 50 MB on the {a.long_minutes:g}-minute project", f"{rss:.0f} MiB", rss < 50)
    live = realtime_share(realtime, "mastering.lua")
    if live is not None:
        share, one_pass = live
        row("Live callback p99.9 <= 5 % of a 64-frame deadline, M chain",
            f"{share:.1f} % (each callback's cheapest pass; one pass as measured, the machine's "
            f"stalls included: {one_pass})", share <= 5.0)
    w("## The goals of issue 14")
    w("")
    w("Judged on this run's medians (wall time unless said; a loaded machine stretches wall time: "
      "see the load average above).")
    w("")
    w("| goal | this run | |")
    w("|---|---|---|")
    for goal, figure, verdict in rows:
        w(f"| {goal} | {figure} | {verdict} |")
    w("")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "target/release/stemgraph"))
    ap.add_argument("--work", default=str(ROOT / "target/compare"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--out", default=str(ROOT / "docs/PERFORMANCE.md"))
    ap.add_argument("--no-long", action="store_true", help="skip the 60-minute memory check")
    ap.add_argument("--long-minutes", type=float, default=60)
    ap.add_argument("--realtime-md", default=None, help="benches/realtime.rs's table, to include")
    ap.add_argument("--command", default="benches/compare/run.sh", help="the command shown in the report")
    ap.add_argument("--baseline-bin", default=None,
                    help="an older stemgraph build (e.g. before the optimization work) to render R*, M and O "
                         "beside this one, for the speed-up per recipe")
    ap.add_argument("--baseline-label", default="baseline", help="what the baseline build is")
    a = ap.parse_args()

    sg = str(Path(a.bin).resolve())
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    secs = a.seconds
    # stemgraph's stem cache (the stems' hashes and meters for the report) in a fresh folder:
    # the warm-up round fills it, as the first render of a project does; `sg1_cold` renders
    # without it.
    cache = work / "stem-cache"
    shutil.rmtree(cache, ignore_errors=True)
    env1 = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                STEMGRAPH_CACHE_DIR=str(cache))

    # 1. Workloads (deterministic; regenerated when their stem count or length changes: delete a
    # workload's stamp.json to have it written again).
    def workload(name, stems):
        d = work / name
        stamp = d / "stamp.json"
        want = {"stems": stems, "seconds": secs}
        if not (stamp.exists() and json.loads(stamp.read_text()) == want):
            shutil.rmtree(d, ignore_errors=True)
            log(f"writing workload {name}: {stems} stems x {secs:g} s")
            run([sg, "demo", "--stems", str(stems), "--seconds", f"{secs:g}", "--no-render", "--out", str(d)])
            stamp.write_text(json.dumps(want))
        return d

    r_dir = workload("R", 6)
    w8_dir = workload("W8", 8)
    for f in ("reference.lua", "mastering.lua"):
        shutil.copy(HERE / f, r_dir / f)
    # R*: the same recipe with the limiter detecting true peak at 4x.
    ref = (HERE / "reference.lua").read_text()
    if "oversampling = 1" not in ref:
        raise SystemExit("reference.lua: expected the limiter at `oversampling = 1`")
    (r_dir / "reference_tp4.lua").write_text(ref.replace("oversampling = 1", "oversampling = 4"))
    shutil.copy(HERE / "other.lua", w8_dir / "other.lua")

    # L: the loud master on four demo stems of 73 s, resampled to 44.1 kHz by ffmpeg (the demo
    # writes 48 kHz; stemgraph refuses stems at another rate than the session's).
    l_dir = work / "L"
    l_stamp = l_dir / "stamp.json"
    l_want = {"stems": 4, "seconds": LOUD_SECONDS, "rate": 44100}
    if not (l_stamp.exists() and json.loads(l_stamp.read_text()) == l_want):
        shutil.rmtree(l_dir, ignore_errors=True)
        log(f"writing workload L: 4 stems x {LOUD_SECONDS} s at 44.1 kHz")
        run([sg, "demo", "--stems", "4", "--seconds", str(LOUD_SECONDS), "--no-render",
             "--out", str(l_dir / "48k")])
        (l_dir / "stems").mkdir(parents=True)
        for name in ("drums", "bass", "keys", "lead"):
            run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                 "-i", str(l_dir / "48k" / "stems" / f"{name}.wav"), "-ar", "44100",
                 "-c:a", "pcm_s24le", str(l_dir / "stems" / f"{name}.wav")])
        shutil.rmtree(l_dir / "48k")
        l_stamp.write_text(json.dumps(l_want))
    shutil.copy(HERE / "loud.lua", l_dir / "loud.lua")

    # 2. The chain, read back from the compiled recipe.
    nodes = parse_graph(run([sg, "graph", str(r_dir / "reference.lua")]))
    chain = chain_of(nodes, r_dir / "stems")
    (work / "chain.json").write_text(json.dumps(chain, indent=1))
    fgraph = ffmpeg_graph(chain)
    (work / "ffmpeg_filter_complex.txt").write_text(fgraph + "\n")
    # M for ffmpeg: the same strips and R's master chain without its limiter; the loudness
    # target, the limiter and the deliverables are ffmpeg_master.py's.
    mgraph = ffmpeg_graph({"stems": chain["stems"],
                           "master": [p for p in chain["master"] if p["kind"] != "limiter"]})
    (work / "ffmpeg_master_filter_complex.txt").write_text(mgraph + "\n")
    out = work / "out"
    out.mkdir(exist_ok=True)
    ff_cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
              "-filter_complex_threads", "1", "-threads", "1"]
    for s in chain["stems"]:
        ff_cmd += ["-threads", "1", "-i", s["path"]]
    ff_cmd += ["-filter_complex", fgraph, "-map", "[out]", "-threads", "1", "-c:a", "pcm_s24le",
               str(out / "ffmpeg.wav")]
    pb_cmd = [sys.executable, str(HERE / "pedalboard_render.py"), str(work / "chain.json"),
              str(out / "pedalboard.wav")]
    ffm_cmd = [sys.executable, str(HERE / "ffmpeg_master.py"),
               str(work / "ffmpeg_master_filter_complex.txt"), str(out)] + [s["path"] for s in chain["stems"]]

    def sg_cmd(recipe, threads, dest):
        return [sg, "render", str(recipe), "--out", str(out / dest), "--threads", str(threads)]

    jobs = [
        ("ffmpeg", "R", "ffmpeg filter_complex, 1 thread", ff_cmd),
        ("pedalboard", "R", "pedalboard (Python), 1 thread", pb_cmd),
        ("sg1", "R", "stemgraph, 1 thread", sg_cmd(r_dir / "reference.lua", 1, "sg1")),
        ("sg2", "R", "stemgraph, 2 threads", sg_cmd(r_dir / "reference.lua", 2, "sg2")),
        ("sg1_cold", "R", "stemgraph, 1 thread, first render (`--no-cache`: stems hashed and metered)",
         sg_cmd(r_dir / "reference.lua", 1, "sg1_cold") + ["--no-cache"]),
        ("sg1_bare", "R", "stemgraph, 1 thread, `--no-report` (the same DSP and WAV, no report)",
         sg_cmd(r_dir / "reference.lua", 1, "sg1_bare") + ["--no-report"]),
        ("sg1_tp4", "R*", "stemgraph, 1 thread, limiter with 4x true-peak detection",
         sg_cmd(r_dir / "reference_tp4.lua", 1, "sg1_tp4")),
        ("ffmpeg_master", "M", "ffmpeg: loudnorm two-pass + alimiter + aresample + dither, 1 thread",
         ffm_cmd),
        ("master1", "M", "stemgraph full mastering chain, 1 thread", sg_cmd(r_dir / "mastering.lua", 1, "master1")),
        ("master2", "M", "stemgraph full mastering chain, 2 threads", sg_cmd(r_dir / "mastering.lua", 2, "master2")),
        ("loud1", "L", "stemgraph loud master, 1 thread", sg_cmd(l_dir / "loud.lua", 1, "loud1")),
        ("loud2", "L", "stemgraph loud master, 2 threads", sg_cmd(l_dir / "loud.lua", 2, "loud2")),
        ("other1", "O", "stemgraph other recipe (8 stems), 1 thread", sg_cmd(w8_dir / "other.lua", 1, "other1")),
        ("other2", "O", "stemgraph other recipe (8 stems), 2 threads", sg_cmd(w8_dir / "other.lua", 2, "other2")),
    ]

    # The baseline build renders what it can (it predates `--threads`, the report and the
    # sample-peak limiter mode): R*, M and O on one thread.
    if a.baseline_bin:
        base = str(Path(a.baseline_bin).resolve())

        def base_cmd(recipe, dest):
            # On one thread like the rows it is set beside (a build's default is every core).
            return [base, "render", str(recipe), "--out", str(out / dest), "--threads", "1"]

        jobs += [
            ("base_tp4", "R*", f"{a.baseline_label}, 1 thread", base_cmd(r_dir / "reference_tp4.lua", "base_tp4")),
            ("base_master", "M", f"{a.baseline_label}, 1 thread", base_cmd(r_dir / "mastering.lua", "base_master")),
            ("base_loud", "L", f"{a.baseline_label}, 1 thread", base_cmd(l_dir / "loud.lua", "base_loud")),
            ("base_other", "O", f"{a.baseline_label}, 1 thread", base_cmd(w8_dir / "other.lua", "base_other")),
        ]

    # 3. Warm-up (page cache, pyc), then REPS alternating rounds. The stems are first read
    # afresh (fresh_in_page_cache): every run then finds them in the page cache as a first read
    # leaves them, whatever happened to them since they were written.
    fresh_in_page_cache(sorted((r_dir / "stems").glob("*.wav")) + sorted((w8_dir / "stems").glob("*.wav"))
                        + sorted((l_dir / "stems").glob("*.wav")))
    log("warm-up round")
    for key, _, _, cmd in jobs:
        measure(cmd, env=env1)
    results = {key: [] for key, _, _, _ in jobs}
    for rep in range(a.reps):
        order = jobs if rep % 2 == 0 else list(reversed(jobs))
        for key, _, _, cmd in order:
            results[key].append(measure(cmd, env=env1))
        log(f"round {rep + 1}/{a.reps}: " + ", ".join(f"{k} {results[k][-1][0]:.2f}s" for k, *_ in jobs))

    def med(key, i):
        return statistics.median(r[i] for r in results[key])

    # 4. Agreement.
    log("checking agreement")
    sg_out = out / "sg1" / "reference.wav"
    ag_ff = agreement(sg_out, out / "ffmpeg.wav")
    ag_pb = agreement(sg_out, out / "pedalboard.wav")
    same_bits = all(sg_out.read_bytes() == (out / d / "reference.wav").read_bytes()
                    for d in ("sg2", "sg1_cold", "sg1_bare"))
    same_bits_m = all(
        (out / "master1" / f).read_bytes() == (out / "master2" / f).read_bytes()
        for f in ("mastering 24bit.wav", "mastering 16bit 44k1.wav"))
    same_bits_l = all(
        (out / "loud1" / f).read_bytes() == (out / "loud2" / f).read_bytes()
        for f in ("loud 24bit.wav", "loud 16bit.wav", "loud 48k.wav", "loud 96k.wav", "loud.flac"))
    same_bits_o = (out / "other1" / "other.wav").read_bytes() == (out / "other2" / "other.wav").read_bytes()
    m_lufs = loudness(out / "master1" / "mastering 16bit 44k1.wav")
    ffm_lufs = loudness(out / "ffmpeg_master 16bit 44k1.wav")
    # The portable build (no AVX2) must give the same bits.
    measure(sg_cmd(r_dir / "reference.lua", 1, "sg1_portable") + [], env=dict(env1, STEMGRAPH_SIMD="portable"))
    measure(sg_cmd(r_dir / "mastering.lua", 1, "master1_portable"), env=dict(env1, STEMGRAPH_SIMD="portable"))
    same_simd = sg_out.read_bytes() == (out / "sg1_portable" / "reference.wav").read_bytes() and all(
        (out / "master1" / f).read_bytes() == (out / "master1_portable" / f).read_bytes()
        for f in ("mastering 24bit.wav", "mastering 16bit 44k1.wav"))
    avx2 = "avx2" in m_flags()

    # 5. Memory on a long project, and the real-time callback.
    long = None
    if not a.no_long:
        mins = a.long_minutes
        d = work / "R_long"
        stamp = d / "stamp.json"
        want = {"stems": 6, "seconds": mins * 60}
        if not (stamp.exists() and json.loads(stamp.read_text()) == want):
            shutil.rmtree(d, ignore_errors=True)
            log(f"writing a {mins:g}-minute version of R (6 stems)")
            run([sg, "demo", "--stems", "6", "--seconds", f"{mins * 60:g}", "--no-render", "--out", str(d)])
            stamp.write_text(json.dumps(want))
        shutil.copy(HERE / "reference.lua", d / "reference.lua")
        log(f"rendering the {mins:g}-minute project")
        long = {t: measure(sg_cmd(d / "reference.lua", t, f"long{t}"), env=env1) for t in (1, 2)}
        shutil.rmtree(out / "long1", ignore_errors=True)
        shutil.rmtree(out / "long2", ignore_errors=True)
    realtime = Path(a.realtime_md).read_text() if a.realtime_md else None

    # 6. The report.
    m = machine()
    v = versions(sg)
    audio = secs
    ff_wall, ff_cpu = med("ffmpeg", 0), med("ffmpeg", 1)
    pb_wall, pb_cpu = med("pedalboard", 0), med("pedalboard", 1)
    lines = []
    w = lines.append
    w("# Performance")
    w("")
    w("stemgraph side by side with ffmpeg's filter graph and Spotify's pedalboard doing the same")
    w("work, measured in one run. Produced by")
    w("")
    w(f"    {a.command}")
    w("")
    w(f"on {m['cpu']} ({m['cores']} cores; {m['flags']}; {m['mem_gib']:.0f} GiB; Linux {m['kernel']}), "
      f"{datetime.date.today().isoformat()}, {a.reps} alternating rounds after a warm-up round (the "
      f"stems first dropped from the page cache and read back once); "
      f"load average {m['load']:.1f} at the end of the run. {v['stemgraph']}; {v['ffmpeg']}; "
      f"pedalboard {v['pedalboard']} (numpy {v['numpy']}, Python {v['python']}).")
    w("")
    w("Workloads (`stemgraph demo --no-render`, deterministic): **R** = 6 stereo stems x "
      f"{secs / 60:g} min, 48 kHz, 24-bit WAV; **W8** = 8 stems, same length.")
    w("")
    w("- **R**: `benches/compare/reference.lua`: per stem 2 EQ bells + compressor + gain, summed at")
    w("  unity; master 1 EQ bell + glue compressor + gain + limiter at -1 dB (sample peak, as")
    w("  ffmpeg's `alimiter` and pedalboard's `Limiter`); one 24-bit WAV. ffmpeg and pedalboard get")
    w("  the same numbers, read from the compiled recipe.")
    w("- **R\\***: R with stemgraph's limiter detecting true peak at 4x (`oversampling = 4` instead of 1).")
    w("- **M**: `mastering.lua`, the full mastering chain on R's stems to a loudness target of")
    w("  -14 LUFS: the same stem strips; master high-pass + bell, glue compressor, width, true-peak")
    w("  limiter with 8x detection at -1 dBTP, its drive solved for the target; 24-bit 48 kHz and")
    w("  TPDF-dithered 16-bit 44.1 kHz deliverables. ffmpeg's row, for the record")
    w("  (`ffmpeg_master.py`): the same strips, `loudnorm` two-pass to -14 LUFS, `alimiter` (sample")
    w("  peak), `aresample` with triangular dither, the same two files.")
    w(f"- **L**: `loud.lua`, a loud master: four of the demo's stems, {LOUD_SECONDS} s, resampled to 44.1 kHz")
    w("  by ffmpeg; master high-pass + bell, glue compressor, 8x true-peak limiter to -9 LUFS; five")
    w("  deliverables (24- and dithered 16-bit 44.1 kHz, 24-bit 48 and 96 kHz, FLAC).")
    w("- **O**: `other.lua` on W8: saturation, de-esser, multiband, width, a delay return, pans;")
    w("  master multiband + width + true-peak limiter.")
    w("")
    w("Medians of the rounds; CPU = user + system time of the process; RSS = its peak resident set "
      "(by GNU time).")
    w("Every stemgraph render also writes its report (`report.json`, `report.md`): meters on the")
    w("stems and the output, and every deliverable analysed as its file decodes (loudness,")
    w("true peak at 4x and 8x, levels) and hashed (SHA-256); ffmpeg and pedalboard do none of this.")
    w("The stems' hashes and meters are remembered between renders (the stem cache,")
    w("`docs/reports.md`), as in an engineer's re-render after a change to the recipe; the")
    w("`--no-cache` row is the first render of a project, which hashes and meters them too; the")
    w("`--no-report` row does the same work as ffmpeg and pedalboard and nothing more.")
    w("")
    w("| workload | renderer | wall s | CPU s | peak RSS MiB | x real time | wall vs ffmpeg | wall vs pedalboard |")
    w("|---|---|---:|---:|---:|---:|---:|---:|")
    for key, wl, label, _ in jobs:
        wall, cpu = med(key, 0), med(key, 1)
        rss = max(r[2] for r in results[key])
        length = LOUD_SECONDS if wl == "L" else audio
        w(f"| {wl} | {label} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {length / wall:.0f} | "
          f"{ff_wall / wall:.1f}x | {pb_wall / wall:.1f}x |")
    w("")
    if a.baseline_bin:
        w(f"Speed-up per recipe over {a.baseline_label} (1 thread, CPU time; both builds write "
          "their report): "
          + ", ".join(f"{wl} {med(bk, 1) / med(nk, 1):.2f}x ({med(bk, 1):.2f} s -> {med(nk, 1):.2f} s CPU)"
                      for wl, bk, nk in (("R*", "base_tp4", "sg1_tp4"), ("M", "base_master", "master1"),
                                         ("L", "base_loud", "loud1"), ("O", "base_other", "other1")))
          + ".")
        w("")
    goals(w, med, results, a, realtime, long, pb_wall)
    w("CPU-time ratios (less sensitive to other load on the machine): stemgraph 1 thread uses "
      f"{ff_cpu / med('sg1', 1):.1f}x less CPU than ffmpeg and {pb_cpu / med('sg1', 1):.1f}x less than "
      "pedalboard on R.")
    w("")
    w("All rounds (wall s / CPU s / RSS MiB):")
    w("")
    for key, wl, label, _ in jobs:
        w(f"- {key}: " + "; ".join(f"{r[0]:.2f}/{r[1]:.2f}/{r[2]:.0f}" for r in results[key]))
    w("")
    w("## Same work")
    w("")
    w(f"stemgraph vs ffmpeg on R: integrated {ag_ff['lufs'][0]:.1f} vs {ag_ff['lufs'][1]:.1f} LUFS "
      f"(difference {ag_ff['d_lufs']:.1f} LU, limit 1); largest third-octave difference "
      f"{ag_ff['worst_band_db']:.2f} dB at {ag_ff['worst_band_hz']:.0f} Hz (limit 1.5 dB): "
      f"**{'agree' if ag_ff['d_lufs'] <= 1.0 and ag_ff['worst_band_db'] <= 1.5 else 'DO NOT AGREE'}**.")
    w(f"stemgraph vs pedalboard (for information; pedalboard's compressor has no knee and no link): "
      f"{ag_pb['lufs'][0]:.1f} vs {ag_pb['lufs'][1]:.1f} LUFS, largest band difference "
      f"{ag_pb['worst_band_db']:.2f} dB at {ag_pb['worst_band_hz']:.0f} Hz.")
    w(f"True peak of the R renders (ffmpeg's meter): stemgraph {ag_ff['tp'][0]:.2f}, ffmpeg "
      f"{ag_ff['tp'][1]:.2f}, pedalboard {ag_pb['tp'][1]:.2f} dBTP; M's 16-bit 44.1 kHz "
      f"deliverable: {m_lufs[0]:.1f} LUFS, {m_lufs[1]:.2f} dBTP (ffmpeg's: {ffm_lufs[0]:.1f} LUFS, "
      f"{ffm_lufs[1]:.2f} dBTP).")
    w("")
    w(f"Bit-identical across thread counts (and with or without the cache and the report): R {'yes' if same_bits else 'NO'}, M "
      f"{'yes' if same_bits_m else 'NO'}, L {'yes' if same_bits_l else 'NO'}, O {'yes' if same_bits_o else 'NO'}. SIMD path that "
      f"rendered: {'AVX2' if avx2 else 'portable'}; the portable build (`STEMGRAPH_SIMD=portable`) "
      f"gives {'the same bits' if same_simd else 'DIFFERENT BITS'} on R and M.")
    w("")
    w("<details><summary>Third-octave levels of R, dB (stemgraph / ffmpeg / pedalboard)</summary>")
    w("")
    w("| band Hz | stemgraph | ffmpeg | pedalboard |")
    w("|---:|---:|---:|---:|")
    for (fc, s, f), (_, _, p) in zip(ag_ff["bands"], ag_pb["bands"]):
        w(f"| {fc:.0f} | {s:.2f} | {f:.2f} | {p:.2f} |")
    w("")
    w("</details>")
    w("")
    if long:
        w("## Memory and song length")
        w("")
        w(f"R's recipe on a {a.long_minutes:g}-minute version of R: peak RSS "
          f"{long[1][2]:.0f} MiB on 1 thread ({long[1][0]:.1f} s), {long[2][2]:.0f} MiB on 2 threads "
          f"({long[2][0]:.1f} s); on the {secs / 60:g}-minute R: {max(r[2] for r in results['sg1']):.0f} and "
          f"{max(r[2] for r in results['sg2']):.0f} MiB.")
        w("")
    if realtime:
        w("## Real-time callback")
        w("")
        w(realtime.strip())
        w("")
    w("## How the tools are configured")
    w("")
    w("- ffmpeg: one thread (`-filter_complex_threads 1 -threads 1`), double-precision samples")
    w("  (`aformat=dblp`), `equalizer` (RBJ peaking = stemgraph's bell), `acompressor` (peak detection,")
    w("  `link=maximum`, knee as a factor, attack/release x4 because its smoothing coefficient")
    w("  4000/(t·fs) makes t/4 its time constant), `volume` (double), `amix=normalize=0` (sum at")
    w("  unity), `alimiter` (`level=0`: no auto-gain; `latency=1`). The filter graph used is in")
    w("  `target/compare/ffmpeg_filter_complex.txt` after a run.")
    w("- pedalboard: `PeakFilter`, `Compressor` (JUCE: hard knee, channels unlinked), `Gain`,")
    w("  `Limiter`; stems streamed in 16384-frame blocks with `reset=False`, summed with numpy.")
    w("- stemgraph: `stemgraph render RECIPE --threads N`.")
    Path(a.out).write_text("\n".join(lines) + "\n")
    log(f"wrote {a.out}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
