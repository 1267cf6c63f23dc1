"""Email over SMTP behind the channel interface: the MIME message, its wire bytes, the connection
pool, the channel.
"""
