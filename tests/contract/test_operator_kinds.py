"""Every kind the operator watches is installable and allowed.

For each entry of `kube.kinds.KINDS`: a CRD in crds/ (and so in the chart,
test_chart.py) with that kind, plural, group and served version; and the
ClusterRole of docs/operator.md (the one the e2e tests run the operator
with) lets the operator list and watch it and patch its status. Without
them the operator cannot start: it lists every kind before it serves.
"""

from __future__ import annotations

import pytest

from sidelight_operator.kube.kinds import KINDS, CrdKind
from tests.contract.test_chart import _documented_rules, _grants
from tests.contract.test_crd_schema import crd_files, load_crd


@pytest.mark.parametrize("crd", KINDS, ids=lambda k: k.kind)
def test_the_kind_has_a_crd(crd: CrdKind) -> None:
    found = {}
    for path in crd_files():
        spec = load_crd(path)["spec"]
        for version in spec["versions"]:
            if version["served"]:
                found[(spec["names"]["kind"], spec["names"]["plural"], spec["group"])] = version[
                    "name"
                ]
    assert found.get((crd.kind, crd.plural, crd.group)) == crd.version


@pytest.mark.parametrize("crd", KINDS, ids=lambda k: k.kind)
def test_the_documented_role_allows_the_kind(crd: CrdKind) -> None:
    grants = _grants(_documented_rules())
    for verb in ("get", "list", "watch"):
        assert (crd.group, crd.plural, verb) in grants
    assert (crd.group, f"{crd.plural}/status", "patch") in grants
