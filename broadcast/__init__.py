"""broadcast: community alerts for police forces over SMS, email and voice.

The core library: it knows nothing of Dramatiq or of web frameworks.
"""
