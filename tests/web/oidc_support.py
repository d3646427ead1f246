"""A real OpenID Connect provider for the tests: tests/oidc/provider.mjs (the `oidc-provider`
package on the machine's Node), its packages installed into tests/oidc/node_modules from the
lock file (`npm ci`) when missing or older than the lock."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.servers import ROOT, free_port, wait_until

OIDC_DIR = ROOT / "tests" / "oidc"
CLIENT_ID = "firstcontact-test"
CLIENT_SECRET = "test-only-client-secret-0123456789"


def ensure_packages() -> None:
    """`npm ci` into tests/oidc when its node_modules does not match the lock file."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm (Node 20) is needed for the single sign-on tests")
    installed = OIDC_DIR / "node_modules" / ".package-lock.json"
    lock = OIDC_DIR / "package-lock.json"

    def current() -> bool:
        return installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime

    if current():
        return
    # The test command runs both backends' passes at once: one installs, the other waits
    # for it (two `npm ci` in one folder remove each other's files).
    with (OIDC_DIR / ".install.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if current():
            return
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=OIDC_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )


@dataclass
class OidcProvider:
    """The provider on a free port, its issuer on `localhost` (another site than the service
    on 127.0.0.1, as a force's provider is: the callback is a cross-site navigation)."""

    accounts: dict[str, dict[str, object]]
    # The service's callback and where its logout returns (set once the service has a port).
    redirect_uri: str = ""
    post_logout_uri: str = ""
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> OidcProvider:
        ensure_packages()
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node (Node 20) is needed for the single sign-on tests")
        env = {
            **os.environ,
            "OIDC_TEST_PORT": str(self.port),
            "OIDC_TEST_ISSUER": self.issuer,
            "OIDC_TEST_CLIENT_ID": CLIENT_ID,
            "OIDC_TEST_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_TEST_REDIRECT_URI": self.redirect_uri,
            "OIDC_TEST_POST_LOGOUT_URI": self.post_logout_uri,
            "OIDC_TEST_ACCOUNTS": json.dumps(self.accounts),
        }
        fd, log = tempfile.mkstemp(prefix="fc-oidc-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log)
        with self.log_path.open("w") as out:
            self.proc = subprocess.Popen(
                [node, "provider.mjs"], cwd=OIDC_DIR, env=env, stdout=out, stderr=out
            )
        wait_until(self._answers, 15, what=f"the OpenID provider: {self.tail()}")
        return self

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path else ""

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the OpenID provider exited: {self.tail()}")
        url = self.issuer + "/.well-known/openid-configuration"
        return httpx.get(url, timeout=1.0).status_code == 200

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def service_env(self, **extra: str) -> dict[str, str]:
        """The service's settings for this provider."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_ROLE_CLAIM": "roles",
            "OIDC_ROLE_MAP": "FC-Supervisors=supervisor,FC-Handlers=handler",
            "OIDC_PROVIDER_NAME": "Test Force ID",
            **extra,
        }
