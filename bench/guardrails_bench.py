"""Guardrail detection cost per KB of prompt, with the default rule set, on one core.

    python bench/guardrails_bench.py [--repeat N]

The rule set is what a cautious team would turn on: every PII entity and
SECRET (redact), prompt injection (block) and a deny list of five phrases
(block), in one input guardrail. Prompts of 1 KB, 8 KB and 64 KB are built
from ordinary paragraphs (support tickets, code review, meeting notes, a
retrieved document with numbers, dates and versions), without PII and with
a PII-bearing sentence about every 400 bytes. The figure is the median over
the repeats of one `evaluate_input` call, divided by the prompt's size (the
best run is shown too: on a shared machine it is the least disturbed). The
target is 100 µs per KB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from sidelight_proto.v1 import snapshot_pb2
from sidelight_sidecar.guardrails import GuardrailRuntime, build_guardrails

TARGET_US_PER_KB = 100.0

PARAGRAPHS = [
    "Hi team, the nightly build failed again after the dependency bump. The error comes from "
    "the serializer tests: three of them time out after 30 seconds on the ARM runners only. "
    "Could you look at whether the new release of the HTTP client changed its default pool "
    "size? We pinned it in March and nothing else moved since then.",
    "Summarise the following meeting notes for the weekly update. Attendees agreed to move "
    "the launch of the reporting dashboard to the second week of the quarter, pending the "
    "load test. Finance asked for a breakdown of cloud spend by team; platform will export "
    "it from the billing tool by Thursday. Action items are listed below.",
    "Please review this function. It reads the configuration file, merges the environment "
    "overrides and validates the result against the schema before returning it. I am not "
    "sure the error handling is right: when the file is missing we fall back to defaults, "
    "but a malformed file should stop the service instead of being ignored silently.",
    "Context document: Release 4.2.1 of the storage engine improves compaction throughput "
    "by 18% on write-heavy workloads and reduces p99 read latency from 42 ms to 31 ms. "
    "Version 4.2.0 introduced the new block cache; upgrade notes are in section 7. The "
    "change log lists 143 fixes, including the race in the snapshot scheduler (issue 8812).",
    "Write a friendly reply to this customer. They ordered the standing desk on the 3rd and "
    "the delivery window was Monday to Wednesday, but the parcel is still at the depot. "
    "Apologise, explain that the carrier had a backlog after the storm, and offer a 10% "
    "voucher for the next order or a full refund of the shipping costs, whichever they prefer.",
    "Translate into German, keeping the tone formal: We are pleased to confirm your "
    "registration for the annual conference. Your workshop slot is on the second day, "
    "from 14:00 to 15:30 in hall B. Please bring your own laptop; power outlets and guest "
    "Wi-Fi are available in every room.",
]

PII_SENTENCES = [
    "You can reach the customer at jane.roe@example.com or +1 415-555-0134.",
    "The refund goes to IBAN DE89 3704 0044 0532 0130 00 by Friday.",
    "Card on file: 4111 1111 1111 1111, billing address unchanged.",
    "Patient DOB: 1984-07-21, SSN 536-22-1234, insurance verified.",
    "The request came from 203.0.113.42 with the header Authorization: Bearer "
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ.",
    "Call the office on +44 20 7946 0958; the backup contact is ops@corp.example.org.",
]


def make_prompt(size: int, *, pii: bool) -> str:
    """Paragraphs in turn until `size` characters, with a PII sentence every ~400."""
    parts: list[str] = []
    length = 0
    paragraphs = 0
    sentences = 0
    next_pii = 200
    while length < size:
        if pii and length >= next_pii:
            part = PII_SENTENCES[sentences % len(PII_SENTENCES)]
            sentences += 1
            next_pii += 400
        else:
            part = PARAGRAPHS[paragraphs % len(PARAGRAPHS)]
            paragraphs += 1
        parts.append(part)
        length += len(part) + 1
    return " ".join(parts)[:size]


def default_runtime() -> GuardrailRuntime:
    """Every PII entity and SECRET, prompt injection and a deny list, on input."""
    guardrail = snapshot_pb2.Guardrail(
        source=snapshot_pb2.ResourceRef(kind="Guardrail", namespace="bench", name="default"),
        stage=snapshot_pb2.GUARDRAIL_STAGE_INPUT,
        rules=[
            snapshot_pb2.GuardrailRule(
                name="pii", action=snapshot_pb2.GUARDRAIL_ACTION_REDACT, pii=snapshot_pb2.PiiRule()
            ),
            snapshot_pb2.GuardrailRule(
                name="injection",
                action=snapshot_pb2.GUARDRAIL_ACTION_BLOCK,
                prompt_injection=snapshot_pb2.PromptInjectionRule(),
            ),
            snapshot_pb2.GuardrailRule(
                name="deny",
                action=snapshot_pb2.GUARDRAIL_ACTION_BLOCK,
                deny_list=snapshot_pb2.DenyListRule(
                    phrases=[
                        "project falcon",
                        "codename bluebird",
                        "acquisition of initech",
                        "layoff list",
                        "q3 guidance",
                    ]
                ),
            ),
        ],
    )
    return build_guardrails([guardrail])


def measure(
    runtime: GuardrailRuntime, text: str, repeat: int
) -> tuple[float, float, dict[str, float]]:
    """Median and best µs per call, and the median µs of each rule."""
    runtime.evaluate_input([text], "gpt-4o", len(text) // 4)  # warm caches
    totals: list[float] = []
    per_rule: dict[str, list[float]] = {}
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        evaluation = runtime.evaluate_input([text], "gpt-4o", len(text) // 4)
        totals.append((time.perf_counter_ns() - t0) / 1000)
        for verdict in evaluation.verdicts:
            per_rule.setdefault(verdict.rule, []).append(verdict.latency_us)
    rules = {k: statistics.median(v) for k, v in per_rule.items()}
    return statistics.median(totals), min(totals), rules


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    runtime = default_runtime()
    print(f"{'prompt':>14}  {'µs/call':>9}  {'µs/KB':>7}  {'best':>7}  per rule µs/KB (median)")
    worst = 0.0
    for size in (1024, 8 * 1024, 64 * 1024):
        for pii in (False, True):
            text = make_prompt(size, pii=pii)
            repeat = max(5, args.repeat * 1024 // size)
            total, best, rules = measure(runtime, text, repeat)
            kb = len(text.encode()) / 1024
            worst = max(worst, total / kb)
            detail = "  ".join(f"{name} {us / kb:.1f}" for name, us in rules.items())
            label = f"{size // 1024} KB {'PII' if pii else 'clean'}"
            print(f"{label:>14}  {total:9.1f}  {total / kb:7.1f}  {best / kb:7.1f}  {detail}")
    verdict = "within" if worst <= TARGET_US_PER_KB else "OVER"
    print(f"worst {worst:.1f} µs/KB: {verdict} the {TARGET_US_PER_KB:.0f} µs/KB target")


if __name__ == "__main__":
    main()
