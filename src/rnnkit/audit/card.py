"""Model cards: a Markdown report beside every saved model, in the sections of Mitchell et al.
(2019), "Model Cards for Model Reporting" (FAT* 2019), filled from what the files record.

:func:`build_card` reads a trainer run folder (``best.pt`` / ``last.pt``, ``log.jsonl`` and,
when present, ``compute.json`` and ``audit.json``), a checkpoint file inside one, or a
single-file rnnkit model (a forecaster, an ensemble, a detector, a speech recogniser; its
sidecars are ``<file>.compute.json`` and ``<file>.audit.json``). Files are read with
``torch.load(weights_only=True)`` (:func:`rnnkit.saving.read_torch_file`), so no code in them
runs; the parameter count comes from rebuilding the model with rnnkit's own classes (or, for a
kind rnnkit cannot rebuild, from the saved tensors). Every field a file does not record says
so ("not recorded") instead of being guessed.

:func:`write_model_card` writes ``model_card.md`` in the run folder (``<file>.card.md`` beside
a single file); :func:`render_report` also draws the learning curves, the per-epoch time and
energy of ``compute.json`` and the per-group metrics of ``audit.json`` (with their confidence
intervals) as PNGs the card links to.

The sections, in order:

>>> [s for s in SECTIONS][:3]
['Model Details', 'Intended Use', 'Factors']
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from ..saving import (
    KINDS,
    MAKERS,
    TASKS,
    TRAIN_KIND,
    _resolve,
    atomic_write_bytes,
    atomic_write_figure,
    atomic_write_text,
    describe,
    parse_tag,
    read_torch_file,
    rebuild,
)

__all__ = [
    "CARD_NAME",
    "FLAG_RATE",
    "INTENDED_USE",
    "ModelCard",
    "SECTIONS",
    "build_card",
    "card_path",
    "render_report",
    "sidecar_path",
    "write_model_card",
]

#: the card's file name in a trainer run folder (a single file ``m.pt`` gets ``m.pt.card.md``)
CARD_NAME = "model_card.md"
#: Mitchell et al. (2019)'s sections, plus compute and energy, in the card's order
SECTIONS = ("Model Details", "Intended Use", "Factors", "Metrics", "Evaluation Data",
            "Training Data", "Quantitative Analyses", "Compute and Energy",
            "Ethical Considerations", "Caveats and Recommendations")
#: a counterfactual flip rate or robustness change rate whose CI lower bound exceeds this is
#: flagged under Caveats and Recommendations
FLAG_RATE = 0.05
#: the rate keys of audit.json's counterfactual and robustness entries that are flagged
RATE_KEYS = ("flip_rate", "change_rate")
#: per-group keys that are counts, not metrics (not plotted)
COUNT_KEYS = ("n", "count", "support", "size", "n_applicable")
_RUN_FILES = ("best.pt", "last.pt")
_TASK_MAKERS = {"language_model": "rnnkit train text", "classify": "rnnkit classify train",
                "translate": "rnnkit translate train"}
_MAKES = ("trainer runs: `rnnkit train text`, `rnnkit classify train`, `rnnkit translate "
          "train`; single files: `rnnkit forecast train`, `rnnkit speech train`, "
          "`AnomalyDetector(...).fit(data).save(path)`")

_AUDIT_HINT = ("`rnnkit audit model` measures metrics by group, counterfactual flips and "
               "robustness, and writes audit.json, which the next card includes")

#: what each task (trainer checkpoints) or kind (single files) is for and not for; "*" is the
#: fallback for kinds without an entry
INTENDED_USE: dict[str, dict[str, Any]] = {
    "language_model": {
        "name": "language model (next-token prediction)",
        "primary": [
            "Generating text in the style of its training corpus (`rnnkit generate`).",
            "Scoring text like the training corpus: loss, perplexity or bits per character "
            "(`rnnkit evaluate`).",
            "Teaching, research and benchmarks of recurrent networks.",
        ],
        "out_of_scope": [
            "Anything that needs true, safe or attributable text: it continues the patterns of "
            "its corpus and can reproduce passages of it verbatim.",
            "Text in languages, scripts or domains unlike the corpus: symbols it never saw "
            "become `<unk>` and scores there mean little.",
            "Decisions about people, or text presented as written by a person.",
        ],
        "factors": ["language, script and register of the text", "domain and period of the "
                    "corpus", "text length"],
        "measures": "loss: mean cross-entropy per token (nats) on the held-out blocks; "
                    "perplexity = exp(loss); bits per character where reported",
        "ethical": [
            "It can memorise and reproduce passages of its training text: do not train on "
            "private, personal or licensed text you may not redistribute.",
            "It reproduces the stereotypes and offensive language of its corpus, unfiltered.",
        ],
        "caveats": [
            "The validation loss is measured on held-out blocks of the same text; it says "
            "little about other text.",
            "Sampled text is not checked for anything: review it before publishing it.",
        ],
    },
    "classify": {
        "name": "text classifier",
        "primary": [
            "Labelling short texts with the classes it was trained on "
            "(`rnnkit classify predict`), in the language, domain and style of its "
            "training texts.",
            "A baseline for text-classification research and teaching.",
        ],
        "out_of_scope": [
            "Texts from another domain, language or period (e.g. a film-review sentiment model "
            "on tweets, medical notes or product reviews): its accuracy there is unknown.",
            "Classes it was not trained on: it always answers one of its own classes, never "
            "'none of these'.",
            "Decisions with consequences for people (moderation, hiring, credit, health) "
            "without a slice audit and human review.",
        ],
        "factors": ["identity terms in the text (gender, ethnicity, religion, nationality)",
                    "language variety and dialect", "domain and text length", "spelling and "
                    "slang (read as unknown words)"],
        "measures": "loss: mean cross-entropy of the true class; accuracy: share of texts "
                    "whose most probable class is the true one",
        "ethical": [
            "Labels learned from human-annotated texts carry the annotators' and the texts' "
            "biases; words naming identity groups can shift predictions: check with a "
            "counterfactual audit.",
            "Predicted probabilities are not calibrated confidences.",
        ],
        "caveats": [
            "Words unseen in training become `<unk>`: misspellings, slang and new names are "
            "read as unknown.",
            "Validation accuracy comes from a stratified split of the same data set: it "
            "overstates accuracy on other data.",
        ],
    },
    "translate": {
        "name": "sequence-to-sequence translator",
        "primary": [
            "Translating inputs like its training pairs (`rnnkit translate`), e.g. the "
            "number-to-words pairs of `rnnkit translate pairs`.",
            "Research and teaching on attention and encoder-decoder recurrent models.",
        ],
        "out_of_scope": [
            "General-purpose or open-domain translation: its vocabularies and knowledge are "
            "those of its training pairs.",
            "Legal, medical or safety-critical translation, or unchecked output shown to "
            "people as correct.",
        ],
        "factors": ["source length", "words outside the training vocabulary", "domain of the "
                    "pairs"],
        "measures": "loss: mean cross-entropy per target token (teacher forcing); the other "
                    "metrics as the model reports them",
        "ethical": [
            "Translations can drop, add or invert meaning fluently; gendered forms and names "
            "may be guessed from training-set statistics.",
        ],
        "caveats": [
            "Outputs are capped at a maximum length set from the training targets; longer "
            "outputs are cut.",
            "Unknown source words become `<unk>`.",
        ],
    },
    "rnnkit.forecaster": {
        "name": "RNN forecaster",
        "primary": [
            "Forecasting the series it was trained on past their end (`rnnkit forecast "
            "predict`), with intervals when its head is gaussian or quantile.",
            "Series of the same kind, frequency and scale as the training series, with at "
            "least input_len steps of history.",
        ],
        "out_of_scope": [
            "Horizons beyond the trained one, other frequencies, or series whose behaviour "
            "changed (structural breaks, new regimes).",
            "The sole basis of decisions about people (staffing, credit, allocation) without "
            "a backtest against simple baselines (`rnnkit forecast backtest`).",
        ],
        "factors": ["series (in a global model)", "season and calendar", "regime changes",
                    "scale of the series"],
        "measures": "validation loss on the held-out tail of each series (point: MAE or MSE "
                    "of scaled values; gaussian: negative log-likelihood; quantile: pinball)",
        "ethical": [
            "Forecasts used to allocate resources can entrench past patterns, including past "
            "under-provision: compare them with baselines and domain knowledge.",
        ],
        "caveats": [
            "A forecaster file keeps the model, its scalers and the last input_len steps of "
            "each series, not its validation scores: measure accuracy with `rnnkit forecast "
            "backtest`.",
            "Intervals assume the training residuals still describe the future; on a new "
            "regime they are usually too narrow.",
        ],
    },
    "rnnkit.forecast_ensemble": {
        "name": "ensemble of RNN forecasters",
        "primary": [
            "Forecasting the series its members were trained on (`rnnkit forecast predict`), "
            "averaging members trained with different seeds or settings.",
        ],
        "out_of_scope": [
            "Horizons beyond the trained one, other frequencies, or series whose behaviour "
            "changed.",
            "The sole basis of decisions about people without a backtest (`rnnkit forecast "
            "backtest`).",
        ],
        "factors": ["series", "season and calendar", "regime changes", "member disagreement"],
        "measures": "each member's validation loss on the held-out tail (not stored in the "
                    "file); backtest errors (MAE, MASE, sMAPE) from `rnnkit forecast backtest`",
        "ethical": [
            "Forecasts used to allocate resources can entrench past patterns: compare them "
            "with baselines and domain knowledge.",
        ],
        "caveats": [
            "The spread between members is not a calibrated interval.",
            "The file keeps no validation scores: measure accuracy with `rnnkit forecast "
            "backtest`.",
        ],
    },
    "rnnkit.anomaly": {
        "name": "RNN anomaly detector",
        "primary": [
            "Flagging unusual points of series like its training data (`rnnkit anomaly "
            "detect`), as a screening aid for a person to review.",
        ],
        "out_of_scope": [
            "Automatic action (shut-downs, blocked accounts, fraud accusations) without human "
            "review.",
            "Monitoring people (workers, users) without their knowledge and consent.",
            "Data whose normal behaviour differs from the training data: the threshold is "
            "then miscalibrated.",
        ],
        "factors": ["sensor or series", "operating regime", "season", "anomaly type and "
                    "length"],
        "measures": "training loss of the forecasting or reconstruction network; detection "
                    "quality (precision, recall, F1) needs labelled anomalies",
        "ethical": [
            "False alarms cost attention and trust, missed anomalies cost safety: choose the "
            "threshold with the people who bear both.",
        ],
        "caveats": [
            "Anomalies present in the training data can be learned as normal.",
            "Its threshold was set on the training data; re-check it when the data drift.",
        ],
    },
    "rnnkit.speech": {
        "name": "CTC speech recogniser",
        "primary": [
            "Transcribing short recordings (`rnnkit speech transcribe`) in the language, "
            "accents, microphones and noise of its training audio.",
            "Research and teaching on CTC acoustic models.",
        ],
        "out_of_scope": [
            "Speakers, accents, dialects, ages or recording conditions absent from its "
            "training audio (error rates rise sharply), and languages outside its alphabet.",
            "Transcripts used as evidence, for legal or medical records, or as captions "
            "without review.",
            "Recording or transcribing people without their consent.",
        ],
        "factors": ["accent and dialect", "speaker gender and age", "microphone and noise",
                    "speaking rate", "vocabulary"],
        "measures": "CTC loss on the validation utterances; word and character error rates "
                    "(WER, CER) from `rnnkit speech evaluate`",
        "ethical": [
            "Speech recognisers have been found to make far more errors for some groups of "
            "speakers (Koenecke et al., 2020, PNAS): measure WER by speaker group before use.",
            "Voice recordings are personal data.",
        ],
        "caveats": [
            "A model trained on synthesised speech (`rnnkit speech data`) does not transfer "
            "to natural speech.",
            "Error rates depend on the decoder settings saved with it (beam, language-model "
            "weight).",
        ],
    },
    "*": {
        "name": "rnnkit model",
        "primary": ["The task it was trained for, on data like its training data."],
        "out_of_scope": [
            "Data unlike its training data.",
            "Decisions about people without a slice audit and human review.",
        ],
        "factors": ["the slices of its data its users care about"],
        "measures": "the validation loss and metrics its training recorded",
        "ethical": ["Its behaviour reflects its training data, biases included."],
        "caveats": ["rnnkit has no notes for this kind of model: write its limitations here."],
    },
}
_ALIASES = {"rnnkit.anomaly_union": "rnnkit.anomaly", "rnnkit.ngram": "language_model"}


# -- the card ------------------------------------------------------------------------------------
@dataclass
class ModelCard:
    """A model card's content (every value plain data); :meth:`to_markdown` renders it.

    ``details``, ``evaluation_data``, ``training_data`` map labels to values in display
    order; ``metrics`` are the validation metrics the described checkpoint records (its step:
    ``step``); ``best`` is the best evaluation of the run (``step``, ``loss``, ``metrics``);
    ``history`` the validation records of ``log.jsonl``; ``audit`` and ``compute`` the
    sidecar files as read (``None`` when absent); ``flags`` the audit rows flagged under
    caveats; ``figures`` ``(caption, path)`` pairs embedded with links relative to the card.
    """

    title: str
    source: str
    checkpoint: str
    card_file: str
    kind: str
    format: str
    task: str | None = None
    run_dir: str | None = None
    parameters: int | None = None
    parameters_note: str = ""
    step: int | None = None
    epoch: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    architecture: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    intended_use: dict[str, Any] = field(default_factory=dict)
    factors: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    metrics_note: str = ""
    best: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    evaluation_data: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] | None = None
    audit_file: str | None = None
    compute: dict[str, Any] | None = None
    compute_file: str | None = None
    ethical: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    generated: str = ""

    # -- rendering -----------------------------------------------------------------------------
    def to_markdown(self, base_dir: str | None = None) -> str:
        """The card as Markdown; figure links are relative to ``base_dir`` (default: the
        folder of :attr:`card_file`, where :func:`write_model_card` puts it)."""
        base = os.path.abspath(base_dir or os.path.dirname(os.path.abspath(self.card_file)))
        out: list[str] = [f"# Model card: {self.title}", ""]
        out += [f"_Generated by rnnkit {_version()} on {self.generated} from "
                f"`{self.checkpoint}`. Sections follow Mitchell et al. (2019), \"Model Cards "
                f"for Model Reporting\" (FAT* 2019); what the files do not record is marked "
                f"\"not recorded\"._", ""]
        out += self._details_md()
        out += self._intended_md()
        out += self._factors_md()
        out += self._metrics_md(base)
        out += self._evaluation_md()
        out += self._training_md()
        out += self._quantitative_md(base)
        out += self._compute_md(base)
        out += ["## Ethical Considerations", ""] + [f"- {e}" for e in self.ethical] + [""]
        out += self._caveats_md()
        return "\n".join(out).rstrip() + "\n"

    def _figure(self, key: str, base: str) -> list[str]:
        lines = []
        for caption, path in self.figures:
            if caption.lower().startswith(key):
                rel = os.path.relpath(os.path.abspath(path), base).replace(os.sep, "/")
                lines += [f"![{caption}]({rel})", ""]
        return lines

    def _details_md(self) -> list[str]:
        out = ["## Model Details", ""]
        out += [f"- **{k}:** {_md_value(v)}" for k, v in self.details.items()]
        if self.architecture:
            cfg = ", ".join(f"{k}={_short(v)}" for k, v in self.architecture.items())
            out.append(f"- **Model configuration:** `{_code(cfg)}`")
        if self.train_config:
            keys = ("optimizer", "lr", "scheduler", "weight_decay", "clip_norm", "epochs",
                    "max_steps", "max_time", "early_stop_patience", "seed", "amp", "device")
            cfg = ", ".join(f"{k}={_short(self.train_config[k])}" for k in keys
                            if k in self.train_config)
            out.append(f"- **Training settings:** `{_code(cfg)}`")
        return out + [""]

    def _intended_md(self) -> list[str]:
        use = self.intended_use
        out = ["## Intended Use", "", "**Primary intended uses**", ""]
        out += [f"- {u}" for u in use.get("primary", [])] + [""]
        out += ["**Primary intended users:** people who train, study or deploy rnnkit models "
                "and can check its output; not recorded beyond that (fill in).", ""]
        out += ["**Out-of-scope uses**", ""] + [f"- {u}" for u in use.get("out_of_scope", [])]
        return out + [""]

    def _factors_md(self) -> list[str]:
        out = ["## Factors", ""]
        out += [f"- {f}" for f in self.factors]
        relevant = self.intended_use.get("factors") or []
        if relevant:
            out.append("- Relevant factors for this kind of model (audited only where listed "
                       "above): " + "; ".join(relevant) + ".")
        return out + [""]

    def _metrics_md(self, base: str) -> list[str]:
        out = ["## Metrics", ""]
        measures = self.intended_use.get("measures")
        if measures:
            out += [f"Measures: {measures}.", ""]
        if self.metrics:
            where = f"step {self.step}" if self.step is not None else "this file"
            out += [f"Validation metrics recorded in the checkpoint ({where}):", ""]
            out += _table(["metric", "value"], [[k, _fmt(v)] for k, v in self.metrics.items()])
            out.append("")
        else:
            out += [f"Validation metrics: {self.metrics_note or 'not recorded'}.", ""]
        if self.best:
            best = self.best
            parts = [f"step {best['step']}" if best.get("step") is not None else None,
                     f"validation loss {_fmt(best['loss'])}" if best.get("loss") is not None
                     else None]
            extra = best.get("metrics") or {}
            parts += [f"{k} {_fmt(v)}" for k, v in extra.items() if k != "loss"]
            out += ["Best evaluation of the run: " + ", ".join(p for p in parts if p)
                    + (f" ({best['source']})" if best.get("source") else "") + ".", ""]
        if self.history:
            keys = [k for k in _ordered_keys(self.history)
                    if k not in ("split", "time") and _scalar(self.history[0].get(k))]
            shown = self.history[-20:]
            if len(self.history) > len(shown):
                out += [f"Validation history (last {len(shown)} of {len(self.history)} "
                        f"evaluations, from log.jsonl):", ""]
            else:
                out += ["Validation history (log.jsonl):", ""]
            out += _table(keys, [[_fmt(r.get(k)) for k in keys] for r in shown]) + [""]
        out += self._figure("learning curves", base)
        groups = (self.audit or {}).get("groups")
        if isinstance(groups, dict) and groups:
            out += ["Metrics by slice: see Quantitative Analyses (from "
                    f"`{os.path.basename(self.audit_file or 'audit.json')}`).", ""]
        if self.metrics or self.audit:
            out += ["Variation: the validation metrics are point estimates on one split (no "
                    "interval); the audit's intervals are those audit.json reports.", ""]
        return out

    def _evaluation_md(self) -> list[str]:
        out = ["## Evaluation Data", ""]
        out += [f"- **{k}:** {_md_value(v)}" for k, v in self.evaluation_data.items()]
        return out + [""]

    def _training_md(self) -> list[str]:
        out = ["## Training Data", ""]
        out += [f"- **{k}:** {_md_value(v)}" for k, v in self.training_data.items()]
        return out + [""]

    def _quantitative_md(self, base: str) -> list[str]:
        out = ["## Quantitative Analyses", ""]
        audit = self.audit
        if not audit:
            return out + [f"No audit on record: {_AUDIT_HINT}.", ""]
        if audit.get("data") is not None:
            out += [f"Audit data: `{_code(str(audit['data']))}`.", ""]
        groups = audit.get("groups")
        if isinstance(groups, dict):
            for name, entry in groups.items():
                out += [f"### Groups: {name}", ""]
                if not isinstance(entry, dict):
                    out += [_md_value(entry), ""]
                    continue
                by_group = entry.get("by_group")
                if isinstance(by_group, dict) and by_group:
                    out += _rows_table(by_group, "group") + [""]
                for key, value in entry.items():
                    if key == "by_group":
                        continue
                    out += [f"**{key}**", ""]
                    out += (_kv_table(value) if isinstance(value, dict) else [_md_value(value)])
                    out.append("")
            out += self._figure("metrics by group", base)
        for section, first in (("counterfactual", "term list"), ("robustness", "perturbation")):
            entries = audit.get(section)
            if not isinstance(entries, dict) or not entries:
                continue
            out += [f"### {section.capitalize()}", ""]
            rows = {k: v for k, v in entries.items() if isinstance(v, dict)}
            out += _rows_table(rows, first) + [""]
            for name, entry in rows.items():
                examples = entry.get("worst") or entry.get("examples")
                if isinstance(examples, list) and examples:
                    label = "worst" if entry.get("worst") else "examples"
                    out += [f"{name}, {label} ({min(3, len(examples))} of {len(examples)}):", ""]
                    out += [f"- {_example(e)}" for e in examples[:3]] + [""]
        known = {"data", "groups", "counterfactual", "robustness"}
        for key, value in audit.items():
            if key not in known:
                out += [f"### {key}", ""]
                out += (_kv_table(value) if isinstance(value, dict) else [_md_value(value)])
                out.append("")
        return out

    def _compute_md(self, base: str) -> list[str]:
        out = ["## Compute and Energy", ""]
        c = self.compute
        if not c:
            out.append("- Compute and energy: not recorded (no compute.json"
                       + (f" at `{self.compute_file}`" if self.compute_file else "") + ").")
            elapsed = self.details.get("Training time")
            if elapsed:
                out.append(f"- Training time recorded in the checkpoint: {elapsed}.")
            return out + [""]
        if self.compute_file:
            whole = " (the whole run)" if self.run_dir else ""
            out += [f"From `{os.path.basename(self.compute_file)}`{whole}.", ""]
        energy = c.get("energy_kwh")
        method = c.get("energy_method")
        method_s = str(method) if method is not None else "method not recorded"
        if _is_num(energy):
            out.append(f"- **Energy:** {_fmt(energy)} kWh, {method_s}")
        else:
            out.append(f"- **Energy:** not measured, {method_s}")
        co2 = c.get("co2_kg")
        if _is_num(co2):
            where = f" (grid of {c['country']})" if c.get("country") else ""
            out.append(f"- **CO2:** {_fmt(co2)} kg CO2-eq{where}")
        labels = (("wall_s", "Wall-clock time (s)"), ("cpu_s", "CPU time (s)"),
                  ("peak_memory_mb", "Peak memory (MB)"), ("device", "Device"),
                  ("steps", "Optimizer steps"), ("items", "Items"),
                  ("items_per_s", "Throughput (items/s)"), ("flops_per_step", "FLOPs per step"),
                  ("flops_per_item", "FLOPs per item"), ("flops_total", "FLOPs in total"),
                  ("flops_method", "FLOP count method"), ("world_size", "Processes"),
                  ("country", "Country (carbon intensity)"))
        item = c.get("item_name")
        for key, label in labels:
            if c.get(key) is None:
                continue
            if item and key in ("items", "items_per_s"):
                label = label.replace("items", str(item)).replace("Items", str(item).capitalize())
            out.append(f"- **{label}:** {_fmt(c[key])}")
        shown = {"energy_kwh", "energy_method", "co2_kg", "item_name", "epochs",
                 *(k for k, _ in labels)}
        for key, value in c.items():
            if key not in shown and _scalar(value):
                out.append(f"- **{key}:** {_fmt(value)}")
        out.append("")
        epochs = c.get("epochs")
        if isinstance(epochs, list) and epochs and all(isinstance(e, dict) for e in epochs):
            keys = _ordered_keys(epochs)
            out += ["Per epoch:", ""]
            out += _table(keys, [[_fmt(e.get(k)) for k in keys] for e in epochs]) + [""]
        elif isinstance(epochs, list):
            out += ["Per epoch: none recorded (no epoch was completed).", ""]
        out += self._figure("time and energy per epoch", base)
        return out

    def _caveats_md(self) -> list[str]:
        out = ["## Caveats and Recommendations", ""]
        if self.flags:
            out += ["**Audit flags** (CI lower bound of the rate above "
                    f"{FLAG_RATE:g}):", ""] + [f"- {f}" for f in self.flags] + [""]
        out += [f"- {c}" for c in self.caveats]
        return out + [""]


# -- building ------------------------------------------------------------------------------------
def card_path(path: str | os.PathLike) -> str:
    """Where :func:`write_model_card` writes the card of ``path``: ``model_card.md`` in a
    trainer run folder (given as the folder or as its ``best.pt`` / ``last.pt``),
    ``<file>.card.md`` beside any other file (a single-file model, or a trainer checkpoint
    renamed out of its run)."""
    return _locate(os.fspath(path))[2]


def sidecar_path(path: str | os.PathLike, kind: str) -> str:
    """Where the ``kind`` record (``"audit"``, ``"compute"``) of ``path`` lives:
    ``<run folder>/<kind>.json`` for a trainer run, ``<file>.<kind>.json`` beside any other
    model file."""
    ckpt, run_dir, _ = _locate(os.fspath(path))
    return os.path.join(run_dir, f"{kind}.json") if run_dir is not None else \
        f"{ckpt}.{kind}.json"


def build_card(path: str | os.PathLike) -> ModelCard:
    """The :class:`ModelCard` of a trainer run folder, a checkpoint in one, or a single-file
    rnnkit model. A run folder is described by its ``best.pt`` (the weights its application
    returns), else ``last.pt``. A missing path raises ``FileNotFoundError``; a corrupt, foreign
    or non-model file a ``ValueError`` naming the problem and the commands that make model
    files."""
    source = os.path.abspath(os.fspath(path))
    ckpt_path, run_dir, card_file = _locate(source)
    blob = _read_model_file(ckpt_path)
    kind, version = parse_tag(blob)  # type: ignore[misc]  # checked by _read_model_file
    if kind != TRAIN_KIND and run_dir is not None and not os.path.isdir(source):
        run_dir, card_file = None, ckpt_path + ".card.md"  # e.g. a forecaster named best.pt
    notes: list[str] = []
    card = ModelCard(title="", source=source, checkpoint=ckpt_path, card_file=card_file,
                     kind=kind, format=f"{kind}/{version}", run_dir=run_dir,
                     generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    if kind == TRAIN_KIND:
        _fill_trainer(card, blob, notes)
    else:
        _fill_single(card, blob, notes)
    key = card.task if kind == TRAIN_KIND else kind
    key = _ALIASES.get(key or "", key)
    use = INTENDED_USE.get(key or "", INTENDED_USE["*"])
    card.intended_use = use
    name = use["name"] if key in INTENDED_USE else (card.task or kind)
    card.title = f"{name} ({os.path.basename(run_dir) if run_dir else os.path.basename(ckpt_path)})"
    _count_parameters(card, blob, ckpt_path, notes)
    _fill_details(card, blob, version, ckpt_path)
    card.compute, card.compute_file = _sidecar(ckpt_path, run_dir, "compute.json", notes)
    card.audit, card.audit_file = _sidecar(ckpt_path, run_dir, "audit.json", notes)
    _fill_audit(card)
    _fill_compute_data(card)
    card.ethical = list(use.get("ethical", [])) + [
        "Who built the model, for whom, with what consent for the data, and under which "
        "licence: not recorded in the files; fill it in before sharing the model."]
    card.caveats = _caveats(card, use, notes)
    return card


def write_model_card(path: str | os.PathLike, *, overwrite: bool = True) -> str:
    """Write the card of ``path`` (see :func:`build_card`) to :func:`card_path` atomically and
    return that path. ``overwrite=False`` refuses to replace an existing card. The trainer's
    ``curves.png`` is linked when the card goes into its run folder."""
    card = build_card(path)
    if os.path.exists(card.card_file) and not overwrite:
        raise FileExistsError(f"{card.card_file} exists; pass overwrite=True to replace it")
    if card.run_dir:
        curves = os.path.join(card.run_dir, "curves.png")
        if os.path.isfile(curves):
            card.figures.append(("Learning curves: loss and gradient norm per step", curves))
    atomic_write_text(card.to_markdown(), card.card_file)
    return card.card_file


def render_report(path: str | os.PathLike, out_dir: str | os.PathLike | None = None
                  ) -> list[str]:
    """Write the card of ``path`` and its plots into ``out_dir`` (default: the run folder, or
    the single file's folder): the learning curves (re-plotted from ``log.jsonl``, or the run's
    ``curves.png`` copied), the time and energy of each epoch (``compute.json``) and the
    per-group metrics with CI error bars (``audit.json``), each when its data exist. The card
    links the PNGs by relative paths. Returns the paths written, the card first."""
    card = build_card(path)
    out = os.path.abspath(os.fspath(out_dir)) if out_dir is not None else \
        os.path.dirname(card.card_file)
    os.makedirs(out, exist_ok=True)
    prefix = "" if card.run_dir else os.path.basename(card.checkpoint) + "."
    written: list[str] = []
    records = _log_records(card.run_dir) if card.run_dir else []
    curves = os.path.join(out, prefix + "curves.png")
    if records:
        from ..train.logs import plot_curves

        plot_curves(records, curves)
        written.append(curves)
    elif card.run_dir and os.path.isfile(os.path.join(card.run_dir, "curves.png")):
        src = os.path.join(card.run_dir, "curves.png")
        if os.path.abspath(src) != curves:
            with open(src, "rb") as f:
                atomic_write_bytes(f.read(), curves)
        written.append(curves)
    if written:
        card.figures.append(("Learning curves: loss and gradient norm per step", curves))
    epochs = (card.compute or {}).get("epochs")
    if isinstance(epochs, list) and any(isinstance(e, dict) for e in epochs):
        target = os.path.join(out, prefix + "compute.png")
        _plot_compute(card.compute or {}, target)
        card.figures.append(("Time and energy per epoch", target))
        written.append(target)
    panels = _slice_panels(card.audit)
    if panels:
        target = os.path.join(out, prefix + "slices.png")
        _plot_slices(panels, target)
        card.figures.append(("Metrics by group, with confidence intervals", target))
        written.append(target)
    card.card_file = os.path.join(out, os.path.basename(card.card_file))
    atomic_write_text(card.to_markdown(), card.card_file)
    return [card.card_file, *written]


# -- locating and reading ------------------------------------------------------------------------
def _locate(source: str) -> tuple[str, str | None, str]:
    """``(checkpoint file, run folder or None, card file)`` of a path given to the card."""
    if os.path.isdir(source):
        for name in _RUN_FILES:
            candidate = os.path.join(source, name)
            if os.path.isfile(candidate):
                return candidate, source, os.path.join(source, CARD_NAME)
        raise FileNotFoundError(f"{source} holds no best.pt or last.pt, so it is not a "
                                f"training run folder; give a run folder ({_MAKES}) or a "
                                f"model file")
    if not os.path.isfile(source):
        raise FileNotFoundError(f"no such model file or run folder: {source!r}; check the path")
    if os.path.basename(source) in _RUN_FILES:  # a checkpoint of a run folder
        folder = os.path.dirname(source)
        return source, folder, os.path.join(folder, CARD_NAME)
    return source, None, source + ".card.md"


def _read_model_file(path: str) -> dict[str, Any]:
    """The tagged dict of a model file, read safely; anything else is a ``ValueError``."""
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    if head.startswith(b"{"):  # a JSON file (a tokenizer, or foreign JSON)
        try:
            with open(path, encoding="utf-8") as f:
                blob: Any = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is neither a torch file nor valid JSON ({err}); model "
                             f"cards describe files written by rnnkit ({_MAKES})") from None
    else:
        try:
            blob = read_torch_file(path)
        except ValueError as err:  # truncated, not a torch file, or pickled code (never run)
            cause = err.__cause__ or err
            raise ValueError(f"{path} is not a readable rnnkit model file: it is truncated, "
                             f"corrupt, not a torch file, or holds pickled objects, which are "
                             f"never loaded ({type(cause).__name__}). Model cards describe "
                             f"files written by rnnkit ({_MAKES}): re-create the file with "
                             f"the command that made it") from err
    parsed = parse_tag(blob)
    if parsed is None:
        keys = (f" (a dict with keys {', '.join(map(str, list(blob)[:6]))})"
                if isinstance(blob, dict) else f" (a {type(blob).__name__})")
        raise ValueError(f"{path} is not an rnnkit model file{keys}: it has no rnnkit format "
                         f"tag. Model cards describe files written by rnnkit ({_MAKES}); a "
                         f"plain torch.save of weights has no task, data or metrics to report")
    kind, version = parsed
    if kind == "rnnkit.tokenizer":
        raise ValueError(f"{path} is {describe(blob)}, a tokenizer, not a model; give the "
                         f"model file or run folder it belongs to")
    if kind == TRAIN_KIND:
        if version > 1:
            raise ValueError(f"{path} is {kind}/{version}, written by a newer rnnkit; this one "
                             f"reads version 1: upgrade rnnkit (pip install -U rnnkit)")
        if "model" not in blob:
            raise ValueError(f"{path} is tagged as a trainer checkpoint but has no model "
                             f"weights; it is damaged: re-create it with "
                             f"`{MAKERS[TRAIN_KIND]}`")
    return blob


def _sidecar(ckpt: str, run_dir: str | None, name: str, notes: list[str]
             ) -> tuple[dict[str, Any] | None, str]:
    """A JSON sidecar (``<file>.<name>``, else ``<run>/<name>``), read defensively; the path
    looked at is returned even when nothing is there."""
    stem = name.split(".")[0]
    candidates = [f"{ckpt}.{name}"] + ([os.path.join(run_dir, name)] if run_dir else [])
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        try:
            with open(candidate, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            notes.append(f"{candidate} could not be read ({type(err).__name__}: {err}); its "
                         f"{stem} data are left out: re-create it")
            return None, candidate
        if not isinstance(data, dict):
            notes.append(f"{candidate} is not a JSON object; its {stem} data are left out")
            return None, candidate
        return data, candidate
    return None, candidates[-1]


def _log_records(run_dir: str | None) -> list[dict[str, Any]]:
    if not run_dir:
        return []
    path = os.path.join(run_dir, "log.jsonl")
    if not os.path.isfile(path):
        return []
    from ..train.logs import RunLog

    try:
        return [r for r in RunLog.read(path) if isinstance(r, dict)]
    except (OSError, ValueError):
        return []


# -- filling the sections ------------------------------------------------------------------------
def _fill_trainer(card: ModelCard, ckpt: dict[str, Any], notes: list[str]) -> None:
    extra = ckpt.get("extra_state") if isinstance(ckpt.get("extra_state"), dict) else {}
    run = extra.get("run") if isinstance(extra.get("run"), dict) else {}
    card.task = extra.get("task") if isinstance(extra.get("task"), str) else None
    config = extra.get("config") or extra.get("model_config")
    card.architecture = _plain_config(config) if isinstance(config, dict) else {}
    card.train_config = ckpt["config"] if isinstance(ckpt.get("config"), dict) else {}
    card.step = _int_or_none(ckpt.get("step"))
    card.epoch = _int_or_none(ckpt.get("epoch"))
    metrics = ckpt.get("metrics")
    card.metrics = dict(metrics) if isinstance(metrics, dict) else {}
    if not card.metrics:
        card.metrics_note = "none recorded (the run evaluated no validation data)"
    records = _log_records(card.run_dir)
    card.history = [r for r in records if r.get("split") == "val"]
    card.best = _best(card, ckpt, notes)
    # evaluation and training data: what the checkpoint records
    data_config = extra.get("data_config") or run.get("data_config")
    data_config = data_config if isinstance(data_config, dict) else {}
    fingerprint = extra.get("text_fingerprint") or run.get("data")
    val = data_config.get("val_fraction")
    how = {"classify": "a stratified random hold-out (by class) of the same data set",
           "language_model": "blocks spread over the training text, held out before training",
           "translate": "a random hold-out of the same pairs"}.get(card.task or "",
                                                                   "the run's validation data")
    ev: dict[str, Any] = {}
    if _is_num(val):
        ev["Validation split"] = f"{val:.0%} of the data: {how}"
    else:
        ev["Validation split"] = f"{how} (its size is not recorded)" if card.task else \
            "not recorded (the trainer was given its own validation data)"
    ev["Distribution"] = ("the same source as the training data: no out-of-distribution "
                          "evaluation is on record")
    if card.history:
        ev["Evaluations"] = f"{len(card.history)} (log.jsonl)"
    card.evaluation_data = ev
    tr: dict[str, Any] = {}
    tr["Source"] = f"`{data_config['path']}`" if data_config.get("path") else \
        "not recorded in the checkpoint (the data path is not saved)"
    if isinstance(fingerprint, dict) and fingerprint:
        tr["Text fingerprint"] = ", ".join(f"{k} {_fmt(v)}" for k, v in fingerprint.items())
    if _is_num(val):
        tr["Splits"] = f"train {1 - val:.0%}, validation {val:.0%}"
    if data_config:
        tr["Data settings"] = ", ".join(f"{k}={_short(v)}" for k, v in data_config.items()
                                        if k != "path")
    classes = extra.get("classes")
    if isinstance(classes, list):
        tr["Classes"] = f"{len(classes)}: " + ", ".join(map(str, classes[:20])) + \
            (", ..." if len(classes) > 20 else "")
    for key, label in (("vocab_size", "Vocabulary"), ("src_vocab_size", "Source vocabulary"),
                       ("tgt_vocab_size", "Target vocabulary")):
        if _is_num(card.architecture.get(key)):
            tr[label] = f"{card.architecture[key]:,} entries"
    tok = extra.get("tokenizer")
    if isinstance(tok, dict):
        level = tok.get("kind") or tok.get("level")
        if level:
            tr["Tokenizer"] = f"{level} level"
    others = {k: v for k, v in run.items() if k not in ("data", "data_config")}
    if others:
        tr["Run information"] = ", ".join(f"{k}={_short(v)}" for k, v in others.items())
    card.training_data = tr
    if ckpt.get("stopped_early"):
        notes.append("training stopped early (no better validation loss for "
                     f"{card.train_config.get('early_stop_patience')} evaluations)")


def _best(card: ModelCard, ckpt: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """The run's best evaluation: best.pt's step and metrics (the truth), else the lowest
    validation loss of log.jsonl."""
    best_file = os.path.join(card.run_dir, "best.pt") if card.run_dir else None
    if best_file and os.path.abspath(best_file) == os.path.abspath(card.checkpoint):
        return {"step": card.step, "loss": ckpt.get("best_metric", card.metrics.get("loss")),
                "metrics": card.metrics, "source": "best.pt, this checkpoint"}
    if best_file and os.path.isfile(best_file):
        try:
            other = read_torch_file(best_file)
            return {"step": _int_or_none(other.get("step")), "loss": other.get("best_metric"),
                    "metrics": dict(other.get("metrics") or {}), "source": "best.pt"}
        except (ValueError, AttributeError, TypeError) as err:
            notes.append(f"{best_file} could not be read ({err}); the best step comes from "
                         f"log.jsonl")
    losses = [r for r in card.history if _is_num(r.get("loss"))]
    if losses:
        r = min(losses, key=lambda r: r["loss"])
        return {"step": r.get("step"), "loss": r["loss"], "source": "log.jsonl",
                "metrics": {k: v for k, v in r.items()
                            if k not in ("split", "step", "epoch", "time") and _is_num(v)}}
    if _is_num(ckpt.get("best_metric")):
        return {"loss": ckpt["best_metric"], "source": "this checkpoint's best_metric"}
    return {}


def _fill_single(card: ModelCard, blob: dict[str, Any], notes: list[str]) -> None:
    members = blob.get("members")
    first = members[0] if isinstance(members, list) and members and \
        isinstance(members[0], dict) else blob
    config = first.get("config")
    if isinstance(config, dict):
        card.architecture = _plain_config(config)
        if isinstance(config.get("train"), dict):
            card.train_config = config["train"]
    history = blob.get("history") or first.get("history")
    if isinstance(history, dict):
        card.metrics = {k: v for k, v in history.items()
                        if _is_num(v) and k not in ("steps", "step")}
        card.step = _int_or_none(history.get("steps", history.get("step")))
        records = history.get("history")
        if isinstance(records, list):
            card.history = [r for r in records if isinstance(r, dict) and r.get("split") == "val"]
    if not card.metrics:
        card.metrics_note = ("not recorded in the file (it keeps the model, not its validation "
                             "scores)")
    ev: dict[str, Any] = {}
    tr: dict[str, Any] = {"Source": "not recorded in the file (the data path is not saved)"}
    if isinstance(members, list):
        tr["Members"] = f"{len(members)} models in one file"
    series = first.get("series")
    if isinstance(series, list) and series:
        names = [str(s.get("name")) for s in series if isinstance(s, dict)]
        tr["Series"] = f"{len(series)} (" + ", ".join(names[:10]) + \
            (", ...)" if len(names) > 10 else ")")
        s0 = series[0] if isinstance(series[0], dict) else {}
        for key, label in (("target_names", "Targets"), ("past_names", "Past covariates"),
                           ("future_names", "Known-future covariates")):
            if s0.get(key):
                tr[label] = ", ".join(map(str, s0[key]))
        if s0.get("time_tail"):
            tr["Last time step kept"] = str(s0["time_tail"][-1])
    if first.get("freq"):
        tr["Frequency"] = str(first["freq"])
    columns = first.get("columns")
    if isinstance(columns, dict) and any(columns.values()):
        tr["Columns"] = ", ".join(f"{k}={_short(v)}" for k, v in columns.items() if v)
    for key, label in (("n_features", "Features"), ("alphabet", "Alphabet")):
        value = first.get(key)
        if value is not None:
            tr[label] = f"{len(value)} symbols" if isinstance(value, (list, str)) else \
                _fmt(value)
    val = card.architecture.get("val_fraction")
    if _is_num(val) and not val:
        ev["Validation split"] = "none (val_fraction=0: no validation, no best step)"
    elif _is_num(val):
        horizon = card.architecture.get("horizon")
        at_least = f" (at least one horizon, {horizon} steps)" if horizon else ""
        ev["Validation split"] = (f"the last {val:.0%} of each series{at_least}, held out "
                                  f"to pick the best step")
        tr["Splits"] = f"train: the first {1 - val:.0%} of each series; validation: the rest"
    else:
        ev["Validation split"] = "not recorded in the file"
    ev["Distribution"] = ("the same source as the training data: no out-of-distribution "
                          "evaluation is on record")
    card.evaluation_data = ev
    card.training_data = tr
    if card.kind not in KINDS:
        notes.append(f"{card.kind} is a kind this rnnkit does not know; the card shows what "
                     f"the file holds")


def _plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """The model configuration without its nested training settings."""
    return {k: v for k, v in config.items() if k != "train"}


def _fill_details(card: ModelCard, blob: dict[str, Any], version: int, path: str) -> None:
    a = card.architecture
    d: dict[str, Any] = {}
    kind_s = f"trainer checkpoint (`{card.format}`)" if card.kind == TRAIN_KIND else \
        f"`{card.format}` file"
    d["Model type"] = card.title.rsplit(" (", 1)[0]
    d["Kind"] = kind_s + (f", task `{card.task}`" if card.task else "")
    d["Architecture"] = _architecture(card)
    d["Cell"] = a.get("cell", "not recorded")
    layers = a.get("num_layers")
    if layers is None and ("enc_layers" in a or "dec_layers" in a):
        layers = f"encoder {a.get('enc_layers', '?')}, decoder {a.get('dec_layers', '?')}"
    d["Layers"] = layers if layers is not None else "not recorded"
    d["Hidden size"] = (f"{a['hidden_size']} per direction" if a.get("bidirectional") and
                        a.get("hidden_size") else a.get("hidden_size", "not recorded"))
    d["Parameters"] = (f"{card.parameters:,}" if card.parameters is not None else
                       "not available") + (f" ({card.parameters_note})"
                                           if card.parameters_note else "")
    extra = blob.get("extra_state") if isinstance(blob.get("extra_state"), dict) else {}
    written_by = blob.get("rnnkit_version") or extra.get("rnnkit_version")
    d["rnnkit version"] = (f"{written_by} (wrote the file); card by {_version()}" if written_by
                           else f"{_version()} (this card; the file does not record the "
                                f"version that wrote it)")
    mtime = _dt.datetime.fromtimestamp(os.path.getmtime(path), _dt.timezone.utc)
    d["Date"] = f"file written {mtime.strftime('%Y-%m-%d %H:%M UTC')}; card {card.generated}"
    where = f"`{path}`"
    if card.step is not None:
        where += f", step {card.step}"
    if card.epoch is not None:
        epochs = card.train_config.get("epochs")
        where += f" (epochs completed: {card.epoch}" + (f" of {epochs}" if epochs else "") + ")"
    d["Checkpoint"] = where
    if card.kind == TRAIN_KIND and _is_num(blob.get("elapsed")):
        d["Training time"] = f"{blob['elapsed']:.1f} s (to this checkpoint)"
    if card.kind == TRAIN_KIND and _is_num(blob.get("world_size")) and blob["world_size"] > 1:
        d["Processes"] = f"{blob['world_size']} (distributed data parallel)"
    d["Developed by, licence, contact, citation"] = "not recorded (fill in)"
    card.details = d


def _architecture(card: ModelCard) -> str:
    a = card.architecture
    if not a:
        return "not recorded"
    cell = str(a.get("cell", "recurrent")).upper()
    hidden, layers = a.get("hidden_size", "?"), a.get("num_layers", "?")
    key = _ALIASES.get(card.task or card.kind, card.task or card.kind)
    if key == "classify":
        bi = "bidirectional " if a.get("bidirectional") else ""
        emb = f"{a['embed_size']}-wide embeddings" if a.get("vocab_size") else \
            f"{a.get('input_size')} input features"
        return (f"{bi}{cell} classifier: {layers} layer(s) of {hidden} units"
                f"{' per direction' if bi else ''}, {emb}, {a.get('pooling', '?')} pooling, "
                f"{a.get('num_classes', '?')} classes")
    if key == "language_model":
        tied = ", tied input/output embeddings" if a.get("tie_weights") else ""
        return (f"{cell} language model: {layers} layer(s) of {hidden} units, "
                f"{a.get('embed_size', '?')}-wide embeddings{tied}, vocabulary "
                f"{a.get('vocab_size', '?')}")
    if key == "translate":
        return (f"{cell} encoder-decoder: bidirectional encoder of {a.get('enc_layers', '?')} "
                f"layer(s) x {hidden} units per direction, decoder of {a.get('dec_layers', '?')}"
                f" layer(s), {a.get('attention', '?')} attention")
    if key in ("rnnkit.forecaster", "rnnkit.forecast_ensemble"):
        lead = "ensemble of forecasters, first member: " if card.kind == \
            "rnnkit.forecast_ensemble" else ""
        return (f"{lead}{cell} forecaster: {layers} layer(s) of {hidden} units, "
                f"{a.get('decoder', '?')} decoder, {a.get('head', '?')} head, baseline "
                f"{a.get('baseline', '?')}; horizon {a.get('horizon', '?')} from "
                f"{a.get('input_len', '?')} input steps")
    if key == "rnnkit.anomaly":
        return (f"{cell} anomaly detector ({a.get('method', '?')}): {layers} layer(s) of "
                f"{hidden} units over {a.get('input_len', '?')} steps")
    if key == "rnnkit.speech":
        bi = "bidirectional " if a.get("bidirectional") else ""
        return (f"{bi}{cell} CTC recogniser: {layers} layer(s) of {hidden} units over "
                f"{a.get('n_mels', '?')} mel bands ({a.get('rate', '?')} Hz), "
                f"{a.get('channels', '?')} conv channels")
    parts = [f"{k} {a[k]}" for k in ("cell", "num_layers", "hidden_size", "order")
             if k in a]
    return ", ".join(parts) if parts else "see the configuration below"


def _count_parameters(card: ModelCard, blob: dict[str, Any], path: str,
                      notes: list[str]) -> None:
    """Parameters of the model rebuilt by rnnkit's own class (weights_only data only), else
    of the saved tensors."""
    target = None
    if card.kind == TRAIN_KIND and card.task in TASKS:
        target = TASKS[card.task]
    elif card.kind in KINDS:
        target = KINDS[card.kind]
    if target is not None:
        try:
            obj = rebuild(_resolve(target), blob, path)
        except ImportError as err:
            notes.append(f"the model could not be rebuilt to count its parameters ({err}); "
                         f"the count is of the saved tensors")
        except (ValueError, RuntimeError) as err:  # tagged right, content wrong
            cause = err.__cause__ if isinstance(err, ValueError) and err.__cause__ else err
            first = str(cause).splitlines()[0].rstrip(":") if str(cause) else ""
            first = f"{type(cause).__name__}: {first}" if first else type(cause).__name__
            raise ValueError(f"{path} is tagged as {card.format} but its content does not "
                             f"rebuild the model ({first}); it is damaged or hand-made: "
                             f"re-create it with `{_maker(card)}`") from err
        else:
            params = _unique_parameters(obj)
            if params is not None:
                card.parameters = params
                return
    tensors = _saved_tensors(blob)
    if tensors:
        seen: set[tuple[int, int, tuple[int, ...]]] = set()
        total = 0
        for t in tensors:
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
            if key not in seen:
                seen.add(key)
                total += t.numel()
        card.parameters = total
        card.parameters_note = "counted from the saved weights; may include buffers"


def _maker(card: ModelCard) -> str:
    if card.kind == TRAIN_KIND and card.task in _TASK_MAKERS:
        return _TASK_MAKERS[card.task]
    return MAKERS.get(card.kind, MAKERS[TRAIN_KIND])


def _unique_parameters(obj: Any) -> int | None:
    from torch import nn

    def modules(o: Any) -> list[nn.Module]:
        if isinstance(o, nn.Module):
            return [o]
        for name in ("model", "net"):
            m = getattr(o, name, None)
            if isinstance(m, nn.Module):
                return [m]
        for name in ("members", "detectors"):
            ms = getattr(o, name, None)
            if isinstance(ms, (list, tuple)):
                return [m for x in ms for m in modules(x)]
        return []

    found = modules(obj)
    if not found:
        return None
    seen: dict[int, int] = {}
    for m in found:
        for p in m.parameters():
            seen[id(p)] = p.numel()
    return sum(seen.values())


def _saved_tensors(blob: dict[str, Any]) -> list[Any]:
    import torch

    weights = []
    for entry in [blob, *(blob.get("members") or [])]:
        if not isinstance(entry, dict):
            continue
        for key in ("model", "state_dict"):
            sd = entry.get(key)
            if isinstance(sd, dict):
                weights += [t for t in sd.values() if isinstance(t, torch.Tensor)]
    return weights


def _fill_audit(card: ModelCard) -> None:
    audit = card.audit
    factors: list[str] = []
    if not audit:
        card.factors = [f"Groups and slices audited: none on record; {_AUDIT_HINT}."]
        return
    groups = audit.get("groups")
    if isinstance(groups, dict):
        for name, entry in groups.items():
            by_group = entry.get("by_group") if isinstance(entry, dict) else None
            members = ", ".join(map(str, by_group)) if isinstance(by_group, dict) else ""
            factors.append(f"Group list `{name}`" + (f": {members}" if members else ""))
    for section, what in (("counterfactual", "Counterfactual term swaps"),
                          ("robustness", "Perturbations")):
        entries = audit.get(section)
        if isinstance(entries, dict) and entries:
            factors.append(f"{what}: " + ", ".join(f"`{k}`" for k in entries))
    if audit.get("data") is not None:
        factors.append(f"Audit data: `{_code(str(audit['data']))}`")
    card.factors = factors or ["The audit file lists no groups, term swaps or perturbations."]
    for section in ("counterfactual", "robustness"):
        entries = audit.get(section)
        if not isinstance(entries, dict):
            continue
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                continue
            for key in RATE_KEYS:
                ci = entry.get(f"{key}_ci")
                if isinstance(ci, (list, tuple)) and len(ci) == 2 and _is_num(ci[0]) \
                        and ci[0] > FLAG_RATE:
                    what = "predictions flip when only these terms are swapped" \
                        if section == "counterfactual" else \
                        "predictions change under this perturbation"
                    card.flags.append(
                        f"{section} `{name}`: {key.replace('_', ' ')} {_fmt(entry.get(key))} "
                        f"(CI {_fmt(ci[0])} to {_fmt(ci[1])}; the lower bound exceeds "
                        f"{FLAG_RATE:g}): {what}; investigate before deploying")
    ev = card.evaluation_data
    if audit.get("data") is not None:
        ev["Audit data"] = f"`{_code(str(audit['data']))}`"
    counts = {name: e.get("n") for name, e in (audit.get("counterfactual") or {}).items()
              if isinstance(e, dict) and _is_num(e.get("n"))} \
        if isinstance(audit.get("counterfactual"), dict) else {}
    if counts:
        ev["Audited examples"] = ", ".join(f"{k}: {v:,}" for k, v in counts.items())


def _fill_compute_data(card: ModelCard) -> None:
    c = card.compute or {}
    if _is_num(c.get("items")):
        item = c.get("item_name") or "items"
        card.training_data["Size"] = f"{c['items']:,} {item} processed in training" + (
            f" over {c['steps']:,} steps" if _is_num(c.get("steps")) else "")
    elif "Size" not in card.training_data:
        card.training_data["Size"] = "not recorded (compute.json counts it)"


def _caveats(card: ModelCard, use: dict[str, Any], notes: list[str]) -> list[str]:
    out = list(use.get("caveats", []))
    acc = card.metrics.get("accuracy")
    classes = card.architecture.get("num_classes")
    if _is_num(acc) and _is_num(classes) and classes >= 2 and acc < 1 / classes + 0.05:
        out.append(f"Validation accuracy {_fmt(acc)} is near chance for {classes} classes "
                   f"({1 / classes:.2g}): the model has not learned the task; train longer "
                   f"or check the data.")
    if not card.audit:
        out.append(f"No slice audit on record: {_AUDIT_HINT}.")
    if not card.compute:
        out.append("No compute record: energy and compute are not reported.")
    out += [f"{n[0].upper()}{n[1:]}." for n in notes]
    out.append("This card was generated from the files alone: review it and add what they "
               "cannot record (data provenance, consent, intended users, licence).")
    return out


# -- plots ---------------------------------------------------------------------------------------
def _figure_and_axes(rows: int, cols: int, width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _plot_compute(compute: dict[str, Any], path: str) -> None:
    epochs = [e for e in compute.get("epochs") or [] if isinstance(e, dict)]
    xs = [e.get("epoch", i) for i, e in enumerate(epochs)]
    labels = [str(x) for x in xs]
    pos = list(range(len(epochs)))
    fig, axes = _figure_and_axes(1, 2, 11, 4)
    ax_t, ax_e = axes[0]
    width = 0.4
    wall = [e.get("wall_s") if _is_num(e.get("wall_s")) else 0.0 for e in epochs]
    cpu = [e.get("cpu_s") if _is_num(e.get("cpu_s")) else 0.0 for e in epochs]
    ax_t.bar([p - width / 2 for p in pos], wall, width, label="wall-clock")
    ax_t.bar([p + width / 2 for p in pos], cpu, width, label="CPU")
    ax_t.set(xlabel="epoch", ylabel="seconds", title="Time per epoch")
    ax_t.set_xticks(pos, labels)
    ax_t.margins(y=0.25)
    ax_t.legend(loc="upper left", ncol=2, fontsize=8)
    ax_t.grid(alpha=0.3, axis="y")
    energy = [e.get("energy_kwh") for e in epochs]
    method = str(compute.get("energy_method") or "method not recorded")
    if any(_is_num(v) for v in energy):
        ax_e.bar(pos, [v if _is_num(v) else 0.0 for v in energy], 0.6, color="tab:green")
        ax_e.set_xticks(pos, labels)
        ax_e.set(xlabel="epoch", ylabel="kWh")
        ax_e.grid(alpha=0.3, axis="y")
    else:
        ax_e.text(0.5, 0.5, "energy not measured", ha="center", va="center",
                  transform=ax_e.transAxes)
        ax_e.set_xticks([])
        ax_e.set_yticks([])
    ax_e.set_title("Energy per epoch\n" + _wrap(method, 60), fontsize=9)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.82, wspace=0.25)
    atomic_write_figure(fig, path)


def _slice_panels(audit: dict[str, Any] | None) -> list[tuple[str, str, list[Any]]]:
    """``(group list, metric, [(group, value, lo, hi)])`` for every plottable metric."""
    groups = (audit or {}).get("groups")
    if not isinstance(groups, dict):
        return []
    panels = []
    for name, entry in groups.items():
        by_group = entry.get("by_group") if isinstance(entry, dict) else None
        if not isinstance(by_group, dict):
            continue
        rows = {g: v for g, v in by_group.items() if isinstance(v, dict)}
        metrics = [k for k in _ordered_keys(list(rows.values()))
                   if not k.endswith("_ci") and k not in COUNT_KEYS and not k.startswith("n_")
                   and any(_is_num(v.get(k)) for v in rows.values())]
        for metric in metrics:
            bars = []
            for group, values in rows.items():
                value = values.get(metric)
                if not _is_num(value):
                    continue
                ci = values.get(f"{metric}_ci")
                lo, hi = (ci if isinstance(ci, (list, tuple)) and len(ci) == 2
                          and all(_is_num(c) for c in ci) else (None, None))
                bars.append((str(group), float(value), lo, hi))
            if bars:
                panels.append((str(name), metric, bars))
    return panels[:12]


def _plot_slices(panels: list[tuple[str, str, list[Any]]], path: str) -> None:
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = _figure_and_axes(rows, cols, 4.2 * cols, 3.4 * rows)
    for i, ax in enumerate(axes.flat):
        if i >= len(panels):
            ax.set_visible(False)
            continue
        name, metric, bars = panels[i]
        pos = list(range(len(bars)))
        values = [b[1] for b in bars]
        low = [max(0.0, b[1] - b[2]) if b[2] is not None else 0.0 for b in bars]
        high = [max(0.0, b[3] - b[1]) if b[3] is not None else 0.0 for b in bars]
        ax.bar(pos, values, 0.6, yerr=[low, high], capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(pos, [b[0] for b in bars], rotation=30 if len(bars) > 4 else 0)
        ax.set(title=f"{name}: {metric}", ylabel=metric)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Metrics by group (error bars: audit CIs)")
    fig.tight_layout()
    atomic_write_figure(fig, path)


# -- formatting helpers --------------------------------------------------------------------------
def _version() -> str:
    from .. import __version__

    return __version__


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int_or_none(v: Any) -> int | None:
    return int(v) if _is_num(v) else None


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)) and len(v) <= 6 and all(_scalar(x) for x in v):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return _short(v)


def _short(v: Any, limit: int = 120) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _code(text: str) -> str:
    return text.replace("`", "'")


def _cell(v: Any) -> str:
    """A table cell: strings as they are, other values formatted; pipes escaped."""
    text = v if isinstance(v, str) else _fmt(v)
    return text.replace("|", "\\|").replace("\n", " ")


def _md_value(v: Any) -> str:
    return v if isinstance(v, str) else _fmt(v)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    if not headers:
        return []
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |",
           "| " + " | ".join("---" for _ in headers) + " |"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _ordered_keys(rows: list[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    return keys


def _with_ci(values: dict[str, Any], key: str) -> str:
    ci = values.get(f"{key}_ci")
    text = _fmt(values.get(key))
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        text += f" [{_fmt(ci[0])}, {_fmt(ci[1])}]"
    return text


def _rows_table(rows: dict[str, Any], first: str) -> list[str]:
    """A table with a row per entry of ``rows`` and a column per scalar key (a ``<key>_ci``
    pair is shown beside its key, as ``value [lo, hi]``)."""
    dicts = {k: v for k, v in rows.items() if isinstance(v, dict)}
    if not dicts:
        return _kv_table(rows)
    keys = _ordered_keys(list(dicts.values()))
    cols = [k for k in keys
            if not (k.endswith("_ci") and k[:-3] in keys)
            and any(v.get(k) is not None and _scalar(v.get(k)) for v in dicts.values())
            and not any(isinstance(v.get(k), (list, dict)) and not k.endswith("_ci")
                        for v in dicts.values())]
    headers = [first] + [f"{k} [CI]" if f"{k}_ci" in keys else k for k in cols]
    body = []
    for name, values in dicts.items():
        body.append([str(name)] + [_with_ci(values, k) for k in cols])
    return _table(headers, body)


def _kv_table(values: dict[str, Any]) -> list[str]:
    rows = []
    for k, v in values.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={_fmt(b)}" for a, b in v.items())
        rows.append([k, v])
    return _table(["key", "value"], rows)


def _example(e: Any) -> str:
    if isinstance(e, dict):
        return "; ".join(f"{k}: {_code(_short(v, 160))}" for k, v in e.items())
    return _code(_short(e, 300))
