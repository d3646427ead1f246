"""Kamailio and SIPp for the real-SIP test: find or install them, run them on loopback.

Everything runs in the foreground of its own process group, on free 127.0.0.1 ports, in a
temporary folder, and is killed after the test.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import ROOT, wait_until

CONFIG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
ENSURE_SCRIPT = ROOT / "scripts" / "ensure-sip-tools.sh"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
# The modules of the reference configuration that come from the optional Debian packages,
# plus two from the main one.
MODULES = ("jansson", "http_client", "crypto", "dialog", "async")


def _module_dir() -> Path | None:
    patterns = (
        "/usr/lib/*/kamailio/modules",
        "/usr/lib/kamailio/modules",
        "/usr/local/lib*/kamailio/modules",
    )
    for pattern in patterns:
        for candidate in sorted(glob.glob(pattern)):
            if (Path(candidate) / "tm.so").exists():
                return Path(candidate)
    return None


def binary(name: str) -> str | None:
    """The tool's path; also looks in the sbin folders a non-root PATH may leave out."""
    found = shutil.which(name)
    if found is not None:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin", "/usr/local/bin"):
        candidate = Path(folder) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def missing_tools() -> list[str]:
    """What the test needs and this machine lacks (empty when all is there)."""
    missing = [tool for tool in ("kamailio", "sipp") if binary(tool) is None]
    modules = _module_dir()
    if modules is None:
        missing.append("kamailio modules")
    else:
        missing += [f"kamailio module {m}" for m in MODULES if not (modules / f"{m}.so").exists()]
    return missing


def ensure_tools() -> str | None:
    """Install the tools when missing (scripts/ensure-sip-tools.sh). None when they are all
    there afterwards, else the reason they could not be installed."""
    if not missing_tools():
        return None
    done = subprocess.run(["bash", str(ENSURE_SCRIPT)], capture_output=True, text=True, timeout=900)
    still = missing_tools()
    if not still:
        return None
    output = (done.stderr or done.stdout).strip()[-800:]
    return f"missing {', '.join(still)}; {ENSURE_SCRIPT.name} exited {done.returncode}: {output}"


_HANDED_OUT: set[int] = set()


def free_udp_port(span: int = 1) -> int:
    """A UDP port on 127.0.0.1 free with the `span - 1` after it (SIPp's media port: audio
    RTP and RTCP, video RTP and RTCP), for a process started next. Taken below the kernel's
    ephemeral range, which any socket of any process (the other test pass's, a DNS lookup)
    may be given between this check and the process binding the port; never the same port
    twice in this run (two SIPp started together each ask for one)."""
    candidates = range(10_000, _ephemeral_low() - span)
    start = os.getpid() * 97  # test passes side by side start apart
    for offset in range(len(candidates)):
        port = candidates[(start + offset) % len(candidates)]
        wanted = range(port, port + span)
        if any(p in _HANDED_OUT for p in wanted) or not all(map(_udp_free, wanted)):
            continue
        _HANDED_OUT.update(wanted)
        return port
    raise RuntimeError("no free UDP port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def udp_listening(port: int) -> bool:
    """True once some process (a SIPp UAS) has bound UDP `port`. Read from the kernel's
    table rather than by binding the port, which could race the process starting."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(row.split()[1].endswith(wanted) for row in rows if len(row.split()) > 1):
            return True
    return False


def sip_options_ok(port: int) -> bool:
    """Send one SIP OPTIONS to 127.0.0.1:port; True when it answers 200."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        tag = uuid.uuid4().hex
        message = (
            f"OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{tag}\r\n"
            f"From: <sip:probe@127.0.0.1:{local}>;tag={tag[:8]}\r\n"
            f"To: <sip:probe@127.0.0.1:{port}>\r\n"
            f"Call-ID: probe-{tag}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(message.encode(), ("127.0.0.1", port))
        return sock.recv(65535).startswith(b"SIP/2.0 200")


def invite_with_bad_from(port: int, call_id: str, called: str, extension: str) -> list[str]:
    """Send Kamailio an INVITE whose From cannot be parsed (its quote is never closed), then
    the same INVITE again, as a carrier retransmits when it misses the answer; ACK the final
    answer. Returns the status lines received, one per INVITE copy.

    Done over a plain socket, one step after the other: SIPp would race the answer to the
    first copy against sending the second."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        via = f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        common = (
            f'From: "Broken <sip:07700900123@carrier.example>;tag={uuid.uuid4().hex[:10]}\r\n'
            f"Call-ID: {call_id}\r\nMax-Forwards: 70\r\n"
        )
        invite = (
            f"INVITE sip:{extension}@127.0.0.1:{port} SIP/2.0\r\n{via}{common}"
            f"To: <sip:{called}@127.0.0.1:{port}>\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:caller@127.0.0.1:{local}>\r\nContent-Length: 0\r\n\r\n"
        )
        statuses: list[str] = []
        reply = b""
        for _copy in range(2):
            sock.sendto(invite.encode(), ("127.0.0.1", port))
            reply = sock.recv(65535)
            statuses.append(reply.split(b"\r\n", 1)[0].decode())
        to_line = next(
            line for line in reply.decode().split("\r\n") if line.lower().startswith("to:")
        )
        ack = (
            f"ACK sip:{extension}@127.0.0.1:{port} SIP/2.0\r\n{via}{common}{to_line}\r\n"
            "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(ack.encode(), ("127.0.0.1", port))
        return statuses


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _stop_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class Kamailio:
    """The reference configuration, in the foreground, configured by its environment."""

    workdir: Path
    next_hop_port: int
    events_url: str
    secret: str
    port: int = field(default_factory=free_udp_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "kamailio.log"

    def start(self, timeout: float = 20.0) -> Kamailio:
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "FIRSTCONTACT_SIP_LISTEN": f"udp:127.0.0.1:{self.port}",
            "FIRSTCONTACT_NEXT_HOP": f"sip:127.0.0.1:{self.next_hop_port}",
            "FIRSTCONTACT_EVENTS_URL": self.events_url,
            "FIRSTCONTACT_TELEPHONY_SECRET": self.secret,
        }
        command = [
            binary("kamailio") or "kamailio", "-DD", "-E", "-f", str(CONFIG),
            "-Y", str(self.workdir), "-m", "64", "-M", "8",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_until(self._ready, timeout, what=f"Kamailio on udp {self.port}")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"Kamailio exited with {self.proc.returncode}:\n{self.tail()}")
        return sip_options_ok(self.port)

    def tail(self) -> str:
        return _tail(self.log_path)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)


@dataclass
class Sipp:
    """One SIPp run of a scenario from tests/sip/scenarios."""

    workdir: Path
    scenario: str
    name: str
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_udp_port)
    proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            binary("sipp") or "sipp", *self.args, "-sf", str(SCENARIOS / self.scenario),
            "-i", "127.0.0.1", "-p", str(self.port), "-mp", str(free_udp_port(span=4)),
            "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
            "-trace_err", "-error_file", str(self.workdir / f"{self.name}-errors.log"),
            "-trace_msg", "-message_file", str(self.workdir / f"{self.name}-messages.log"),
        ]  # fmt: skip

    def start(self) -> Sipp:
        with (self.workdir / f"{self.name}.out").open("wb") as out:
            self.proc = subprocess.Popen(
                self.command(), cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def wait(self, timeout: float = 45.0) -> None:
        """Wait for the scenario to finish; fail with SIPp's own logs unless it succeeded."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop_group(self.proc)
            code = -1
        if code != 0:
            raise AssertionError(
                f"SIPp {self.name} ({self.scenario}) exited {code}\n"
                f"errors:\n{_tail(self.workdir / f'{self.name}-errors.log')}\n"
                f"messages:\n{_tail(self.workdir / f'{self.name}-messages.log', 80)}"
            )

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)
