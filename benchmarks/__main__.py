"""Every benchmark against every peer, in one command: a JSON result, a Markdown table and PNG plots.

    python -m benchmarks [--quick] [--only echo_bench,broadcast_bench] [--peers bolt,starlette]
                         [--out docs/benchmarks] [--python PATH] [--dry-run]

Each peer runs in a venv of its own under the cache directory ($BOLT_BENCH_CACHE, default
~/.cache/bolt-bench), made on first use: bolt's runtime dependencies, websockets (uvicorn's default
WebSocket implementation), the peer's packages, and this checkout of bolt on the path. A peer whose
packages do not install is skipped, with pip's reason, and so is a run that needs a program this
machine lacks (redis-server, chromium). `--python` runs every peer in one interpreter instead; a peer
whose module it cannot import is skipped.

The benchmarks are the scripts beside this file; each run is one script with its own command line,
restricted to the rows of one peer (the script's own servers, nothing duplicated here) and stopped
at its timeout. --quick gives each a small load (a few minutes in all); the default is the full
load (about an hour). Progress goes to stderr, one line per run.

Written to --out: results.json (every run: command, status, seconds, output and the rows of the
scripts that write --json), results.md (one table per benchmark) and a PNG per plotted figure
(matplotlib, the `bench` extra; without it the plots are skipped and said so).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Peer:
    """What a peer adds to bolt's runtime dependencies in its venv, and the module that proves it is there."""

    packages: tuple[str, ...]
    module: str
    about: str


PEERS = {
    # redis: the Redis rows; selenium and pytest: reconnect_bench drives Chromium through tests/browser.py.
    # Every venv has bolt's own dependencies, uvloop and httptools among them: uvicorn serves every peer on them.
    "bolt": Peer(("redis>=5.0.1", "selenium>=4.10", "pytest>=8"), "bolt",
                 "bolt itself (its protocol, accelerated and pure Python)"),
    "bare": Peer((), "uvicorn", "a bare ASGI app on stock uvicorn"),
    "uvicorn": Peer(("wsproto>=1.2",), "wsproto", "uvicorn's own WebSocket protocols (websockets-sansio, wsproto)"),
    "starlette": Peer(("starlette>=0.37",), "starlette", "Starlette"),
    # http_bench serves bolt, Starlette and FastAPI from FastAPI's venv, through uvicorn's httptools parser
    "fastapi": Peer(("fastapi",), "fastapi", "FastAPI"),
    "channels": Peer(("channels>=4.0",), "channels", "Django Channels (InMemoryChannelLayer)"),
    "picows": Peer(("picows>=1.0",), "picows", "picows' own echo server"),
    # its venv also serves bolt's rows of the same runs
    "django-bolt": Peer(("django-bolt",), "django_bolt",
                        "django-bolt's own Rust server (Actix), `manage.py runbolt`"),
}
COMMON = ("websockets>=13",)  # uvicorn's default WebSocket protocol, and the clients of some scripts


@dataclass(frozen=True)
class Run:
    """One script, restricted to one peer's rows, with its quick and full command lines."""

    script: str
    peer: str
    quick: tuple[str, ...]
    full: tuple[str, ...] = ()
    timeout: tuple[float, float] = (120, 900)  # seconds: quick, full
    needs: tuple[str, ...] = ()  # programs that must be on PATH
    json: bool = True  # the script writes --json rows

    @property
    def name(self) -> str:
        return f"{self.script} ({self.peer})"


def _rows(script: str, option: str, rows_by_peer: dict[str, str], quick: tuple[str, ...], full: tuple[str, ...] = (),
          **more: Any) -> list[Run]:
    return [Run(script, peer, (option, rows, *quick), (option, rows, *full), **more)
            for peer, rows in rows_by_peer.items()]


# A peer's run also has a bolt row, measured in the same run: peers run one after another, and on a
# shared machine only rows of one run compare fairly (bolt imports in every venv).
BROADCAST_ROWS = {"bolt": "bolt,bolt+proto,realtime,realtime+proto,realtime decoded+proto", "bare": "bare,bolt+proto",
                  "starlette": "starlette,starlette+proto,bolt,bolt+proto", "channels": "channels,bolt+proto"}
RUNS: list[Run] = [
    *_rows("echo_bench", "--servers",
           {"bolt": "bolt,bolt-py", "uvicorn": "sansio,wsproto,bolt", "picows": "picows,bolt",
            "django-bolt": "django-bolt,bolt"},
           ("--rounds", "1", "--duration", "1", "--warmup", "0.5", "--cases", "64B,64KiB")),
    *_rows("echo_overhead", "--apps", {"bolt": "bare,bolt", "starlette": "bare,bolt,starlette",
                                       "fastapi": "bare,bolt,fastapi"},
           ("--rounds", "1", "--duration", "1", "--warmup", "0.5")),
    *_rows("broadcast_bench", "--only", BROADCAST_ROWS, ("--connections", "200", "--messages", "20", "--warmup", "5")),
    Run("broadcast_bench", "bolt", ("--only", "redis x2,redis x2+proto,redis x2 2cores+proto", "--connections", "200",
                                    "--messages", "20", "--warmup", "5"),
        ("--only", "redis x2,redis x2+proto,redis x2 2cores+proto"), needs=("redis-server",)),
    Run("fanout_profile", "bolt", ("--rounds", "3"), ("--rounds", "15"), json=False),
    *_rows("idle_memory", "--impls", {"bolt": "bolt", "uvicorn": "websockets-sansio,wsproto,bolt"},
           ("-n", "1000", "--settle", "1"), ("-n", "10000")),
    *_rows("handshake_bench", "--servers", {"bolt": "bolt,sansio", "django-bolt": "bolt,django-bolt"},
           ("--seconds", "0.5", "--rounds", "1")),
    Run("routing_bench", "bolt", ("--repeat", "1", "--sizes", "10,100,1000"), timeout=(60, 300)),
    Run("handshake_instructions", "bolt", ("--handshakes", "200"), ("--handshakes", "1000"), timeout=(300, 900),
        needs=("valgrind", "callgrind_control"), json=False),
    Run("accel_micro", "bolt", ("--quick",), json=False),
    Run("json_relay", "bolt", ("--quick",), json=False),
    Run("django_bench", "bolt", ("--messages", "200", "--logouts", "5"), needs=("redis-server",), json=False),
    Run("reconnect_bench", "bolt", ("--restarts", "2",), needs=("chromium", "chromedriver"), json=False),
    Run("expiry_bench", "bolt", ("-n", "500", "--lead", "5"), json=False),
    Run("typed_json_bench", "bolt", ("--rounds", "1", "--messages", "2000"), json=False),
    Run("redis_hang", "bolt", ("--runs", "1"), timeout=(60, 300), needs=("redis-server",), json=False),
    Run("cluster_failover", "bolt", ("--runs", "1"), timeout=(120, 600), needs=("redis-server", "redis-cli"),
        json=False),
    # bolt, a bare app, Starlette and FastAPI in one run: FastAPI's venv has Starlette too.
    *_rows("http_bench", "--apps", {"fastapi": "bare,bolt,starlette,fastapi", "django-bolt": "bare,bolt,django-bolt"},
           ("--rounds", "1", "--duration", "1"), needs=("wrk",), json=False),
    *_rows("many_connections", "--only", {"bolt": "bolt", "starlette": "starlette", "channels": "channels"},
           ("-n", "1000", "--broadcasts", "5", "--churn-seconds", "1", "--budget", "90"),
           ("-n", "5000", "--broadcasts", "10", "--churn-seconds", "5", "--budget", "300"), timeout=(120, 360)),
]


# -- the peers' venvs --------------------------------------------------------------------------------

def bolt_dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


@dataclass
class Interpreter:
    """The Python a peer runs in, or why it cannot run."""

    python: str | None
    reason: str = ""
    versions: dict[str, str] = field(default_factory=dict)


def peer_venv(name: str, cache: Path) -> Interpreter:
    """The peer's venv, made (or remade, when its requirements changed) under `cache`."""
    requirements = [*bolt_dependencies(), *COMMON, *PEERS[name].packages]
    venv = cache / "venvs" / name
    python = venv / "bin" / "python"
    stamp = venv / "bolt-bench.stamp"
    digest = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()
    if not (python.exists() and stamp.exists() and stamp.read_text() == digest):
        shutil.rmtree(venv, ignore_errors=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if made.returncode:
            return Interpreter(None, f"venv failed: {made.stderr.strip()[-300:]}")
        installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                    *requirements], capture_output=True, text=True, timeout=900)
        if installed.returncode:
            return Interpreter(None, f"pip install failed: {installed.stderr.strip().splitlines()[-1:] or '?'}")
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              capture_output=True, text=True, check=True).stdout.strip()
        Path(site, "bolt-checkout.pth").write_text(f"{ROOT}\n")  # this checkout, its built extension included
        stamp.write_text(digest)
    return probe(str(python), name)


def probe(python: str, name: str) -> Interpreter:
    """`python` if it imports the peer's module (with the versions of what matters), else why not."""
    modules = ["bolt", "uvicorn", PEERS[name].module]
    code = ("import importlib.metadata as m, sys\n"
            "for d in sys.argv[1:]:\n"
            "    try: print(d, m.version(d))\n"
            "    except m.PackageNotFoundError: print(d, '-')\n")
    found = subprocess.run([python, "-c", f"import {', '.join(dict.fromkeys(modules))}"],
                           capture_output=True, text=True, cwd=ROOT)
    if found.returncode:
        return Interpreter(None, f"{name}: {PEERS[name].module} does not import in {python}: "
                                 f"{(found.stderr.strip().splitlines() or ['?'])[-1]}")
    distributions = ["bolt", "uvicorn", *(p.split(">")[0].split("=")[0] for p in PEERS[name].packages)]
    listed = subprocess.run([python, "-c", code, *dict.fromkeys(distributions)], capture_output=True, text=True)
    versions = dict(line.split(" ", 1) for line in listed.stdout.splitlines())
    return Interpreter(python, versions=versions)


# -- running -----------------------------------------------------------------------------------------

class Progress:
    """One line per run on stderr: a bar of runs done, elapsed time, what runs, how it ended."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()

    def line(self, text: str) -> None:
        filled = 20 * self.done // max(1, self.total)
        elapsed = int(time.monotonic() - self.started)
        print(f"[{'#' * filled}{'.' * (20 - filled)}] {self.done}/{self.total} {elapsed // 60}:{elapsed % 60:02d} "
              f"{text}", file=sys.stderr, flush=True)

    def step(self, text: str) -> None:
        self.done += 1
        self.line(text)


def execute(run: Run, python: str, quick: bool, raw: Path) -> dict[str, Any]:
    """Run one script; its status, output and rows. A timeout or a failure is a status, not an error."""
    rows_file = raw / f"{run.script}-{run.peer}.json"
    rows_file.unlink(missing_ok=True)
    command = [python, str(HERE / f"{run.script}.py"), *(run.quick if quick else run.full)]
    if run.json:
        command += ["--json", str(rows_file)]
    timeout = run.timeout[0 if quick else 1]
    started = time.monotonic()
    record: dict[str, Any] = {"benchmark": run.script, "peer": run.peer, "command": command[1:], "timeout": timeout}
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{HERE}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
                              start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        record.update(status="timeout", output=_text(exc.stdout), errors=_text(exc.stderr)[-2000:])
    else:
        record.update(status="ok" if done.returncode == 0 else f"failed (exit {done.returncode})",
                      output=done.stdout, errors=done.stderr[-2000:])
    record["seconds"] = round(time.monotonic() - started, 1)
    if rows_file.exists() and record["status"] == "ok":
        data = json.loads(rows_file.read_text())
        if isinstance(data, dict):  # rows with the run's context around them (many_connections.py)
            record["context"] = {key: value for key, value in data.items() if key != "results"}
            data = data["results"]
        record["rows"] = [dict(row, run=run.peer) for row in data]
    return record


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(memory / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


# -- the report --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    """A bar chart of one value of a benchmark's rows, a bar per label, one panel per facet."""

    benchmark: str
    file: str
    title: str
    value: str
    unit: str
    label: Callable[[dict[str, Any]], str]
    facet: Callable[[dict[str, Any]], str] = lambda row: ""
    keep: Callable[[dict[str, Any]], bool] = lambda row: True


def _on_off(row: dict[str, Any]) -> str:
    return "deflate on" if row["deflate"] else "deflate off"


def _run(row: dict[str, Any]) -> str:
    return f"the {row['run']} run"


FIGURES = [  # panels by run where a peer's run has bolt beside it: compare within a panel
    Figure("echo_bench", "echo.png", "64 B text echo: server CPU per message (lower is better)", "server_us",
           "microseconds", lambda r: r["server"], _run, lambda r: r["case"] == "64 B text"),
    Figure("echo_overhead", "echo_overhead.png", "64 B echo through stock uvicorn: server CPU per message",
           "server_us", "microseconds", lambda r: r["app"], _run),
    Figure("broadcast_bench", "broadcast.png", "Broadcast of 100 B to 1,000 connections", "deliveries_per_s",
           "deliveries/s", lambda r: r["server"], _run),
    Figure("idle_memory", "idle_memory.png", "Memory per idle connection (echo app)", "per_conn_kib", "KiB",
           lambda r: f"{r['impl']}, {_on_off(r)}", _run),
    Figure("handshake_bench", "handshake.png", "WebSocket handshakes: server CPU per handshake (lower is better)",
           "cpu", "microseconds", lambda r: f"{r['server']}, {r['route']}", _run),
    Figure("routing_bench", "routing.png", "Route matching, worst case", "tree_ns", "ns per match",
           lambda r: f"{r['probe']}", lambda r: f"{r['routes']} routes"),
    Figure("many_connections", "many_memory.png", "Memory per idle connection (rooms app)", "idle_kib_per_conn",
           "KiB", lambda r: r["server"], _on_off, lambda r: "idle_kib_per_conn" in r),
    Figure("many_connections", "many_broadcast.png", "Broadcast of 100 B to every connection, p50",
           "broadcast_p50_ms", "ms", lambda r: r["server"],
           keep=lambda r: not r["deflate"] and "broadcast_p50_ms" in r),
]


def plot(figure: Figure, rows: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    rows = [row for row in rows if figure.keep(row) and row.get(figure.value) is not None]
    if not rows:
        return
    facets = list(dict.fromkeys(figure.facet(row) for row in rows))
    fig, axes = plt.subplots(1, len(facets), figsize=(max(6, 4 * len(facets)), 3.6), squeeze=False)
    for ax, facet in zip(axes[0], facets):
        chosen = [row for row in rows if figure.facet(row) == facet]
        labels = [figure.label(row) for row in chosen]
        values = [row[figure.value] for row in chosen]
        colors = ["#d9480f" if label.startswith(("bolt", "realtime", "redis")) else "#868e96" for label in labels]
        ax.barh(labels, values, color=colors)
        ax.invert_yaxis()
        ax.set_title(facet, fontsize=9)
        ax.set_xlabel(figure.unit)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if max(values) >= 100 else "{x:,.3g}"))
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:,.3g}" if value < 100 else f" {value:,.0f}", va="center", fontsize=7)
        ax.margins(x=0.25)
    fig.suptitle(figure.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out / figure.file, dpi=110)
    plt.close(fig)


def shown(command: list[str]) -> str:
    """A run's command as a reader would type it: the script's name and its options, without --json."""
    if "--json" in command:
        command = command[:command.index("--json")]
    script, *options = command
    return " ".join([f"benchmarks/{Path(script).name}", *(f"'{o}'" if " " in o else o for o in options)])


def markdown(result: dict[str, Any]) -> str:
    """results.md: the machine, the peers, then per benchmark its runs and each script's own table."""
    m = result["machine"]
    lines = [f"# Benchmark results ({result['mode']})", "",
             f"Measured {result['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
             f"Linux {m['kernel']}, Python {m['python']} (load average before: {m['load_average']}).", "",
             "| peer | status | versions |", "|---|---|---|"]
    for name, peer in result["peers"].items():
        versions = ", ".join(f"{k} {v}" for k, v in peer.get("versions", {}).items())
        lines.append(f"| {name} | {peer['status']} | {versions or peer.get('reason', '')} |")
    for benchmark in dict.fromkeys(run["benchmark"] for run in result["runs"]):
        runs = [run for run in result["runs"] if run["benchmark"] == benchmark]
        lines += ["", f"## {benchmark}", "", "| peer | status | seconds |", "|---|---|---:|"]
        lines += [f"| {run['peer']} | {run['status']} | {run.get('seconds', '-')} |" for run in runs]
        for run in runs:
            if run.get("output", "").strip():
                lines += ["", f"`{shown(run['command'])}`", "", "```text", run["output"].strip(), "```"]
    return "\n".join(lines) + "\n"


def draw(result: dict[str, Any], out: Path) -> None:
    """Every figure whose benchmark has rows in `result`, as a PNG in `out`."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("plots skipped: matplotlib is not installed (pip install -e '.[bench]')", file=sys.stderr)
        return
    for figure in FIGURES:
        rows = [row for run in result["runs"] if run["benchmark"] == figure.benchmark for row in run.get("rows", [])]
        try:
            plot(figure, rows, out)
        except Exception as exc:  # one figure's trouble leaves the results and the other figures
            print(f"plot {figure.file} failed: {exc!r}", file=sys.stderr)


# -- the command -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small loads: a few minutes in all")
    scripts = ", ".join(dict.fromkeys(run.script for run in RUNS))
    parser.add_argument("--only", default="", help="comma-separated scripts: " + scripts)
    parser.add_argument("--peers", default="", help="comma-separated peers: " + ", ".join(PEERS))
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks"), help="where the results go")
    parser.add_argument("--cache", help="where the peers' venvs go",
                        default=os.environ.get("BOLT_BENCH_CACHE", str(Path.home() / ".cache" / "bolt-bench")))
    parser.add_argument("--python", help="run every peer in this interpreter instead of per-peer venvs")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (peers, commands) and write nothing")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other benchmarks' runs of the results.json in --out (re-measure a few)")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw the plots and results.md from the results.json in --out")
    args = parser.parse_args(argv)
    only = {name for name in args.only.split(",") if name}
    unknown = only - {run.script for run in RUNS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    peers = [name for name in (args.peers.split(",") if args.peers else PEERS) if name]
    if set(peers) - set(PEERS):
        parser.error(f"unknown peer(s): {', '.join(sorted(set(peers) - set(PEERS)))}")
    runs = [run for run in RUNS if (not only or run.script in only) and run.peer in peers]
    used = [name for name in peers if any(run.peer == name for run in runs)]

    if args.dry_run:
        for name in used:
            where = args.python or Path(args.cache) / "venvs" / name
            print(f"peer {name}: {PEERS[name].about}, in {where}")
        for run in runs:
            command = run.quick if args.quick else run.full
            timeout = run.timeout[0 if args.quick else 1]
            print(f"run {run.name}: {run.script}.py {' '.join(command)} (timeout {timeout:g} s"
                  + (f", needs {', '.join(run.needs)}" if run.needs else "") + ")")
        return 0

    out = Path(args.out)
    if args.replot:
        result = json.loads((out / "results.json").read_text())
        (out / "results.md").write_text(markdown(result))
        draw(result, out)
        return 0
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "mode": "quick" if args.quick else "full", "machine": machine(), "peers": {}, "runs": []}
    progress = Progress(len(runs) + len(used))
    interpreters: dict[str, Interpreter] = {}
    for name in used:
        progress.line(f"peer {name}: {'probing ' + args.python if args.python else 'venv under ' + args.cache}")
        interpreters[name] = probe(args.python, name) if args.python else peer_venv(name, Path(args.cache))
        peer = interpreters[name]
        result["peers"][name] = ({"status": "ok", "python": peer.python, "versions": peer.versions} if peer.python
                                 else {"status": "skipped", "reason": peer.reason})
        progress.step(f"peer {name}: {'ready' if peer.python else 'skipped: ' + peer.reason}")
    for run in runs:
        peer = interpreters[run.peer]
        missing = [program for program in run.needs if not shutil.which(program)]
        if not peer.python or missing:
            reason = f"peer {run.peer} skipped" if not peer.python else f"{', '.join(missing)} not found"
            result["runs"].append({"benchmark": run.script, "peer": run.peer, "status": f"skipped: {reason}"})
            progress.step(f"{run.name}: skipped ({reason})")
            continue
        progress.line(f"{run.name}: running (at most {run.timeout[0 if args.quick else 1]:g} s)")
        record = execute(run, peer.python, args.quick, raw)
        result["runs"].append(record)
        progress.step(f"{run.name}: {record['status']} in {record['seconds']} s")

    if args.merge and (out / "results.json").exists():
        earlier = json.loads((out / "results.json").read_text())
        measured = {run["benchmark"] for run in result["runs"]}
        result["runs"] = [run for run in earlier["runs"] if run["benchmark"] not in measured] + result["runs"]
        result["peers"] = {**earlier["peers"], **result["peers"]}
        result["date"] = f"{earlier['date']}, and {result['date']} for {', '.join(sorted(measured))}"
        order = list(dict.fromkeys(run.script for run in RUNS))
        result["runs"].sort(key=lambda run: order.index(run["benchmark"]))
    (out / "results.json").write_text(json.dumps(result, indent=2))
    (out / "results.md").write_text(markdown(result))
    draw(result, out)
    shutil.rmtree(raw, ignore_errors=True)
    failed = [run for run in result["runs"] if run["status"] not in ("ok",) and not run["status"].startswith("skipped")]
    print(f"results in {out}: {len(result['runs']) - len(failed)} of {len(result['runs'])} runs ok or skipped"
          + (f"; failed: {', '.join(run['benchmark'] + ' (' + run['peer'] + ')' for run in failed)}" if failed else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
