"""The model card (the contract between ``train/`` and the app) and the onnxruntime session behind it.

onnxruntime is imported when a session is made, not when this module is: ``catsort --headless`` starts
the session in a thread (see :class:`catsort.classify.BackgroundClassifier`) while the rest of the app
imports, and ``--version``, ``--undo`` and the card never pay for it.

**The optimised-graph cache.** Making a session from the shipped ONNX file means optimising its graph
every time (on a 2-core machine, about half of the session's time). The first session writes the graph
optimised at ``ORT_ENABLE_EXTENDED`` into the user's cache folder; later ones load that and apply only the
layout optimisations on top (``ORT_ENABLE_ALL``). onnxruntime's docs class the layout optimisations (NCHWc)
as hardware-dependent: a graph saved with them is only for the machine that saved it, so they are not
cached, and they are kept at load time because without them this model runs ~25% slower (measured:
18 ms against 14.5 ms a photo). A cached file is named by, and carries, its key (the model's sha256,
onnxruntime's version and build, the provider, the optimisation level, the CPU architecture) and the
sha256 of the graph it holds; the bytes that are hashed are the bytes given to onnxruntime. Anything
wrong with it (truncated, corrupt, another key, an unreadable or read-only folder, a full disk) means
the shipped model is used as before, silently; a run never fails and never runs another model because
of the cache.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catsort.checksum import file_sha256
from catsort.errors import ModelError
from catsort.images import RESIZE_MODES, View, stack_views

if TYPE_CHECKING:
    import numpy as np

MIN_VIEW_PX, MAX_VIEW_PX = 16, 2048
"""The input sizes a card may name: a view is a square the photo is scaled to, and none smaller or larger is a model's."""


@dataclass(frozen=True)
class ModelCard:
    """What the app needs to know to run a model: read from the JSON card beside the ONNX file."""

    onnx_path: Path
    onnx_sha256: str
    labels: tuple[str, ...]
    views: tuple[View, ...]
    temperature: float
    threshold: float
    raw: dict
    second_look: SecondLook | None = None
    path: Path | None = None
    """The card's file, when it was read from one (``train/`` also makes cards in memory): errors name it."""

    @property
    def decoded_views(self) -> tuple[View, ...]:
        """Every view a photo is fitted to once decoded: the first look's, then the second look's if any."""
        return self.views + ((self.second_look.view,) if self.second_look else ())

    @property
    def name(self) -> str:
        return str(self.raw.get("name", self.onnx_path.stem))

    @property
    def identity(self) -> str:
        """How ``--version`` and the About box name the model: its name and the start of its hash."""
        return f"{self.name} (sha256 {self.onnx_sha256[:12]})"

    @classmethod
    def load(cls, card_path: Path) -> ModelCard:
        try:
            raw = json.loads(card_path.read_text(encoding="utf-8"))
            onnx = raw["onnx"]
            card = cls(
                onnx_path=card_path.parent / onnx["file"],
                onnx_sha256=str(onnx["sha256"]),
                labels=tuple(raw["labels"]),
                views=tuple(View(str(v["name"]), int(v["size"]), str(v["resize"])) for v in raw["input"]["views"]),
                temperature=float(raw["calibration"]["temperature"]),
                threshold=float(raw["calibration"]["threshold"]),
                raw=raw,
                second_look=_second_look(raw["input"].get("second_look")),
                path=card_path,
            )
        except OSError as exc:
            raise ModelError(f"{card_path}: cannot read model card: {exc.strerror or exc}") from None
        except KeyError as exc:
            # Cards from before the two-view model name one input (input.size) and no input.views.
            raise ModelError(f"{card_path}: not a valid model card for this catsort (no {exc.args[0]!r} field)") from None
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{card_path}: not a valid model card ({exc})") from None
        if len(card.labels) != 3 or set(card.labels) != {"cat", "dog", "other"}:
            raise ModelError(f"{card_path}: labels must be cat, dog and other, got {list(card.labels)}")
        if not card.views:
            raise ModelError(f"{card_path}: the card names no input view")
        for view in card.decoded_views:
            if view.resize not in RESIZE_MODES:
                raise ModelError(f"{card_path}: unsupported resize mode {view.resize!r} for input {view.name!r}")
            if not MIN_VIEW_PX <= view.size <= MAX_VIEW_PX:  # 0 once failed every photo with a ZeroDivisionError
                raise ModelError(f"{card_path}: input {view.name!r} is {view.size} px; a view is {MIN_VIEW_PX} to {MAX_VIEW_PX} px")
        if not (card.temperature > 0.0 and math.isfinite(card.temperature)):
            raise ModelError(f"{card_path}: temperature must be positive, got {card.temperature}")
        if not 0.0 < card.threshold <= 1.0:  # the CLI's --threshold is held to the same range
            raise ModelError(f"{card_path}: threshold must be a probability in (0, 1], got {card.threshold}")
        if card.second_look and (len(card.views) != 1 or card.second_look.view.name != card.views[0].name):
            raise ModelError(f"{card_path}: a second look needs a one-view model and names that view's input")
        return card


@dataclass(frozen=True)
class SecondLook:
    """A larger view of the photos whose first look is unsure, averaged with it (a cascade).

    The first look decides most photos at a small cost; where its calibrated top probability is below
    ``below`` and its calibrated probability of a pet (cat plus dog) at least ``pets_from``, the same
    graph also runs on ``view`` (which needs an input of free size), and the two logits are averaged.
    ``pets_from`` spends the look on the photos a pet could be in: a folder of mostly non-pet photos is
    mostly sure "other", so a gate up to ``below`` near 1 costs little there. The card's calibration was
    fitted on that averaged output, gate included: see train/README.md, "the second look".
    """

    view: View
    below: float
    pets_from: float = 0.0

    def when(self) -> str:
        """The gate in words, for the About box and the card's speed record."""
        return f"when less than {self.below:.0%} sure" + (f" and at least {self.pets_from:.0%} likely a pet" if self.pets_from else "")


def _second_look(raw: dict | None) -> SecondLook | None:
    if raw is None:
        return None
    # Cards from before the pet gate (model v5) have no pets_from: they look again wherever unsure.
    return SecondLook(View(str(raw["name"]), int(raw["size"]), str(raw["resize"])), float(raw["below"]),
                      float(raw.get("pets_from", 0.0)))


def needs_second_look(logits: np.ndarray, temperature: float, look: SecondLook, other: int) -> np.ndarray:
    """Which photos' first-look logits (pet bias included) the second look's gate lets through
    (``other``: the column of the "other" label; the rest are pets)."""
    probs = calibrated_probabilities(logits, temperature)
    return (probs.max(axis=-1) < look.below) & (1.0 - probs[:, other] >= look.pets_from)


def merge_second_look(first: np.ndarray, second: np.ndarray, looked: np.ndarray) -> np.ndarray:
    """``first`` with the rows in ``looked`` replaced by their mean with ``second`` (the looked rows' logits, in order)."""
    merged = first.copy()
    merged[looked] = (first[looked] + second) / 2
    return merged


def shipped_card_path() -> Path:
    """The card of the model shipped with the app.

    An installed wheel or frozen app has it in ``catsort/assets/`` (pyproject maps the top-level
    ``assets/`` there); a source checkout, editable install included, has it in ``assets/``.
    """
    here = Path(__file__).resolve().parent
    for folder in (here / "assets", here.parent / "assets"):
        if (folder / "model.json").is_file():
            return folder / "model.json"
    raise ModelError(f"no model shipped with this copy of catsort (looked in {here / 'assets'} and {here.parent / 'assets'})")


def resolve_card_path(model: Path | None) -> Path:
    """``--model`` may name a card (``.json``) or an ONNX file with ``<stem>.json`` or ``model.json`` beside it."""
    if model is None:
        return shipped_card_path()
    if model.suffix.lower() == ".json":
        return model
    for candidate in (model.with_suffix(".json"), model.parent / "model.json"):
        if candidate.is_file():
            return candidate
    raise ModelError(f"{model}: no model card found (expected {model.with_suffix('.json').name} or model.json beside it)")


def calibrated_probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Temperature-scaled softmax: the probabilities every threshold is compared with.

    One definition for the app and for ``train/``, so calibration is fitted on exactly what runs.
    """
    import numpy as np

    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


CACHE_ENV = "CATSORT_CACHE_DIR"
CACHE_FORMAT = 1
"""Bump when the cached file's layout or what goes into its key changes."""
PROVIDERS = ["CPUExecutionProvider"]
_MAGIC = b"catsort optimised onnx graph\n"
_CACHE_SUFFIX = ".ortcache"
_KEEP = 4
"""Cached graphs kept per folder (the most recently used): a few models or onnxruntime versions side by side."""
_MAX_CACHE_BYTES = 1 << 30
_STALE_TEMP_SECONDS = 600
"""A temporary file older than this (ten minutes) belongs to a process that was killed mid-write."""


def cache_folder() -> Path | None:
    """Where optimised graphs are kept: ``$CATSORT_CACHE_DIR``, else the user's cache folder; None when
    ``CATSORT_CACHE_DIR`` is set empty (no cache)."""
    override = os.environ.get(CACHE_ENV)
    if override is not None:
        return Path(override) if override else None
    from platformdirs import user_cache_path

    return user_cache_path("catsort", appauthor=False)


def _session_options(ort: Any, threads: int | None, level: Any) -> Any:
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # Decoding threads share the cores with inference: spinning workers would steal their time.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = level
    return options


def _cache_key(card: ModelCard, ort: Any) -> dict[str, Any]:
    """Everything that makes an optimised graph unsafe to reuse when it differs."""
    import platform

    build = ort.get_build_info() if hasattr(ort, "get_build_info") else ""
    return {"format": CACHE_FORMAT, "model_sha256": card.onnx_sha256, "onnxruntime": ort.__version__, "build": build,
            "providers": PROVIDERS, "level": "ORT_ENABLE_EXTENDED", "machine": platform.machine(), "os": os.name}


def cache_file_name(key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return f"{key['model_sha256'][:16]}-{digest[:16]}{_CACHE_SUFFIX}"


def read_cached_graph(path: Path, key: dict[str, Any]) -> bytes | None:
    """The optimised graph in ``path`` if it is whole and made for ``key``; None otherwise (never raises)."""
    try:
        # Non-blocking and checked: a FIFO or a device under the cache's name must not hang or flood a run.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_CACHE_BYTES or f.read(len(_MAGIC)) != _MAGIC:
                return None
            header = json.loads(f.readline(65536))
            payload = f.read()
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict) or header.get("key") != key or header.get("bytes") != len(payload):
        return None
    if header.get("sha256") != hashlib.sha256(payload).hexdigest():
        return None
    return payload


def _write_cache_file(folder: Path, name: str, key: dict[str, Any], payload: bytes) -> Path:
    """Write ``payload`` under ``name`` atomically: a temporary file, then a rename (a concurrent writer's
    rename wins whole; a reader never sees half a file)."""
    header = json.dumps({"key": key, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=".write-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + header.encode() + b"\n")
            f.write(payload)
        # No fsync: a file a crash left empty or torn fails its hash and is written again.
        os.replace(tmp, folder / name)
    except BaseException:
        _unlink(Path(tmp))
        raise
    return folder / name


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _prune(folder: Path, keep: str) -> None:
    """Drop temporary files a killed process left and all but the latest cached graphs."""
    now = time.time()
    entries = []
    try:
        for entry in os.scandir(folder):
            if entry.name.startswith((".optimise-", ".write-")):
                if now - entry.stat().st_mtime > _STALE_TEMP_SECONDS:
                    _unlink(Path(entry.path))
            elif entry.name.endswith(_CACHE_SUFFIX) and entry.name != keep:
                entries.append((entry.stat().st_mtime, entry.path))
    except OSError:
        return
    for _, path in sorted(entries, reverse=True)[_KEEP - 1:]:
        _unlink(Path(path))


class _Sha256Check:
    """The card's sha256 of its ONNX file, computed in a thread (hashlib and file reads release the GIL).

    :meth:`wait` returns once it matched, or raises the :class:`~catsort.errors.ModelError` that says why not.
    """

    def __init__(self, card: ModelCard) -> None:
        self._card = card
        self._error: ModelError | None = None
        self._thread = threading.Thread(target=self._run, name="model-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        card = self._card
        try:
            actual = file_sha256(card.onnx_path)
        except OSError as exc:
            self._error = ModelError(f"{card.onnx_path}: cannot read model: {exc.strerror or exc}")
            return
        if actual != card.onnx_sha256:
            self._error = ModelError(
                f"{card.onnx_path}: sha256 {actual[:12]}… does not match its card ({card.onnx_sha256[:12]}…); "
                "the model file was changed or belongs to another card"
            )

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def _takes(graph_input: Any, view: View) -> bool:
    """Whether an ONNX input takes the view's batches, ``uint8[n, size, size, 3]`` for any ``n``.

    Only dimensions the graph fixes (ints) are compared: a free one (a name, or None) takes any size, so
    a graph exported with free spatial dimensions takes a card of any view size.
    """
    shape = list(graph_input.shape)
    fixed = (None, view.size, view.size, 3)
    return (graph_input.type == "tensor(uint8)" and len(shape) == len(fixed)
            and not isinstance(shape[0], int)
            and all(not isinstance(got, int) or got == want for got, want in zip(shape[1:], fixed[1:], strict=True)))


def _input_text(graph_input: Any) -> str:
    """An ONNX input as ``uint8[batch, 240, 240, 3]``: its element type, then each dimension's size or name."""
    kind = str(graph_input.type).removeprefix("tensor(").removesuffix(")")
    return f"{kind}[{', '.join('?' if d is None else str(d) for d in graph_input.shape)}]"


def _one_line(exc: BaseException) -> str:
    """onnxruntime's messages run over several lines; a :class:`ModelError` is one."""
    return " ".join(str(exc).split()) or type(exc).__name__


class Classifier:
    """Runs the card's ONNX model on batches of uint8 pixels; refuses a model that does not match its card.

    ``cache`` (default: on) loads the graph optimised by an earlier session from :func:`cache_folder`, or
    writes it there; :attr:`source` then says what was loaded: ``"cache"`` (an earlier optimised graph),
    ``"cache-written"`` (optimised now and written), or ``"model"`` (the card's ONNX file, optimised in
    memory: no cache, or :attr:`cache_problem` says why not).
    """

    def __init__(self, card: ModelCard, threads: int | None = None, cache: bool = True) -> None:
        # The card's check of the ONNX file runs beside onnxruntime's import and the cached graph's load,
        # which do not depend on it (the cache is keyed by the card's hash, and its file carries its own);
        # nothing is optimised or written from the file, and no session is returned, before it passed.
        check = _Sha256Check(card)
        import onnxruntime as ort

        self.card = card
        self.source = "model"
        self.cache_problem: str | None = None
        self.cache_path: Path | None = None
        self._session = self._cached_session(ort, threads, check) if cache else None
        check.wait()
        if self._session is None:
            options = _session_options(ort, threads, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
            try:
                self._session = ort.InferenceSession(str(card.onnx_path), options, providers=PROVIDERS)
            except Exception as exc:  # onnxruntime raises its own untyped errors for malformed graphs
                raise ModelError(f"{card.onnx_path}: onnxruntime cannot load it: {_one_line(exc)}") from None
        inputs = {i.name: i for i in self._session.get_inputs()}
        wanted = {v.name for v in card.views}
        if inputs.keys() != wanted:
            raise ModelError(f"{card.onnx_path}: the model's inputs {sorted(inputs)} are not the card's views {sorted(wanted)}")
        for view in card.decoded_views:  # the second look's too: it feeds the first look's input at its own size
            # Checked here rather than met as onnxruntime's InvalidArgument traceback at the first batch.
            if not _takes(inputs[view.name], view):
                raise ModelError(f"{card.path or card.onnx_path}: the card's view {view.name!r} feeds {card.onnx_path.name} "
                                 f"uint8[n, {view.size}, {view.size}, 3], but its graph takes {_input_text(inputs[view.name])}")

    def _cached_session(self, ort: Any, threads: int | None, check: _Sha256Check) -> Any | None:
        """A session from the cached optimised graph (written first if missing or unusable), or None."""
        folder = cache_folder()
        if folder is None:
            self.cache_problem = f"no cache ({CACHE_ENV} is empty)"
            return None
        key = _cache_key(self.card, ort)
        name = cache_file_name(key)
        path = folder / name
        options = _session_options(ort, threads, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        payload = read_cached_graph(path, key)
        if payload is not None:
            try:
                session = ort.InferenceSession(payload, options, providers=PROVIDERS)
            except Exception as exc:  # a file of the right key and hash that onnxruntime refuses: write it anew
                self.cache_problem = f"{path}: onnxruntime refused the cached graph ({exc})"
            else:
                self.source, self.cache_path = "cache", path
                try:
                    os.utime(path)  # most recently used: kept by _prune
                except OSError:
                    pass
                return session
        check.wait()  # the graph about to be optimised and cached must be the card's
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _prune(folder, keep=name)
            fd, raw = tempfile.mkstemp(prefix=".optimise-", suffix=".onnx", dir=folder)
            os.close(fd)
        except OSError as exc:
            self.cache_problem = f"{folder}: cannot write the cache: {exc.strerror or exc}"
            return None
        try:
            optimise = _session_options(ort, 1, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
            optimise.optimized_model_filepath = raw
            ort.InferenceSession(str(self.card.onnx_path), optimise, providers=PROVIDERS)
            payload = Path(raw).read_bytes()
            # The graph this run uses is the one later runs will load; published only once onnxruntime took it.
            session = ort.InferenceSession(payload, options, providers=PROVIDERS)
        except Exception as exc:  # a full disk (a torn graph) or onnxruntime failing to write or read its own graph
            self.cache_problem = f"{folder}: cannot optimise the model into the cache: {getattr(exc, 'strerror', None) or exc}"
            return None
        finally:
            _unlink(Path(raw))
        try:
            self.cache_path = _write_cache_file(folder, name, key, payload)
            self.source = "cache-written"
        except OSError as exc:
            self.cache_problem = f"{folder}: cannot write the cache: {exc.strerror or exc}"
        return session

    def logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """A batch per card view, by name (see ``images.stack_views``) -> uncalibrated logits ``float32[n, labels]``."""
        try:
            return self._session.run(None, inputs)[0]
        except Exception as exc:  # onnxruntime's own untyped errors (an input it refuses, an operator failing)
            raise ModelError(f"{self.card.onnx_path}: onnxruntime failed running it: {_one_line(exc)}") from None

    def looked_logits(self, photos: Sequence[tuple[np.ndarray, ...]],
                      second_view: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
        """Photos fitted to the card's views -> logits as the card decides them.

        The first look runs on every photo; the second look, if the card has one, on the unsure ones
        only. ``second_view(i)`` fits photo ``i`` to the second look's view, so only those photos are
        fitted to it: fitting all of them took 0.68 ms a photo, four times the second look's own
        compute (measured on the 1,200 ``real/`` photos). Without it, each photo's last array is that view
        (photos fitted to :attr:`~ModelCard.decoded_views`, as the benchmarks decode them beforehand).
        """
        card = self.card
        first = self.logits(stack_views([photo[: len(card.views)] for photo in photos], card.views))
        if card.second_look is None:
            return first
        looked = needs_second_look(first, card.temperature, card.second_look, card.labels.index("other"))
        if not looked.any():
            return first
        fit = second_view or (lambda i: photos[i][-1])
        second = self.logits(stack_views([(fit(i),) for i, unsure in enumerate(looked) if unsure], (card.second_look.view,)))
        return merge_second_look(first, second, looked)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return calibrated_probabilities(logits, self.card.temperature)
