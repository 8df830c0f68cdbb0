"""The deployment's scheduler carries the other areas' jobs, and alerts reach the admin's WhatsApp."""

from __future__ import annotations

from bot.admin.scheduler import alert_dispatcher
from bot.admin.settings import AdminSettings
from bot.cli.serve import scheduler_for
from bot.web import services_of

ADMIN_NUMBER = "+237600000001"
TWILIO = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "twilio-token-for-admin-tests",
    "TWILIO_WHATSAPP_NUMBER": "+14155238886",
    "ADMIN_WHATSAPP_NUMBER": ADMIN_NUMBER,
}


def test_scheduler_resumes_stuck_inbound_messages(make_app) -> None:
    services = services_of(make_app())
    jobs = {job.id for job in scheduler_for(services, blocking=False).get_jobs()}
    assert {"selftest", "alerts", "resume_inbound"} <= jobs


def test_benched_alert_reaches_the_admin_whatsapp_through_twilio(make_app, emulator) -> None:
    emulator.twilio.set_credentials(TWILIO["TWILIO_ACCOUNT_SID"], TWILIO["TWILIO_AUTH_TOKEN"])
    services = services_of(make_app({**TWILIO, "TWILIO_API_BASE": emulator.base_url}))
    sender = services.send_admin_whatsapp
    assert sender is not None
    alerts = alert_dispatcher(services.llm.service, AdminSettings.from_env(services.env), sender)
    emulator.set_fault("claude", "credit_exhausted")
    assert services.llm.service.complete([{"role": "user", "content": "allo"}]).provider == "gemini"

    alerts.run_once()

    sent = emulator.twilio.messages(to=f"whatsapp:{ADMIN_NUMBER}")
    assert len(sent) == 1
    assert "claude benched" in sent[0]["body"]


def test_no_whatsapp_sender_without_twilio_credentials(make_app) -> None:
    services = services_of(make_app({"ADMIN_WHATSAPP_NUMBER": ADMIN_NUMBER}))
    assert services.send_admin_whatsapp is None
