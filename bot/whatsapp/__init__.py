"""The WhatsApp side put together: Twilio webhooks in, the durable queue, the worker that answers each
message once through the conversation engine, and the sender that hands replies to Twilio."""
