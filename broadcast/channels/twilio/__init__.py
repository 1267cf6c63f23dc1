"""Twilio SMS and voice behind the channel interface: the official client, its transport, error
mapping.
"""
