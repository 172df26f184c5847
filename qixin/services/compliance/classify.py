"""The content classifier in screening (issue 15): the model in force, its thresholds, and a verdict
cache keyed by distinct content.

Rules:
- The model in force is the newest row of ``classifier_models`` (written by ``qixin classifier
  retrain``), or the shipped model when there is none; every process looks for a newer one at the
  lexicon's cadence and swaps it in without restart.
- Thresholds are data: the shipped ``classifier_thresholds.json``, or the file named by
  ``QIXIN_CLASSIFIER_THRESHOLDS``.
- A content is scored once per model version whatever the number of recipients or requests (bounded
  cache; cleared when the model changes).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from qixin.domain.compliance.classifier import (
    THRESHOLDS_FILE,
    ClassifierModel,
    Decision,
    Thresholds,
    default_model,
    default_thresholds,
)
from qixin.domain.compliance.normalize import normalize
from qixin.domain.compliance.typecheck import marketing_cues
from qixin.store import review as q
from qixin.store.db import Database

log = logging.getLogger(__name__)

CACHE_MAX = 65_536
_DIGITS = str.maketrans("123456789", "000000000")


def load_thresholds(path: str) -> tuple[Thresholds, float]:
    """The classifier's thresholds and the type check's promotional threshold (``type_check``)."""
    file = Path(path) if path else THRESHOLDS_FILE
    data = json.loads(file.read_text(encoding="utf-8"))
    thresholds = Thresholds.from_json(data) if path else default_thresholds()
    return thresholds, float(data.get("type_check", thresholds.promotional))


class ContentClassifier:
    def __init__(self, db: Database, thresholds_file: str = "") -> None:
        self.db = db
        self.model: ClassifierModel = default_model()
        self.thresholds, self.type_check = load_thresholds(thresholds_file)
        self._verdicts: dict[str, tuple[Decision, tuple[str, ...]]] = {}
        self._lock = asyncio.Lock()

    @property
    def version(self) -> str:
        return self.model.version

    def classify(self, content: str) -> tuple[Decision, tuple[str, ...]]:
        """The model's decision on ``content`` and its promotion cues (``typecheck.marketing_cues``).

        Cached by the text with its ASCII digits folded to ``0``: the model folds digits itself, so
        verification texts that differ only in their code share one verdict. The one cue that reads
        digits (满…减…) is taken from the text itself."""
        key = content.translate(_DIGITS)
        hit = self._verdicts.get(key)
        if hit is None:
            if len(self._verdicts) >= CACHE_MAX:
                self._verdicts.clear()
            decision = self.model.classify(content, self.thresholds)
            hit = self._verdicts[key] = (decision, marketing_cues(normalize(content)))
        elif key != content and "满" in content:
            hit = (hit[0], marketing_cues(normalize(content)))
        return hit

    async def refresh(self) -> str:
        """Load the newest retrained model if it is not the one in force; the version in force."""
        async with self._lock:
            newest = await self.db.read(q.latest_model_version)
            if newest is None or newest == self.model.version:
                return self.model.version
            text = await self.db.read(q.latest_model)
            if text is not None:
                model = await asyncio.to_thread(ClassifierModel.loads, text)
                self.model, self._verdicts = model, {}
                log.info("classifier model %s loaded", model.version)
            return self.model.version
