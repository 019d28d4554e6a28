"""AnomalyConfig holds the model and one TrainConfig; old flat keywords and old flat files."""

import numpy as np
import pytest
import torch

pytest.importorskip("pandas")

import rnnkit  # noqa: E402
from rnnkit.anomaly import (  # noqa: E402
    SCORERS,
    AnomalyConfig,
    AnomalyDetector,
    AnomalyUnion,
    ForecastErrorScorer,
    ReconstructionScorer,
    WindowScorer,
    anomaly_train,
)
from rnnkit.saving import file_kind  # noqa: E402
from rnnkit.train import TrainConfig  # noqa: E402


def test_default_training_is_todays_budget():
    t = AnomalyConfig().train
    assert (t.max_steps, t.epochs, t.lr, t.scheduler, t.warmup_steps, t.seed, t.device,
            t.log_every, t.clip_norm, t.progress) == \
        (500, 10**6, 3e-3, "cosine", 50, 0, "cpu", 500, 1.0, False)
    flat = AnomalyConfig(max_steps=150, lr=1e-2, seed=4, device="cpu")
    assert flat.train == anomaly_train(150, lr=1e-2, seed=4)
    assert (flat.train.warmup_steps, flat.train.log_every) == (15, 150)
    assert (flat.max_steps, flat.lr, flat.seed, flat.device) == (150, 1e-2, 4, "cpu")
    assert AnomalyConfig(train={"max_steps": 7, "lr": 0.1}).train == TrainConfig(max_steps=7,
                                                                                  lr=0.1)


def test_unknown_settings_and_methods_name_the_fix():
    with pytest.raises(TypeError,
                       match=r"AnomalyConfig got unknown setting\(s\) epochs_x.*train=TrainConfig"):
        AnomalyConfig(epochs_x=3)
    with pytest.raises(ValueError, match="max_steps must be a positive integer"):
        AnomalyConfig(train=TrainConfig(max_steps=None))
    with pytest.raises(ValueError, match="method must be 'forecast', 'autoencoder' or 'window'"):
        AnomalyConfig(method="iforest")


def test_scorers_are_registered_by_method():
    assert {m: type(AnomalyDetector(method=m, input_len=10).scorer) for m in SCORERS} == \
        {"forecast": ForecastErrorScorer, "autoencoder": ReconstructionScorer,
         "window": WindowScorer}
    s = AnomalyDetector(method="window", input_len=10, pool=2).scorer
    assert (s.first, s.start, s.span) == (0, 0, 10)
    s = AnomalyDetector(method="autoencoder", input_len=10).scorer
    assert (s.first, s.start, s.span) == (9, 10, 1)


def _as_old_file(path, out):
    """Rewrite a saved detector state into the version-1 layout: a flat config and the old
    ``{"kind": "rnnkit.anomaly"}`` tag, no ``format``."""
    blob = torch.load(path, weights_only=True)
    del blob["format"]
    cfg = blob["config"]
    train = cfg.pop("train")
    cfg.update({k: train[k] for k in ("max_steps", "lr", "seed", "device")})
    blob["kind"] = "rnnkit.anomaly"
    torch.save(blob, out)
    return blob


@pytest.mark.parametrize("method", ["forecast", "window"])
def test_old_flat_files_still_load(tmp_path, method):
    rng = np.random.default_rng(5)
    y = np.sin(np.arange(300) * 2 * np.pi / 20) + rng.normal(0, 0.05, 300)
    y[250] += 3
    kw = {"pool": 2} if method == "window" else {}
    det = AnomalyDetector(method=method, input_len=20, hidden_size=8, max_steps=30, seed=2,
                          **kw).fit(y[:200])
    want = det.detect(y)
    det.save(tmp_path / "new.pt")
    old = _as_old_file(tmp_path / "new.pt", tmp_path / "old.pt")
    assert "train" not in old["config"] and old["config"]["max_steps"] == 30
    assert file_kind(tmp_path / "old.pt") == ("rnnkit.anomaly", 1)
    for again in (rnnkit.load(tmp_path / "old.pt"), AnomalyDetector.load(tmp_path / "old.pt")):
        assert isinstance(again, AnomalyDetector) and again.config == det.config
        got = again.detect(y)
        np.testing.assert_array_equal(got.flags, want.flags)
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6, atol=1e-8)
        assert got.threshold == pytest.approx(want.threshold)


def test_union_of_old_members_loads(tmp_path):
    y = np.sin(np.arange(300) * 2 * np.pi / 20)
    u = AnomalyUnion.of_methods(("forecast", "window"), input_len=20, hidden_size=8,
                                max_steps=10).fit(y[:200])
    assert [d.config.train.max_steps for d in u.detectors] == [10, 10]
    u.save(tmp_path / "u.pt")
    blob = torch.load(tmp_path / "u.pt", weights_only=True)
    for m in blob["members"]:
        train = m["config"].pop("train")
        m["config"].update({k: train[k] for k in ("max_steps", "lr", "seed", "device")})
    blob["format"] = "rnnkit.anomaly_union/1"
    torch.save(blob, tmp_path / "old.pt")
    again = rnnkit.load(tmp_path / "old.pt")
    np.testing.assert_array_equal(again.detect(y).flags, u.detect(y).flags)
