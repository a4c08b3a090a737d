"""Local processes of the test control plane: certificates, command lines, lifecycle.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run on
loopback ports chosen at run time, each in its own process group with its log in
the run's work folder. The pytest fixture in tests/fixtures/kube.py drives them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_key: Path
    service_account_public_key: Path


def _issue(
    *,
    name: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    usage: x509.ObjectIdentifier | None = None,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    """A certificate for key, signed by ca (self-signed CA when ca is None)."""
    now = datetime.now(UTC)
    issuer_name, issuer_key = (ca[0].subject, ca[1]) if ca else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=ca is None,
                crl_sign=ca is None,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()), critical=False
        )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write_pki(folder: Path) -> Pki:
    """A throwaway CA, the API server's serving cert, an admin client cert, a token key."""
    folder.mkdir(mode=0o700)

    def write(file_name: str, data: bytes) -> Path:
        path = folder / file_name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    def subject(common_name: str, organization: str | None = None) -> x509.Name:
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        return x509.Name(attributes)

    ca_key, serving_key, admin_key, token_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in range(4)
    )
    ca_cert = _issue(name=subject("taskiq-fleet-test-ca"), key=ca_key, ca=None)
    dns_names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    serving_cert = _issue(
        name=subject("kube-apiserver"),
        key=serving_key,
        ca=(ca_cert, ca_key),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=[x509.DNSName(dns) for dns in dns_names]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "10.0.0.1")],
    )
    admin_cert = _issue(
        name=subject("taskiq-fleet-test-admin", "system:masters"),
        key=admin_key,
        ca=(ca_cert, ca_key),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return Pki(
        ca_cert=write("ca.crt", cert_pem(ca_cert)),
        serving_cert=write("apiserver.crt", cert_pem(serving_cert) + cert_pem(ca_cert)),
        serving_key=write("apiserver.key", key_pem(serving_key)),
        admin_cert=write("admin.crt", cert_pem(admin_cert)),
        admin_key=write("admin.key", key_pem(admin_key)),
        service_account_key=write("sa.key", key_pem(token_key)),
        service_account_public_key=write(
            "sa.pub",
            token_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        ),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child before exec: a killed test run must not leave servers behind.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Processes:
    """The control-plane processes, each in its own process group with a log file."""

    def __init__(self, *, bin_dir: Path, log_dir: Path) -> None:
        self._bin_dir = bin_dir
        self._log_dir = log_dir
        self._running: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []
        log_dir.mkdir()

    def start(self, name: str, *args: str) -> None:
        log = (self._log_dir / f"{name}.log").open("wb")
        try:
            process = subprocess.Popen(
                [str(self._bin_dir / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - the hook only calls prctl
            )
        except OSError:
            # Gives up: the caller stops what already runs; the log file is not leaked.
            log.close()
            raise
        self._running.append((name, process, log))

    def check_alive(self, fail: Callable[[str], None]) -> bool:
        for name, process, _log in self._running:
            if process.poll() is not None:
                fail(f"{name} exited early with code {process.returncode}")
        return True

    def log_tails(self, *, lines: int = 25) -> str:
        parts = []
        for name, _process, _log in self._running:
            text = (self._log_dir / f"{name}.log").read_text(errors="replace")
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"----- last {lines} lines of {name}.log -----\n{tail}")
        return "\n".join(parts)

    def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop in reverse start order, so each server outlives its clients; kill stragglers."""
        while self._running:
            _name, process, log = self._running.pop()
            with contextlib.suppress(ProcessLookupError):
                # Gives up quietly: the process group is already gone.
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                # Gives up on a graceful stop: SIGKILL cannot be ignored.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()


CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "job-controller",
    "disruption-controller",
    "endpointslice-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "pod-garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
)


def start_etcd(*, processes: Processes, work_dir: Path) -> str:
    """Start a one-member etcd on free loopback ports; return its client URL."""
    etcd_url = f"http://127.0.0.1:{_free_port()}"
    peer_url = f"http://127.0.0.1:{_free_port()}"
    processes.start(
        "etcd",
        "--name=taskiq-fleet-test",
        f"--data-dir={work_dir / 'etcd'}",
        f"--listen-client-urls={etcd_url}",
        f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=taskiq-fleet-test={peer_url}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    )
    return etcd_url


def etcd_healthy(etcd_url: str) -> bool:
    try:
        with urllib.request.urlopen(  # noqa: S310 - the http URL of the local etcd
            f"{etcd_url}/health", timeout=2
        ) as response:
            return bool(json.load(response).get("health") == "true")
    except (OSError, ValueError):
        # Retries: etcd is still starting (refused connection, or a 503 while it elects itself).
        return False


def start_apiserver(*, processes: Processes, work_dir: Path, pki: Pki, etcd_url: str) -> str:
    """Start kube-apiserver on a free loopback port; return its URL."""
    api_port = _free_port()
    server = f"https://127.0.0.1:{api_port}"
    processes.start(
        "kube-apiserver",
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={api_port}",
        f"--cert-dir={work_dir / 'apiserver-certs'}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=RBAC",
        "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,PodSecurity",
        # Without a node lifecycle controller, a not-ready taint would never be lifted.
        "--disable-admission-plugins=TaintNodesByCondition",
        "--allow-privileged=true",
        "--service-cluster-ip-range=10.0.0.0/24",
        f"--service-account-issuer={server}",
        f"--service-account-key-file={pki.service_account_public_key}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        "--endpoint-reconciler-type=none",
        "--profiling=false",
    )
    return server


def start_clients(*, processes: Processes, pki: Pki, kubeconfig: Path) -> None:
    """Start the controllers, the scheduler and kwok, all as the admin user."""
    processes.start(
        "kube-controller-manager",
        f"--kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--secure-port=0",
        f"--controllers={','.join(CONTROLLERS)}",
        f"--root-ca-file={pki.ca_cert}",
        "--use-service-account-credentials=false",
        "--profiling=false",
    )
    processes.start(
        "kube-scheduler",
        f"--kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--secure-port=0",
        "--profiling=false",
    )
    processes.start(
        "kwok",
        f"--kubeconfig={kubeconfig}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        # The Nodes' address is loopback, so a stray `kubectl logs` goes nowhere else.
        "--node-ip=127.0.0.1",
        "--cidr=10.244.0.1/16",
    )
