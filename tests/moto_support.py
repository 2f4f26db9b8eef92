"""A real S3 API server for the tests: moto's standalone server in a subprocess.

:class:`MotoServer` starts ``python -m moto.server`` on 127.0.0.1 with port 0,
reads the port it printed, and stops it (SIGTERM, then SIGKILL).  Nothing is
mocked in-process: the code under test talks HTTP to it with real SigV4
signatures, as it would to S3.

``with_auth()`` turns on moto's IAM checks (after creating the users), so
that an access denied is a real refusal by the server, not a fake error.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"


@dataclass(frozen=True)
class Credentials:
    key: str
    secret: str

    def env(self, endpoint: str) -> dict[str, str]:
        """The standard AWS environment for a process using these credentials."""
        return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": self.key,
                "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_DEFAULT_REGION": REGION,
                # Few and quick retries, so a stopped server is an error in seconds.
                "AWS_MAX_ATTEMPTS": "2", "AWS_RETRY_MODE": "standard"}


ROOT = Credentials("testing", "testing")  # any key works while moto's auth is off


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1, port 0."""

    def __init__(self) -> None:
        self.log = tempfile.NamedTemporaryFile("w+", prefix="moto-", suffix=".log", delete=False)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> MotoServer:
        # stderr goes to a file: moto logs every request, and a pipe nobody
        # reads would block it.
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log.name) as f:
                found = re.search(r"Running on http://127\.0\.0\.1:(\d+)", f.read())
            if found:
                self.port = int(found.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited: {self.output()[-2000:]}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto server did not start in time")

    def output(self) -> str:
        with open(self.log.name) as f:
            return f.read()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self.log.close()
        os.unlink(self.log.name)

    def client(self, service: str = "s3", credentials: Credentials = ROOT) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=credentials.key, aws_secret_access_key=credentials.secret)

    def user(self, name: str, statements: list[dict[str, Any]]) -> Credentials:
        """An IAM user with an inline policy, and its access key."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def with_auth(self) -> None:
        """From now on every request must be signed by a known key its policy allows."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["REGION", "ROOT", "Credentials", "MotoServer"]
