"""``gtaudit invoke``: run one template function against the embedded services, like ``sam local invoke``."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from gtaudit_local.commands import CommandError, existing_folder, read_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``invoke`` subcommand."""
    p = subparsers.add_parser(
        "invoke",
        help="run one function of template.yaml against the embedded services (like sam local invoke)",
        description=(
            "Start the embedded runtime (moto, the Ground Truth emulator, the Lambda service; 127.0.0.1 only), "
            "invoke FUNCTION (logical ID, physical name or code folder, e.g. labeling_pre) with the event, print "
            "its result as JSON and the function's log on stderr. --seed-dir uploads a folder into the data "
            "bucket first, so the event's s3:// references can exist."
        ),
    )
    p.add_argument("function", help="LabelingPreFunction, labeling_pre, gtaudit-LabelingPreFunction, ...")
    p.add_argument("--event", "-e", type=Path, required=True, help="event JSON file (events/<function>-<case>.json)")
    p.add_argument("--project", type=Path, default=None, help="folder with template.yaml (default: found from here)")
    p.add_argument("--seed-dir", type=Path, default=None, help="folder uploaded to the data bucket before invoking")
    p.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE", help="template parameters")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Invoke; exit 0 on success, 1 when the function raised."""
    event = read_json(args.event, "--event")  # before the runtime starts: a bad file costs nothing

    from gtaudit_local.lambdas import LambdaInvokeError, UnknownFunctionError
    from gtaudit_local.runtime import LocalRuntime, find_project_root

    bad = [kv for kv in args.parameter_overrides if "=" not in kv]
    if bad:
        raise CommandError(f"--parameter-overrides takes KEY=VALUE, got {bad[0]!r}")
    params = dict(kv.split("=", 1) for kv in args.parameter_overrides)
    if args.seed_dir:
        existing_folder(args.seed_dir, "--seed-dir")
    try:
        project = find_project_root(args.project)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from exc
    with (
        tempfile.TemporaryDirectory(prefix="gtaudit-invoke-") as work,
        LocalRuntime(project, work_dir=Path(work), parameters=params) as rt,
    ):
        assert rt.lambdas is not None
        if args.seed_dir:
            s3 = rt.client("s3")
            for path in sorted(p for p in args.seed_dir.rglob("*") if p.is_file()):
                s3.upload_file(str(path), rt.bucket, path.relative_to(args.seed_dir).as_posix())
        code = 0
        try:
            result = rt.lambdas.invoke(args.function, event)
            print(json.dumps(result, ensure_ascii=False, indent=1))
        except UnknownFunctionError:
            names = ", ".join(sorted(rt.stack.functions))
            print(f"invoke: no function {args.function!r} in the template ({names})", file=sys.stderr)
            code = 2
        except LambdaInvokeError as exc:
            print(json.dumps({"errorType": exc.error_type, "errorMessage": exc.error_message}, indent=1))
            code = 1
        rt.lambdas.close()  # flush the log before printing it
        for log in sorted(Path(work, "logs").glob("*.log")):
            sys.stderr.write(log.read_text(encoding="utf-8"))
    return code
