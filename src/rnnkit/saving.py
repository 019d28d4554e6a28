"""One way to save and load every rnnkit object: models, ensembles, detectors, tokenizers and
the trainer's checkpoints.

Every file rnnkit writes is a plain dict tagged with one key, ``"format": "<kind>/<version>"``
(``"rnnkit.forecaster/1"``, ``"rnnkit.train/1"``, ...), written atomically by one writer
(:func:`atomic_write_bytes`: a temporary file in the same folder, ``fsync``, ``os.replace``) and
read with ``torch.load(weights_only=True)`` (JSON for tokenizers), so loading never runs code.

An object is savable when its class has

* ``KIND`` (``"rnnkit.<name>"``) and ``VERSION`` (an int, raised when the layout changes);
* ``state() -> dict`` of tensors, numbers, strings, lists and dicts;
* ``from_state(blob: dict)``, a classmethod that rebuilds it (and reads older versions).

:func:`save` writes any such object; :func:`load` reads any rnnkit file and returns the right
object, looking the kind up in :data:`KINDS` (trainer checkpoints by the application's
``extra_state["task"]`` in :data:`TASKS`). Kinds name their class as ``"module:Name"``, so
loading imports only the wing the file belongs to; :func:`register_kind` adds new ones.

>>> import os, tempfile
>>> class Counter:
...     KIND, VERSION = "rnnkit.example_counter", 1
...     def __init__(self, n): self.n = n
...     def state(self): return {"n": self.n}
...     @classmethod
...     def from_state(cls, blob): return cls(blob["n"])
>>> register_kind(Counter.KIND, Counter)
>>> path = os.path.join(tempfile.mkdtemp(), "counter.pt")
>>> save(Counter(3), path)
>>> load(path).n, file_kind(path)
(3, ('rnnkit.example_counter', 1))
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import os
from typing import Any

import torch

# the one atomic writer lives in rnnkit.atomic (no torch: music scores and ONNX code use it)
from .atomic import atomic_write_bytes, atomic_write_text

__all__ = [
    "KINDS",
    "ConfigModel",
    "Savable",
    "TASKS",
    "atomic_write_bytes",
    "atomic_write_text",
    "dataclass_from_dict",
    "file_kind",
    "load",
    "read_state",
    "read_torch_file",
    "rebuild",
    "register_kind",
    "save",
    "write_state",
]

FORMAT_KEY = "format"

#: kind -> the class (or ``"module:Name"``) whose ``from_state`` rebuilds it
KINDS: dict[str, Any] = {
    "rnnkit.forecaster": "rnnkit.forecast.forecaster:Forecaster",
    "rnnkit.forecast_ensemble": "rnnkit.forecast.ensemble:ForecastEnsemble",
    "rnnkit.forecast_combination": "rnnkit.forecast.combine:ForecastCombination",
    "rnnkit.esrnn": "rnnkit.forecast.esrnn:ESRNN",
    "rnnkit.anomaly": "rnnkit.anomaly.detector:AnomalyDetector",
    "rnnkit.anomaly_union": "rnnkit.anomaly.union:AnomalyUnion",
    "rnnkit.tokenizer": "rnnkit.data.text:Tokenizer",
    "rnnkit.speech": "rnnkit.speech.recognizer:SpeechRecognizer",
    "rnnkit.ngram": "rnnkit.ngram:NGramLM",
    "rnnkit.music_frames": "rnnkit.music.frames:FrameModel",
    "rnnkit.music_events": "rnnkit.music.events:EventModel",
    "rnnkit.music_harmonizer": "rnnkit.music.harmonizer:Harmonizer",
    "rnnkit.series_classifier": "rnnkit.series.classifier:SeriesClassifier",
    "rnnkit.video_predictor": "rnnkit.vision.video:NextFramePredictor",
    "rnnkit.text_line_reader": "rnnkit.vision.reader:TextLineReader",
    "rnnkit.image_captioner": "rnnkit.vision.captioner:ImageCaptioner",
}
#: a trainer checkpoint's ``extra_state["task"]`` -> the class whose ``from_state`` rebuilds
#: the application from the whole checkpoint dict
TASKS: dict[str, Any] = {
    "language_model": "rnnkit.text.language_model:LanguageModel",
    "classify": "rnnkit.text.classifier:TextClassifier",
    "translate": "rnnkit.text.translation:Translator",
    "music_frames": "rnnkit.music.frames:FrameModel",
    "music_events": "rnnkit.music.events:EventModel",
    "music_harmonizer": "rnnkit.music.harmonizer:Harmonizer",
    "video_predictor": "rnnkit.vision.video:NextFramePredictor",
    "text_line_reader": "rnnkit.vision.reader:TextLineReader.from_checkpoint",
    "image_captioner": "rnnkit.vision.captioner:ImageCaptioner",
}
TRAIN_KIND = "rnnkit.train"
#: the command that makes each kind, named when a file of another kind is given
MAKERS: dict[str, str] = {
    "rnnkit.forecaster": "rnnkit forecast train",
    "rnnkit.forecast_ensemble": "rnnkit forecast train --ensemble N",
    "rnnkit.forecast_combination": "rnnkit forecast train --model comb",
    "rnnkit.esrnn": "rnnkit forecast train --model esrnn",
    "rnnkit.anomaly": "AnomalyDetector(...).fit(data).save(path)",
    "rnnkit.anomaly_union": "AnomalyUnion([...]).fit(data).save(path)",
    "rnnkit.tokenizer": "tokenizer.save(path)",
    "rnnkit.speech": "rnnkit speech train",
    "rnnkit.ngram": "rnnkit.save(NGramLM(order).fit(texts), path)",
    "rnnkit.music_frames": "rnnkit music train --model frames",
    "rnnkit.music_events": "rnnkit music train --model events",
    "rnnkit.music_harmonizer": "rnnkit music train --model harmonizer",
    "rnnkit.series_classifier": "rnnkit classify train --data SERIES_FILE",
    "rnnkit.video_predictor": "rnnkit vision video train",
    "rnnkit.text_line_reader": "rnnkit vision read train",
    "rnnkit.image_captioner": "rnnkit vision caption train --out-dir DIR",
    TRAIN_KIND: "rnnkit train text / classify train / translate train",
}

#: rnnkit file kind -> the command that uses such a file (for "wrong file" errors)
USERS: dict[str, str] = {
    "rnnkit.forecaster": "rnnkit forecast predict",
    "rnnkit.forecast_ensemble": "rnnkit forecast predict",
    "rnnkit.esrnn": "rnnkit forecast predict",
    "rnnkit.forecast_combination": "rnnkit forecast predict",
    "rnnkit.speech": "rnnkit speech transcribe",
    "rnnkit.series_classifier": "rnnkit classify predict --data SERIES_FILE",
    "rnnkit.video_predictor": "rnnkit vision video predict",
    "rnnkit.text_line_reader": "rnnkit vision read text",
}

def atomic_write_figure(fig: Any, path: str | os.PathLike, dpi: int = 100,
                        **savefig: Any) -> str:
    """Render a matplotlib figure to PNG in memory, close it, and write the bytes to exactly
    ``path`` with :func:`atomic_write_bytes` (no suffix added; a failed render or write
    leaves no file, not even a temporary one). Returns ``path`` as a string."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, **savefig)
    finally:
        plt.close(fig)
    atomic_write_bytes(buf.getvalue(), path)
    return os.fspath(path)


# -- tags --------------------------------------------------------------------------------------
def tag(kind: str, version: int = 1) -> str:
    """The format tag ``"<kind>/<version>"``."""
    return f"{kind}/{int(version)}"


def parse_tag(blob: Any) -> tuple[str, int] | None:
    """``(kind, version)`` of a loaded file, or ``None`` when it is not an rnnkit file. Files
    written before the tag existed are recognised by their old markers (version 1): the
    ``{"kind": "rnnkit..."}`` of models and ensembles and the ``{"kind": "char"|"word",
    "itos": ...}`` of tokenizers."""
    if not isinstance(blob, dict):
        return None
    fmt = blob.get(FORMAT_KEY)
    if isinstance(fmt, str) and "/" in fmt:
        kind, _, version = fmt.rpartition("/")
        if version.isdigit():
            return kind, int(version)
    old = blob.get("kind")
    if isinstance(old, str) and old.startswith("rnnkit."):
        return old, 1
    if isinstance(old, str) and isinstance(blob.get("itos"), list):
        return "rnnkit.tokenizer", 1
    return None


# -- reading and writing tagged dicts ----------------------------------------------------------
def write_state(state: dict[str, Any], path: str | os.PathLike, kind: str,
                version: int = 1) -> None:
    """Write ``state`` tagged as ``kind``/``version`` to ``path`` as a torch file, atomically."""
    buf = io.BytesIO()
    torch.save({**state, FORMAT_KEY: tag(kind, version)}, buf)
    atomic_write_bytes(buf.getvalue(), path)


def read_torch_file(path: str | os.PathLike, map_location: Any = "cpu",
                    where: str = "") -> Any:
    """``torch.load(path, weights_only=True)`` with errors that name the fix: a missing file
    (``where`` says where such files are written) or a truncated, corrupt or unsafe one."""
    path = os.fspath(path)
    if os.path.isdir(path):
        inside = [n for n in ("best.pt", "last.pt") if os.path.isfile(os.path.join(path, n))]
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint file; give the file"
                                + (f", e.g. {os.path.join(path, inside[0])}" if inside else
                                   (f" ({where})" if where else "")))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}; check the path"
                                + (f" ({where})" if where else ""))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated, not a torch file, or unsafe content
        text = str(err)
        if "weights only load failed" in text.lower():  # never repeat torch's advice to load
            if "unsupported global" in text.lower():  # it with weights_only=False
                raise ValueError(f"{path!r} is not a readable rnnkit checkpoint: it holds "
                                 f"Python objects besides tensors and plain data (not an rnnkit "
                                 f"file, or an altered one), and rnnkit never runs code from a "
                                 f"file: re-create it with rnnkit") from None
            text = "not a torch file of tensors and plain data"
        raise ValueError(f"{path!r} is not a readable rnnkit checkpoint ({type(err).__name__}: "
                         f"{text.splitlines()[0] if text else ''}); it may be "
                         f"truncated or corrupt: re-create it or use another one") from None


def _read_any(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """A torch file, or a JSON one (tokenizers), read safely."""
    path = os.fspath(path)
    if os.path.isfile(path):
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
        if head.startswith(b"{"):
            try:
                with open(path, encoding="utf-8") as f:
                    return json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(f"{path!r} is not a valid rnnkit JSON file ({err}); "
                                 f"re-create it") from None
    return read_torch_file(path, map_location)


def describe(blob: Any) -> str:
    """What a loaded file is, in words, for error messages."""
    parsed = parse_tag(blob)
    if parsed is None:
        return "not an rnnkit file"
    kind, version = parsed
    if kind == TRAIN_KIND:
        task = (blob.get("extra_state") or {}).get("task")
        return f"a trainer checkpoint ({TRAIN_KIND}/{version}" + \
            (f", task {task!r})" if task else ", no application task)")
    return f"a {kind}/{version} file"


def wrong_file_hint(blob: Any, path: str) -> str:
    """``"; it is a ... file: use it with `rnnkit ... PATH`"`` when ``blob`` is another rnnkit
    kind, else ``""`` (to end an error message about a file given to the wrong command)."""
    parsed = parse_tag(blob)
    if parsed is None or parsed[0] == TRAIN_KIND:
        return ""
    use = USERS.get(parsed[0])
    return f" (it is {describe(blob)}" + (f": use it with `{use} {path}`)" if use else ")")


def read_state(path: str | os.PathLike, kind: str | tuple[str, ...], *, version: int = 1,
               map_location: Any = "cpu") -> dict[str, Any]:
    """The dict a file of ``kind`` (one of them, for a tuple) holds, read safely. A missing,
    corrupt or other-kind file, or one written by a newer rnnkit (version above ``version``),
    raises an error that says what the file is and how to make the right one."""
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    makers = "; ".join(f"{k} files are made by `{MAKERS[k]}`" for k in kinds if k in MAKERS)
    path_s = os.fspath(path)
    blob = _read_any(path_s, map_location) if os.path.isfile(path_s) else \
        read_torch_file(path_s, map_location, where=makers)
    parsed = parse_tag(blob)
    if parsed is None or parsed[0] not in kinds:
        known = parsed is not None and (parsed[0] in KINDS or parsed[0] == TRAIN_KIND)
        raise ValueError(f"{path_s} is not a {' or '.join(kinds)} file (it is "
                         f"{describe(blob)}" + ("; rnnkit.load(path) reads it" if known else "")
                         + ")" + (f"; {makers}" if makers else ""))
    _check_version(path_s, parsed, version)
    return blob


def _check_version(path: str, parsed: tuple[str, int], version: int) -> None:
    if parsed[1] > version:
        raise ValueError(f"{path} is {parsed[0]}/{parsed[1]}, written by a newer rnnkit; "
                         f"this one reads up to version {version}: upgrade rnnkit "
                         f"(pip install -U rnnkit)")


def file_kind(path: str | os.PathLike) -> tuple[str, int] | None:
    """``(kind, version)`` of an rnnkit file, or ``None`` for a readable file of another
    kind (unreadable files raise)."""
    return parse_tag(_read_any(path))


def rebuild(target: Any, blob: Any, path: str | os.PathLike) -> Any:
    """``target.from_state(blob)`` (or ``target(blob)`` for a function), with a file whose tag
    is right but whose content is not (hand-made, damaged, or from a foreign tool) reported as
    such instead of a ``KeyError``."""
    try:
        return getattr(target, "from_state", target)(blob)
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        parsed = parse_tag(blob)
        what = f"{parsed[0]}/{parsed[1]}" if parsed else "rnnkit"
        raise ValueError(f"{os.fspath(path)} is tagged as a {what} file but its content is "
                         f"incomplete or damaged ({type(err).__name__}: {err}); re-create it "
                         f"with the command or method that wrote it") from err


# -- the public pair ---------------------------------------------------------------------------
class Savable:
    """Mixin giving a savable class (``KIND``, ``VERSION``, ``state()``, ``from_state()``) its
    ``save(path)`` and ``load(path)``: the same file :func:`save` and :func:`load` handle."""

    KIND: str = ""
    VERSION: int = 1

    def state(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_state(cls, blob: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write this object to ``path`` atomically; :func:`rnnkit.load` or :meth:`load`
        reads it back."""
        save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Any:
        """Rebuild an object of this class from ``path`` (``weights_only=True``); a file of
        another kind or of a newer version raises an error saying what it is."""
        return rebuild(cls, read_state(path, cls.KIND, version=cls.VERSION), path)


class ConfigModel(Savable):
    """Mixin for a module built from one config dataclass (its only constructor argument):
    the file holds ``{"config": {...}, "state_dict": {...}}``, a trainer checkpoint written
    with ``Trainer(extra_state=model.extra_state())`` names the task and the config, and
    :meth:`from_state` rebuilds the model from either.

    A subclass sets ``KIND`` (the file kind), ``TASK`` (its name in a trainer checkpoint),
    ``CONFIG`` (the dataclass; its ``from_dict`` when it has one, else
    :func:`dataclass_from_dict`) and ``MAKE`` (how to make such a model, for the error a
    checkpoint of another task gets).
    """

    TASK: str = ""
    CONFIG: type = object
    MAKE: str = "train it with Trainer(..., extra_state=model.extra_state())"

    def extra_state(self) -> dict[str, Any]:
        """``{"task": TASK, "config": {...}}`` for ``Trainer(extra_state=...)``."""
        return {"task": self.TASK, "config": dataclasses.asdict(self.config)}

    def state(self) -> dict[str, Any]:
        """What :func:`save` writes: the config and the weights (on the CPU)."""
        return {"config": dataclasses.asdict(self.config),
                "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}

    @classmethod
    def from_state(cls, blob: dict[str, Any]) -> Any:
        """The model (in eval mode) of a :meth:`state` dict, or of a trainer checkpoint dict
        (``{"extra_state": {"task": ..., "config": ...}, "model": weights}``)."""
        if "state_dict" in blob:
            config, weights = blob["config"], blob["state_dict"]
        else:
            extra = blob.get("extra_state") or {}
            if extra.get("task") != cls.TASK:
                raise ValueError(f"the checkpoint was written for task {extra.get('task')!r}, "
                                 f"not {cls.TASK!r}; {cls.MAKE}")
            config, weights = extra["config"], blob["model"]
        from_dict = getattr(cls.CONFIG, "from_dict", None)
        config = from_dict(config) if from_dict else dataclass_from_dict(cls.CONFIG, config,
                                                                         cls.__name__)
        model = cls(config)
        model.load_state_dict(weights)
        return model.eval()


def dataclass_from_dict(cls: type, data: dict[str, Any], what: str) -> Any:
    """Build the dataclass ``cls`` from ``data``, refusing unknown keys by name."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {what} option(s) {sorted(unknown)}; valid: {sorted(names)}")
    return cls(**data)


def register_kind(kind: str, target: Any, *, task: bool = False) -> None:
    """Make :func:`load` rebuild files of ``kind`` with ``target`` (a class with
    ``from_state``, or ``"module:Name"``). ``task=True`` registers a trainer-checkpoint task
    (``extra_state["task"]``) instead of a file kind."""
    (TASKS if task else KINDS)[kind] = target


def _resolve(target: Any) -> Any:
    if isinstance(target, str):
        module, _, name = target.partition(":")
        target = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
    return target


#: kinds of files that hold an unfinished run, not a model -> what to do with one
UNFINISHED: dict[str, str] = {
    "rnnkit.series_classifier.progress": "the finished training runs of an interrupted "
    "series-classifier fit, not a model: continue it with the same `rnnkit classify train` "
    "command plus --resume (or SeriesClassifier.fit(..., progress=PATH)); the model it makes "
    "is best.pt beside it",
    "rnnkit.forecast.progress": "the saved work of an interrupted forecast fit (--model esrnn "
    "or comb), not a model: continue it with the same `rnnkit forecast train` command plus "
    "--resume (or ESRNN/ForecastCombination.fit(..., progress=PATH)); the model it makes is "
    "the command's --out",
}


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` (any object with ``KIND``, ``VERSION``, ``state()``) to ``path``
    atomically; :func:`load` reads it back."""
    kind = getattr(type(obj), "KIND", None)
    if not isinstance(kind, str) or not callable(getattr(obj, "state", None)):
        raise TypeError(f"cannot save a {type(obj).__name__}: rnnkit.save takes rnnkit models, "
                        f"ensembles, detectors and tokenizers (objects with KIND and state()); "
                        f"save a plain torch module with torch.save(module.state_dict(), path)")
    if hasattr(obj, "save") and getattr(type(obj), "SAVES_ITSELF", False):
        obj.save(path)  # a format of its own (a tokenizer's JSON)
        return
    write_state(obj.state(), path, kind, getattr(type(obj), "VERSION", 1))


def load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Read any rnnkit file and return the object it holds: a forecaster, an ensemble, an
    anomaly detector, a tokenizer, or the application a trainer checkpoint was written for
    (language model, text classifier, translator). A file of another kind raises an error
    saying what it is."""
    blob = _read_any(path, map_location)
    parsed = parse_tag(blob)
    if parsed is None:
        raise ValueError(f"{os.fspath(path)} is {describe(blob)}: rnnkit.load reads files "
                         f"written by rnnkit (known kinds: {', '.join(sorted(KINDS))}, "
                         f"{TRAIN_KIND})")
    kind, _ = parsed
    if kind == TRAIN_KIND:
        task = (blob.get("extra_state") or {}).get("task")
        if task not in TASKS:
            raise ValueError(f"{os.fspath(path)} is {describe(blob)}, which rnnkit.load cannot "
                             f"rebuild (known tasks: {', '.join(sorted(TASKS))}); read it with "
                             f"rnnkit.train.load_checkpoint")
        target = _resolve(TASKS[task])
    elif kind in KINDS:
        target = _resolve(KINDS[kind])
    elif kind in UNFINISHED:
        raise ValueError(f"{os.fspath(path)} is {UNFINISHED[kind]}")
    else:
        raise ValueError(f"{os.fspath(path)} is {describe(blob)}, a kind this rnnkit does not "
                         f"know (known: {', '.join(sorted(KINDS))}); load it with the "
                         f"package that registered it, or upgrade rnnkit")
    if kind != TRAIN_KIND:
        _check_version(os.fspath(path), parsed, getattr(target, "VERSION", 1))
    return rebuild(target, blob, path)
