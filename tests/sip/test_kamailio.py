"""Acceptance 5: real SIP calls through the reference Kamailio configuration.

SIPp plays the caller (UAC) and the handler's phone (UAS); Kamailio runs
deploy/kamailio/kamailio.cfg between them on loopback and posts signed canonical events to a
real `firstcontact serve` on this test's backend. The calls are then read back through the
REST API, as a supervisor would see them: a normal call (answered, then BYE), a withheld one
(`Privacy: id`, anonymous From), one the handler's phone rejects with 486, one the caller
abandons while it rings (CANCEL), and a retransmitted INVITE whose From cannot be parsed.
Skipped only when Kamailio or SIPp cannot be installed on this machine, and then the reason is
printed in the skip summary and as a warning.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.auth.models import Role
from app.config import Settings
from tests.conftest import TELEPHONY_SECRET, MakeStaff, run_in_thread
from tests.sip.tools import (
    Kamailio,
    Sipp,
    ensure_tools,
    free_udp_port,
    invite_with_bad_from,
    udp_listening,
)
from tests.support.servers import ServiceProcess, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sip_tools() -> None:
    # `make test` installs Kamailio and SIPp first (scripts/ensure-sip-tools.sh) or stops:
    # missing here means the setup is broken, and a skipped test would prove nothing.
    reason = ensure_tools()
    if reason is not None:
        pytest.fail(f"Kamailio/SIPp are missing and cannot be installed here: {reason}")


@dataclass(frozen=True)
class SipCall:
    name: str
    phone: str  # UAS scenario: what the handler's phone does
    caller: str  # UAC scenario
    extension: str  # R-URI user: the extension the ACD rang, i.e. the handler
    called: str  # To user: the line dialled
    from_user: str
    from_host: str
    from_name: str
    privacy: str

    def call_id(self, run: str) -> str:
        """The SIP Call-ID SIPp gives this call (see `cid_str`): the service's external id."""
        return f"fc-{self.name}-{run}-1@127.0.0.1"

    def cid_str(self, run: str) -> str:
        # SIPp's Call-ID template: %u is the call number (1, one call per run), %s the IP.
        return f"fc-{self.name}-{run}-%u@%s"


CALLS = (
    # A display name with quotes and a backslash-escaped pair: the event JSON must survive it.
    SipCall("normal", "uas_answer.xml", "uac_call.xml", "1042", "999",
            "07700900123", "carrier.example", 'O\'Brien \\"Mary\\"', "none"),
    SipCall("withheld", "uas_answer.xml", "uac_call.xml", "1042", "999",
            "anonymous", "anonymous.invalid", "Anonymous", "id"),
    SipCall("rejected", "uas_busy.xml", "uac_rejected.xml", "2001", "101",
            "02079460018", "carrier.example", "Caller", "none"),
    # The caller gives up while it rings: an abandoned call.
    SipCall("abandoned", "uas_ring.xml", "uac_abandoned.xml", "3003", "999",
            "+447700900456", "carrier.example", "Caller", "none"),
)  # fmt: skip


def place(call: SipCall, run: str, kamailio: Kamailio, phone_port: int, workdir: Path) -> None:
    """One real call: the handler's phone listens, the caller dials through Kamailio."""
    phone = Sipp(workdir, call.phone, f"{call.name}-phone", port=phone_port).start()
    try:
        wait_until(lambda: udp_listening(phone_port), 10, what=f"{call.name}: phone listening")
        caller = Sipp(
            workdir, call.caller, f"{call.name}-caller",
            args=[
                f"127.0.0.1:{kamailio.port}", "-s", call.extension,
                # The Call-ID, so the test can find the call the service recorded.
                "-cid_str", call.cid_str(run),
                "-key", "called", call.called, "-key", "from_user", call.from_user,
                "-key", "from_host", call.from_host, "-key", "from_name", call.from_name,
                "-key", "privacy", call.privacy,
            ],
        ).start()  # fmt: skip
        try:
            caller.wait()
        finally:
            caller.stop()
        phone.wait()
    finally:
        phone.stop()


class CallsApi:
    """The service's REST API as a supervisor reads it."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def find(self, external_id: str) -> dict[str, Any] | None:
        """The call whose provider call id is `external_id`, with its events, or None."""
        listing = self.http.get("/api/v1/calls", params={"limit": 100})
        assert listing.status_code == 200, listing.text
        for item in listing.json()["items"]:
            if item["external_id"] == external_id:
                detail = self.http.get(f"/api/v1/calls/{item['id']}")
                assert detail.status_code == 200, detail.text
                found: dict[str, Any] = detail.json()
                return found
        return None


def event_types(call: dict[str, Any]) -> list[str]:
    return sorted(event["type"] for event in call["events"])


def test_real_sip_calls_are_recorded(
    sip_tools: None,
    settings: Settings,
    live_service: Callable[..., ServiceProcess],
    make_staff: MakeStaff,
    tmp_path: Path,
) -> None:
    service = live_service()

    async def supervisor_token() -> str:
        return await make_staff("SUP-SIP", Role.supervisor)

    token = run_in_thread(supervisor_token())
    phone_port = free_udp_port()
    kamailio = Kamailio(
        workdir=tmp_path,
        next_hop_port=phone_port,
        events_url=f"{service.url}/api/v1/telephony/events",
        secret=TELEPHONY_SECRET,
    )
    run = uuid.uuid4().hex[:10]
    api = CallsApi(service.url, token)
    try:
        kamailio.start()
        for call in CALLS:
            place(call, run, kamailio, phone_port, tmp_path)
        # A carrier bug: a From Kamailio cannot parse, and the INVITE retransmitted.
        bad_from_id = f"fc-bad-from-{run}@127.0.0.1"
        statuses = invite_with_bad_from(kamailio.port, bad_from_id, "999", "1042")
        assert statuses == ["SIP/2.0 400 Bad From"] * 2

        expected_events = {
            "normal": ["answered", "ended", "offered", "ringing"],
            "withheld": ["answered", "ended", "offered", "ringing"],
            "rejected": ["ended", "offered", "ringing"],
            "abandoned": ["ended", "offered", "ringing"],
            "bad_from": ["ended", "offered"],
        }
        recorded: dict[str, dict[str, Any]] = {}
        external_ids = {call.name: call.call_id(run) for call in CALLS}
        external_ids["bad_from"] = bad_from_id

        def all_recorded() -> bool:
            for name, external_id in external_ids.items():
                found = api.find(external_id)
                if found is None or event_types(found) != expected_events[name]:
                    return False
                recorded[name] = found
            return True

        try:
            wait_until(all_recorded, 30, interval=0.2, what="the SIP calls and their events")
        except TimeoutError as exc:
            raise AssertionError(
                f"{exc}\nrecorded so far: {recorded}\nKamailio log:\n{kamailio.tail()}\n"
                f"service log:\n{service.tail()}"
            ) from exc

        names = ("normal", "withheld", "rejected", "abandoned", "bad_from")
        normal, withheld, rejected, abandoned, bad_from = (recorded[name] for name in names)
        for record in recorded.values():
            assert record["source"] == "canonical"
            by_type = {event["type"]: event for event in record["events"]}
            if "ringing" in by_type:
                assert by_type["ringing"]["handler_id"] == record["handler_id"]
            assert by_type["ended"]["cause"] == record["end_cause"]
            # Kamailio's clock, not arrival order: each step after the one before.
            steps = [record[f"{step}_at"] for step in ("offered", "ringing", "answered", "ended")]
            times = [datetime.fromisoformat(t) for t in steps if t is not None]
            assert times == sorted(times) and len(times) == len(record["events"])

        # Answered, then the caller hung up.
        assert normal["state"] == "ended"
        assert normal["caller_e164"] == "+447700900123"
        assert normal["presentation"] == "allowed"
        assert normal["handler_id"] == "1042"
        assert normal["called"] == "999"
        assert normal["answered_at"] is not None
        assert normal["end_cause"] == "normal_clearing"
        assert normal["talk_seconds"] > 0

        # Privacy: id and an anonymous From: withheld, no number to look up.
        assert withheld["state"] == "ended"
        assert withheld["presentation"] == "withheld"
        assert withheld["caller_e164"] is None
        assert withheld["handler_id"] == "1042"
        assert withheld["answered_at"] is not None
        assert withheld["end_cause"] == "normal_clearing"

        # The handler's phone rang and refused with 486: never answered.
        assert rejected["state"] == "ended"
        assert rejected["caller_e164"] == "+442079460018"
        assert rejected["presentation"] == "allowed"
        assert rejected["handler_id"] == "2001"
        assert rejected["called"] == "101"
        assert rejected["answered_at"] is None
        assert rejected["end_cause"] == "user_busy"

        # The caller hung up while the handler's phone rang.
        assert abandoned["state"] == "ended"
        assert abandoned["caller_e164"] == "+447700900456"
        assert abandoned["handler_id"] == "3003"
        assert abandoned["answered_at"] is None
        assert abandoned["end_cause"] == "originator_cancel"

        # Unparseable From: Kamailio refused the INVITE (400) and its retransmission, posting
        # offered and ended for each copy under the same event ids: the service kept one each.
        refusals = [
            line
            for line in kamailio.log_path.read_text(errors="replace").splitlines()
            if bad_from["external_id"] in line and "unparseable From refused" in line
        ]
        assert len(refusals) == 2, kamailio.tail()
        assert bad_from["state"] == "ended"
        assert bad_from["presentation"] == "unavailable"
        assert bad_from["caller_e164"] is None
        assert bad_from["handler_id"] is None
        assert bad_from["called"] == "999"
        assert bad_from["answered_at"] is None
        assert bad_from["end_cause"] == "invalid_from"
    finally:
        api.http.close()
        kamailio.stop()
