"""``gtaudit demo``: the whole workflow on the embedded AWS + Ground Truth runtime."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gtaudit.exceptions import InvalidLabelSetError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from gtaudit_local.commands import existing_folder
from gtaudit_local.commands.start import share


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="run the whole workflow on sample images, on the embedded runtime (127.0.0.1 only)",
        description=(
            "Start moto and the Ground Truth emulator on 127.0.0.1, wire the template's functions and rules, start a "
            "run on the images and let the template's events drive every stage. --out is a project folder: the "
            "bucket's objects are kept there as files as they are written (bucket/<bucket>/), with the services' "
            "state; a run that was interrupted (Ctrl-C, kill -9, a reboot) resumes where it was on the next start on "
            "the same folder, and says so. A finished run's folder starts clean; --fresh starts over in any case."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output/)")
    p.add_argument(
        "--workers",
        choices=["scripted", "browser", "team"],
        default="scripted",
        help="who does the tasks: scripted workers, you in a browser, or a team (--people) signing in",
    )
    p.add_argument("--people", help="for --workers team: name:role,... with roles labeler, auditor, lead")
    p.add_argument("--host", default="127.0.0.1", help="for --workers team: the address to serve on (LAN: tokens)")
    p.add_argument("--port", type=int, default=0, help="for --workers team: the port (default: a free one)")
    p.add_argument(
        "--name",
        action="append",
        default=[],
        dest="names",
        help="for --host: a host name or address people type to reach this machine (repeatable; "
        "needed with a wildcard --host such as 0.0.0.0)",
    )
    p.add_argument("--fresh", action="store_true", help="start over even if --out holds an interrupted run")
    p.add_argument("--images", type=Path, default=None, help="image folder (default: samples/images)")
    p.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        default=None,
        help="audit existing labels instead of labeling: a GT manifest, COCO file or masks folder "
        "(e.g. samples/imports/coco.json; its images are --images)",
    )
    p.add_argument("--attribute", default=None, help="with --from a GT manifest: its label attribute")
    p.add_argument(
        "--gold", metavar="SOURCE", default=None,
        help="images with known-correct masks mixed into the labeling to score labelers and auditors, as "
        "'gtaudit start --gold' takes (default: samples/gold with scripted workers on the sample images)",
    )  # fmt: skip
    p.add_argument("--no-gold", dest="with_gold", action="store_false", help="start the run without gold objects")
    p.add_argument(
        "--gold-share", type=share, default=None, metavar="G",
        help="share of the labeling job that is gold (default 0.4: with the 12 sample images, all 8 sample gold)",
    )  # fmt: skip
    p.add_argument(
        "--seed-share", type=share, default=None, metavar="S",
        help="share of the first audit that shows a gold mask with a known defect (default 0.4)",
    )  # fmt: skip
    p.add_argument("--project", type=Path, default=None, help="folder with template.yaml (default: found from here)")
    p.add_argument(
        "--labels",
        help="the classes: comma-separated names, each optionally name=#rrggbb, or the LabelSet JSON "
        "(default: the template's LabelSet)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the scripted workers")
    p.add_argument(
        "--timeout", type=float, default=None,
        help="seconds to wait for the workflow to settle (default: 600 scripted, a day with a browser)",
    )  # fmt: skip
    p.set_defaults(func=run)


def _progress_table(jobs: list[Any]) -> Table:
    table = Table(title="Ground Truth jobs (local emulator)", expand=False)
    for col in ("job", "stage", "round", "status", "progress", "labeled", "failed"):
        table.add_column(col)
    for j in jobs:
        done = j.finished if j.total else 0
        bar_width = 10
        filled = int(bar_width * done / j.total) if j.total else 0
        bar = "█" * filled + "░" * (bar_width - filled) + f" {done}/{j.total or '?'}"
        table.add_row(j.name, j.kind, str(j.round), j.status, bar, str(j.labeled), str(j.failed))
    return table


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    """The readable end-of-run tables."""
    jobs = Table(title="Jobs run")
    for col in ("name", "kind", "round", "status", "objects", "labeled", "failed", "seconds"):
        jobs.add_column(col, justify="right" if col in {"round", "objects", "labeled", "failed", "seconds"} else "left")
    for j in summary["jobs"]:
        jobs.add_row(j["name"], j["kind"], str(j["round"]), j["status"], str(j["objects"]), str(j["labeled"]),
                     str(j["failed"]), f"{j['seconds']:.1f}")  # fmt: skip
    console.print(jobs)
    c = summary["counts"]
    counts = Table(title="Objects")
    counts.add_column("")
    counts.add_column("count", justify="right")
    counts.add_row("objects in", str(c["objects-in"]))
    counts.add_row("approved", str(c["approved"]))
    counts.add_row("needing attention", str(c["needing-attention"]))
    counts.add_row("failed", str(c["failed"]))
    for reason, n in c["failed-reasons"].items():
        counts.add_row(f"  {reason}", str(n))
    if c.get("stalled"):
        counts.add_row("[red]stalled (never audited)[/red]", str(c["stalled"]))
    counts.add_row("adds up", "yes" if c["adds-up"] else "[red]NO[/red]")
    console.print(counts)
    timings = Table(title="Time per stage")
    timings.add_column("stage")
    timings.add_column("seconds", justify="right")
    for stage, seconds in summary["timings-seconds"].items():
        timings.add_row(stage, f"{seconds:.2f}")
    console.print(timings)
    failed = [d for d in summary["deliveries"]["failed"] if d.get("gave-up")]
    if failed:
        console.print(f"[yellow]{len(failed)} event deliveries failed after every retry (see _runtime/logs):[/yellow]")
        for d in failed[:5]:
            console.print(f"  {d['function']} ({d['rule']}): {str(d['error']).splitlines()[0][:200]}")
    stuck = summary.get("stuck")
    if stuck:
        console.print("[red]The run did not finish. What is stuck, and why:[/red]")
        for reason in stuck["reasons"]:
            console.print(f"  {reason}")


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its summary; 0 if it finished (the orchestrator's final summary, counts
    that add up, every job completed), 1 if it is stuck or incomplete (and says why)."""
    from gtaudit_local.demo import DemoError, run_demo

    if args.images is not None:
        existing_folder(args.images, "--images")
    # Job names are ~45 characters: under make or a pipe (no terminal, rich assumes 80 columns)
    # the tables would cut them, so use a width that fits them whole.
    console = Console(stderr=False, width=None if sys.stdout.isatty() else 132)
    live = Live(_progress_table([]), console=console, refresh_per_second=4, transient=False)
    try:
        with live:
            result = run_demo(
                args.out,
                workers=args.workers,
                images=args.images,
                project=args.project,
                seed=args.seed,
                timeout=args.timeout,
                on_progress=lambda jobs, _state: live.update(_progress_table(jobs)),
                log=lambda line: live.console.print(line, soft_wrap=True, markup=False, highlight=False),
                source=args.source,
                attribute=args.attribute,
                labels=args.labels,
                fresh=args.fresh,
                people=args.people,
                host=args.host,
                port=args.port,
                names=args.names,
                gold=args.gold,
                with_gold=args.with_gold,
                gold_share=args.gold_share,
                seed_share=args.seed_share,
            )
    except (DemoError, FileNotFoundError, InvalidLabelSetError) as exc:
        console.print(f"[red]demo: {exc}[/red]")
        return 2
    print_summary(console, result.summary)
    console.print(result.started_clean)
    console.print(
        f"output: {result.out}/ (summary.json, the bucket as files in {result.summary.get('bucket-folder')}/, "
        "report/, _runtime/logs; the same command resumes an interrupted run)"
    )
    summary = result.summary
    ok = result.finished and summary["counts"]["adds-up"] and all(j["status"] == "Completed" for j in summary["jobs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace()))
