"""Content classifier (qixin/domain/compliance/classifier.py): corpus, training, decisions, data files."""

from __future__ import annotations

import dataclasses
from collections import Counter
from functools import lru_cache

import pytest

from qixin.domain.compliance import default_lexicon, normalize
from qixin.domain.compliance.classifier import (
    CLASSIFIER_LABELS,
    LEGIT,
    PROMOTIONAL,
    ClassifierModel,
    LabelledText,
    Thresholds,
    TrainParams,
    default_model,
    default_thresholds,
    load_corpus,
    model_version,
    retrain,
    screen,
    train,
)

# Small and quick: enough to test the mechanics, not the accuracy (bench/bench_classifier.py does that).
QUICK = TrainParams(epochs=25, finetune_epochs=5)

KEYWORD_FREE_LOAN = "【鑫达】凭身份证就能借五万，不看征信，十分钟审核马上到账，详询13812345678"
BANK_REMINDER = "【招商银行】尊敬的客户，您的贷款本期应还3210.55元，还款日12月8日，请确保尾号6621账户余额充足。"


@lru_cache(maxsize=1)
def corpus() -> tuple[LabelledText, ...]:
    return tuple(load_corpus())


def small_corpus() -> list[LabelledText]:
    """Every 6th row of the corpus (both splits), a few categories' worth of each."""
    return list(corpus()[::6])


def test_corpus_is_large_balanced_and_covers_every_category() -> None:
    rows = corpus()
    assert len(rows) >= 3000
    violating = [row for row in rows if row.label != LEGIT]
    legit = [row for row in rows if row.label == LEGIT]
    assert len(legit) >= len(violating)
    for split in ("train", "heldout"):
        labels = Counter(row.label for row in rows if row.split == split)
        assert set(CLASSIFIER_LABELS) <= set(labels), f"{split} lacks {set(CLASSIFIER_LABELS) - set(labels)}"
    heldout = sum(1 for row in rows if row.split == "heldout")
    assert 0.1 * len(rows) < heldout < 0.3 * len(rows)
    assert len({row.text for row in rows}) == len(rows)  # no text in both splits


def test_every_category_has_texts_without_any_lexicon_word() -> None:
    lexicon = default_lexicon()
    free = Counter(row.label for row in corpus() if row.label != LEGIT and not lexicon.check(row.text))
    thin = [label for label in CLASSIFIER_LABELS if free[label] < 10]
    assert not thin, f"categories with fewer than 10 keyword-free texts: {thin}"


def test_training_is_deterministic() -> None:
    first = train(small_corpus(), QUICK)
    second = train(small_corpus(), QUICK)
    assert first.version == second.version
    assert first.dumps() == second.dumps()


def test_version_changes_with_the_corpus_and_the_parameters() -> None:
    rows = small_corpus()
    base = model_version([r for r in rows if r.split == "train"], QUICK)
    changed = [*rows, LabelledText("【某店】一个新的训练样本", LEGIT)]
    assert model_version([r for r in changed if r.split == "train"], QUICK) != base
    relabelled = [dataclasses.replace(rows[0], label="gambling" if rows[0].label != "gambling" else LEGIT), *rows[1:]]
    if rows[0].split == "train":
        assert model_version([r for r in relabelled if r.split == "train"], QUICK) != base
    assert model_version([r for r in rows if r.split == "train"], dataclasses.replace(QUICK, l2=1e-3)) != base
    assert train(rows, QUICK).version == base


def test_the_heldout_split_is_never_used_in_training() -> None:
    rows = small_corpus()
    model = train(rows, QUICK)
    # Scramble every held-out row (other text, other label): the model must not change at all.
    scrambled = [
        LabelledText("【测试】" + row.text[::-1], LEGIT if row.label != LEGIT else "gambling", not row.promo, "heldout")
        if row.split == "heldout"
        else row
        for row in rows
    ]
    assert any(row.split == "heldout" for row in rows)
    other = train(scrambled, QUICK)
    assert other.version == model.version
    assert other.dumps() == model.dumps()
    without = train([row for row in rows if row.split == "train"], QUICK)
    assert without.dumps() == model.dumps()


def test_retrain_with_staff_decisions_gives_a_new_version_that_learned_them() -> None:
    rows = small_corpus()
    base = train(rows, QUICK)
    novel = "【某某】今晚九点开盘，押庄押闲随你选，赢了当场兑付"
    decisions = [LabelledText(novel + suffix, "gambling", True) for suffix in ("", "，详询", "，速来", "！")]
    updated = retrain(rows, decisions, QUICK)
    assert updated.version != base.version
    assert updated.scores(novel)["gambling"] > base.scores(novel)["gambling"]


def test_model_round_trips_through_its_data_file_format() -> None:
    model = train(small_corpus(), QUICK)
    again = ClassifierModel.loads(model.dumps())
    assert again.version == model.version
    for row in corpus()[:200]:
        assert again.logits(row.text) == model.logits(row.text)
    with pytest.raises(ValueError):
        ClassifierModel.from_json({**model.to_json(), "format": 999})


def test_shipped_model_is_trained_from_the_shipped_corpus() -> None:
    model = default_model()
    rows = [row for row in corpus() if row.split == "train"]
    assert model.version == model_version(rows, TrainParams())
    assert model.labels == (*CLASSIFIER_LABELS, PROMOTIONAL)


def test_keyword_free_violation_is_caught_and_a_bank_reminder_passes() -> None:
    model, thresholds = default_model(), default_thresholds()
    assert not default_lexicon().check(KEYWORD_FREE_LOAN)  # the lexicon alone lets it through
    caught = model.classify(KEYWORD_FREE_LOAN, thresholds)
    assert caught.outcome in ("refuse", "hold")
    assert caught.category == "loan"
    assert caught.model_version == model.version
    passed = model.classify(BANK_REMINDER, thresholds)
    assert passed.outcome == "pass"
    assert passed.evidence == ()


def test_evasions_are_folded_before_scoring() -> None:
    model, thresholds = default_model(), default_thresholds()
    spaced = " ".join(KEYWORD_FREE_LOAN)
    traditional = "【鑫達】憑身份證就能借五萬，不看徵信，十分鐘審核馬上到賬，詳詢13812345678"
    zero_width = "\u200b".join(KEYWORD_FREE_LOAN)
    plain = model.logits(KEYWORD_FREE_LOAN)
    for variant in (spaced, traditional, zero_width):
        assert model.logits(variant) == plain
        assert model.classify(variant, thresholds).category == "loan"


def test_evidence_names_phrases_of_the_text() -> None:
    model, thresholds = default_model(), default_thresholds()
    decision = model.classify(KEYWORD_FREE_LOAN, thresholds)
    assert decision.evidence
    normalized = normalize(KEYWORD_FREE_LOAN)
    for phrase in decision.evidence:
        assert len(phrase) >= 2
        assert phrase in normalized
    assert model.evidence(KEYWORD_FREE_LOAN, "loan") == decision.evidence


def test_thresholds_are_respected_per_category() -> None:
    model = default_model()
    p = model.scores(KEYWORD_FREE_LOAN)["loan"]
    low, high = p / 2, (1 + p) / 2  # around the text's probability
    assert 0.05 < low < p < high < 1
    assert model.classify(KEYWORD_FREE_LOAN, Thresholds(categories={"loan": (low, low)})).outcome == "refuse"
    assert model.classify(KEYWORD_FREE_LOAN, Thresholds(categories={"loan": (low, high)})).outcome == "hold"
    top = max(model.scores(KEYWORD_FREE_LOAN)[label] for label in CLASSIFIER_LABELS)
    ceiling = (1 + top) / 2
    assert ceiling < 1
    strict = {label: (ceiling, ceiling) for label in CLASSIFIER_LABELS}
    assert model.classify(KEYWORD_FREE_LOAN, Thresholds(categories=strict)).outcome == "pass"
    # a threshold of another category does not move this one
    assert model.classify(KEYWORD_FREE_LOAN, Thresholds(categories={**strict, "loan": (low, low)})).outcome == "refuse"


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError):
        Thresholds(categories={"no_such_category": (0.5, 0.9)})
    with pytest.raises(ValueError):
        Thresholds(categories={"loan": (0.9, 0.5)})
    with pytest.raises(ValueError):
        Thresholds(default=(0.0, 0.5))
    shipped = default_thresholds()
    for label in CLASSIFIER_LABELS:
        hold, refuse = shipped.of(label)
        assert 0 < hold <= refuse < 1


def test_lexicon_hits_refuse_outright() -> None:
    model, thresholds = default_model(), default_thresholds()
    decision = screen("【某店】澳门百家乐，首充送88元", default_lexicon(), model, thresholds)
    assert decision.outcome == "refuse"
    assert decision.source == "lexicon"
    assert decision.category == "gambling"
    assert "百家乐" in decision.evidence
    assert screen(BANK_REMINDER, default_lexicon(), model, thresholds).outcome == "pass"


def test_promotional_intent_is_scored() -> None:
    model = default_model()
    thresholds = default_thresholds()
    promo = model.classify("【优衣库】春装上新，连衣裙满两件打九折，包邮。回T退订", thresholds)
    notice = model.classify("【顺丰速运】您的快递已到阳光小区东门，取件码5521，请于今日18点前领取。", thresholds)
    assert promo.outcome == notice.outcome == "pass"
    assert promo.promotional > 0.5 > notice.promotional


def test_unknown_labels_in_training_rows_are_refused() -> None:
    with pytest.raises(ValueError):
        train([LabelledText("某个文本内容", "no_such_label")], QUICK)
    with pytest.raises(ValueError):
        train([LabelledText("某个文本内容", LEGIT, split="heldout")], QUICK)  # no training rows


def test_screening_cache_folds_digits_but_reads_spend_cues_from_the_text() -> None:
    """Verification texts that differ only in their code share one cached verdict (the model folds digits
    itself, so the verdict is the same); the digit-reading cue 满…减… still comes from each text."""
    from typing import Any, cast

    from qixin.services.compliance.classify import ContentClassifier

    clf = ContentClassifier(cast(Any, None))
    a, _ = clf.classify("您的验证码是 123456，5 分钟内有效。")
    b, _ = clf.classify("您的验证码是 987654，5 分钟内有效。")
    assert (
        len(clf._verdicts) == 1
        and a == b
        and clf.model.classify("您的验证码是 987654，5 分钟内有效。", clf.thresholds) == b
    )
    _, one = clf.classify("会员日满100减20，满200减50")
    _, other = clf.classify("会员日满300减20，满300减20")
    assert len(one) == 3 and len(other) == 2  # 会员日 + two distinct spends, vs 会员日 + one
