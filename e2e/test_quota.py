"""An LLMQuota in a real cluster: leased over TLS with the pod's token, enforced, reported.

The operator runs as in test_operator.py (its own process, the documented
ClusterRole, TLS); the sidecar is a real Pod's container, authenticated with
its projected token on the Leases stream. Calls through it with the openai
SDK stop at the quota's limit with a 429 `quota_exceeded`; what the fake
provider billed stays within the limit; the quota's status (printer columns
and conditions) and its Events tell what happened.
"""

from __future__ import annotations

import json
import time
from typing import Any

import openai
from test_operator import operator_kubeconfig, rig, sidelight_crds  # noqa: F401 (fixtures)
from test_operator_rig import Rig, Status, conditions

from sidelight_e2e.processes import poll
from sidelight_fake_provider.content import count_tokens_like_fake, echo_answer, message_text

LIMIT = 600


def quota(name: str, tokens: int) -> dict[str, Any]:
    """An LLMQuota for every call of the namespace that asks for gpt-4o."""
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMQuota",
        "metadata": {"name": name},
        "spec": {
            "scope": {"model": "gpt-4o"},
            "window": {"rolling": "1h"},
            "limits": {"tokens": tokens},
            "softThresholdPercent": 50,
        },
    }


def quota_status(on: Rig, name: str) -> Status:
    found = on.cluster.kubectl("get", "llmquota", name, "-n", on.namespace, "-o", "json")
    status: Status = json.loads(found.stdout).get("status") or {}
    return status


def billed(on: Rig) -> int:
    """Tokens the fake provider billed, by its own counting rules."""
    total = 0
    for record in on.provider.requests:
        body = record.body
        user = message_text(body["messages"][-1]["content"])
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        total += count_tokens_like_fake(body) + echo_answer(user, limit).output_tokens
    return total


def test_a_quota_stops_calls_at_its_limit_and_its_status_says_so(rig: Rig) -> None:  # noqa: F811
    rig.apply(rig.route("assistant", default="gpt-4o"), quota("budget", LIMIT))
    rig.operator.start()
    sidecar = rig.start_sidecar("app")
    url = f"http://127.0.0.1:{sidecar.port}/v1"
    refusal: openai.RateLimitError | None = None
    deadline = time.monotonic() + 60
    with openai.OpenAI(base_url=url, api_key="placeholder", max_retries=0) as sdk:
        while refusal is None:
            assert time.monotonic() < deadline, "the quota never refused"
            try:
                sdk.chat.completions.create(
                    model="gpt-4o",
                    messages=[{"role": "user", "content": "count the words of this sentence"}],
                    max_tokens=20,
                    timeout=10,
                )
            except openai.RateLimitError as error:
                if "exceeded" in error.message:
                    refusal = error
                else:  # no lease yet: the sidecar just connected
                    time.sleep(0.2)
    assert refusal.code == "quota_exceeded"
    assert f"Quota '{rig.namespace}/budget' exceeded" in refusal.message
    assert 0 < billed(rig) <= LIMIT

    def hard_reached() -> Status | None:
        status = quota_status(rig, "budget")
        return status if conditions(status).get("HardLimitReached", ("",))[0] == "True" else None

    status = poll(hard_reached, timeout=30, what="HardLimitReached")
    assert conditions(status)["SoftLimitReached"] == ("True", "ThresholdCrossed")
    assert conditions(status)["Accepted"] == ("True", "Accepted")
    assert 0.5 * LIMIT <= status["usedTokens"] <= LIMIT
    assert status["used"] == f"{status['usedTokens']:,}/{LIMIT} tokens"
    table = rig.cluster.kubectl("get", "llmquotas", "-n", rig.namespace).stdout.split()
    assert table[:8] == ["NAME", "USED", "PERCENT", "SOFT", "HARD", "RESETS", "ACCEPTED", "AGE"]
    used = status["used"].split()  # "576/600 tokens"
    assert table[8 : 14 + len(used) - 2] == [
        "budget", *used, str(status["percent"]), "True", "True",
    ]  # fmt: skip

    def threshold_events() -> set[str] | None:
        found = rig.cluster.kubectl(
            "get", "events", "-n", rig.namespace,
            "--field-selector", "involvedObject.kind=LLMQuota,involvedObject.name=budget",
            "-o", "json",
        )  # fmt: skip
        reasons = {e["reason"] for e in json.loads(found.stdout)["items"]}
        return reasons if {"SoftLimitReached", "HardLimitReached"} <= reasons else None

    poll(threshold_events, timeout=30, what="the threshold Events")
