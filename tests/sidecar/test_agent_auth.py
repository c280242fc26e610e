"""The agent over TLS with a projected token: the operator it trusts, the pod it proves.

A CA and a serving certificate for 127.0.0.1 are generated here; the
authenticator maps tokens to namespaces the way a TokenReview would.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sidelight_operator.compile import compile_snapshot, select_for_pod
from sidelight_operator.controlplane import ControlPlaneServer, Hub, PodRef, Unauthenticated, serve
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2
from sidelight_sidecar.agent import AgentState, ControlPlaneAgent
from sidelight_sidecar.config_store import ConfigStore
from sidelight_sidecar.retry import Backoff

FAST = Backoff(base_s=0.01, max_s=0.05)
TOKENS = {"token-a": "team-a", "token-b": "team-b", "token-b2": "team-b"}


def llmroute(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"namespace": namespace, "name": f"{namespace}-route"},
        "spec": {
            "backends": [
                {
                    "name": "local",
                    "provider": "openai-compatible",
                    "model": "m",
                    "endpoints": [{"url": "http://127.0.0.1:9/v1"}],
                }
            ],
            "routes": [{"name": "default", "routeTo": "local"}],
        },
    }


RESOURCES = [llmroute("team-a"), llmroute("team-b")]


def snapshot_for(pod: PodRef) -> snapshot_pb2.Snapshot:
    return compile_snapshot(select_for_pod(RESOURCES, pod.namespace, pod.labels)).snapshot


class TokenAuthenticator:
    """Token -> namespace, ignoring what the node claims; records the tokens seen."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []

    async def authenticate(
        self, token: str | None, node: control_plane_pb2.Node, peer: str
    ) -> PodRef:
        self.seen.append(token)
        if token not in TOKENS:
            raise Unauthenticated("token not accepted")
        return PodRef(TOKENS[token], node.pod, node.uid, "app", {})


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate_authority() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("sidelight test CA"))
        .issuer_name(_name("sidelight test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def serving_pair(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("sidelight-operator"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class Cluster:
    """A TLS control plane, its CA on disk, and the agents started against it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.auth = TokenAuthenticator()
        self.hub = Hub(snapshot_for, debounce_s=0.01)
        ca_key, ca_cert = certificate_authority()
        self.tls = serving_pair(ca_key, ca_cert)
        self.ca_path = tmp_path / "ca.crt"
        self.ca_path.write_bytes(pem(ca_cert))
        self.server: ControlPlaneServer | None = None
        self.agents: list[ControlPlaneAgent] = []

    async def start(self, port: int = 0) -> None:
        self.server = await serve(self.hub, self.auth, f"127.0.0.1:{port}", self.tls)

    async def stop(self) -> None:
        for agent in self.agents:
            await agent.stop()
        if self.server is not None:
            await self.server.stop(None)

    def agent(
        self, token: str | None, claims: str = "team-a", ca_path: Path | None = None
    ) -> ControlPlaneAgent:
        token_path = None
        if token is not None:
            token_path = self.tmp / f"token-{len(self.agents)}"
            token_path.write_text(token + "\n")
        assert self.server is not None
        node = control_plane_pb2.Node(pod=f"pod-{len(self.agents)}", namespace=claims)
        agent = ControlPlaneAgent(
            ConfigStore(),
            f"127.0.0.1:{self.server.port}",
            node,
            token_path=token_path,
            ca_path=ca_path or self.ca_path,
            backoff=FAST,
        )
        self.agents.append(agent)
        agent.start()
        return agent


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    await c.start()
    yield c
    await c.stop()


def namespaces(agent: ControlPlaneAgent) -> set[str]:
    """The namespaces of the route sets the agent's store serves."""
    current = agent.store.current
    assert current is not None
    return {route_set.split("/")[0] for route_set in current.policies}


async def test_over_tls_a_token_gets_its_own_namespace_only(cluster: Cluster) -> None:
    own = cluster.agent("token-a", claims="team-a")
    other = cluster.agent("token-b", claims="team-a")  # claims team-a, proves team-b
    await until(lambda: own.held_version and other.held_version)
    assert namespaces(own) == {"team-a"}
    assert namespaces(other) == {"team-b"}
    by_pod = {s.pod.name: s.pod.namespace for s in cluster.hub.sidecars()}
    assert by_pod == {"pod-0": "team-a", "pod-1": "team-b"}
    assert own.state is AgentState.CONNECTED


async def test_without_a_token_the_agent_gets_nothing(cluster: Cluster) -> None:
    agent = cluster.agent(None)
    await until(lambda: "UNAUTHENTICATED" in agent.last_error)
    assert agent.store.current is None
    assert cluster.hub.sidecars() == []


async def test_an_operator_signed_by_another_ca_is_not_trusted(
    cluster: Cluster, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(pem(certificate_authority()[1]))
    agent = cluster.agent("token-a", ca_path=other_ca)
    await until(lambda: "UNAVAILABLE" in agent.last_error)
    assert agent.store.current is None
    assert cluster.auth.seen == []  # the token never left the agent


async def test_the_token_is_read_again_on_every_connect(cluster: Cluster) -> None:
    agent = cluster.agent("token-b")
    await until(lambda: agent.held_version)
    assert agent.token_path is not None
    agent.token_path.write_text("token-b2")  # the kubelet rotated the projected token
    assert cluster.server is not None
    port = cluster.server.port
    await cluster.server.stop(None)
    await until(lambda: agent.state is not AgentState.CONNECTED)
    await cluster.start(port)
    await until(lambda: cluster.auth.seen[-1:] == ["token-b2"])
    await until(lambda: agent.state is AgentState.CONNECTED)


async def test_an_unreadable_token_file_is_retried_without_leaking(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    agent = cluster.agent("token-a")
    assert agent.token_path is not None
    agent.token_path.unlink()
    await until(lambda: "No such file" in agent.last_error)
    assert str(agent.token_path) in agent.last_error
    agent.token_path.write_text("token-a")
    await until(lambda: agent.held_version)
    assert "token-a" not in caplog.text
