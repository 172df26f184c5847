"""Content classifier: train, evaluate on the held-out split, and measure texts/s on one core.

1. Trains a model from the ``train`` rows of ``qixin/domain/data/corpus/*.jsonl`` with the default
   ``TrainParams`` (timed; ``--write`` stores it as ``qixin/domain/data/classifier_model.json``, the
   shipped model; without ``--write`` the shipped model must have the same version).
2. Evaluates on the ``heldout`` rows (never used in training), with the shipped thresholds
   (``classifier_thresholds.json``): the classifier alone, and the content decision (a hit of the
   shipped lexicon refuses outright, else the classifier).  Prints recall on violating texts
   (refused or held), the share of legitimate texts refused and held, per-category figures, the
   legitimate kinds that were flagged, the confusion pairs (true → decided category) and the
   promotional-intent accuracy.
3. Throughput, pinned to one CPU when the platform allows it: distinct texts (the corpus plus the
   generated messages of ``bench_content_check.py``) through ``Lexicon.check`` with a 10,000-word
   lexicon, through the classifier, and through both (``screen``); also the whole
   ``ContentChecker.check_content`` followed by the classifier.  Target >= 50,000 texts/s.  Each
   figure is given per wall-clock second and per CPU-second of the process (``time.process_time``):
   on a shared machine the second is the one that says what one core does.

    .venv/bin/python bench/bench_classifier.py [--write] [--texts 60000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_content_check import build_lexicon, build_messages

from qixin.domain.compliance import ContentChecker, default_lexicon, normalize
from qixin.domain.compliance.classifier import (
    CORPUS_DIR,
    LEGIT,
    MODEL_FILE,
    ClassifierModel,
    Decision,
    TrainParams,
    default_thresholds,
    load_corpus,
    screen,
    train,
)


def _kinds() -> dict[str, str]:
    kinds: dict[str, str] = {}
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                kinds[row["text"]] = row.get("kind", "")
    return kinds


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f} %" if whole else "—"


def evaluate(model: ClassifierModel, with_lexicon: bool) -> None:
    thresholds = default_thresholds()
    lexicon = default_lexicon()
    kinds = _kinds()
    rows = [row for row in load_corpus() if row.split == "heldout"]
    outcomes: Counter[tuple[bool, str]] = Counter()
    per_category: dict[str, Counter[str]] = defaultdict(Counter)
    legit_flagged: Counter[tuple[str, str]] = Counter()
    confusion: Counter[tuple[str, str]] = Counter()
    missed: list[tuple[str, Decision, str]] = []
    promo_right = 0
    for row in rows:
        if with_lexicon:
            decision = screen(row.text, lexicon, model, thresholds)
        else:
            decision = model.classify(row.text, thresholds)
        violating = row.label != LEGIT
        outcomes[(violating, decision.outcome)] += 1
        if decision.source == "classifier":
            promo_right += (decision.promotional >= thresholds.promotional) == row.promo
        else:
            promo_right += 1 if row.promo else 0  # lexicon refusals carry no promotional score
        if violating:
            counts = per_category[row.label]
            counts["n"] += 1
            counts[decision.outcome] += 1
            if decision.outcome != "pass" and decision.category != row.label:
                confusion[(row.label, decision.category or "?")] += 1
            if decision.outcome == "pass":
                missed.append((row.label, decision, row.text))
        elif decision.outcome != "pass":
            legit_flagged[(kinds.get(row.text, "?"), decision.outcome)] += 1
            missed.append((LEGIT, decision, row.text))

    violating = sum(v for (bad, _), v in outcomes.items() if bad)
    legit = sum(v for (bad, _), v in outcomes.items() if not bad)
    caught = outcomes[(True, "refuse")] + outcomes[(True, "hold")]
    title = "lexicon + classifier (the content decision)" if with_lexicon else "classifier alone"
    print(f"\n== held-out split, {title}: {violating} violating, {legit} legitimate texts ==")
    print(
        f"recall (refused or held): {_pct(caught, violating)} ({caught}/{violating}); "
        f"refused {_pct(outcomes[(True, 'refuse')], violating)}, held {_pct(outcomes[(True, 'hold')], violating)}"
    )
    print(
        f"legitimate refused: {_pct(outcomes[(False, 'refuse')], legit)} ({outcomes[(False, 'refuse')]}), "
        f"held: {_pct(outcomes[(False, 'hold')], legit)} ({outcomes[(False, 'hold')]})"
    )
    print(f"promotional intent right: {_pct(promo_right, len(rows))}")
    print("per category: n / refused / held / passed (recall)")
    for label in sorted(per_category):
        c = per_category[label]
        print(
            f"  {label:18} {c['n']:3} / {c['refuse']:3} / {c['hold']:3} / {c['pass']:3}"
            f"  ({_pct(c['refuse'] + c['hold'], c['n'])})"
        )
    if legit_flagged:
        print("legitimate texts flagged (kind, outcome):", dict(legit_flagged))
    print("confusion pairs (true → decided, caught texts only):", confusion.most_common(12) or "none")
    for label, decision, text in missed[:12]:
        print(f"  miss [{label} → {decision.outcome} {decision.category} {decision.score:.2f}] {text}")


def throughput(model: ClassifierModel, words: int, count: int, rounds: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = random.Random(7)
    lexicon = build_lexicon(words, rng)
    checker = ContentChecker(lexicon)
    thresholds = default_thresholds()
    texts = list(dict.fromkeys([row.text for row in load_corpus()] + [t for t, _ in build_messages(count, rng, 0.3)]))
    texts = texts[:count]
    average = sum(len(t) for t in texts) / len(texts)
    for text in texts[:2000]:  # warm-up: lazy tables, OpenCC
        screen(text, lexicon, model, thresholds)
        checker.check_content(text)

    def run_lexicon() -> None:
        check = lexicon.check
        for text in texts:
            check(text)

    def run_classifier() -> None:
        classify = model.classify
        for text in texts:
            classify(text, thresholds)

    def run_screen() -> None:
        for text in texts:
            screen(text, lexicon, model, thresholds)

    def run_full() -> None:
        check, classify = checker.check_content, model.classify
        for text in texts:
            if not check(text, "notification", "allowlist", ("shop.cn",)):
                classify(text, thresholds)

    print(f"\n== throughput, one core: {len(texts)} distinct texts (avg {average:.0f} chars), {len(lexicon)} words ==")
    for name, run in (
        ("lexicon check only", run_lexicon),
        ("classifier only", run_classifier),
        ("lexicon + classifier (screen)", run_screen),
        ("check_content + classifier", run_full),
    ):
        rates, cpu_rates = [], []
        for _ in range(rounds):
            started, cpu_started = time.perf_counter(), time.process_time()
            run()
            rates.append(len(texts) / (time.perf_counter() - started))
            cpu_rates.append(len(texts) / (time.process_time() - cpu_started))
        print(
            f"{name:32} best {max(rates):9,.0f} texts/s wall, {max(cpu_rates):9,.0f} per CPU-second"
            f"  (rounds, wall: {', '.join(f'{r:,.0f}' for r in rates)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the trained model as the shipped one")
    parser.add_argument("--texts", type=int, default=60_000)
    parser.add_argument("--words", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-train", action="store_true", help="evaluate the shipped model without training")
    args = parser.parse_args()

    normalize("预热")  # build the normalisation tables before timing the training
    if args.no_train:
        model = ClassifierModel.loads(MODEL_FILE.read_text(encoding="utf-8"))
    else:
        rows = load_corpus()
        started, cpu_started = time.perf_counter(), time.process_time()
        model = train(rows, TrainParams())
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        print(
            f"trained {model.version} on {model.meta['training_rows']} texts in {seconds:.1f} s "
            f"({cpu_seconds:.1f} s of CPU): "
            f"{len(model.features)} n-grams kept of {model.meta['vocabulary']}"
        )
        if args.write:
            MODEL_FILE.write_text(model.dumps(), encoding="utf-8")
            print(f"wrote {MODEL_FILE}")
        else:
            shipped = ClassifierModel.loads(MODEL_FILE.read_text(encoding="utf-8"))
            same = "same as" if shipped.version == model.version else "DIFFERENT FROM"
            print(f"{same} the shipped model {shipped.version}")
    evaluate(model, with_lexicon=False)
    evaluate(model, with_lexicon=True)
    throughput(model, args.words, args.texts, args.rounds)


if __name__ == "__main__":
    main()
