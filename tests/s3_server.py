"""An S3-compatible server (moto) on 127.0.0.1 over https, for the object-store tests.

litdata uploads and prefetches through obstore, which refuses plain-http endpoints, so the
server gets a certificate for 127.0.0.1 signed by a throwaway CA; boto3 trusts the CA through
``AWS_CA_BUNDLE``, obstore through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from local_net import free_port


def _certificate(subject: str, issuer: str, key, signer, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([address]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("pconv test CA", "pconv test CA", ca_key, ca_key, True)
    server = _certificate("127.0.0.1", "pconv test CA", key, ca_key, False)
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(server.public_bytes(pem))
    private = serialization.PrivateFormat.PKCS8
    paths[2].write_bytes(key.private_bytes(pem, private, serialization.NoEncryption()))
    return paths


class S3Server:
    """``python -m moto.server`` on a free port of 127.0.0.1; :attr:`env` is what a client
    needs (endpoint, credentials, region, the CA)."""

    def __init__(self, folder: Path) -> None:
        ca, cert, key = write_certificates(folder)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CA_BUNDLE": str(ca),
            "SSL_CERT_FILE": str(ca),
        }
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        command += ["-s", "-c", str(cert), "-k", str(key)]
        log = open(folder / "moto.log", "w")  # noqa: SIM115 - the server keeps it
        self.process = subprocess.Popen(command, stdout=log, stderr=log)

    def client(self):
        """A boto3 S3 client of this server."""
        import boto3

        env = self.env
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            verify=env["AWS_CA_BUNDLE"],
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the server answers (it imports for a few seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client().list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def read_share(rank: int, port: int, url: str, cache: str, out: str) -> None:
    """One of two gloo ranks reading the litdata shards at ``url``: saves to ``out`` the paths
    of its share and the chunk files it downloaded."""
    import torch
    import torch.distributed as dist
    from litdata import StreamingDataset

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    paths = [record["path"] for record in StreamingDataset(url, cache_dir=cache)]
    chunks = sorted(p.name for p in Path(cache).rglob("chunk-*.bin"))
    torch.save({"paths": paths, "chunks": chunks}, out)
    dist.destroy_process_group()
