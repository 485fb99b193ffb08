"""``catsort --headless PATH``: the terminal shell over :mod:`catsort.sort`; plain ``catsort`` opens the window.

Exit codes: 0 every file handled, 1 some files could not be read or moved, or the report could not
be written (the rest were done),
2 usage errors or an unusable folder or model (nothing was touched), 3 stopped part way by a fault of
the disk (full, read-only) or of the model (one line says where and why; every file is at its old or its new place and
``--undo`` reverts what was done, or finishes an undo that stopped), 130 interrupted (every file is
still at its old or its new place; ``--undo`` reverts what was done; SIGTERM and SIGHUP stop a run the
same way), 141 the reader of the output
went away (``| head``), as a shell reports a program a closed pipe stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from catsort import __version__
from catsort.entry import Handler, ending_with, handle_stop_signals, restore_handlers
from catsort.errors import CatsortError, InterruptedBeforeMoving, interrupted_before_moving

if TYPE_CHECKING:
    from tqdm import tqdm

    from catsort.apply import Record, UndoSummary
    from catsort.sort import Summary

# Start-up: this module imports only what parsing needs. A sort imports the model first and starts its
# session in a thread (catsort.classify.BackgroundClassifier), then the rest of the app while it loads;
# --undo and --version never import numpy, Pillow or onnxruntime. (python -X importtime -m catsort ...)

EXIT_OK, EXIT_SOME_FAILED, EXIT_UNUSABLE, EXIT_STOPPED, EXIT_INTERRUPTED, EXIT_CLOSED_PIPE = 0, 1, 2, 3, 130, 141


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in (0, 1]")
    return value


def _jobs(text: str) -> int:
    """--jobs N: from 1 to :func:`_most_jobs`; past that, workers only add memory (each holds a photo decoded)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    if value > _most_jobs():
        raise argparse.ArgumentTypeError(f"{text} is more than this machine can use: at most {_most_jobs()} "
                                         f"(it has {_cpu_count()} cores, and each worker holds a decoded photo in memory)")
    return value


def _most_jobs() -> int:
    return max(8, 4 * _cpu_count())


def _folder_path(text: str) -> Path:
    """PATH as given; an empty one is refused, because ``Path("")`` is the current folder.

    ``catsort --headless "$DIR"`` with ``DIR`` unset must not sort wherever the terminal happens to be.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("PATH is empty (an unset variable?); to sort the current folder, give .")
    return Path(text)


_UNSEEN = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))} | {
    0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r", 0x5C: "\\\\"}
_INVISIBLE = frozenset({"Cf", "Zl", "Zp"})
"""Unicode's format characters (right-to-left overrides, zero-width joiners) and line separators."""


def printable(text: object) -> str:
    """``text`` with control and invisible characters shown as escapes, and a backslash as two.

    File names may hold newlines, terminal escape sequences or a right-to-left override: printed raw,
    one would split a one-line report in two, another would recolour the user's terminal, the last
    would show ``cat_gpj.exe`` reversed. A backslash doubles so that an escape cannot be faked.
    """
    import unicodedata

    shown = str(text).translate(_UNSEEN)
    if shown.isascii():
        return shown
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in _INVISIBLE else c for c in shown)


def _say(line: str, file: TextIO) -> None:
    """Print one line of the report, escaped by :func:`printable` (catsort's lines never hold a newline)."""
    print(printable(line), file=file)


def version_text() -> str:
    """The app's version and the shipped model's identity (what a bug report needs)."""
    from catsort.model import ModelCard, shipped_card_path

    try:
        model = ModelCard.load(shipped_card_path()).identity
    except CatsortError as exc:
        model = f"unavailable ({exc})"
    return f"catsort {__version__}\nmodel: {model}"


class VersionAction(argparse.Action):
    """``--version`` reads the model card only when asked (start-up stays light)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and the model's identity")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(version_text())
        parser.exit()


def _cpu_count() -> int:
    return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="catsort",
        description="Move cat photos to PATH/cats/ and dog photos to PATH/dogs/; everything else stays where it is. "
                    "Without --headless (or --undo) it opens the window, on PATH if given.",
        epilog="Every move is journaled in PATH/.catsort/ and can be undone with: catsort --undo PATH. "
               "Exit codes: 0 done; 1 some files could not be sorted; 2 usage error, or an unusable folder or model; "
               "3 stopped part way (disk full or read-only, folder gone); 130 interrupted; 141 output closed.",
    )
    p.add_argument("path", nargs="?", type=_folder_path, metavar="PATH", help="folder of photos")
    p.add_argument("--headless", action="store_true", help="sort from the terminal (no window)")
    p.add_argument("-r", "--recursive", action="store_true", help="also sort photos in sub-folders")
    p.add_argument("--copy", action="store_true", help="copy into cats/ and dogs/ instead of moving")
    p.add_argument("-n", "--dry-run", action="store_true", help="change nothing; show what would happen")
    p.add_argument("--threshold", type=_probability, metavar="P", help="minimum confidence to move a photo (default: the model card's)")
    p.add_argument("--model", type=Path, metavar="FILE", help="another model: its .onnx file (card beside it) or its .json card")
    p.add_argument("--jobs", type=_jobs, default=_cpu_count(), metavar="N",
                   help="worker threads, each decoding photos and running the model on them (default: %(default)s, all cores)")
    p.add_argument("--report", type=Path, metavar="FILE", help="write one record per file to FILE.json or FILE.csv")
    p.add_argument("--json", action="store_true", help="print a summary object on stdout (human summary goes to stderr)")
    p.add_argument("--undo", action="store_true", help="revert the last run in PATH")
    p.add_argument("--all", action="store_true", help="with --undo: revert every run in PATH, newest first")
    p.add_argument("--trust-journals", action="store_true",
                   help="act on undo journals in PATH that your catsort did not sign (yours from another computer or a backup)")
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    talk.add_argument("-v", "--verbose", action="store_true", help="print the decision for every file")
    p.add_argument("--version", action=VersionAction)
    return p


def main(argv: list[str] | None = None) -> int:
    # Started with a standard stream closed (``>&-``), Python leaves it None: what would go there goes nowhere.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the process's stdout, open until it ends
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):  # a file name that is not valid UTF-8 prints as escapes, not a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    # numpy's OpenBLAS starts a thread per core when numpy is imported (~60 ms of start-up measured on 2
    # cores) for linear algebra catsort never does; onnxruntime and Pillow do not use it.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.all and not args.undo:
        parser.error("--all goes with --undo")
    if args.undo:  # silently ignored, each would mislead: a "dry run" that undoes, a report never written
        flags = ("dry_run", "copy", "report", "json", "threshold", "model")
        not_undo = [f for f in flags if getattr(args, f)]
        if not_undo:
            parser.error(f"--{not_undo[0].replace('_', '-')} does not go with --undo (an undo puts every file of the run back, with no preview)")
    if args.report:
        from catsort.report import REPORT_SUFFIXES

        if args.report.suffix.lower() not in REPORT_SUFFIXES:
            parser.error(f"--report {printable(args.report)}: the file name must end in .json or .csv")
    if not (args.headless or args.undo):
        flags = ("copy", "dry_run", "report", "json", "threshold", "model", "all", "quiet", "verbose")
        terminal_only = [f for f in flags if getattr(args, f)]
        if terminal_only:
            parser.error(f"--{terminal_only[0].replace('_', '-')} goes with --headless (without it, catsort opens the window)")
        from catsort.gui.app import open_window

        return open_window(args.path, recursive=args.recursive)
    if args.path is None:
        parser.error("PATH is required")
    problem = args.report and _report_place_problem(args.report)
    if problem:  # found now, before the sort, rather than after every photo has moved
        parser.error(f"--report {printable(args.report)}: {problem}")
    import logging  # Pillow imports it anyway; here so a library's warning reads as one of ours

    logging.basicConfig(level=logging.WARNING, format="catsort: %(message)s")
    callers = _stop_like_ctrl_c() if _in_main_thread() else {}
    try:
        code = _run(args)
    finally:
        restore_handlers(callers)  # a caller (a test) keeps its own, and so do the programs it starts
    if argv is None:  # the program itself (console script, python -m catsort, the bundle), not a caller
        _leave(code)
    return code


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _run(args: argparse.Namespace) -> int:
    """The undo or the sort, with every way it can end turned into an exit code and one line."""
    try:
        return _undo(args) if args.undo else _sort(args)
    except CatsortError as exc:
        _say(f"catsort: {exc}", sys.stderr)
        return EXIT_UNUSABLE
    except BrokenPipeError:  # stdout's reader left before the sort's own output (that case is _sort's)
        _silence_stdout()
        return EXIT_CLOSED_PIPE
    except KeyboardInterrupt as exc:
        if isinstance(exc, InterruptedBeforeMoving):
            line = str(exc)
        elif args.undo:
            line = f"interrupted; every file is at its old or its new place: catsort --undo {args.path} again finishes putting them back"
        else:
            line = f"interrupted; every file is at its old or its new place. Undo what was done with: catsort --undo {args.path}"
        _stop_at_once_from_now(f"catsort: {line}")
        _past_the_echoed_ctrl_c()
        if args.undo:
            from catsort.apply import UndoInterrupted  # imported: the undo was running

            if isinstance(exc, UndoInterrupted):
                _print_undo(exc.summary, stopped=True)
        _say(f"catsort: {line}", sys.stderr)
        return EXIT_INTERRUPTED


def _report_place_problem(report: Path) -> str | None:
    """Why ``--report`` could not be written where it names, or None."""
    if report.is_dir():
        return "that is a folder"
    if report.exists():  # overwritten in place: only the file itself must be writable
        return None if os.access(report, os.W_OK) else "cannot write that file (permission denied)"
    folder = report.parent
    if not folder.is_dir():
        return f"the folder {printable(folder)} does not exist"
    return None if os.access(folder, os.W_OK) else "cannot write in its folder (permission denied)"


def _to_stdout(write: Callable[[], None]) -> int | None:
    """Run ``write``; None if stdout took it, else the exit code for why not: its reader left (``| head``), or
    its disk is full or failing (said in one line on stderr). Stdout then goes to /dev/null, so that the lines stderr still has
    to give (a stop, a lost report) and the run's real exit code are not lost."""
    try:
        write()
        sys.stdout.flush()
        return None
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_CLOSED_PIPE
    except OSError as exc:
        _silence_stdout()
        _say(f"catsort: cannot write the summary to standard output: {exc.strerror or exc}", sys.stderr)
        return EXIT_SOME_FAILED


def _silence_stdout() -> None:
    """Point stdout at /dev/null: its reader left, and the interpreter must not fail flushing it on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _stop_like_ctrl_c() -> dict[int, Handler]:
    """Make Ctrl-C, SIGTERM and SIGHUP stop a run the same way (the file in hand finished, the journal ended,
    the stop said) rather than end it mid-file without a word, or with :mod:`catsort.entry`'s start-up
    line; the handlers they replace, to give back."""
    return handle_stop_signals(_interrupt)


def _past_the_echoed_ctrl_c() -> None:
    """A new line on a terminal, after the ^C it echoed; not in a log, where the stop stays one line."""
    if sys.stderr.isatty():
        print(file=sys.stderr)


def _stop_at_once_from_now(line: str) -> None:
    """The work has stopped (it ended, or a first Ctrl-C stopped it), and what is left is saying so: the summary,
    the report. A Ctrl-C, SIGTERM or SIGHUP from now on ends the process at once with ``line``, never a traceback.
    They were once ignored here, so that a report written to a pipe nobody reads (or to a hung network share)
    made a process only ``kill -9`` could end."""
    if _in_main_thread():
        handle_stop_signals(ending_with(line))


def _leave(code: int) -> None:
    """End the process now, without the interpreter's teardown.

    Unloading numpy, Pillow and onnxruntime took ~0.1 s of a 0.5 s run on this 2-core machine
    (measured). Nothing is lost by skipping it: every file catsort wrote is closed (and the journal
    fsynced) before the run returns, the folder lock is an flock the kernel releases, and only the
    standard streams are buffered. (mypy leaves the same way.) The window never comes here.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said on it
            pass
    os._exit(code)


def _undo(args: argparse.Namespace) -> int:
    from catsort.apply import UndoStopped, undo_runs

    try:
        result = undo_runs(args.path, args.all, args.trust_journals)
    except UndoStopped as exc:
        _print_undo(exc.summary, stopped=True)
        _say(f"catsort: {exc}", sys.stderr)
        return EXIT_STOPPED
    _print_undo(result, stopped=False)
    if result.runs == 0:
        _say(f"catsort: nothing to undo in {args.path}", sys.stderr)
        return EXIT_OK
    return EXIT_SOME_FAILED if result.problems else EXIT_OK


def _print_undo(result: UndoSummary, stopped: bool) -> None:
    for warning in result.warnings:
        _say(f"catsort: {warning}", sys.stderr)
    if result.runs:
        copies = f", removed {result.removed_copies} copies" if result.removed_copies else ""
        what = "Stopped undoing" if stopped else "Undid"
        _say(f"{what} {result.runs} run(s): restored {result.restored} files{copies}.", sys.stderr)
    for problem in result.problems:
        _say(f"  problem: {problem}", sys.stderr)


def _sort(args: argparse.Namespace) -> int:
    try:  # Ctrl-C (or SIGTERM) while the app loads: before sort_folder, which says the same from then on
        from catsort.classify import BackgroundClassifier
        from catsort.model import ModelCard, resolve_card_path

        card = ModelCard.load(resolve_card_path(args.model))
        # Loads while the rest of the app imports, the folder is scanned and the first photos decode; one
        # onnxruntime thread, because each classify worker runs the model on its own batch (see catsort.classify).
        classifier = BackgroundClassifier(card, threads=1)
        import json

        from catsort.report import summary_object, write_report
        from catsort.sort import SortOptions, sort_folder
    except KeyboardInterrupt:
        raise InterruptedBeforeMoving(interrupted_before_moving(args.path.resolve())) from None

    options = SortOptions(args.recursive, args.copy, args.dry_run, args.threshold, args.jobs, args.trust_journals)
    human = sys.stderr if args.json else sys.stdout
    show_bar = not args.quiet and sys.stderr.isatty()
    bar: tqdm | None = None

    def progress(done: int, total: int, record: Record) -> None:
        nonlocal bar
        if show_bar and bar is None:
            from tqdm import tqdm  # only for a terminal that shows it: the import costs start-up time

            bar = tqdm(total=total, unit="photo", file=sys.stderr, dynamic_ncols=True)
        if bar is not None:
            bar.update(1)
        if args.verbose:
            if bar is not None:
                bar.write(printable(_describe(record)), file=sys.stderr)
            else:
                _say(_describe(record), sys.stderr)

    try:
        summary = sort_folder(args.path, classifier, options, progress)
        _stop_at_once_from_now("catsort: interrupted while it reported; " + (
            "it was a dry run: nothing was changed" if args.dry_run else
            f"the sort had ended, every file is at its old or its new place. Undo it with: catsort --undo {args.path}"))
    finally:
        if bar is not None:
            bar.close()
    report_problem = None
    if args.report:
        try:
            write_report(summary.records, args.report)
        except CatsortError as exc:  # after the sort: its summary and how to undo it still matter most
            report_problem = str(exc)
    json_not_said = args.json and _to_stdout(lambda: print(json.dumps(summary_object(summary, card.name), indent=2, ensure_ascii=False)))
    stdout_gone = _to_stdout(lambda: _print_summary(summary, args, human)) or json_not_said
    if report_problem:
        _say(f"catsort: {report_problem}", sys.stderr)
    if summary.stopped:
        if summary.interrupted:
            _past_the_echoed_ctrl_c()
        _say(f"catsort: {summary.stopped}", sys.stderr)
        return EXIT_INTERRUPTED if summary.interrupted else EXIT_STOPPED
    if summary.failed or report_problem:
        return EXIT_SOME_FAILED
    return stdout_gone or EXIT_OK


def _describe(r: Record) -> str:
    if r.action == "error":
        return f"FAILED {r.path}: {r.error}"
    what = "keep" if r.action == "stay" else r.action
    where = f" -> {r.destination}" if r.destination else ""
    return f"{what:5} {r.prediction} {r.confidence:.3f} {r.path}{where}"


def _print_summary(summary: Summary, args: argparse.Namespace, out) -> None:
    failed = summary.failed
    for warning in summary.warnings:
        _say(f"catsort: {warning}", sys.stderr)
    if summary.would_refuse:
        _say(f"catsort: {summary.would_refuse}: a real run would move nothing", sys.stderr)
    if args.quiet:
        for r in failed:
            _say(f"FAILED {r.path}: {r.error}", sys.stderr)
        return
    verb = "would be " if summary.dry_run else ""
    done = "copied" if args.copy else "moved"
    cats = sum(1 for r in summary.records if r.action in ("move", "copy") and r.prediction == "cat")
    dogs = sum(1 for r in summary.records if r.action in ("move", "copy") and r.prediction == "dog")
    handled = len(summary.records)
    photos = f"{handled} of {summary.total} photos" if handled < summary.total else f"{handled} photos"
    _say(
        f"{photos} in {summary.folder}: {cats} {verb}{done} to cats/, {dogs} {verb}{done} to dogs/, "
        f"{summary.count('stay')} kept in place, {len(failed)} failed (threshold {summary.threshold:.3f}).",
        out,
    )
    if summary.copied_before:
        _say(f"{summary.copied_before} of those kept in place were copied by an earlier run, and are not copied again.", out)
    if summary.settled_runs:
        _say(f"Settled {summary.settled_runs} interrupted earlier run(s) first.", out)
    if failed:
        _say("Could not be sorted (left where they are):", out)
        for r in failed:
            _say(f"  {r.path}: {r.error}", out)
    if summary.journal and (cats or dogs) and not summary.stopped:
        _say(f"Undo with: catsort --undo {summary.folder}", out)


if __name__ == "__main__":
    sys.exit(main())
