"""Delivery: planning the rows, claiming and sending them within capacity, recording outcomes,
recovery after a crash.
"""
