"""The Djobea conversation engine: prompts, history from SQLite, structured replies, service requests.

It knows customers and their words, not WhatsApp or Twilio: the worker and the chat API hand it a
``Turn`` and send what it decides.
"""
