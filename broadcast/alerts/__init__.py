"""Alerts: compose and preview, the lifecycle (approval, scheduling, cancel), follow-ups,
escalation, ETA and outcome.
"""
