"""The communication service: WhatsApp messages out through Twilio's REST API (or a sandbox outbox),
recorded before they are sent and tracked through Twilio's delivery status callbacks."""
