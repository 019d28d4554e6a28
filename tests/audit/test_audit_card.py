"""Model cards (rnnkit.audit.card) built from real checkpoints and compared with the files."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.audit.card import (
    CARD_NAME,
    FLAG_RATE,
    SECTIONS,
    build_card,
    card_path,
    render_report,
    write_model_card,
)
from rnnkit.train import TrainConfig

WORDS = [f"w{i}" for i in range(30)]


def _section(md: str, title: str) -> str:
    """The text of one ``## title`` section of a card."""
    start = md.index(f"## {title}\n")
    end = md.find("\n## ", start + 1)
    return md[start:end if end >= 0 else None]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    """A real (tiny) text-classifier run: best.pt, last.pt, log.jsonl, curves.png."""
    from rnnkit.text.classifier import ClassifierConfig, train_text_classifier

    out = str(tmp_path_factory.mktemp("classify_run"))
    gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ())))
    texts, labels = [], []
    for _ in range(80):
        ids = torch.randint(0, len(WORDS), (int(torch.randint(3, 9, (), generator=gen)),),
                            generator=gen).tolist()
        texts.append(" ".join(WORDS[i] for i in ids))
        labels.append("pos" if "w0" in texts[-1].split() or "w1" in texts[-1].split()
                      else "neg")
    cfg = ClassifierConfig(vocab_size=2, embed_size=8, hidden_size=8)  # vocab set by training
    train = TrainConfig(out_dir=out, epochs=2, lr=1e-2, progress=False, device="cpu",
                        log_every=2, eval_every=3)
    train_text_classifier(texts, labels, cfg, train, val_fraction=0.25, batch_size=16)
    return out


def test_card_of_a_classifier_run_reports_what_the_checkpoint_holds(run_dir):
    best = os.path.join(run_dir, "best.pt")
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    card = build_card(run_dir)
    md = card.to_markdown()
    for title in SECTIONS:
        assert f"\n## {title}\n" in md
    assert [line[3:] for line in md.splitlines() if line.startswith("## ")] == list(SECTIONS)
    assert card.checkpoint == best and card.task == "classify"
    assert card.step == ckpt["step"] and card.epoch == ckpt["epoch"]
    assert card.metrics == ckpt["metrics"] and set(card.metrics) == {"loss", "accuracy"}
    metrics_md = _section(md, "Metrics")
    assert f"(step {ckpt['step']})" in metrics_md
    for key, value in ckpt["metrics"].items():
        assert f"| {key} | {value:.4g} |" in metrics_md
    # the best step is best.pt's, and log.jsonl's lowest validation loss agrees
    records = [json.loads(line) for line in open(os.path.join(run_dir, "log.jsonl"))]
    val = [r for r in records if r["split"] == "val"]
    assert card.best["step"] == ckpt["step"] == min(val, key=lambda r: r["loss"])["step"]
    assert len(card.history) == len(val) >= 2
    # parameters: the rebuilt model's, counted independently here
    model = rnnkit.load(best).model
    n_params = sum(p.numel() for p in model.parameters())
    assert card.parameters == n_params
    assert f"**Parameters:** {n_params:,}" in md
    details = _section(md, "Model Details")
    assert "**Cell:** lstm" in details and "**Layers:** 1" in details
    assert "**Hidden size:** 8 per direction" in details
    assert f"step {ckpt['step']}" in details and rnnkit.__version__ in details
    training = _section(md, "Training Data")
    assert "Classes:** 2: neg, pos" in training and "train 75%, validation 25%" in training
    assert f"{ckpt['extra_state']['config']['vocab_size']} entries" in training
    # the trainer's own compute.json: its energy method repeated verbatim
    with open(os.path.join(run_dir, "compute.json"), encoding="utf-8") as f:
        compute = json.load(f)
    assert card.compute == compute
    section = _section(md, "Compute and Energy")
    energy_line = next(line for line in section.splitlines() if "**Energy:**" in line)
    assert energy_line.endswith(", " + compute["energy_method"])
    assert "not recorded" not in section
    assert "No slice audit on record" in _section(md, "Caveats and Recommendations")
    # the checkpoint file inside the run gives the same card; last.pt its own step
    assert build_card(best).step == card.step
    last = torch.load(os.path.join(run_dir, "last.pt"), map_location="cpu", weights_only=True)
    last_card = build_card(os.path.join(run_dir, "last.pt"))
    assert last_card.step == last["step"] and last_card.metrics == last["metrics"]
    assert last_card.best["step"] == ckpt["step"]
    assert card_path(run_dir) == card_path(best) == os.path.join(run_dir, CARD_NAME)


def test_compute_section_says_not_recorded_without_compute_json(run_dir, tmp_path):
    run = shutil.copytree(run_dir, tmp_path / "run")
    os.remove(os.path.join(run, "compute.json"))
    card = build_card(run)
    assert card.compute is None
    section = _section(card.to_markdown(), "Compute and Energy")
    assert "not recorded" in section and "**Energy:**" not in section
    assert "compute.png" not in "".join(render_report(run))


def test_write_model_card_is_atomic_and_respects_overwrite(run_dir, tmp_path):
    run = shutil.copytree(run_dir, tmp_path / "run")
    path = write_model_card(run)
    assert path == os.path.join(run, CARD_NAME)
    text = open(path, encoding="utf-8").read()
    assert text.startswith("# Model card: text classifier")
    assert "](curves.png)" in text  # the trainer's plot, beside the card
    assert not [n for n in os.listdir(run) if n.startswith(".tmp-")]
    with pytest.raises(FileExistsError, match="overwrite"):
        write_model_card(run, overwrite=False)
    assert write_model_card(run) == path


@pytest.mark.parametrize("method, energy", [
    ("estimated (codecarbon: CPU TDP x load; no power counters)", 0.00123),
    ("measured (RAPL)", 0.5),
    ("not measured (no RAPL counters, codecarbon missing)", None),
])
def test_compute_section_repeats_the_energy_method_verbatim(run_dir, tmp_path, method, energy):
    run = shutil.copytree(run_dir, tmp_path / "run")
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))
    epochs = [{"epoch": i, "wall_s": float(rng.uniform(1, 5)), "cpu_s": float(rng.uniform(1, 9)),
               "items": int(rng.integers(100, 999)), "flops": int(rng.integers(10**6, 10**9)),
               "energy_kwh": None if energy is None else energy / 2, "co2_kg": None}
              for i in range(2)]
    compute = {"wall_s": sum(e["wall_s"] for e in epochs), "device": "cpu", "steps": 12,
               "items": sum(e["items"] for e in epochs), "item_name": "tokens",
               "flops_method": "formula (recurrent) + FlopCounterMode (rest)",
               "energy_kwh": energy, "co2_kg": None, "energy_method": method,
               "country": "FRA", "epochs": epochs}
    with open(os.path.join(run, "compute.json"), "w") as f:
        json.dump(compute, f)
    card = build_card(run)
    assert card.compute == compute
    section = _section(card.to_markdown(), "Compute and Energy")
    energy_line = next(line for line in section.splitlines() if "**Energy:**" in line)
    assert energy_line.endswith(method)
    if energy is None:
        assert "not measured" in energy_line
    else:
        assert f"{energy:.4g} kWh" in energy_line
    assert "not recorded" not in section
    assert f"{compute['items']:,} tokens" in _section(card.to_markdown(), "Training Data")
    written = render_report(run)
    assert os.path.join(run, "compute.png") in written


def test_render_report_draws_the_audit_and_links_resolve(run_dir, tmp_path):
    run = shutil.copytree(run_dir, tmp_path / "run")
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))

    def rate(lo: float) -> dict:
        return {"value": lo + 0.02, "ci": [lo, lo + 0.05]}

    flagged, calm = rate(float(rng.uniform(0.06, 0.3))), rate(float(rng.uniform(0.0, 0.04)))
    by_group = {}
    for group in ("female", "male", "nonbinary"):
        acc = float(rng.uniform(0.5, 0.95))
        by_group[group] = {"accuracy": acc, "accuracy_ci": [acc - 0.05, min(1.0, acc + 0.05)],
                           "n": int(rng.integers(20, 200))}
    audit = {
        "data": "identity_terms.tsv",
        "groups": {"gender": {"by_group": by_group, "difference": {"accuracy": 0.1},
                              "ratio": {"accuracy": 0.8}}},
        "counterfactual": {
            "gender": {"n": 100, "n_applicable": 60, "flip_rate": flagged["value"],
                       "flip_rate_ci": flagged["ci"], "mean_shift": 0.01,
                       "mean_shift_ci": [0.0, 0.02],
                       "worst": [{"original": "he | was w3", "counterfactual": "she was w3"}]},
            "religion": {"n": 100, "n_applicable": 20, "flip_rate": calm["value"],
                         "flip_rate_ci": calm["ci"]}},
        "robustness": {"typos": {"n_applicable": 100, "change_rate": calm["value"],
                                 "change_rate_ci": calm["ci"], "examples": []}},
    }
    with open(os.path.join(run, "audit.json"), "w") as f:
        json.dump(audit, f)
    out = tmp_path / "report"
    written = render_report(run, out_dir=out)
    md_path = written[0]
    assert md_path == os.path.join(out, CARD_NAME)
    with open(os.path.join(run, "compute.json"), encoding="utf-8") as f:
        epochs = json.load(f).get("epochs")
    pngs = sorted(["curves.png", "slices.png"] + (["compute.png"] if epochs else []))
    assert sorted(os.path.basename(p) for p in written[1:]) == pngs
    for png in written[1:]:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    md = open(md_path, encoding="utf-8").read()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(links) == pngs
    for link in links:
        assert os.path.isfile(os.path.join(os.path.dirname(md_path), link))
    quant = _section(md, "Quantitative Analyses")
    for group, values in by_group.items():
        lo, hi = values["accuracy_ci"]
        assert f"| {group} | {values['accuracy']:.4g} [{lo:.4g}, {hi:.4g}] |" in quant
    assert "- original: he | was w3; counterfactual: she was w3" in quant  # worst examples
    caveats = _section(md, "Caveats and Recommendations")
    assert "counterfactual `gender`" in caveats and f"{FLAG_RATE:g}" in caveats
    assert "`religion`" not in caveats and "`typos`" not in caveats
    assert "Group list `gender`: female, male, nonbinary" in _section(md, "Factors")


def test_single_file_forecaster_gets_its_own_card(tmp_path):
    from rnnkit.forecast.forecaster import Forecaster, ForecasterConfig

    y = np.cumsum(np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()))).normal(size=90))
    cfg = ForecasterConfig(horizon=3, input_len=10, hidden_size=6, max_steps=4, calendar=(),
                           progress=False)
    fc = Forecaster(cfg).fit(y + 100)
    path = str(tmp_path / "fc.pt")
    fc.save(path)
    with open(path + ".compute.json", "w") as f:
        json.dump({"energy_kwh": None, "energy_method": "not measured (test)"}, f)
    written = write_model_card(path)
    assert written == path + ".card.md" == card_path(path)
    card = build_card(path)
    assert card.kind == "rnnkit.forecaster" and card.run_dir is None
    assert card.parameters == sum(p.numel() for p in fc.net.parameters())
    assert card.architecture["hidden_size"] == 6 and card.architecture["horizon"] == 3
    md = open(written, encoding="utf-8").read()
    assert [line[3:] for line in md.splitlines() if line.startswith("## ")] == list(SECTIONS)
    assert "not recorded in the file" in _section(md, "Metrics")
    assert "not measured (test)" in _section(md, "Compute and Energy")
    assert "rnnkit forecast backtest" in md
    # no log, compute epochs or audit: the report is the card alone
    assert render_report(path) == [written]


def test_plain_trainer_run_counts_the_saved_weights(tmp_path):
    from torch import nn

    from rnnkit.train import LossOutput, Trainer

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def loss(self, batch, state=None):
            x, y = batch
            return LossOutput(nn.functional.mse_loss(self.lin(x), y), weight=len(x))

    x = torch.randn(32, 3)
    data = [(x[i:i + 8], x[i:i + 8, :2]) for i in range(0, 32, 8)]
    model = Regressor()
    Trainer(model, TrainConfig(epochs=2, progress=False, device="cpu", out_dir=str(tmp_path),
                               plot=False), data, val_data=data).fit()
    card = build_card(tmp_path)
    assert card.task is None and card.parameters == 3 * 2 + 2
    assert "saved weights" in card.parameters_note
    md = card.to_markdown()
    assert [line[3:] for line in md.splitlines() if line.startswith("## ")] == list(SECTIONS)
    assert card.metrics == torch.load(tmp_path / "best.pt", weights_only=True)["metrics"]


def test_corrupt_and_foreign_files_are_refused_clearly(run_dir, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match=r"not a readable rnnkit model file.*rnnkit classify "
                                         r"train"):
        build_card(garbage)
    data = open(os.path.join(run_dir, "best.pt"), "rb").read()
    (tmp_path / "trunc").mkdir()
    (tmp_path / "trunc" / "best.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        build_card(tmp_path / "trunc")
    foreign = tmp_path / "weights.pt"
    torch.save({"weight": torch.randn(4, 4)}, foreign)
    with pytest.raises(ValueError, match=r"not an rnnkit model file .*format tag"):
        build_card(foreign)
    pickled = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)  # pickled code: never loaded
    with pytest.raises(ValueError, match="never loaded"):
        build_card(pickled)
    damaged = tmp_path / "damaged.pt"
    rnnkit.saving.write_state({"config": {}}, damaged, "rnnkit.forecaster", 2)
    with pytest.raises(ValueError, match=r"damaged.*rnnkit forecast train"):
        build_card(damaged)
    with pytest.raises(FileNotFoundError, match="no best.pt or last.pt"):
        build_card(tmp_path)
    with pytest.raises(FileNotFoundError):
        build_card(tmp_path / "missing.pt")
    # a broken sidecar does not stop the card: it is named under caveats
    run = shutil.copytree(run_dir, tmp_path / "run")
    with open(os.path.join(run, "compute.json"), "w") as f:
        f.write("{not json")
    card = build_card(run)
    assert card.compute is None
    assert "compute.json could not be read" in _section(card.to_markdown(),
                                                        "Caveats and Recommendations")
