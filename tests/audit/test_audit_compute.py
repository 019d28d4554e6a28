"""The compute and energy record of training runs and inference calls."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch._dynamo  # noqa: F401  the counter's one-off import, done here so step 1 is counted
from torch import nn

import rnnkit
from rnnkit.audit.compute import ComputeMeter, measure
from rnnkit.audit.energy import EnergyMeter, check_country, describe_method
from rnnkit.audit.flops import count_flops
from rnnkit.train import LossOutput, TrainConfig, Trainer


class Tagger(nn.Module):
    item_name = "tokens"

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(13, 8)
        self.rnn = rnnkit.Recurrent("lstm", 8, 12, backend="fused")
        self.out = nn.Linear(12, 13)

    def forward(self, x):
        return self.out(self.rnn(self.embed(x))[0])

    def loss(self, batch, state=None):
        x, y = batch
        logits = self(x)
        return LossOutput(nn.functional.cross_entropy(logits.reshape(-1, 13), y.reshape(-1)),
                          weight=y.numel())


def batches(n=6, b=4, t=9, seed=None):
    g = torch.Generator().manual_seed(seed if seed is not None else int(torch.randint(10**6, ())))
    return [(torch.randint(0, 13, (b, t), generator=g), torch.randint(0, 13, (b, t), generator=g))
            for _ in range(n)]


def fit(tmp_path, data, **cfg):
    torch.manual_seed(1)
    model = Tagger()
    config = TrainConfig(epochs=2, out_dir=str(tmp_path), progress=False, plot=False,
                         lr=1e-2, **cfg)
    trainer = Trainer(model, config, data)
    trainer.fit()
    return trainer


def test_compute_json_counts_what_ran(tmp_path):
    data = batches()
    trainer = fit(tmp_path, data)
    report = json.loads((tmp_path / "compute.json").read_text())
    assert report == json.loads(json.dumps(trainer.compute.report))
    # the counted step equals a separate count of one step of the same model
    expected = count_flops(Tagger(), data[0][0], backward=True).total
    assert report["flops_per_step"] == expected
    assert report["steps"] == 12 and report["items"] == 12 * 4 * 9
    assert report["flops_total"] == 12 * expected  # batches of one shape: exact
    assert [e["steps"] for e in report["epochs"]] == [6, 6]
    assert not any(e.get("partial") for e in report["epochs"])
    assert sum(e["flops"] for e in report["epochs"]) == report["flops_total"]
    assert report["item_name"] == "tokens"
    assert report["wall_s"] > 0 and report["cpu_s"] > 0 and report["peak_memory_mb"] > 10
    assert report["items_per_s"] == pytest.approx(report["items"] / report["wall_s"])


def test_energy_says_how_it_was_obtained(tmp_path):
    report = fit(tmp_path, batches()).compute.report
    counters = os.path.isdir("/sys/class/powercap/intel-rapl") or torch.cuda.is_available()
    method = report["energy_method"]
    if counters:
        assert method.startswith("measured") or "measured:" in method
    else:  # this machine class: no RAPL, no GPU
        assert method.startswith("estimated (codecarbon: ") and "no power counters" in method
    assert report["energy_kwh"] > 0 and report["co2_kg"] > 0
    assert report["country"] == "WLD"
    # world average 475 g/kWh
    assert report["co2_kg"] / report["energy_kwh"] == pytest.approx(0.475, rel=1e-3)


def test_meter_changes_no_result(tmp_path):
    data = batches(seed=3)
    with_meter = fit(tmp_path / "a", data).model.state_dict()
    without = fit(tmp_path / "b", data, compute=False)
    assert without.compute is None and not (tmp_path / "b" / "compute.json").exists()
    for k, v in without.model.state_dict().items():
        assert torch.equal(v, with_meter[k]), k


def test_resume_adds_to_the_totals(tmp_path):
    data = batches()
    torch.manual_seed(1)
    cfg = dict(out_dir=str(tmp_path), progress=False, plot=False)
    Trainer(Tagger(), TrainConfig(epochs=1, **cfg), data).fit()
    first = json.loads((tmp_path / "compute.json").read_text())
    trainer = Trainer(Tagger(), TrainConfig(epochs=3, **cfg), data)
    trainer.fit(resume=True)
    report = trainer.compute.report
    assert report["steps"] == 18 and len(report["epochs"]) == 3
    assert report["wall_s"] > first["wall_s"]
    assert report["flops_total"] == 18 * report["flops_per_step"]


def test_a_run_stopped_inside_an_epoch_records_the_partial_epoch(tmp_path):
    report = fit(tmp_path, batches(), max_steps=8).compute.report
    assert [(e["steps"], e.get("partial", False)) for e in report["epochs"]] == [
        (6, False), (2, True)]
    assert sum(e["flops"] for e in report["epochs"]) == report["flops_total"]


def test_describe_method_names_measured_and_estimated_parts():
    class CPU:
        def __init__(self, mode, tdp=65):
            self._mode, self._tdp = mode, tdp

    class GPU:
        pass

    class RAM:
        pass

    assert describe_method([CPU("intel_rapl"), GPU()]) == "measured (RAPL, NVML)"
    est = describe_method([RAM(), CPU("cpu_load", 8)])
    assert est.startswith("estimated (codecarbon: ") and "CPU TDP 8 W x process CPU load" in est
    mixed = describe_method([RAM(), CPU("intel_rapl")])
    assert mixed.startswith("estimated") and "measured: RAPL" in mixed


def test_measure_reports_per_unit():
    with measure("tokens", per=1000) as m:
        x = torch.randn(300, 300)
        for _ in range(20):
            x = torch.tanh(x @ x) / 300
        m.add(2500)
    r = m.report
    assert r["items"] == 2500 and r["wall_s"] > 0
    line = m.summary()
    assert "per 1000 tokens" in line and r["energy_method"] in line


def test_energy_off_and_country_checked():
    meter = EnergyMeter(enabled=False)
    meter.start()
    assert meter.stop().method == "not measured (turned off)"
    assert check_country("fra") == "FRA"
    with pytest.raises(ValueError, match="ISO 3166 alpha-3"):
        check_country("France")
    with pytest.raises(ValueError, match="ISO 3166 alpha-3"):
        TrainConfig(country="xx")
    assert isinstance(ComputeMeter(energy=False).energy, EnergyMeter)


def test_a_failed_fit_still_records_what_it_spent(tmp_path):
    from rnnkit.train import NonFiniteLossError

    class Exploding(Tagger):
        def loss(self, batch, state=None):
            out = super().loss(batch, state)
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 4:
                return LossOutput(out.loss * float("nan"), weight=out.weight)
            return out

    trainer = Trainer(Exploding(), TrainConfig(epochs=3, out_dir=str(tmp_path), progress=False,
                                               plot=False), batches())
    with pytest.raises(NonFiniteLossError):
        trainer.fit()
    report = json.loads((tmp_path / "compute.json").read_text())
    assert report["steps"] == 3 and report["stopped"].startswith("NonFiniteLossError")
    assert report["epochs"][-1] == {**report["epochs"][-1], "steps": 3, "partial": True}
    assert report["energy_kwh"] is None or report["energy_kwh"] > 0
