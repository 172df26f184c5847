"""Content classifier: the c003 8.2 categories (and promotional intent) from meaning, not listed words.

Rule CONTENT_CLASSIFIER — beside the lexicon (``lexicon.py``), every distinct content gets a score per
category of :data:`CLASSIFIER_LABELS` and a promotional-intent score, from a linear model over the
character 2- and 3-grams of its normalised text (the same folding as the lexicon: full-width,
traditional → simplified, case, separators and zero-width characters removed; digits are further
folded to ``0`` so that ``8888元`` and ``1234元`` are the same feature).  The outcome is one of

- ``refuse``: some category's probability reaches its ``refuse`` threshold; the decision names the
  category, the probability and the evidence (the phrases of the text that weighed most for it);
- ``hold``: no refusal, but some category reaches its ``hold`` threshold: manual review;
- ``pass``.

Thresholds per category are data (``qixin/domain/data/classifier_thresholds.json``, see
:class:`Thresholds`).  A lexicon hit still refuses outright (:func:`screen`).

The model is one-vs-rest logistic regression (one sigmoid per label, so a text may score on several
categories and on promotional intent at once), trained by :func:`train` with numpy from a labelled
corpus kept in the repository as data (``qixin/domain/data/corpus/*.jsonl``; rows of the ``heldout``
split are never used for training).  Its ``version`` is derived from the training rows, the extra
staff decisions and the parameters, and appears in every :class:`Decision`.  A trained model is a
JSON data file (``qixin/domain/data/classifier_model.json``); :func:`retrain` builds a new one from the
corpus plus staff decisions.

Scoring is one ``str.translate`` (normalise, fold, encode) and one scan of a pyahocorasick automaton
whose keys are the model's n-grams and whose values are their (label, weight) pairs: the logits are
the biases plus the weight of every n-gram present (once, however often it occurs: presence features,
as in training, so that repeating a phrase cannot push a legitimate text over a threshold).  As
in ``lexicon.py``, characters are spelt as (high, low) symbol pairs of a small alphabet so that no
trie node has thousands of children.  Weights below ``prune`` are dropped after training, which keeps
the automaton small and the scan fast; the pruned model is the one evaluated and shipped.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from operator import sub
from pathlib import Path
from typing import Any, Final, Literal

import ahocorasick

from qixin.domain.compliance.lexicon import CATEGORIES, Lexicon, PairEncoder, category_label
from qixin.domain.compliance.normalize import normalize

__all__ = [
    "CLASSIFIER_LABELS",
    "DATA_DIR",
    "LEGIT",
    "PROMOTIONAL",
    "ClassifierModel",
    "Decision",
    "LabelledText",
    "Outcome",
    "Thresholds",
    "TrainParams",
    "default_model",
    "default_thresholds",
    "load_corpus",
    "retrain",
    "screen",
    "train",
]

DATA_DIR: Final = Path(__file__).resolve().parents[1] / "data"
CORPUS_DIR: Final = DATA_DIR / "corpus"
MODEL_FILE: Final = DATA_DIR / "classifier_model.json"
THRESHOLDS_FILE: Final = DATA_DIR / "classifier_thresholds.json"

# The c003 8.2 categories (political and fraud words and ``other`` stay lexicon-only).
CLASSIFIER_LABELS: Final[tuple[str, ...]] = tuple(c for c in CATEGORIES if c not in ("political", "fraud", "other"))
PROMOTIONAL: Final = "promotional"
LEGIT: Final = "legit"
FORMAT: Final = 2  # model file format; bump when scoring or features change meaning (2: presence, not counts)

Outcome = Literal["refuse", "hold", "pass"]

_DIGIT_FOLD: Final = {ord(d): "0" for d in "123456789"}


@dataclass(frozen=True, slots=True)
class LabelledText:
    """A corpus row or a staff decision: ``label`` is a :data:`CLASSIFIER_LABELS` code or ``legit``."""

    text: str
    label: str
    promo: bool = False
    split: str = "train"  # ``train`` or ``heldout``


@dataclass(frozen=True, slots=True)
class TrainParams:
    """Training parameters; they enter the model version."""

    ngrams: tuple[int, ...] = (2, 3)
    min_df: int = 2  # an n-gram must occur in at least this many training texts
    l2: float = 1e-4
    l1: float = 2e-4  # L1 penalty (proximal): most weights become exactly 0
    promo_l1: float = 2e-3  # the promotional head's: fewer, stronger n-grams keep the scan short
    epochs: int = 80
    finetune_epochs: int = 30  # after pruning, the remaining weights are trained again
    learning_rate: float = 0.1
    positive_weight: float = 5.0  # weight of a positive example in the loss (categories are rare)
    prune: float = 0.15  # weights with a smaller magnitude are dropped after the first phase
    nonnegative: bool = True  # category weights >= 0: evidence is only ever for a category
    decimals: int = 3  # weights are rounded so that the data file reproduces the model exactly


@dataclass(frozen=True, slots=True)
class Decision:
    """The classifier's verdict on one text.

    ``category`` and ``score`` are those of the deciding label (the highest-scoring one when the
    outcome is ``pass``); ``evidence`` lists the phrases of the normalised text that weighed most for
    it (empty on ``pass``); ``source`` is ``classifier`` or ``lexicon`` (see :func:`screen`).
    """

    outcome: Outcome
    category: str | None
    score: float
    evidence: tuple[str, ...]
    promotional: float
    model_version: str
    source: str = "classifier"

    @property
    def category_label(self) -> str | None:
        return None if self.category is None else category_label(self.category)


@dataclass(frozen=True, slots=True, eq=False)
class Thresholds:
    """Per-category probabilities at which the classifier holds and refuses (data, see the JSON file).

    ``hold`` ≤ ``refuse``; a category absent from ``categories`` uses ``default``.  ``promotional`` is
    the probability above which a text is considered promotional.  Compared by identity (it is
    the key of a small cache of the compiled logit thresholds).
    """

    default: tuple[float, float] = (0.5, 0.85)
    categories: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    promotional: float = 0.5

    def __post_init__(self) -> None:
        for name, (hold, refuse) in [("default", self.default), *self.categories.items()]:
            if name != "default" and name not in CLASSIFIER_LABELS:
                raise ValueError(f"unknown classifier category {name!r}")
            if not 0.0 < hold <= refuse < 1.0:
                raise ValueError(f"thresholds of {name!r} must satisfy 0 < hold <= refuse < 1, got {hold}, {refuse}")
        if not 0.0 < self.promotional < 1.0:
            raise ValueError("the promotional threshold must lie strictly between 0 and 1")

    def of(self, category: str) -> tuple[float, float]:
        return self.categories.get(category, self.default)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Thresholds:
        default = data.get("default", {"hold": 0.5, "refuse": 0.85})
        return cls(
            default=(float(default["hold"]), float(default["refuse"])),
            categories={
                name: (float(value["hold"]), float(value["refuse"]))
                for name, value in data.get("categories", {}).items()
            },
            promotional=float(data.get("promotional", 0.5)),
        )


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def featurize(text: str) -> str:
    """The text the n-grams are taken from: :func:`normalize`, then digits folded to ``0``."""
    return normalize(text).translate(_DIGIT_FOLD)


def ngram_counts(folded: str, ngrams: Sequence[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in ngrams:
        for i in range(len(folded) - n + 1):
            gram = folded[i : i + n]
            counts[gram] = counts.get(gram, 0) + 1
    return counts


# Automaton value: (((label index, weight), ...), n-gram length in characters).
_Weights = tuple[tuple[int, float], ...]


class ClassifierModel:
    """An immutable trained model of one ``version``: labels, biases and weighted n-grams."""

    __slots__ = ("_automaton", "_bias", "_encoder", "_index", "features", "labels", "meta", "version")

    def __init__(
        self,
        version: str,
        labels: Sequence[str],
        bias: Sequence[float],
        features: Mapping[str, _Weights],
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if len(labels) != len(bias):
            raise ValueError("one bias per label")
        self.version = version
        self.labels: tuple[str, ...] = tuple(labels)
        self._bias: tuple[float, ...] = tuple(float(b) for b in bias)
        self.features: Mapping[str, _Weights] = dict(features)
        self.meta: dict[str, Any] = dict(meta or {})
        self._index = {label: i for i, label in enumerate(self.labels)}
        self._encoder = encoder = PairEncoder((ch for gram in self.features for ch in gram), fold_digits=True)
        automaton = ahocorasick.Automaton()
        sentinel = encoder.sentinel
        never = chr(ord(sentinel[1]) + 10**4)
        automaton.add_word(sentinel[0] + never, ((), 0))  # sentinel symbols first: see lexicon.py
        automaton.add_word(sentinel[1] + never, ((), 0))
        for gram in sorted(self.features):
            automaton.add_word(encoder.encode_normalized(gram), (self.features[gram], len(gram)))
        automaton.make_automaton()
        self._automaton: Any = automaton

    def __repr__(self) -> str:
        return f"ClassifierModel(version={self.version!r}, labels={len(self.labels)}, features={len(self.features)})"

    # -- scoring ---------------------------------------------------------------------------------

    def logits(self, text: str) -> list[float]:
        """Bias plus the weight of every n-gram occurrence, per label (in :attr:`labels` order)."""
        acc = list(self._bias)
        if text:
            seen: set[int] = set()
            for _end, value in self._automaton.iter(self._encoder.encode_raw(text)):
                if id(value) in seen:  # presence features: an n-gram counts once however often it occurs
                    continue
                seen.add(id(value))
                for index, weight in value[0]:
                    acc[index] += weight
        return acc

    def scores(self, text: str) -> dict[str, float]:
        """Probability per label (categories and ``promotional``)."""
        return {label: _sigmoid(z) for label, z in zip(self.labels, self.logits(text), strict=True)}

    def evidence(self, text: str, label: str, limit: int = 3) -> tuple[str, ...]:
        """The phrases of the normalised ``text`` that weighed most for ``label``, heaviest first.

        Overlapping n-grams with a positive weight for ``label`` are merged into one phrase whose
        weight is the sum of theirs.
        """
        index = self._index[label]
        normalized = normalize(text)
        spans: list[tuple[int, int, float]] = []
        for end, (weights, n) in self._automaton.iter(self._encoder.encode_raw(text)):
            for i, weight in weights:
                if i == index and weight > 0:
                    stop = end // 2 + 1
                    spans.append((stop - n, stop, weight))
        spans.sort()
        merged: list[list[float]] = []
        for start, stop, weight in spans:
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], stop)
                merged[-1][2] += weight
            else:
                merged.append([start, stop, weight])
        merged.sort(key=lambda span: -span[2])
        return tuple(normalized[int(start) : int(stop)] for start, stop, _w in merged[:limit])

    def classify(self, text: str, thresholds: Thresholds) -> Decision:
        """Refuse, hold or pass ``text`` by the per-category ``thresholds``."""
        acc = self.logits(text)
        hold_logits, refuse_logits, promo_index = _compiled_thresholds(thresholds, self.labels)
        promotional = _sigmoid(acc[promo_index]) if promo_index >= 0 else 0.0
        if max(map(sub, acc, hold_logits)) < 0:  # the common case: nothing reaches a hold threshold
            top = max(acc[:promo_index] if promo_index == len(acc) - 1 else self._category_logits(acc))
            chosen = acc.index(top)
            return Decision("pass", self.labels[chosen], _sigmoid(top), (), promotional, self.version)
        outcome: Outcome = "hold"
        chosen, best = -1, -math.inf
        refuse_margins = list(map(sub, acc, refuse_logits))
        if max(refuse_margins) >= 0:
            outcome = "refuse"
            margins = refuse_margins
        else:
            margins = list(map(sub, acc, hold_logits))
        for index, margin in enumerate(margins):
            if margin > best:
                chosen, best = index, margin
        label = self.labels[chosen]
        return Decision(outcome, label, _sigmoid(acc[chosen]), self.evidence(text, label), promotional, self.version)

    def _category_logits(self, acc: list[float]) -> list[float]:
        return [z for label, z in zip(self.labels, acc, strict=True) if label != PROMOTIONAL]

    # -- serialisation ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "labels": list(self.labels),
            "bias": list(self._bias),
            "meta": self.meta,
            "features": {gram: [[i, w] for i, w in weights] for gram, weights in sorted(self.features.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClassifierModel:
        if data.get("format") != FORMAT:
            raise ValueError(f"unsupported classifier model format {data.get('format')!r}")
        features = {gram: tuple((int(i), float(w)) for i, w in weights) for gram, weights in data["features"].items()}
        return cls(data["version"], data["labels"], data["bias"], features, data.get("meta"))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"

    @classmethod
    def loads(cls, text: str) -> ClassifierModel:
        return cls.from_json(json.loads(text))


@lru_cache(maxsize=32)
def _compiled_thresholds(
    thresholds: Thresholds, labels: tuple[str, ...]
) -> tuple[tuple[float, ...], tuple[float, ...], int]:
    """Hold and refuse thresholds as logits per label (+inf for ``promotional``: it never decides)."""
    hold = tuple(math.inf if label == PROMOTIONAL else _logit(thresholds.of(label)[0]) for label in labels)
    refuse = tuple(math.inf if label == PROMOTIONAL else _logit(thresholds.of(label)[1]) for label in labels)
    return hold, refuse, labels.index(PROMOTIONAL) if PROMOTIONAL in labels else -1


def screen(text: str, lexicon: Lexicon, model: ClassifierModel, thresholds: Thresholds) -> Decision:
    """The content decision: a lexicon hit refuses outright (evidence: the words), else the classifier."""
    hits = lexicon.check(text)
    if hits:
        words = tuple(dict.fromkeys(hit.word for hit in hits))
        return Decision("refuse", hits[0].category, 1.0, words, 0.0, model.version, source="lexicon")
    return model.classify(text, thresholds)


# -- corpus and training --------------------------------------------------------------------------


def load_corpus(paths: Iterable[Path] | None = None) -> list[LabelledText]:
    """The labelled corpus (every ``*.jsonl`` of ``qixin/domain/data/corpus`` unless ``paths``)."""
    files = sorted(CORPUS_DIR.glob("*.jsonl")) if paths is None else list(paths)
    rows: list[LabelledText] = []
    for path in files:
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            data = json.loads(line)
            row = LabelledText(str(data["text"]), str(data["label"]), bool(data.get("promo")), str(data["split"]))
            _check_row(row, f"{path.name}:{line_no}")
            rows.append(row)
    return rows


def _check_row(row: LabelledText, where: str) -> None:
    if row.label != LEGIT and row.label not in CLASSIFIER_LABELS:
        raise ValueError(f"{where}: unknown label {row.label!r}")
    if row.split not in ("train", "heldout"):
        raise ValueError(f"{where}: unknown split {row.split!r}")


def model_version(rows: Sequence[LabelledText], params: TrainParams) -> str:
    """``clf-`` + 12 hex digits of a digest of the training rows (in order), the parameters and FORMAT."""
    digest = hashlib.sha256()
    digest.update(json.dumps([FORMAT, asdict(params), list(CLASSIFIER_LABELS)], sort_keys=True).encode())
    for row in rows:
        digest.update(json.dumps([row.text, row.label, row.promo], ensure_ascii=False).encode())
        digest.update(b"\n")
    return "clf-" + digest.hexdigest()[:12]


def train(corpus: Iterable[LabelledText], params: TrainParams | None = None) -> ClassifierModel:
    """Train on the ``train`` rows of ``corpus`` (``heldout`` rows are skipped); deterministic."""
    import numpy as np

    params = params or TrainParams()
    rows = [row for row in corpus if row.split == "train"]
    for row in rows:
        _check_row(row, "training row")
    if not rows:
        raise ValueError("no training rows")
    version = model_version(rows, params)
    labels = (*CLASSIFIER_LABELS, PROMOTIONAL)
    label_index = {label: i for i, label in enumerate(labels)}

    docs = [ngram_counts(featurize(row.text), params.ngrams) for row in rows]
    df: dict[str, int] = {}
    for counts in docs:
        for gram in counts:
            df[gram] = df.get(gram, 0) + 1
    vocab = sorted(gram for gram, count in df.items() if count >= params.min_df)
    column = {gram: j for j, gram in enumerate(vocab)}

    row_ids: list[int] = []
    col_ids: list[int] = []
    values: list[float] = []
    for i, counts in enumerate(docs):
        for gram in counts:
            j = column.get(gram)
            if j is not None:
                row_ids.append(i)
                col_ids.append(j)
                values.append(1.0)  # presence: a repeated phrase weighs once (format 2)
    n_docs, n_feat, n_labels = len(rows), len(vocab), len(labels)
    y = np.zeros((n_docs, n_labels), dtype=np.float32)
    for i, row in enumerate(rows):
        if row.label != LEGIT:
            y[i, label_index[row.label]] = 1.0
        if row.promo:
            y[i, label_index[PROMOTIONAL]] = 1.0
    x = _SparseCounts(np, row_ids, col_ids, values, n_docs, n_feat, n_labels)
    w, b = _fit(np, x, y, params, mask=None, epochs=params.epochs)
    mask = np.abs(w) >= params.prune
    w, b = _fit(np, x, y, params, mask=mask, epochs=params.finetune_epochs, start=(w, b))

    features: dict[str, _Weights] = {}
    rounded = np.round(w.astype(np.float64), params.decimals)
    keep = mask & (rounded != 0)
    for feature in np.flatnonzero(keep.any(axis=1)).tolist():
        cols = np.flatnonzero(keep[feature]).tolist()
        features[vocab[feature]] = tuple((k, float(rounded[feature, k])) for k in cols)
    bias = [float(value) for value in np.round(b.astype(np.float64), params.decimals)]
    meta = {
        "params": asdict(params),
        "training_rows": n_docs,
        "vocabulary": n_feat,
    }
    return ClassifierModel(version, labels, bias, features, meta)


class _SparseCounts:
    """The document × n-gram count matrix as coordinate arrays; products with dense label matrices.

    Both products are single ``numpy.bincount`` calls over (entry, label) pairs.
    """

    def __init__(
        self, np: Any, rows: list[int], cols: list[int], values: list[float], n_docs: int, n_feat: int, n_labels: int
    ) -> None:
        self.np = np
        self.shape = (n_docs, n_feat)
        self.k = n_labels
        r = np.asarray(rows, dtype=np.int64)
        c = np.asarray(cols, dtype=np.int64)
        self.v = np.asarray(values, dtype=np.float64)[:, None]
        self.r, self.c = r, c
        labels = np.arange(n_labels, dtype=np.int64)[None, :]
        self.row_keys = (r[:, None] * n_labels + labels).ravel()
        self.col_keys = (c[:, None] * n_labels + labels).ravel()

    def times(self, w: Any) -> Any:
        """X @ W for W of shape (n_feat, k)."""
        np = self.np
        flat = (self.v * w[self.c]).ravel()
        return np.bincount(self.row_keys, flat, minlength=self.shape[0] * self.k).reshape(self.shape[0], self.k)

    def transposed_times(self, g: Any) -> Any:
        """X.T @ G for G of shape (n_docs, k)."""
        np = self.np
        flat = (self.v * g[self.r]).ravel()
        return np.bincount(self.col_keys, flat, minlength=self.shape[1] * self.k).reshape(self.shape[1], self.k)


def _fit(
    np: Any,
    x: _SparseCounts,
    y: Any,
    params: TrainParams,
    *,
    mask: Any,
    epochs: int,
    start: tuple[Any, Any] | None = None,
) -> tuple[Any, Any]:
    """Full-batch Adam on the weighted logistic loss with L2, and L1 by soft thresholding.

    With ``mask`` only the masked weights are trained (the others stay 0) and there is no L1: the
    fine-tuning of a pruned model.  Deterministic: no randomness, fixed order of operations.
    """
    n_docs, n_feat = x.shape
    n_labels = y.shape[1]
    sample_weight = np.where(y > 0, params.positive_weight, 1.0) / n_docs
    if start is None:
        w = np.zeros((n_feat, n_labels))
        b = np.zeros(n_labels)
    else:
        w, b = start[0].copy(), start[1].copy()
    if mask is not None:
        w *= mask
    m_w, s_w = np.zeros_like(w), np.zeros_like(w)
    m_b, s_b = np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    lr = params.learning_rate
    for step in range(1, epochs + 1):
        z = np.clip(x.times(w) + b, -30.0, 30.0)
        p = 1.0 / (1.0 + np.exp(-z))
        g = (p - y) * sample_weight
        grad_w = x.transposed_times(g) + params.l2 * w
        grad_b = g.sum(axis=0)
        correction1, correction2 = 1 - beta1**step, 1 - beta2**step
        for grad, m, s in ((grad_w, m_w, s_w), (grad_b, m_b, s_b)):
            m *= beta1
            m += (1 - beta1) * grad
            s *= beta2
            s += (1 - beta2) * grad * grad
        step_w = lr / (np.sqrt(s_w / correction2) + eps)
        w -= step_w * (m_w / correction1)
        b -= lr * (m_b / correction1) / (np.sqrt(s_b / correction2) + eps)
        if mask is None:
            if params.l1 > 0:  # proximal step of the L1 penalty, in Adam's per-weight step size
                penalty = np.full(n_labels, params.l1)
                penalty[-1] = params.promo_l1
                w = np.sign(w) * np.maximum(np.abs(w) - step_w * penalty, 0.0)
        else:
            w *= mask
        if params.nonnegative:  # categories only gather positive evidence (promotional: both signs)
            np.maximum(w[:, :-1], 0.0, out=w[:, :-1])
    return w, b


def retrain(
    corpus: Iterable[LabelledText], decisions: Iterable[LabelledText], params: TrainParams | None = None
) -> ClassifierModel:
    """A new model from the corpus's ``train`` rows plus staff ``decisions`` (all used for training).

    A decision is a text with the label staff gave it (a category or ``legit``); its version id
    differs from the corpus-only model's as soon as there is one decision.
    """
    extra = [LabelledText(d.text, d.label, d.promo, "train") for d in decisions]
    return train([*corpus, *extra], params)


@lru_cache(maxsize=1)
def default_model() -> ClassifierModel:
    """The shipped model (``qixin/domain/data/classifier_model.json``), loaded once."""
    return ClassifierModel.loads(MODEL_FILE.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def default_thresholds() -> Thresholds:
    """The shipped thresholds (``qixin/domain/data/classifier_thresholds.json``)."""
    return Thresholds.from_json(json.loads(THRESHOLDS_FILE.read_text(encoding="utf-8")))
