"""The operator in a cluster: kopf watches, status, TokenReview authentication.

- `ResourceIndex` (`index.py`): what the watches saw; pure and thread-safe.
- `SnapshotSource` (`snapshots.py`): memoised compiles per pod and namespace.
- `conditions.py`: the pure status (`Accepted`, `Programmed`, sidecar counts).
- `Reconciler` (`reconcile.py`) and the kopf handlers (`handlers.py`).
- `StatusWriter` (`status.py`): patches status, posts rejection Events.
- `TokenReviewAuthenticator` (`auth.py`): binds each stream to its pod.
- `Operator` (`operator.py`) wires them with the control plane; `cli.py`
  is the `sidelight operator` command.

See docs/operator.md.
"""

from sidelight_operator.kube.index import PodInfo, ResourceIndex
from sidelight_operator.kube.kinds import KINDS, CrdKind
from sidelight_operator.kube.snapshots import SnapshotSource

__all__ = ["KINDS", "CrdKind", "PodInfo", "ResourceIndex", "SnapshotSource"]
