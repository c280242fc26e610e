"""Precision and recall of the built-in detectors on the labelled corpus.

The tables are printed (`pytest -s`) and put into the assertion message when
a target is missed. Targets: recall >= 99% for EMAIL, CREDIT_CARD, US_SSN,
IBAN and SECRET; precision >= 95% for every type; on prompt injection, at
most 2% false positives on the benign corpus and recall >= 90% on attacks.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

from sidelight_sidecar.guardrails.detectors import (
    InjectionDetector,
    PiiDetector,
    SecretDetector,
    resolve_overlaps,
)

CORPUS = Path(__file__).parent / "corpus"
RECALL_TARGETS = {"EMAIL": 0.99, "CREDIT_CARD": 0.99, "US_SSN": 0.99, "IBAN": 0.99, "SECRET": 0.99}
PRECISION_TARGET = 0.95
INJECTION_FP_TARGET = 0.02
INJECTION_RECALL_TARGET = 0.90


def _lines(name: str) -> list[dict[str, object]]:
    text = (CORPUS / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


def _score_pii() -> tuple[Counter[str], Counter[str], Counter[str]]:
    detectors = (PiiDetector(), SecretDetector())
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for sample in _lines("pii.jsonl"):
        text = str(sample["text"])
        found = resolve_overlaps(f for d in detectors for f in d.find(text))
        predicted = Counter((f.entity, text[f.start : f.end]) for f in found)
        entities = sample["entities"]
        assert isinstance(entities, list)
        expected = Counter((str(e["type"]), str(e["value"])) for e in entities)
        for key in predicted | expected:
            hit = min(predicted[key], expected[key])
            tp[key[0]] += hit
            fp[key[0]] += predicted[key] - hit
            fn[key[0]] += expected[key] - hit
    return tp, fp, fn


def _ratio(a: int, b: int) -> float:
    return a / b if b else 1.0


def test_pii_precision_and_recall_meet_the_targets() -> None:
    tp, fp, fn = _score_pii()
    rows = [f"{'entity':<14} {'TP':>4} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>7}"]
    failures = []
    for entity in sorted(set(tp) | set(fp) | set(fn)):
        precision = _ratio(tp[entity], tp[entity] + fp[entity])
        recall = _ratio(tp[entity], tp[entity] + fn[entity])
        rows.append(
            f"{entity:<14} {tp[entity]:>4} {fp[entity]:>4} {fn[entity]:>4} "
            f"{precision:>9.3f} {recall:>7.3f}"
        )
        if precision < PRECISION_TARGET:
            failures.append(f"{entity} precision {precision:.3f} < {PRECISION_TARGET}")
        if recall < RECALL_TARGETS.get(entity, 0.0):
            failures.append(f"{entity} recall {recall:.3f} < {RECALL_TARGETS[entity]}")
    table = "\n".join(rows)
    print(f"\nPII corpus ({len(_lines('pii.jsonl'))} texts)\n{table}")
    assert not failures, f"{'; '.join(failures)}\n{table}"


def test_corpus_has_enough_positives_and_hard_negatives() -> None:
    samples = _lines("pii.jsonl")
    per_type = Counter(
        str(e["type"]) for s in samples if isinstance(s["entities"], list) for e in s["entities"]
    )
    negatives = sum(1 for s in samples if not s["entities"])
    assert min(per_type.values()) >= 40, per_type
    assert len(per_type) == 8, per_type
    assert negatives >= 100


def test_prompt_injection_false_positives_and_recall_meet_the_targets() -> None:
    detector = InjectionDetector()
    benign = [str(s["text"]) for s in _lines("injection_benign.jsonl")]
    attacks = [str(s["text"]) for s in _lines("injection_attacks.jsonl")]
    false_positives = [t for t in benign if detector.find(t)]
    missed = [t for t in attacks if not detector.find(t)]
    fp_rate = len(false_positives) / len(benign)
    recall = 1 - len(missed) / len(attacks)
    report = (
        f"prompt injection: false positives {len(false_positives)}/{len(benign)} "
        f"({fp_rate:.1%}), recall {len(attacks) - len(missed)}/{len(attacks)} ({recall:.1%})"
    )
    print(f"\n{report}")
    assert fp_rate <= INJECTION_FP_TARGET, f"{report}\nfalse positives: {false_positives}"
    assert recall >= INJECTION_RECALL_TARGET, f"{report}\nmissed: {missed}"
    assert len(benign) >= 200
    assert len(attacks) >= 50


def test_pii_corpus_is_what_its_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_guardrail_corpus", CORPUS / "build_guardrail_corpus.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = [json.dumps(s, ensure_ascii=False) for s in module.build()]
    on_disk = (CORPUS / "pii.jsonl").read_text(encoding="utf-8").splitlines()
    assert built == on_disk, "run tests/sidecar/guardrails/corpus/build_guardrail_corpus.py"
