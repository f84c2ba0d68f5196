"""Inbound channels: a public web form and a signed webhook, both stored before answering."""
