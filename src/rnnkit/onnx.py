r"""Run exported rnnkit models with onnxruntime and numpy alone: no torch import.

:func:`rnnkit.export` (or ``rnnkit export``) writes a graph ``model.onnx`` and a description
beside it, ``model.onnx.json`` (what the model is, its vocabulary, class names, the graphs'
inputs). :func:`load` reads the pair and returns the runner for its kind:

* :class:`OnnxLanguageModel`: ``generate`` / ``stream`` text from the streaming step graph
  (``tokens [B], state_in_k -> logits [B, V], state_out_k``), sampling with temperature,
  top-k and top-p in numpy; greedy output equals :meth:`LanguageModel.generate` (tested);
* :class:`OnnxClassifier`: ``predict_proba`` / ``predict`` / ``attention`` for texts
  (``tokens [B, T], lengths [B] -> probs [B, C], attention [B, T]``);
* :class:`OnnxTranslator`: ``translate`` with batched beam search in numpy over two graphs,
  the encoder and one decoder step with attention;
* :class:`OnnxRecurrent`: a bare recurrent layer, ``run`` (sequence or step graph) and
  ``stream`` (feeds the state back in);
* :class:`OnnxRecognizer`: ``transcribe`` a PCM WAV file (8, 16 or 32-bit, at the model's
  rate) or samples (log-mel features in numpy, greedy CTC);
* :class:`OnnxForecaster`: ``predict`` from raw values, with intervals, for forecasters
  whose inputs are their targets alone;
* any other graph (a tagger, a forecaster with covariates): :class:`OnnxGraph`, which runs
  named numpy inputs and returns named outputs.

Everything here needs ``onnxruntime`` and ``numpy`` only (``pip install 'rnnkit[export]'``);
``import rnnkit.onnx`` does not import torch (tested in a fresh interpreter).

>>> import rnnkit.onnx
>>> sorted(rnnkit.onnx.RUNNERS)
['classifier', 'forecaster', 'language_model', 'recurrent', 'speech', 'translator']
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["FORMAT", "OnnxClassifier", "OnnxForecaster", "OnnxGraph", "OnnxLanguageModel",
           "OnnxRecognizer", "OnnxRecurrent", "OnnxTranslator", "beam_search", "filter_logits",
           "greedy_search", "load", "metadata_path", "read_metadata", "sample_logits",
           "session"]

#: version of the ``.onnx.json`` description this runtime reads
FORMAT = 1


#: the description keys each runner reads
REQUIRED: dict[str, tuple[str, ...]] = {
    "language_model": ("graph",),
    "classifier": ("vocab", "classes"),
    "translator": ("decoder", "src_vocab", "tgt_vocab", "max_len", "bos", "eos"),
    "forecaster": ("n_past", "n_future", "n_targets", "input_len", "horizon", "head",
                   "quantiles", "log", "series", "scaler"),
    "speech": ("alphabet", "rate", "features"),
}


def metadata_path(path: str | os.PathLike) -> str:
    """Where an export writes the description of the graph at ``path``."""
    return os.fspath(path) + ".json"


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The description written beside the graph at ``path`` (see the module docstring)."""
    meta = metadata_path(path)
    if not os.path.isfile(meta):
        raise FileNotFoundError(f"no description beside {os.fspath(path)} ({meta}); export "
                                f"with rnnkit.export or `rnnkit export`, which write both")
    try:
        with open(meta, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{meta} is not a readable export description ({err}); export the "
                         f"model again") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "kind" not in data:
        raise ValueError(f"{meta} is not an rnnkit export description of format {FORMAT}; "
                         f"export the model again with this rnnkit")
    missing = [k for k in REQUIRED.get(data["kind"], ()) if k not in data]
    if missing:
        raise ValueError(f"{meta} describes a {data['kind']} but lacks {missing}; export the "
                         f"model again")
    return data


def session(path: str | os.PathLike, threads: int | None = None) -> Any:
    """An onnxruntime CPU session of ``path`` (quiet logs; ``threads`` intra-op threads)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("running ONNX files needs onnxruntime: pip install "
                          "'rnnkit[export]'") from None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no ONNX file {os.fspath(path)}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(os.fspath(path), options,
                                    providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own classes for bad protobuf, etc.
        raise ValueError(f"{os.fspath(path)} is not a loadable ONNX graph "
                         f"({type(err).__name__}: {str(err)[:200]}); export the model "
                         f"again") from None


class OnnxGraph:
    """One exported graph: ``graph(**inputs) -> {output name: array}``.

    Float inputs are cast to float32 and integer ones to int64, as the graphs take them;
    ``state(batch)`` gives zero tensors for every ``state_in_k`` input.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = os.fspath(path)
        self.session = session(path, threads)
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.state_inputs = [n for n in self.inputs if n.startswith("state_in_")]

    def __call__(self, **feeds: Any) -> dict[str, np.ndarray]:
        missing = [n for n in self.inputs if n not in feeds]
        extra = [n for n in feeds if n not in self.inputs]
        if missing or extra:
            raise ValueError(f"{self.path} takes inputs {list(self.inputs)}; missing "
                             f"{missing}, unknown {extra}")
        cast = {}
        for name, value in feeds.items():
            a = np.asarray(value)
            want = self.inputs[name].type
            a = a.astype(np.float32) if "float" in want else \
                a.astype(np.bool_) if "bool" in want else a.astype(np.int64)
            if len(a.shape) != len(self.inputs[name].shape):
                raise ValueError(f"input {name!r} of {self.path} has shape "
                                 f"{self.inputs[name].shape}, got {list(a.shape)}")
            cast[name] = a
        return dict(zip(self.outputs, self.session.run(None, cast)))

    def state(self, batch: int) -> dict[str, np.ndarray]:
        """Zero initial state ``{state_in_k: [L * D, batch, H]}``."""
        return {n: np.zeros([d if isinstance(d, int) else batch
                             for d in self.inputs[n].shape], np.float32)
                for n in self.state_inputs}


def _state_out(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k.replace("state_out_", "state_in_"): v for k, v in out.items()
            if k.startswith("state_out_")}


# -- decoding in numpy ------------------------------------------------------------------------
def filter_logits(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, banned: tuple[int, ...] = ()) -> np.ndarray:
    """``logits [B, V]`` as :func:`rnnkit.decoding.sampling.sample_logits` draws from them:
    ``banned`` ids at ``-inf``, divided by ``temperature`` (``> 0``), then top-k (ties at the
    k-th value kept) and top-p (the most likely tokens whose cumulative probability first
    reaches ``p``; the most likely token always stays) cuts, as ``-inf`` (float64). A row
    whose scaled logits overflow (``inf``/``nan``: a temperature too small for float64) keeps
    only its most likely token (the first maximum), so drawing from it is greedy."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 1):
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p!r}")
    x = np.array(logits, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected logits of shape [B, V], got {list(x.shape)}")
    if banned:
        if len(banned) >= x.shape[1]:
            raise ValueError("every token is banned; nothing is left to sample")
        x[:, list(banned)] = -np.inf
    if temperature != 0:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            scaled = x / temperature
        overflow = (np.isnan(scaled) | np.isposinf(scaled)).any(-1)  # [B]
        if overflow.any():  # those rows keep only their argmax: the draw is the greedy token
            top = np.full_like(x, -np.inf)
            np.put_along_axis(top, x.argmax(-1)[:, None], 0.0, -1)
            scaled = np.where(overflow[:, None], top, scaled)
        x = scaled
    if top_k is not None and top_k < x.shape[1]:
        kth = np.sort(x, axis=-1)[:, -top_k][:, None]
        x = np.where(x < kth, -np.inf, x)
    if top_p is not None:
        order = np.argsort(-x, axis=-1, kind="stable")
        s = np.take_along_axis(x, order, -1)
        p = np.exp(s - s[:, :1])
        p /= p.sum(-1, keepdims=True)
        drop_sorted = (np.cumsum(p, -1) - p) >= top_p
        drop_sorted[:, 0] = False  # the top-ranked token stays, however small top_p is
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, -1)
        x = np.where(drop, -np.inf, x)
    return x


def sample_logits(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, rng: np.random.Generator | None = None,
                  banned: tuple[int, ...] = ()) -> np.ndarray:
    """Draw one token per row of ``logits [B, V]`` -> ``[B]`` with the rules of
    :func:`rnnkit.decoding.sampling.sample_logits` (:func:`filter_logits`; ``temperature=0``
    is greedy, the first maximum), from numpy's ``rng`` (so a seed draws other tokens than
    the same seed in torch). A temperature so small that the scaled logits overflow draws
    the greedy token, as in torch."""
    if temperature is None or isinstance(temperature, bool) or not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
    x = filter_logits(logits, temperature, top_k, top_p, banned)
    if temperature == 0:
        return x.argmax(-1)
    p = np.exp(x - x.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    rng = rng if rng is not None else np.random.default_rng()
    u = rng.random((x.shape[0], 1))
    return np.minimum((np.cumsum(p, -1) < u).sum(-1), x.shape[1] - 1)


def _top(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values of each row, largest first (ties: lower index)."""
    if k < x.shape[1]:
        idx = np.argpartition(-x, k - 1, axis=-1)[:, :k]
    else:
        idx = np.broadcast_to(np.arange(x.shape[1]), x.shape)
    vals = np.take_along_axis(x, idx, -1)
    return np.take_along_axis(idx, np.lexsort((idx, -vals), axis=-1), -1)


def beam_search(step_fn: Callable[[np.ndarray, Any], tuple[np.ndarray, Any]], state: Any,
                batch_size: int, *, bos: int, eos: int, beam_size: int = 4, max_len: int = 50,
                length_penalty: float = 1.0,
                reorder: Callable[[Any, np.ndarray], Any] | None = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batched beam search in numpy, the algorithm of :func:`rnnkit.decoding.beam_search`
    (see there): ``step_fn(tokens [N], state) -> (log_probs [N, V], state)``; ``state``
    holds the ``batch_size`` sequences' rows and is expanded and reordered with
    ``reorder(state, index [N])`` (default: index axis 0 of every array in a dict).

    Returns ``(tokens [B, K, L], scores [B, K], lengths [B, K], finished [B, K])``, best
    first; scores are length-normalised log-probabilities (``|y|`` counts EOS). Exact ties
    go to the lower index here; ``torch.topk`` does not promise an order, so on a tie the
    two searches may keep different, equally scored hypotheses."""
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_size and max_len must be >= 1, got {beam_size}, {max_len}")
    if not length_penalty >= 0:
        raise ValueError(f"length_penalty must be >= 0 (0 = raw log-prob sum), got "
                         f"{length_penalty!r}")
    reorder = reorder or (lambda s, i: {k: v[i] for k, v in s.items()})
    B, K = batch_size, beam_size
    N = B * K
    state = reorder(state, np.repeat(np.arange(B), K))
    base = (np.arange(B) * K)[:, None]
    scores = np.zeros((B, K))
    scores[:, 1:] = -np.inf
    seqs = np.zeros((B, K, 0), np.int64)
    last = np.full(N, bos, np.int64)
    fin_tokens = np.full((B, K, max_len), eos, np.int64)
    fin_scores = np.full((B, K), -np.inf)
    fin_len = np.zeros((B, K), np.int64)
    fin_eos = np.zeros((B, K), bool)
    for t in range(max_len):
        logp, state = step_fn(last, state)
        V = logp.shape[-1]
        cand = (scores[:, :, None] + logp.reshape(B, K, V)).reshape(B, K * V)
        n_cand = min(2 * K, K * V)
        top_i = _top(cand, n_cand)
        top_s = np.take_along_axis(cand, top_i, -1)
        beam_i, tok = top_i // V, top_i % V
        is_eos = tok == eos
        last_step = t == max_len - 1
        ending = np.ones_like(is_eos) if last_step else is_eos & (np.arange(n_cand) < K)[None]
        norm = top_s / float(t + 1) ** length_penalty
        hist = np.take_along_axis(seqs, np.repeat(beam_i[:, :, None], t, 2), 1)
        new_tok = np.where(is_eos, eos, tok)
        new_seq = np.concatenate([hist, new_tok[:, :, None]], 2)
        new_seq = np.pad(new_seq, ((0, 0), (0, 0), (0, max_len - t - 1)), constant_values=eos)
        pool_s = np.concatenate([fin_scores, np.where(ending, norm, -np.inf)], 1)
        pool_t = np.concatenate([fin_tokens, new_seq], 1)
        pool_l = np.concatenate([fin_len, t + (~is_eos).astype(np.int64)], 1)
        pool_e = np.concatenate([fin_eos, is_eos], 1)
        keep = _top(pool_s, K)
        fin_scores = np.take_along_axis(pool_s, keep, 1)
        fin_tokens = np.take_along_axis(pool_t, keep[:, :, None], 1)
        fin_len, fin_eos = np.take_along_axis(pool_l, keep, 1), np.take_along_axis(pool_e, keep, 1)
        if last_step:
            break
        sel = np.argsort(np.arange(n_cand)[None] + is_eos * n_cand, axis=-1,
                         kind="stable")[:, :K]
        scores = np.take_along_axis(top_s, sel, 1)
        src_beam = np.take_along_axis(beam_i, sel, 1)
        seqs = np.concatenate([np.take_along_axis(seqs, np.repeat(src_beam[:, :, None], t, 2), 1),
                               np.take_along_axis(tok, sel, 1)[:, :, None]], 2)
        last = np.take_along_axis(tok, sel, 1).reshape(N)
        state = reorder(state, (base + src_beam).reshape(N))
        best_live = scores.max(-1) / float(max_len) ** length_penalty
        if (fin_scores[:, -1] >= best_live).all():
            break
    L = max(int(fin_len.max()), 1)
    return fin_tokens[:, :, :L], fin_scores, fin_len, fin_eos


def greedy_search(step_fn: Callable[[np.ndarray, Any], tuple[np.ndarray, Any]], state: Any,
                  batch_size: int, *, bos: int, eos: int, max_len: int = 50,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The most likely token at every step, as :func:`rnnkit.decoding.greedy_search`:
    ``(tokens [B, L], scores [B], lengths [B])``; scores are the raw log-probability sums
    (EOS included); a row stops at EOS (later positions hold ``eos``)."""
    tokens = np.full((batch_size, max_len), eos, np.int64)
    scores = np.zeros(batch_size)
    lengths = np.full(batch_size, max_len, np.int64)
    done = np.zeros(batch_size, bool)
    last = np.full(batch_size, bos, np.int64)
    for t in range(max_len):
        logp, state = step_fn(last, state)
        last = logp.argmax(-1)
        scores += np.where(done, 0.0, logp[np.arange(batch_size), last])
        ended = ~done & (last == eos)
        lengths[ended] = t
        done |= ended
        tokens[:, t] = np.where(done, eos, last)
        if done.all():
            break
    return tokens[:, : max(int(lengths.max()), 1)], scores, lengths


# -- runners ----------------------------------------------------------------------------------
def _vocabulary(data: dict[str, Any]) -> Any:
    from .data.vocab import vocabulary_from_dict

    return vocabulary_from_dict(data)


def _pad(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(s) for s in seqs], np.int64)
    x = np.zeros((len(seqs), int(lengths.max())), np.int64)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    return x, lengths


def _texts(texts: Any) -> list[str]:
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError("no texts given; pass a list of strings")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be strings, got {bad[0]}")
    return texts


class OnnxLanguageModel:
    """Text generation from an exported language-model step graph (see the module
    docstring)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        meta = read_metadata(path)
        self.graph = OnnxGraph(path, threads)
        if meta["kind"] != "language_model" or meta.get("graph") != "step":
            raise ValueError(f"{os.fspath(path)} holds a {meta['kind']} {meta.get('graph')} "
                             f"graph; generation needs a language model's step graph (export "
                             f"without --sequence)")
        if not meta.get("tokenizer"):
            raise ValueError(f"{os.fspath(path)} was exported from a language model without a "
                             f"tokenizer; generate token ids with OnnxGraph instead")
        self.tokenizer = _vocabulary(meta["tokenizer"])

    def stream(self, prime: str = "\n", length: int = 200, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None,
               seed: int | None = None) -> Iterator[str]:
        """Continue ``prime`` by ``length`` tokens, yielding each piece of text as it is
        drawn (``temperature=0``: greedy; ``<unk>`` is never drawn)."""
        tok = self.tokenizer
        ids = tok.encode(prime)
        if not ids:
            raise ValueError("the priming text is empty (no tokens); give at least one token")
        if not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be a non-negative integer, got {length!r}")
        rng = np.random.default_rng(seed)
        state = self.graph.state(1)
        out = self.graph(tokens=np.asarray(ids[:1]), **state)
        for i in ids[1:]:
            out = self.graph(tokens=np.asarray([i]), **_state_out(out))
        sep = " " if tok.kind == "word" else ""
        for _ in range(length):
            nxt = int(sample_logits(out["logits"], temperature, top_k, top_p, rng,
                                    banned=(tok.unk_id,))[0])
            yield sep + tok.itos[nxt]
            out = self.graph(tokens=np.asarray([nxt]), **_state_out(out))

    def generate(self, prime: str = "\n", length: int = 200, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None,
                 seed: int | None = None) -> str:
        """The continuation of ``prime`` (see :meth:`stream`) as one string."""
        return "".join(self.stream(prime, length, temperature, top_k, top_p, seed))


class OnnxClassifier:
    """A text classifier's graph: class probabilities (and attention weights when the model
    pools with attention) for texts."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        meta = read_metadata(path)
        if meta["kind"] != "classifier":
            raise ValueError(f"{os.fspath(path)} holds a {meta['kind']}, not a text classifier")
        self.graph = OnnxGraph(path, threads)
        self.vocab = _vocabulary(meta["vocab"])
        self.classes = list(meta["classes"])

    def _run(self, texts: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
        unk = self.vocab.unk_id
        x, lengths = _pad([s or [unk] for s in self.vocab.encode_batch(_texts(texts))])
        return self.graph(tokens=x, lengths=lengths), lengths

    def predict_proba(self, texts: Any) -> np.ndarray:
        """Class probabilities ``[N, C]`` (columns in the order of :attr:`classes`)."""
        return self._run(texts)[0]["probs"]

    def predict(self, texts: Any) -> list[str]:
        """The most probable class name of every text."""
        return [self.classes[i] for i in self.predict_proba(texts).argmax(-1)]

    def attention(self, texts: Any) -> list[np.ndarray]:
        """Per-token attention weights of every text (each sums to 1), for models that pool
        with attention."""
        out, lengths = self._run(texts)
        if "attention" not in out:
            raise ValueError("this classifier does not pool with attention (it was trained "
                             "with another --pooling); it has no per-token weights")
        return [w[:n] for w, n in zip(out["attention"], lengths)]


class OnnxTranslator:
    """Translation with batched beam search over the exported encoder and decoder step."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        meta = read_metadata(path)
        if meta["kind"] != "translator":
            raise ValueError(f"{os.fspath(path)} holds a {meta['kind']}, not a translator")
        self.encoder = OnnxGraph(path, threads)
        folder = os.path.dirname(os.path.abspath(path))
        self.decoder = OnnxGraph(os.path.join(folder, meta["decoder"]), threads)
        self.src_vocab = _vocabulary(meta["src_vocab"])
        self.tgt_vocab = _vocabulary(meta["tgt_vocab"])
        self.max_len, self.bos, self.eos = meta["max_len"], meta["bos"], meta["eos"]

    def translate(self, texts: Any, beam_size: int = 5, max_len: int | None = None,
                  length_penalty: float = 1.0) -> list[tuple[str, float]]:
        """``(translation, score)`` per text, best hypothesis of a ``beam_size`` beam (the
        score is the length-normalised log-probability), as :meth:`Translator.translate`."""
        unk = self.src_vocab.unk_id
        x, lengths = _pad([s or [unk] for s in self.src_vocab.encode_batch(_texts(texts))])
        enc = self.encoder(src=x, src_lengths=lengths)
        state = {"memory": enc["memory"], "src_lengths": lengths,
                 **{k.replace("dec_", "state_in_"): v for k, v in enc.items()
                    if k.startswith("dec_")}}
        if "feed_in" in self.decoder.inputs:
            state["feed_in"] = np.zeros((len(x), enc["memory"].shape[-1]), np.float32)
        batch_second = {k for k in state if k.startswith("state_in_")}

        def reorder(s: dict[str, np.ndarray], i: np.ndarray) -> dict[str, np.ndarray]:
            return {k: v[:, i] if k in batch_second else v[i] for k, v in s.items()}

        def step(tokens: np.ndarray, s: dict[str, np.ndarray]):
            out = self.decoder(y_prev=tokens, **{k: v for k, v in s.items()
                                                 if k in self.decoder.inputs})
            new = dict(s, **_state_out(out))
            if "feed_out" in out:
                new["feed_in"] = out["feed_out"]
            logits = out["logits"].astype(np.float64)
            m = logits.max(-1, keepdims=True)
            logp = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
            return logp, new

        max_len = max_len or self.max_len or 2 * x.shape[1] + 10  # as Seq2Seq's search
        if beam_size == 1:
            toks, scores, lens = greedy_search(step, state, len(x), bos=self.bos, eos=self.eos,
                                               max_len=max_len)
        else:
            toks, scores, lens, _ = beam_search(step, state, len(x), bos=self.bos,
                                                eos=self.eos, beam_size=beam_size,
                                                max_len=max_len, length_penalty=length_penalty,
                                                reorder=reorder)
            toks, scores, lens = toks[:, 0], scores[:, 0], lens[:, 0]
        return [(self.tgt_vocab.decode(row[:n].tolist()), float(s))
                for row, s, n in zip(toks, scores, lens)]


class OnnxRecurrent:
    """A recurrent layer's graph: :meth:`run` one call, :meth:`stream` a sequence through
    the step graph carrying the state."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.meta = read_metadata(path)
        self.graph = OnnxGraph(path, threads)

    def run(self, x: Any, state: dict[str, np.ndarray] | None = None,
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``x`` (``[B, I]`` step or ``[B, T, I]`` sequence) -> ``(y, state)``; ``None``
        state starts from zeros."""
        x = np.asarray(x, np.float32)
        out = self.graph(x=x, **(state or self.graph.state(x.shape[0])))
        return out["y"], _state_out(out)

    def stream(self, xs: Any, state: dict[str, np.ndarray] | None = None,
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``xs [B, T, I]`` one step at a time through the step graph -> ``(y [B, T, O],
        final state)``."""
        if self.meta.get("graph") != "step":
            raise ValueError("streaming needs the step graph; export with stream=True")
        xs = np.asarray(xs, np.float32)
        ys = []
        for t in range(xs.shape[1]):
            y, state = self.run(xs[:, t], state)
            ys.append(y)
        return np.stack(ys, 1), state


class OnnxForecaster:
    """Forecasts from an exported forecaster whose inputs are its targets alone (no
    covariates, no calendar features): raw values in, values out, with the scaler and log
    transform of the description. Models with other inputs run as an :class:`OnnxGraph` on
    inputs built the way :class:`~rnnkit.forecast.Forecaster` builds them."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.meta = meta = read_metadata(path)
        if meta["kind"] != "forecaster":
            raise ValueError(f"{os.fspath(path)} holds a {meta['kind']}, not a forecaster")
        if meta["n_past"] or meta["n_future"]:
            raise ValueError(f"{os.fspath(path)} reads {meta['n_past']} past-covariate and "
                             f"{meta['n_future']} known-future features (calendar: "
                             f"{meta['calendar']}); OnnxForecaster forecasts target-only "
                             f"models: run rnnkit.onnx.OnnxGraph on inputs made as the "
                             f"Forecaster makes them, or train with calendar=()")
        self.graph = OnnxGraph(path, threads)
        self.mean = np.asarray(meta["scaler"]["mean"], np.float64)
        self.std = np.asarray(meta["scaler"]["std"], np.float64)

    def predict(self, history: Any, series: int | str = 0,
                levels: tuple[float, ...] = ()) -> dict[str, Any]:
        """Forecast ``horizon`` steps after ``history`` (``[T]`` or ``[T, C]`` values of the
        training series ``series``, index or name; at least ``input_len`` steps).

        Returns ``{"point": [H, C], "lower": {level: [H, C]}, "upper": {...}}`` in the data's
        units; ``levels`` are central interval levels in percent (gaussian head: any;
        quantile head: its quantile pairs' levels)."""
        m = self.meta
        names = [str(n) for n in m["series"]]
        if str(series) in names:  # a series id (names are written as strings)
            i = names.index(str(series))
        elif isinstance(series, (int, np.integer)) and not isinstance(series, bool) \
                and 0 <= series < len(names):
            i = int(series)  # a position
        else:
            raise ValueError(f"unknown series {series!r}; the model knows {names} (an id, "
                             f"or a position 0..{len(names) - 1})")
        y = np.asarray(history, np.float64)
        y = y[:, None] if y.ndim == 1 else y
        if y.ndim != 2 or y.shape[1] != m["n_targets"] or len(y) < m["input_len"]:
            raise ValueError(f"history must be [T, {m['n_targets']}] values with T >= "
                             f"input_len={m['input_len']}, got shape {list(y.shape)}")
        if not np.isfinite(y).all():
            raise ValueError("history has NaN or infinite values; fill them first")
        if m["log"]:
            if (y <= 0).any():
                raise ValueError("the model forecasts log values; history must be > 0")
            y = np.log(y)
        x = ((y - self.mean[i]) / self.std[i])[-m["input_len"]:][None]
        out = self.graph(x=x, fut=np.zeros((1, m["horizon"], 0), np.float32))

        def inv(z: np.ndarray) -> np.ndarray:
            v = z.astype(np.float64) * self.std[i] + self.mean[i]
            return np.exp(np.clip(v, -700, 700)) if m["log"] else v

        res: dict[str, Any] = {"point": inv(out["point"][0]), "lower": {}, "upper": {}}
        for lv in levels:
            if isinstance(lv, bool) or not isinstance(lv, (int, float)) or not 0 < lv < 100:
                raise ValueError(f"interval levels are percentages in (0, 100), e.g. 80 or "
                                 f"95; got {lv!r}")
            a = (1 - lv / 100) / 2
            if m["head"] == "gaussian":
                from statistics import NormalDist

                z = NormalDist().inv_cdf(1 - a)
                lo = out["point"][0] - z * out["std"][0]
                hi = out["point"][0] + z * out["std"][0]
            elif m["head"] == "quantile":
                qs = np.asarray(m["quantiles"])
                jl, jh = np.nonzero(np.isclose(qs, a))[0], np.nonzero(np.isclose(qs, 1 - a))[0]
                if not len(jl) or not len(jh):
                    raise ValueError(f"no {lv}% interval: the quantile head has {list(qs)}")
                lo, hi = out["quantiles"][0][..., jl[0]], out["quantiles"][0][..., jh[0]]
            else:
                raise ValueError("a point head gives no intervals; pass levels=()")
            res["lower"][lv], res["upper"][lv] = inv(lo), inv(hi)
        return res


class OnnxRecognizer:
    """Speech to text from an exported recogniser: log-mel features in numpy (the window and
    filterbank of the description), the acoustic graph, greedy CTC decoding."""

    #: audio longer than this runs in consecutive chunks, as SpeechRecognizer does
    chunk_seconds: float = 30.0

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.meta = meta = read_metadata(path)
        if meta["kind"] != "speech":
            raise ValueError(f"{os.fspath(path)} holds a {meta['kind']}, not a speech "
                             f"recogniser")
        self.graph = OnnxGraph(path, threads)
        self.alphabet = list(meta["alphabet"])
        self.rate = int(meta["rate"])
        f = meta["features"]
        self.window = np.asarray(f["window"], np.float64)
        self.filterbank = np.asarray(f["filterbank"], np.float32)
        self.n_fft, self.win, self.hop = f["n_fft"], f["win_length"], f["hop_length"]
        self.alpha, self.eps = f["preemphasis"], f["eps"]

    def features(self, samples: np.ndarray) -> np.ndarray:
        """Mono samples ``[N]`` in [-1, 1] -> log-mel frames ``[T, n_mels]``
        (:class:`rnnkit.speech.features.LogMel`)."""
        x = np.asarray(samples, np.float64)
        if self.alpha:
            x = x - self.alpha * np.concatenate([[0.0], x[:-1]])
        n = 0 if len(x) < self.win else 1 + (len(x) - self.win) // self.hop
        if n == 0:
            return np.zeros((0, self.filterbank.shape[1]))
        need = (n - 1) * self.hop + self.n_fft
        x = np.pad(x[:need], (0, max(0, need - len(x))))
        frames = np.lib.stride_tricks.sliding_window_view(x, self.n_fft)[:: self.hop]
        spec = np.fft.rfft(frames * self.window, axis=-1)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)  # float32, as torch's
        return np.log(power @ self.filterbank + np.float32(self.eps))

    def log_probs(self, audio: Any) -> np.ndarray:
        """A PCM WAV path or samples at the model's rate -> CTC log-probabilities
        ``[T', V]`` (chunks of :attr:`chunk_seconds` joined)."""
        samples = self._samples(audio)
        step = int(self.chunk_seconds * self.rate)
        parts = []
        for start in range(0, len(samples), step):
            feats = self.features(samples[start:start + step])
            if len(feats):
                out = self.graph(feats=feats[None], lengths=np.array([len(feats)]))
                parts.append(out["log_probs"][0, : int(out["out_lengths"][0])])
        if not parts:
            raise ValueError(f"audio of {len(samples)} samples is shorter than one frame "
                             f"({self.win} samples at {self.rate} Hz); give a longer recording")
        return np.concatenate(parts)

    def transcribe(self, audio: Any) -> str:
        """The text of one recording (greedy CTC: the best class per frame, repeats merged,
        blanks dropped)."""
        best = self.log_probs(audio).argmax(-1)
        keep = np.r_[True, best[1:] != best[:-1]] & (best != 0)
        return " ".join("".join(self.alphabet[i] for i in best[keep]).split())

    def _samples(self, audio: Any) -> np.ndarray:
        """A WAV path or a waveform -> mono float64 samples in [-1, 1], with the checks and
        conversions of :func:`rnnkit.speech.audio.check_audio` (integer PCM scaled, channels
        averaged, empty / non-finite / silent audio refused, samples beyond full scale
        warned about); the rate must be the model's (no resampling here)."""
        if isinstance(audio, (str, os.PathLike)):
            audio = self._read_wav(os.fspath(audio))
        a = np.asarray(audio)
        if a.dtype.kind in "iu":
            scale = {np.dtype(np.int8): 2.0**7, np.dtype(np.uint8): 2.0**7,
                     np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}.get(a.dtype)
            if scale is None:
                raise ValueError(f"cannot tell the full scale of {a.dtype} audio; convert it "
                                 f"to float in [-1, 1], or pass int16/int32/int8/uint8 PCM")
            a = (a.astype(np.float64) - (128.0 if a.dtype == np.uint8 else 0.0)) / scale
        elif a.dtype.kind != "f":
            raise ValueError(f"audio samples must be real floats in [-1, 1], got {a.dtype}")
        a = a.astype(np.float64)
        if a.ndim == 2:  # the channel axis is the short one ([C, N] or [N, C])
            short = [ax for ax in (0, 1) if a.shape[ax] <= 8]
            if len(short) != 1:
                raise ValueError(f"cannot tell the channel axis of audio shaped "
                                 f"{list(a.shape)}; pass [N] mono, [C, N] or [N, C]")
            a = a.mean(short[0])
        if a.ndim != 1 or not len(a):
            raise ValueError(f"samples must be a non-empty waveform [N] (or [C, N]), got shape "
                             f"{list(a.shape)}")
        if not np.isfinite(a).all():
            raise ValueError("the audio has NaN or infinite samples; replace them or drop the "
                             "recording")
        peak = float(np.abs(a).max())
        if peak < 1e-4:
            raise ValueError(f"the audio is silent: peak {peak:.2e} is below 1e-4 (-80 dBFS)")
        if peak > 1.0 + 1e-6:
            import warnings

            warnings.warn(f"the audio exceeds full scale [-1, 1] (peak {peak:.4g}); integer "
                          f"PCM stored as floats needs dividing by 32768", stacklevel=3)
        return a

    def _read_wav(self, path: str) -> np.ndarray:
        """A PCM WAV file (8, 16 or 32-bit, any channels) -> its integer samples ``[N, C]``."""
        import wave

        try:
            with wave.open(path, "rb") as w:
                rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
                raw = w.readframes(w.getnframes())
        except (OSError, EOFError, RuntimeError, ValueError, wave.Error) as err:
            raise ValueError(f"{path} is not a readable WAV file ({err}); give a PCM .wav") \
                from None
        if width not in (1, 2, 4):
            raise ValueError(f"{path}: {8 * width}-bit samples; give 8, 16 or 32-bit PCM")
        if rate != self.rate:
            raise ValueError(f"{path} is sampled at {rate} Hz and the model hears {self.rate} "
                             f"Hz; resample it first (sox in.wav -r {self.rate} out.wav), or "
                             f"use SpeechRecognizer, which resamples")
        a = np.frombuffer(raw, {1: np.uint8, 2: np.int16, 4: np.int32}[width])
        return a.reshape(-1, channels)


#: metadata ``kind`` -> its runner
RUNNERS: dict[str, type] = {"language_model": OnnxLanguageModel, "classifier": OnnxClassifier,
                            "translator": OnnxTranslator, "recurrent": OnnxRecurrent,
                            "forecaster": OnnxForecaster, "speech": OnnxRecognizer}


def load(path: str | os.PathLike, threads: int | None = None) -> Any:
    """The runner for the exported model at ``path`` (by the kind in its description);
    kinds without a runner (tagger, bare classifier or seq2seq), a language model's sequence
    graph and forecasters with covariate or calendar inputs come back as an
    :class:`OnnxGraph`."""
    meta = read_metadata(path)
    kind = meta["kind"]
    if (kind == "forecaster" and (meta.get("n_past") or meta.get("n_future"))) or \
            (kind == "language_model" and (meta.get("graph") != "step"
                                           or not meta.get("tokenizer"))):
        return OnnxGraph(path, threads)
    return RUNNERS.get(kind, OnnxGraph)(path, threads)
