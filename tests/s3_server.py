"""A real S3 API on 127.0.0.1: moto's server mode in its own process, for the object-store tests.

Clients reach it the way they reach any S3-compatible store: the standard AWS variables
(AWS_ENDPOINT_URL_S3 and a key pair; moto accepts any), so Hadoop's S3A, pyarrow, boto3,
MLflow and Mosaic Streaming all find it through the one place jobs/core/object_store.py uses.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from tests.standalone_cluster import free_port

# Never a real account's: the run-record tests look for this value and must not find it.
TEST_SECRET = "realsyn-test-secret-7f3a9c"
TEST_ACCESS_KEY = "realsyn-test-access-key"


class S3Server:
    def __init__(self, log_path: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> "S3Server":
        server = os.path.join(os.path.dirname(sys.executable), "moto_server")
        log = open(self.log_path or os.devnull, "ab")
        self.proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2).read()
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url} within {timeout_s}s")

    def env(self) -> dict[str, str]:
        """The variables a client needs to use this server as its S3."""
        return {"AWS_ENDPOINT_URL_S3": self.url, "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": TEST_SECRET, "AWS_REGION": "us-east-1"}

    def client(self):
        import boto3
        env = self.env()
        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"])

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
